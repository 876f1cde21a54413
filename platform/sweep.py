"""Run a sweep: `python platform/sweep.py SPEC.yaml [...]` = `balenas sweep SPEC.yaml [...]`.

The file `ray submit` ships to a cluster's head; the implementation is balenas/commands/sweep.py.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout wins over an installed copy

from balenas.commands.sweep import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(prog="platform/sweep.py"))
