"""Run the proxy stage on an existing sweep: `python platform/proxy_stage.py RUN_DIR [...]` = `balenas proxies`.

The file `ray submit` ships to a cluster's head; the implementation is balenas/commands/proxies.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])  # this checkout wins over an installed copy
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from balenas.commands.proxies import main  # noqa: E402

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main(prog="platform/proxy_stage.py"))
