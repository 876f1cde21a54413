"""Score a whole space with proxies: `python platform/score_space.py OUT_DIR [...]` = `balenas score-space`.

The file `ray job submit` runs on a cluster; the implementation is balenas/commands/score_space.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])  # this checkout wins over an installed copy
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from balenas.commands.score_space import main  # noqa: E402

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main(prog="platform/score_space.py"))
