"""Train chosen architectures: `python platform/train.py SPEC.yaml [...]` = `balenas train SPEC.yaml [...]`.

The file `ray submit` ships to a cluster's head; the implementation is trainables/train/cli.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

# the checkout this script belongs to wins over an installed copy (`ray job submit --working-dir .`)
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from trainables.train.cli import main, parse_args  # noqa: E402

__all__ = ["main", "parse_args"]

if __name__ == "__main__":
    sys.exit(main(prog="platform/train.py"))
