"""Proxy throughput on this machine, Ray parallel efficiency, and the projected time to score all of NB201.

    OMP_NUM_THREADS=1 python benchmarks/bench_proxies.py --data-root ../shared/data/cifar10 [--archs 6]

Prints (and with --out writes as markdown):
1. architectures per second for each proxy alone, in this process (one thread), C=16, N=5, batch 64, over
   `--archs` random NB201 architectures; network construction is timed separately;
2. NASWOT throughput through Ray with one task in flight (one worker) and with two, on `--ray-archs`
   architectures; parallel efficiency = rate(2) / (2 * rate(1));
3. projected wall time for NASWOT over all 15,625 architectures with two workers.
Measured figures depend on what else runs on the machine: the script prints the load average before and
after so that a reader can judge.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

import torch

from search_spaces.nb201 import all_architectures, network
from trainables import proxies
from trainables.proxies.batch import proxy_batch

REPO = Path(__file__).resolve().parents[1]
SPACE_SIZE = 15_625


def time_proxies(archs, inputs, targets, names, C, N):
    """Seconds per architecture for each proxy (median), and for building the network."""
    per = {n: [] for n in names}
    build = []
    for arch in archs:
        start = time.perf_counter()
        torch.manual_seed(0)
        net = network(arch, C=C, N=N)
        build.append(time.perf_counter() - start)
        for name in names:
            start = time.perf_counter()
            proxies.score(net, inputs, targets, [name])
            per[name].append(time.perf_counter() - start)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {n: med(v) for n, v in per.items()}, med(build)


def ray_rate(archs, batch, in_flight: int, C: int, N: int, archs_per_task: int) -> float:
    """Architectures per second for NASWOT through score_distributed with `in_flight` tasks at once."""
    from trainables.proxy_stage.driver import score_distributed

    start = time.perf_counter()
    score_distributed(archs, batch, ["naswot"], on_rows=lambda rows: None, archs_per_task=archs_per_task,
                      space="nb201", size={"C": C, "N": N}, max_in_flight=in_flight, progress=False)
    return len(archs) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(REPO / ".." / "shared" / "data" / "cifar10"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--archs", type=int, default=6, help="architectures for the per-proxy timing")
    parser.add_argument("--ray-archs", type=int, default=16, help="architectures per Ray measurement (0: skip)")
    parser.add_argument("--names", nargs="*", default=None)
    parser.add_argument("--out", default=None, help="also write the figures as markdown here")
    args = parser.parse_args(argv)
    names = proxies.validate_names(args.names or proxies.names())
    inputs, targets = proxy_batch("cifar10", args.data_root, args.batch_size)
    rng = random.Random(0)
    pool = all_architectures()
    archs = rng.sample(pool, args.archs)
    lines = [f"machine: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
             f"load average before {os.getloadavg()[0]:.2f}; C={args.C}, N={args.N}, batch {args.batch_size}",
             "", "| proxy | s / arch (median) | archs / s |", "|---|---|---|"]
    per, build = time_proxies(archs, inputs, targets, names, args.C, args.N)
    lines.append(f"| (build network) | {build:.3f} | {1 / build:.1f} |")
    for name in names:
        lines.append(f"| {name} | {per[name]:.3f} | {1 / per[name]:.2f} |")
    if args.ray_archs:
        import ray

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throw-away local Ray
        ray.init(num_cpus=2, _temp_dir="/tmp/ray_bench_proxies", include_dashboard=False, log_to_driver=False)
        try:
            ray_archs = rng.sample(pool, args.ray_archs)
            per_task = max(1, args.ray_archs // 4)
            ray_rate(ray_archs[:2], (inputs, targets), 2, args.C, args.N, 1)  # start both workers
            one = ray_rate(ray_archs, (inputs, targets), 1, args.C, args.N, per_task)
            two = ray_rate(ray_archs, (inputs, targets), 2, args.C, args.N, per_task)
        finally:
            ray.shutdown()
        efficiency = two / (2 * one)
        projected = SPACE_SIZE / two
        lines += ["", f"NASWOT through Ray ({args.ray_archs} archs, {per_task} per task): 1 worker {one:.2f} archs/s, "
                      f"2 workers {two:.2f} archs/s, parallel efficiency {efficiency:.2f}",
                  f"projected NASWOT over all {SPACE_SIZE} NB201 architectures on 2 workers: "
                  f"{projected / 60:.1f} minutes"]
    lines.append(f"load average after {os.getloadavg()[0]:.2f}")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
