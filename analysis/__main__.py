"""`python -m analysis report RUN_DIR ...`: the same command as `balenas report` (balenas/commands/report.py)."""

import sys

from balenas.commands.report import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    raise SystemExit(main(argv[1:] if argv[:1] == ["report"] else argv, prog="python -m analysis report"))
