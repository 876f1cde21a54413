"""How well a measured latency lookup table predicts whole networks on this machine (issue 22, section 3).

For each (space, backend) it runs what `balenas latency measure ... --validate K` runs: time every part of the
space's decomposition (`search_spaces.latency_lut.measure_parts`), then K sampled architectures end to end
(`validate`), and prints one markdown row: parts, sum of part medians, Spearman and MAPE of the table's
predictions against the end-to-end medians, the measured range, wall time. Timing runs on one thread; pin the
process to a core (`taskset -c 0`) and keep other work off it for stable figures.

    taskset -c 0 python benchmarks/bench_latency_lut.py --k 50 --spaces nb201 darts --backends torch onnxruntime
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from search_spaces.latency_lut import measure_parts, validate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spaces", nargs="+", default=["nb201", "darts"])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--k", type=int, default=50, help="sampled architectures timed end to end")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, 1 thread, affinity {sorted(os.sched_getaffinity(0))}, load average before "
          f"{os.getloadavg()[0]:.2f}; batch {args.batch}, warm-up {args.warmup}, repeats {args.repeats}\n")
    print("| space (size) | backend | parts | K | Spearman | MAPE % | measured ms (min-max) | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for space in args.spaces:
        for backend in args.backends:
            start = time.perf_counter()
            table = measure_parts(space, None, batch=args.batch, backend=backend, warmup=args.warmup,
                                  repeats=args.repeats, threads=1, progress=False, seed=args.seed)
            result = validate(table, args.k, seed=args.seed, progress=False)
            measured = [r["measured_ms"] for r in result["rows"]]
            size = " ".join(f"{k}={v}" for k, v in table.settings["size"].items())
            print(f"| {space} ({size}) | {backend} | {len(table.rows)} | {result['n']} | {result['spearman']:.3f} | "
                  f"{result['mape_pct']:.1f} | {min(measured):.3f}-{max(measured):.3f} | "
                  f"{time.perf_counter() - start:.0f} |", flush=True)
    print(f"\nload average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
