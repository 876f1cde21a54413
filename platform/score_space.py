"""Score a whole space with proxies: `python platform/score_space.py OUT_DIR [...]` = `balenas score-space`.

The file `ray job submit` runs on a cluster; the implementation is balenas/commands/score_space.py.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout wins over an installed copy

from balenas.commands.score_space import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(prog="platform/score_space.py"))
