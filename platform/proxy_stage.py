"""Run the proxy stage on an existing sweep: `python platform/proxy_stage.py RUN_DIR [...]` = `balenas proxies`.

The file `ray submit` ships to a cluster's head; the implementation is balenas/commands/proxies.py.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout wins over an installed copy

from balenas.commands.proxies import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(prog="platform/proxy_stage.py"))
