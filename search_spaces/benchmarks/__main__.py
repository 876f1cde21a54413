"""Command line: convert a benchmark source to the compact table, or query a table.

    balenas benchmark convert SRC OUT.parquet [--trust-pickle] [--benchmark nb201]
    balenas benchmark query ARCH [--table PATH] [--dataset D --split S --epochs E]   # no --table: packaged one
(`python -m search_spaces.benchmarks ...` is the same command.)
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from search_spaces.benchmarks.registry import BENCHMARKS, open_benchmark
from search_spaces.benchmarks.table_io import write_table

# benchmark name -> "module:function(src, trust_pickle, progress) -> Benchmark"
CONVERTERS: dict[str, str] = {
    "nb201": "search_spaces.benchmarks.nb201_convert:convert_source",
}


def _convert(args: argparse.Namespace) -> None:
    if args.benchmark not in CONVERTERS:
        raise ValueError(f"no converter for {args.benchmark!r}; converters exist for {sorted(CONVERTERS)}")
    module, _, func = CONVERTERS[args.benchmark].partition(":")
    convert = getattr(importlib.import_module(module), func)
    start = time.perf_counter()
    bench = convert(args.src, trust_pickle=args.trust_pickle, progress=not args.quiet)
    out = write_table(bench, args.out)
    print(f"wrote {out}: {len(bench)} architectures, {len(bench.available())} accuracy columns "
          f"{bench.available()}, extras {bench.extra_names()} in {time.perf_counter() - start:.1f} s")


def _query(args: argparse.Namespace) -> None:
    bench = open_benchmark(args.benchmark, args.table)
    if args.dataset is not None:
        print(f"{bench.query(args.arch, args.dataset, args.split, args.epochs):.4f}")
        return
    for dataset, split, epochs in bench.available():
        print(f"{dataset:15s} {split:6s} {epochs:4d}ep  {bench.query(args.arch, dataset, split, epochs):.4f}")
    for name in bench.record_extras:
        if name in bench.extra_names():
            print(f"{name:27s} {bench.extra(name)[bench.row(args.arch)]:.6f}")


def main(argv: list[str] | None = None, prog: str = "python -m search_spaces.benchmarks") -> int:
    parser = argparse.ArgumentParser(prog=prog,
                                     description="Benchmark ground truth: convert sources, query tables.")
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="convert a source (official NB201 .pth or the shared CSV) to Parquet")
    conv.add_argument("src", help="official NAS-Bench-201-v1_*.pth or nb201_merged.csv")
    conv.add_argument("out", help="output Parquet path")
    conv.add_argument("--benchmark", default="nb201", choices=sorted(CONVERTERS))
    conv.add_argument("--trust-pickle", action="store_true",
                      help="allow a full unpickle (runs code from the file) when weights_only loading fails; "
                           "only for files from a source you trust")
    conv.add_argument("--quiet", action="store_true", help="no progress bar")
    conv.set_defaults(func=_convert)
    query = sub.add_parser("query", help="print the accuracies of one architecture")
    query.add_argument("arch", help="architecture string, e.g. '|nor_conv_3x3~0|+|...|+|...|'")
    query.add_argument("--table", default=None,
                       help="compact Parquet table or NB201's merged CSV (default: the table shipped with the package)")
    query.add_argument("--benchmark", default="nb201", choices=sorted(BENCHMARKS))
    query.add_argument("--dataset", help="e.g. cifar10, cifar10-valid, cifar100, ImageNet16-120 (default: all)")
    query.add_argument("--split", default="test", help="valid or test (default test)")
    query.add_argument("--epochs", type=int, default=None,
                       help="training budget (default: the benchmark's own, e.g. NB201 200)")
    query.set_defaults(func=_query)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, KeyError, FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
