"""The `balenas` command line: one entry point for sweeps, final training, reports, the proxy stage, whole-space
scoring and benchmark tables (`balenas --help`). The library itself lives in search_spaces/, trainables/ and
analysis/.

    from balenas import main
    main(["sweep", "platform/sweeps/quickstart.yaml"])   # = `balenas sweep ...`; returns the exit status

Each subcommand is `balenas.commands.<name>.main(argv, prog)` (`COMMANDS` maps the names); platform/*.py and the
`python -m` entry points call the same functions.
"""

import importlib

_LAZY = {"COMMANDS": "cli", "main": "cli", "run": "cli"}

__all__ = ["COMMANDS", "commands", "main", "run"]


def __getattr__(name: str):
    """Loaded on first use: `python -m balenas.cli` finds no half-imported copy of the module."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"balenas.{_LAZY[name]}"), name)
    if name == "commands":
        return importlib.import_module("balenas.commands")
    raise AttributeError(f"module 'balenas' has no attribute {name!r}")
