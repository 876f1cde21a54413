"""DARTS-V1 search iteration: this project's loop (default config, NCHW, channels_last) vs xautodl's, in one run.

The peer is NAS-Bench-201's own DARTS-V1 search (xautodl 1.0.0, `exps/NAS-Bench-201-algos/DARTS-V1.py`,
model `TinyNetworkDarts`): per iteration a weight step (SGD, Nesterov, grad clip 5) on a training batch, then
an Adam step of alpha on a validation batch, with its per-batch `.item()` bookkeeping. Both sides get the
same CIFAR-shaped random uint8 data, augmented on the device by our `DeviceDataset` (xautodl's host-side
DataLoader is left out, which favours xautodl). Our side is `SearchRun.run_epoch` exactly as a search runs.

Settings are timed in interleaved rounds (every setting once per round, rotating order) so that load from
other processes hits all alike; figures are medians over rounds of (epoch time / steps), ratios to xautodl.

    pip install --no-deps xautodl==1.0.0   # its numpy pin is stale; the model needs only torch
    python benchmarks/bench_vs_xautodl.py --threads 2 --steps 2 --rounds 5              # a quiet machine
    python benchmarks/bench_vs_xautodl.py --threads 1 --clock cpu --steps 1 --rounds 2   # a shared, loaded one
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's `benchmarks` package
from benchmarks.bench_methods import random_splits  # noqa: E402
from benchmarks.timing import print_ratio_rows, rotated_rounds  # noqa: E402
from trainables.search.config import SearchConfig  # noqa: E402
from trainables.search.loop import SearchRun  # noqa: E402


class XautodlDartsV1:
    """xautodl's DARTS-V1 search iteration (its model, optimizers and loop body; batches from our data)."""

    def __init__(self, C: int, N: int, batch: int, splits, seed: int = 0):
        from xautodl.models import get_cell_based_tiny_net

        torch.manual_seed(seed)
        self.net = get_cell_based_tiny_net({
            "name": "DARTS-V1", "C": C, "N": N, "max_nodes": 4, "num_classes": 10,
            "space": ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"],
            "affine": False, "track_running_stats": False}).train()
        self.w_opt = torch.optim.SGD(self.net.get_weights(), lr=0.025, momentum=0.9, weight_decay=5e-4,
                                     nesterov=True)
        self.a_opt = torch.optim.Adam(self.net.get_alphas(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        self.train, self.valid, self.batch = splits["search-train"], splits["search-valid"], batch
        self.generator = torch.Generator().manual_seed(seed)

    def iteration(self, i: int) -> None:
        index = torch.arange(i * self.batch, (i + 1) * self.batch) % len(self.train)
        x, y = self.train.batch(index, augment=True, generator=self.generator)
        xv, yv = self.valid.batch(index, augment=True, generator=self.generator)
        # DARTS-V1.py search_func: weight step, then architecture step
        self.w_opt.zero_grad()
        _, logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 5)
        self.w_opt.step()
        stats = [loss.item(), (logits.argmax(-1) == y).float().mean().item()]
        self.a_opt.zero_grad()
        _, logits = self.net(xv)
        arch_loss = F.cross_entropy(logits, yv)
        arch_loss.backward()
        self.a_opt.step()
        stats += [arch_loss.item(), (logits.argmax(-1) == yv).float().mean().item()]

    def time(self, steps: int, clock=time.perf_counter) -> float:
        start = clock()
        for i in range(steps):
            self.iteration(i)
        return (clock() - start) / steps


def ours(channels_last, args, splits) -> SearchRun:
    config = dict(method="darts-v1", C=args.C, N=args.N, batch_size=args.batch, epochs=10_000,
                  steps_per_epoch=args.steps, device="cpu", seed=0)
    if channels_last is not None:
        config["channels_last"] = channels_last
    return SearchRun(config, splits=splits)


def time_ours(run: SearchRun, clock=time.perf_counter) -> float:
    start = clock()
    row = run.run_epoch()
    return (clock() - start) / row["steps"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2, help="iterations per timed epoch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time (robust on a shared CPU with --threads 1)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter

    splits = random_splits(max(args.batch * args.steps, args.batch))
    default = SearchConfig().channels_last
    timers = {
        "xautodl DARTS-V1": partial(XautodlDartsV1(args.C, args.N, args.batch, splits).time, args.steps, clock),
        f"ours, default config (channels_last={default!r})": partial(time_ours, ours(None, args, splits), clock),
        "ours, channels_last=False (NCHW)": partial(time_ours, ours(False, args, splits), clock),
        "ours, channels_last=True": partial(time_ours, ours(True, args, splits), clock),
    }
    for t in timers.values():  # warm-up
        t()
    load_before = os.getloadavg()[0]
    times = rotated_rounds(timers, args.rounds)
    load_after = os.getloadavg()[0]
    medians = {k: statistics.median(v) for k, v in times.items()}
    ref = medians["xautodl DARTS-V1"]
    print(f"torch {torch.__version__} threads={torch.get_num_threads()} C={args.C} N={args.N} batch={args.batch} "
          f"steps/epoch={args.steps} rounds={args.rounds} clock={args.clock} "
          f"load(1 min) {load_before:.1f} -> {load_after:.1f}")
    print("| setting | s / iteration (median) | min | max | x xautodl |")
    print("|---|---|---|---|---|")
    print_ratio_rows(times, medians, ref)
    result = {"settings": vars(args), "torch": torch.__version__, "load_1min": [load_before, load_after],
              "iteration_s": times, "median_s": medians, "ratio_to_xautodl": {k: m / ref for k, m in medians.items()}}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
