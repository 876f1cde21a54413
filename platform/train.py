"""Train chosen architectures: `python platform/train.py SPEC.yaml [...]` = `balenas train SPEC.yaml [...]`.

The file `ray submit` ships to a cluster's head; the implementation is balenas/commands/train.py.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout wins over an installed copy

from balenas.commands.train import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(prog="platform/train.py"))
