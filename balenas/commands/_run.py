"""Steps the commands share: one log format (`start_logging`), joining or starting Ray (`connect_ray`), and for
the commands that run a spec on Ray (`balenas sweep`, `balenas train`) the same run options (`add_run_options`),
the spec and the results folder checked before Ray starts (bad input: one `error:` line, exit status 2,
`load_checked_spec`, `run_checked`), and the same closing resume / failure hint (`print_outcome`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

SpecT = TypeVar("SpecT")
ResultT = TypeVar("ResultT")

#: exit status of a command given bad input (spec, paths, storage)
BAD_INPUT = 2


def start_logging() -> None:
    """INFO logs to stderr, one line each: level, logger, message."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def connect_ray(args: argparse.Namespace) -> None:
    """Join the cluster at --address, else start a local Ray with --num-cpus; nothing if Ray is up already."""
    import ray

    if not ray.is_initialized():
        ray.init(address=args.address, num_cpus=args.num_cpus if args.address is None else None)


def add_run_options(parser: argparse.ArgumentParser, run: str, checked: str) -> None:
    """The options every spec-running command takes: results folder, resume, Ray, data checks, output.
    `run` names what --resume finishes ("sweep"), `checked` what is checked before Ray starts ("data")."""
    parser.add_argument("--storage", help="results folder (default: the spec's `storage`, else ./runs); on a "
                                          "multi-node cluster a folder shared by all nodes")
    parser.add_argument("--resume", action="store_true", help=f"finish an interrupted {run} of the same name")
    parser.add_argument("--address", help="Ray cluster to join (e.g. 'auto' on the head node); default: "
                                          "$RAY_ADDRESS if set, else an embedded local Ray")
    parser.add_argument("--no-check-paths", action="store_true",
                        help=f"do not require (or fetch) the {checked} here: they exist only on the workers")
    parser.add_argument("--no-download", action="store_true",
                        help="never download a missing data set (= `download: false` in the spec): air-gapped clusters")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the embedded local Ray (default: all)")
    parser.add_argument("--ray-temp-dir", help="temporary folder of the embedded local Ray (keep the path short)")
    parser.add_argument("--quiet", action="store_true", help="no per-iteration progress table")


def bad_input(err: BaseException) -> int:
    """Print `err` as the command's one error line; returns the bad-input exit status."""
    print(f"error: {err}", file=sys.stderr)
    return BAD_INPUT


def load_checked_spec(load: Callable[[], SpecT], check_paths: Callable[[SpecT], Any],
                      args: argparse.Namespace, error: type | None = None, kind: str = "sweep") -> SpecT | int:
    """The spec from `load()`, its results folder checked (`check_run_storage`), then its data (honouring
    --no-download and --no-check-paths); the exit status on bad input. All before Ray starts. `error`: the
    spec's SpecError class (its `kind` names the spec in a message about the file itself); `kind` names the run
    ("sweep", "training")."""
    from search_spaces.data import DataCheckError
    from search_spaces.data.download import DownloadError
    from trainables.runs.spec import SpecError, read_spec_text

    try:
        read_spec_text(args.spec, error or SpecError)  # a readable UTF-8 file, else one error naming path and byte
        spec = load()
    except (SpecError, FileNotFoundError) as err:
        return bad_input(err)
    status = check_run_storage(spec, args, kind)
    if status is not None:
        return status
    try:
        if args.no_download:
            spec = spec.model_copy(update={"download": False})
        if not args.no_check_paths:
            check_paths(spec)
    except (SpecError, FileNotFoundError, DownloadError, DataCheckError) as err:
        return bad_input(err)
    return spec


def check_run_storage(spec: Any, args: argparse.Namespace, kind: str = "sweep") -> int | None:
    """The results folder `<storage>/<spec.name>` checked before Ray starts and before any download
    (`trainables.runs.tuner.check_storage`: scheme, reachable, no file in the way, writable, the run folder's name
    free or, with --resume, a run of this `kind` there), creating nothing; the exit status on bad input."""
    from trainables.runs.tuner import DEFAULT_STORAGE, check_storage

    try:
        check_storage(args.storage or spec.storage or DEFAULT_STORAGE, spec.name, resume=args.resume, kind=kind)
    except (FileExistsError, FileNotFoundError, ValueError, ConnectionError) as err:
        return bad_input(err)
    return None


def ray_init_options(args: argparse.Namespace) -> dict[str, Any]:
    """`ray.init` keywords of the embedded local Ray from --num-cpus / --ray-temp-dir."""
    ray_init: dict[str, Any] = {}
    if args.num_cpus is not None:
        ray_init["num_cpus"] = args.num_cpus
    if args.ray_temp_dir:
        ray_init["temp_dir"] = args.ray_temp_dir
    return ray_init


def run_checked(run: Callable[..., ResultT], spec: Any, args: argparse.Namespace) -> ResultT | int:
    """`run(spec, ...)` with the command's storage, resume, Ray and verbosity options; the exit status on bad
    input (a run folder that exists, a missing path, a bad value, an unreachable cluster)."""
    try:
        return run(spec, storage=args.storage, resume=args.resume, address=args.address,
                   ray_init=ray_init_options(args), verbose=0 if args.quiet else 1)
    except (FileExistsError, FileNotFoundError, ValueError, ConnectionError) as err:
        if isinstance(err, OSError) and err.errno is not None and not err.filename:
            raise  # a system error that names no path is no bad input: its traceback says where it arose
        return bad_input(err)


def print_outcome(result: Any, args: argparse.Namespace, prog: str, failed_hint: str) -> None:
    """The closing line: how to resume an interrupted run, else how many trials failed and where to look."""
    if result.interrupted:
        print(f"interrupted: finish it with  {prog} {args.spec} --resume"
              + (f" --storage {args.storage}" if args.storage else ""))
    elif len(result.failed):
        print(f"{len(result.failed)} {failed_hint}")


def size_args(pairs: list[str]) -> dict[str, object]:
    """`--size` values: ['C=4', 'N=1'] -> {'C': 4, 'N': 1}; values that are not integers stay strings (the space
    rejects them, naming the key)."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--size: expected KEY=VALUE, got {pair!r}")
        out[key] = int(value) if value.lstrip("-").isdigit() else value
    return out
