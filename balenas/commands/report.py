"""`balenas report RUN_DIR [...]`: the analysis report (implemented in analysis/__main__.py)."""

from __future__ import annotations


def main(argv: list[str] | None = None, prog: str = "balenas report") -> int:
    from analysis.__main__ import main as analysis_main

    return analysis_main(["report", *(argv or [])], prog=prog.rsplit(" ", 1)[0])
