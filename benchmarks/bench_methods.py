"""Iteration time of every registered search method against darts-v1, on the one search loop.

An iteration = one weight step (SGD on a search-train batch) + the method's architecture step (every
`update_interval` weight steps) on a search-valid batch, through `SearchRun.run_epoch` exactly as a search
runs (augmentation on the device, one host sync per epoch). Also times the bare supernet weight step
(forward + backward + SGD with fixed edge weights), the floor every method pays.

Methods are measured in interleaved rounds (every method once per round, in a rotating order) so that load
from other processes on a shared machine hits all of them alike; the figure per method is the median over
rounds of (epoch time / steps). Ratios are to darts-v1's median.

    OMP_NUM_THREADS=2 python benchmarks/bench_methods.py --C 16 --N 5 --batch 64 --steps 2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/x.py`: benchmarks.* importable
from benchmarks.timing import print_ratio_rows, rotated_rounds  # noqa: E402
from search_spaces.data.device import DeviceDataset  # noqa: E402
from trainables.methods import EdgeWeights, available_methods  # noqa: E402
from trainables.search.loop import SearchRun  # noqa: E402


def random_splits(n: int, num_classes: int = 10, seed: int = 0) -> dict[str, DeviceDataset]:
    """CIFAR-shaped random uint8 images: timing does not depend on pixel values."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name in ("search-train", "search-valid"):
        images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
        labels = torch.randint(0, num_classes, (n,), generator=g)
        out[name] = DeviceDataset(images, labels, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26), num_classes, name)
    return out


def make_run(method: str, args, splits) -> SearchRun:
    config = dict(method=method, C=args.C, N=args.N, batch_size=args.batch, epochs=10_000,
                  steps_per_epoch=args.steps, device=args.device, seed=0, amp=args.amp,
                  channels_last=args.channels_last)
    return SearchRun(config, splits=splits)


def time_epoch(run: SearchRun, clock=time.perf_counter) -> float:
    """Seconds per iteration of one epoch (run_epoch ends with a host sync, so the time is complete).

    `clock=time.process_time` counts this process's CPU time only: on a CPU shared with other jobs and one
    intra-op thread it is far less noisy than wall time (it is meaningless on a GPU)."""
    start = clock()
    row = run.run_epoch()
    return (clock() - start) / row["steps"]


def time_weight_step(run: SearchRun, repeats: int, clock=time.perf_counter) -> float:
    """The bare supernet weight step: forward, backward, clip, SGD, with uniform edge weights."""
    x, y = run.train(torch.arange(run.cfg.batch_size, device=run.device), run.data_generator)
    ew = EdgeWeights({k: torch.full((r, o), 1.0 / o, device=run.device)
                      for k, (r, o) in run.space.arch_shapes.items()})

    def step():
        loss = F.cross_entropy(run.forward(x, ew).float(), y)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), 5.0)
        run.optimizer.step()
        return loss.detach()

    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = clock()
        float(step())  # sync
        times.append(clock() - start)
    return statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2, help="iterations per timed epoch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--methods", nargs="*", default=None, help="default: every registered method")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time (for a shared CPU with OMP_NUM_THREADS=1)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    methods = args.methods or available_methods()
    if "darts-v1" not in methods:
        methods = ["darts-v1", *methods]
    splits = random_splits(max(args.batch * args.steps, args.batch))
    runs, errors = {}, {}
    for m in methods:
        try:
            runs[m] = make_run(m, args, splits)
            time_epoch(runs[m])  # warm-up epoch
        except Exception as e:  # noqa: BLE001 - a broken method is reported, not fatal to the others
            errors[m] = f"{type(e).__name__}: {e}"
            runs.pop(m, None)
    per_method = rotated_rounds({m: partial(time_epoch, run, clock) for m, run in runs.items()}, args.rounds)
    base = runs["darts-v1"] if "darts-v1" in runs else next(iter(runs.values()))
    weight_step = time_weight_step(base, repeats=max(args.rounds, 3), clock=clock)

    medians = {m: statistics.median(v) for m, v in per_method.items()}
    ref = medians.get("darts-v1")
    print(f"device={base.device} threads={torch.get_num_threads()} C={args.C} N={args.N} batch={args.batch} "
          f"steps/epoch={args.steps} rounds={args.rounds} amp={args.amp} channels_last={args.channels_last} "
          f"clock={args.clock}")
    print(f"supernet weight step (fwd+bwd+SGD): {weight_step * 1e3:.1f} ms")
    print("| method | s / iteration (median) | min | max | x darts-v1 |")
    print("|---|---|---|---|---|")
    print_ratio_rows(per_method, medians, ref)
    for m, e in errors.items():
        print(f"| {m} | failed: {e} | | | |")
    result = {"settings": vars(args), "device": str(base.device), "threads": torch.get_num_threads(),
              "weight_step_s": weight_step, "iteration_s": per_method, "median_s": medians, "errors": errors}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
