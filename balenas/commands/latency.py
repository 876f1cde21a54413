"""Latency lookup tables measured on this machine, and predictions from them.

    balenas latency measure --space nb201 --device cpu --batch 1 --out nb201_cpu.parquet
    balenas latency measure --space darts --size C=16 layers=8 --backend onnxruntime --out darts_ort.parquet \\
        --validate 50                       # then time 50 sampled networks end to end: Spearman, MAPE
    balenas latency predict nb201_cpu.parquet "|nor_conv_3x3~0|+|...|"

`measure` times every candidate operation at every position where its input shape differs, plus the fixed
parts (stem, reductions, preprocessing, head), with `--warmup` untimed and `--repeats` timed runs each (the
median is kept), and writes one row per part (Parquet; the settings in its metadata). A table predicts an
architecture's latency as the sum of the parts its network runs. `--validate K` measures K sampled
architectures end to end with the same timer and prints the table's Spearman and mean absolute percentage
error (and writes them beside the table, `<out>.validation.parquet`). Exit 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from balenas.commands._run import size_args


def _measure(args, parser) -> int:
    from search_spaces.latency_lut import measure_parts, validate
    from search_spaces.onnx_export import OnnxUnavailable
    from search_spaces.space import DEFAULT_SPACE

    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            parser.exit(2, f"{parser.prog}: error: --device {args.device}: CUDA is not available on this machine\n")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    try:
        table = measure_parts(args.space or DEFAULT_SPACE, size_args(args.size), dataset=args.dataset,
                              num_classes=args.num_classes, device=args.device, batch=args.batch,
                              backend=args.backend, warmup=args.warmup, repeats=args.repeats,
                              threads=args.threads, progress=not args.no_progress)
    except (ValueError, KeyError, OnnxUnavailable) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    path = table.write(args.out)
    total = table.rows["ms"].sum()
    print(f"wrote {path}: {len(table.rows)} parts of space {table.settings['space']!r} "
          f"({args.backend}, {args.device}, batch {args.batch}; medians sum to {total:.3f} ms)")
    if args.validate:
        result = validate(table, args.validate, seed=args.seed, progress=not args.no_progress)
        import pandas as pd

        out = Path(str(args.out) + ".validation.parquet")
        pd.DataFrame(result["rows"]).to_parquet(out, index=False)
        print(f"validation on {result['n']} sampled architectures: Spearman {result['spearman']:.3f}, "
              f"MAPE {result['mape_pct']:.1f}% (per architecture: {out})")
    return 0


def _predict(args, parser) -> int:
    from search_spaces.latency_lut import LatencyTable

    try:
        table = LatencyTable.read(args.table)
        for arch in args.arch:
            print(f"{table.predict(arch):.4f} ms\t{arch}")
    except (FileNotFoundError, ValueError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    return 0


def main(argv: list[str] | None = None, prog: str = "balenas latency") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    m = sub.add_parser("measure", help="time every part of a space's networks into a lookup table")
    m.add_argument("--space", default=None, help="a registered search space (default: the registry's)")
    m.add_argument("--size", nargs="+", default=[], metavar="KEY=VALUE",
                   help="network size keys of the space, e.g. C=16 N=5 (default: the space's proxy_size)")
    m.add_argument("--dataset", default="cifar10", help="sets the classes and the input resolution")
    m.add_argument("--num-classes", type=int, default=None, help="override the data set's classes")
    m.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    m.add_argument("--batch", type=int, default=1, help="images per forward pass")
    m.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch")
    m.add_argument("--warmup", type=int, default=10, help="untimed runs of each part")
    m.add_argument("--repeats", type=int, default=30, help="timed runs of each part (the median is kept)")
    m.add_argument("--threads", type=int, default=None, help="intra-op threads (torch and onnxruntime)")
    m.add_argument("--out", required=True, type=Path, help="the lookup table to write (.parquet)")
    m.add_argument("--validate", type=int, default=0, metavar="K",
                   help="then measure K sampled architectures end to end: Spearman and MAPE of the table")
    m.add_argument("--seed", type=int, default=0, help="seed of the sampled architectures and the weights")
    m.add_argument("--no-progress", action="store_true")
    p = sub.add_parser("predict", help="predicted latency of architectures from a lookup table")
    p.add_argument("table", type=Path)
    p.add_argument("arch", nargs="+")
    args = parser.parse_args(argv)
    if args.action == "measure":
        for name in ("batch", "repeats"):
            if getattr(args, name) < 1:
                parser.exit(2, f"{prog}: error: --{name} must be >= 1 (got {getattr(args, name)})\n")
        if args.warmup < 0 or args.validate < 0 or (args.threads is not None and args.threads < 1):
            parser.exit(2, f"{prog}: error: --warmup and --validate must be >= 0 and --threads >= 1\n")
        return _measure(args, m)
    return _predict(args, p)


if __name__ == "__main__":
    sys.exit(main())
