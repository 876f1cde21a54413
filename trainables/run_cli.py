"""Shared steps of the commands that run a spec on Ray (`balenas sweep`, `balenas train`).

Both validate the spec before Ray starts (bad input: one `error:` line, exit status 2), pass the embedded-Ray
options through, and end with the same resume / failure hint.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, TypeVar

SpecT = TypeVar("SpecT")

#: exit status of a command given bad input (spec, paths, storage)
BAD_INPUT = 2


def bad_input(err: BaseException) -> int:
    """Print `err` as the command's one error line; returns the bad-input exit status."""
    print(f"error: {err}", file=sys.stderr)
    return BAD_INPUT


def load_checked_spec(load: Callable[[], SpecT], check_paths: Callable[[SpecT], Any],
                      args: argparse.Namespace) -> SpecT | int:
    """The spec from `load()`, honouring --no-download and --no-check-paths; the exit status on bad input."""
    from search_spaces.data.download import DownloadError
    from trainables.spec import SpecError

    try:
        spec = load()
        if args.no_download:
            spec = spec.model_copy(update={"download": False})
        if not args.no_check_paths:
            check_paths(spec)
    except (SpecError, FileNotFoundError, DownloadError) as err:
        return bad_input(err)
    return spec


def ray_init_options(args: argparse.Namespace) -> dict[str, Any]:
    """`ray.init` keywords of the embedded local Ray from --num-cpus / --ray-temp-dir."""
    ray_init: dict[str, Any] = {}
    if args.num_cpus is not None:
        ray_init["num_cpus"] = args.num_cpus
    if args.ray_temp_dir:
        ray_init["temp_dir"] = args.ray_temp_dir
    return ray_init


def print_outcome(result: Any, args: argparse.Namespace, prog: str, failed_hint: str) -> None:
    """The closing line: how to resume an interrupted run, else how many trials failed and where to look."""
    if result.interrupted:
        print(f"interrupted: finish it with  {prog} {args.spec} --resume"
              + (f" --storage {args.storage}" if args.storage else ""))
    elif len(result.failed):
        print(f"{len(result.failed)} {failed_hint}")
