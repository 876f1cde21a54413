"""`balenas benchmark`: convert a benchmark's source to its compact table, or query a table.

    balenas benchmark convert SRC OUT.parquet [--benchmark nb201] [--trust-pickle]
    balenas benchmark convert nasbench_full.tfrecord nb101.parquet --benchmark nb101 [--no-crc] [--check-hashes]
    balenas benchmark query ARCH [--table PATH] [--dataset D --split S --epochs E]   # no --table: packaged one
    balenas benchmark query --benchmark nb101 --table nb101.parquet (--arch A | --matrix M --ops O)
(`python -m search_spaces.benchmarks ...` is the same command.)

Each benchmark brings its converter (`CONVERTERS`: its keyword options are the convert flags it accepts) and
may bring its own printable query record (`RECORDS`); the command itself knows no benchmark by name.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from search_spaces.benchmarks.registry import BENCHMARKS, open_benchmark

# ----- per-benchmark converters: (src, out, *, progress, **options) -> the line to print -----------------


def _convert_nb201(src: str, out: str, *, progress: bool, trust_pickle: bool = False) -> str:
    """official NAS-Bench-201-v1_*.pth, or the shared nb201_merged.csv"""
    from search_spaces.benchmarks.table_io import write_table
    from search_spaces.nb201.convert import convert_source

    start = time.perf_counter()
    bench = convert_source(src, trust_pickle=trust_pickle, progress=progress)
    path = write_table(bench, out)
    return (f"wrote {path}: {len(bench)} architectures, {len(bench.available())} accuracy columns "
            f"{bench.available()}, extras {bench.extra_names()} in {time.perf_counter() - start:.1f} s")


def _convert_nb101(src: str, out: str, *, progress: bool, verify_crc: bool = True,
                   check_hashes: bool = False) -> str:
    """official nasbench_only108.tfrecord or nasbench_full.tfrecord (read without TensorFlow)"""
    from search_spaces.nb1shot1.nb101.benchmark import convert

    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else None
    return json.dumps(convert(src, out, progress=say, verify_crc=verify_crc, check_hashes=check_hashes))


#: benchmark name -> its converter (its docstring names the source it reads); the keyword options after
#: `progress` are the convert flags it accepts.
CONVERTERS: dict[str, Callable[..., str]] = {
    "nb201": _convert_nb201,
    "nb101": _convert_nb101,
}

#: convert flag -> (the converter keyword it sets, the value it passes, help)
_CONVERT_FLAGS: dict[str, tuple[str, Any, str]] = {
    "--trust-pickle": ("trust_pickle", True, "allow a full unpickle (runs code from the file) when weights_only "
                                             "loading fails; only for files from a source you trust"),
    "--no-crc": ("verify_crc", False, "skip the records' CRC checks (faster; not recommended)"),
    "--check-hashes": ("check_hashes", True, "recompute every cell's module hash from its matrix and ops"),
}


# ----- printable query records: (bench, arch, epochs, **options) -> the text to print ---------------------


def _record_lines(bench, arch: str | None, epochs: int | None) -> str:
    """Every accuracy of `arch` (at `epochs`, else at every budget the table holds) and its record extras."""
    if not arch:
        raise ValueError("query needs an architecture (ARCH or --arch)")
    lines = [f"{dataset:15s} {split:6s} {e:4d}ep  {bench.query(arch, dataset, split, e):.4f}"
             for dataset, split, e in bench.available() if epochs is None or e == epochs]
    if not lines:
        raise ValueError(f"{bench.name} has no results at epochs={epochs}; available: {bench.epochs()}")
    lines += [f"{name:27s} {bench.extra(name)[bench.row(arch)]:.6f}"
              for name in bench.record_extras if name in bench.extra_names()]
    return "\n".join(lines)


def _parse_matrix(text: str):
    """Row-major 0/1 digits (other characters ignored) -> a V x V adjacency matrix."""
    import numpy as np

    digits = [int(c) for c in text if c in "01"]
    v = int(len(digits) ** 0.5)
    if v * v != len(digits):
        raise ValueError(f"--matrix needs V*V 0/1 digits (row-major), got {len(digits)}")
    return np.array(digits).reshape(v, v)


def _nb101_record(bench, arch: str | None, epochs: int | None, *, matrix: str | None = None,
                  ops: str | None = None) -> str:
    """An architecture: the generic lines; a cell given as --matrix/--ops: NB101's own fields (JSON, fractions)."""
    if matrix is None and ops is None:
        return _record_lines(bench, arch, epochs)
    if arch or not (matrix and ops):
        raise ValueError("query needs --matrix and --ops together, or an architecture instead of both")
    res = bench.query(_parse_matrix(matrix), ops.split(","), epochs=bench.budget(epochs))
    res["module_adjacency"] = res["module_adjacency"].tolist()
    return json.dumps(res)


#: benchmark name -> its printable query record, where it differs from the generic lines (`_record_lines`);
#: its keyword options are the query flags it accepts.
RECORDS: dict[str, Callable[..., str]] = {
    "nb101": _nb101_record,
}

#: query flag -> (the record keyword it sets, help)
_QUERY_FLAGS: dict[str, tuple[str, str]] = {
    "--matrix": ("matrix", "instead of ARCH: the cell's adjacency as row-major 0/1 digits, e.g. 0110000..."),
    "--ops": ("ops", "with --matrix: comma-separated ops, e.g. input,conv3x3-bn-relu,...,output"),
}


# ----- the command ------------------------------------------------------------------------------------------


def _keywords(func: Callable) -> set[str]:
    return set(inspect.signature(func).parameters)


def _takers(table: dict[str, Callable], keyword: str, default: Callable | None = None) -> str:
    """The benchmarks whose entry in `table` (else `default`) takes `keyword`, for a flag's help."""
    funcs = {name: table.get(name, default) for name in sorted(BENCHMARKS)}
    return ", ".join(name for name, func in funcs.items() if func is not None and keyword in _keywords(func))


def _options(args: argparse.Namespace, flags: dict[str, tuple], func: Callable, benchmark: str) -> dict[str, Any]:
    """The keyword options the given flags set; an error names a flag the benchmark does not take."""
    options = {spec[0]: getattr(args, spec[0]) for spec in flags.values() if getattr(args, spec[0]) is not None}
    taken = _keywords(func)
    wrong = [flag for flag, spec in flags.items() if spec[0] in options and spec[0] not in taken]
    if wrong:
        own = [flag for flag, spec in flags.items() if spec[0] in taken]
        verb = "does" if len(wrong) == 1 else "do"
        raise ValueError(f"{', '.join(wrong)} {verb} not apply to --benchmark {benchmark} "
                         f"(its options: {', '.join(own) or 'none'})")
    return options


def _convert(args: argparse.Namespace) -> None:
    if args.benchmark not in CONVERTERS:
        raise ValueError(f"no converter for {args.benchmark!r}; converters exist for {sorted(CONVERTERS)}")
    convert = CONVERTERS[args.benchmark]
    print(convert(args.src, args.out, progress=not args.quiet,
                  **_options(args, _CONVERT_FLAGS, convert, args.benchmark)))


def _query(args: argparse.Namespace) -> None:
    if args.arch and args.arch_option and args.arch != args.arch_option:
        raise ValueError(f"two architectures: ARCH {args.arch!r} and --arch {args.arch_option!r}")
    arch = args.arch or args.arch_option
    record = RECORDS.get(args.benchmark, _record_lines)
    options = _options(args, _QUERY_FLAGS, record, args.benchmark)
    if args.dataset is not None and (options or not arch):
        raise ValueError("--dataset needs an architecture (ARCH or --arch), and no other way of naming one")
    bench = open_benchmark(args.benchmark, args.table)
    if args.dataset is not None:
        print(f"{bench.query(arch, args.dataset, args.split, args.epochs):.4f}")
        return
    print(record(bench, arch, args.epochs, **options))


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Benchmark ground truth: convert sources, query tables.")
    sub = parser.add_subparsers(dest="command", required=True)
    sources = "; ".join(f"{name}: {func.__doc__}" for name, func in CONVERTERS.items())
    conv = sub.add_parser("convert", help="convert a benchmark's source to its compact Parquet table",
                          description=f"Convert a benchmark's source to its compact Parquet table ({sources}).")
    conv.add_argument("src", help="the source file")
    conv.add_argument("out", help="output Parquet path")
    conv.add_argument("--benchmark", default="nb201", choices=sorted(CONVERTERS),
                      help="which benchmark SRC holds (default nb201)")
    for flag, (keyword, value, text) in _CONVERT_FLAGS.items():
        conv.add_argument(flag, dest=keyword, action="store_const", const=value, default=None,
                          help=f"{text} [{_takers(CONVERTERS, keyword)}]")
    conv.add_argument("--quiet", action="store_true", help="no progress output")
    conv.set_defaults(func=_convert)
    query = sub.add_parser("query", help="print the accuracies of one architecture",
                           description="Print the accuracies of one architecture.")
    query.add_argument("arch", nargs="?", default=None,
                       help="architecture string, e.g. '|nor_conv_3x3~0|+|...|+|...|' (nb201), or a module hash or "
                            "nb1shot1 string (nb101)")
    query.add_argument("--arch", dest="arch_option", metavar="ARCH", default=None, help="the same as ARCH")
    query.add_argument("--table", default=None,
                       help="compact Parquet table or NB201's merged CSV (default: the table shipped with the package)")
    query.add_argument("--benchmark", default="nb201", choices=sorted(BENCHMARKS), help="default nb201")
    query.add_argument("--dataset", help="e.g. cifar10, cifar10-valid, cifar100, ImageNet16-120 (default: all)")
    query.add_argument("--split", default="test", help="valid or test (default test)")
    query.add_argument("--epochs", type=int, default=None,
                       help="training budget (default: with --dataset or --matrix the benchmark's own, e.g. NB201 "
                            "200, NB101 108; else every budget the table holds)")
    for flag, (keyword, text) in _QUERY_FLAGS.items():
        query.add_argument(flag, dest=keyword, default=None,
                           help=f"{text} [{_takers(RECORDS, keyword, _record_lines)}]")
    query.set_defaults(func=_query)
    return parser


def main(argv: list[str] | None = None, prog: str = "balenas benchmark") -> int:
    """The command (`balenas benchmark`, `python -m search_spaces.benchmarks`); returns the exit status."""
    args = _parser(prog).parse_args(argv)
    try:
        args.func(args)
    except (ValueError, KeyError, FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
