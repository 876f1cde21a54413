"""`balenas COMMAND [ARGS]`: dispatch to the subcommand's own `main(argv, prog)` (each has its own --help).

A subcommand is one line in COMMANDS ("module:function"), imported only when run, so `balenas --help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> ("module:function" taking (argv, prog) and returning an exit status, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "sweep": ("balenas.commands.sweep:main", "run a sweep spec on Ray Tune (results in Parquet)"),
    "train": ("balenas.commands.train:main", "train chosen architectures from scratch (final training)"),
    "report": ("balenas.commands.report:main", "write report.md, plots and paper tables for finished sweeps"),
    "proxies": ("balenas.commands.proxies:main", "run the proxy stage (BaLeNAS-TF) on an existing sweep"),
    "score-space": ("balenas.commands.score_space:main", "score every architecture of a space with proxies"),
    "benchmark": ("balenas.commands.benchmark:main", "convert a ground-truth source to a table, or query it"),
    "export": ("balenas.commands.export:main", "export a derived network as ONNX, checked in onnxruntime"),
    "latency": ("balenas.commands.latency:main", "measure a latency lookup table on this machine, or predict"),
}


def _parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:12s} {text}" for name, (_, text) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="balenas", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Differentiable NAS on Ray Tune.", epilog=f"commands:\n{lines}\n\n"
                                                              f"`balenas COMMAND --help` for a command's options.")
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's arguments")
    return parser


def run(command: str, argv: list[str]) -> int:
    """Run subcommand `command` with its arguments; returns its exit status."""
    target, _ = COMMANDS[command]
    module, _, func = target.partition(":")
    return int(getattr(importlib.import_module(module), func)(argv, prog=f"balenas {command}") or 0)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    return run(args.command, args.args)


if __name__ == "__main__":
    sys.exit(main())
