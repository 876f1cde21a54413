"""DARTS-space search iteration: this project's loop vs xautodl 1.0.0's DARTS-space search model, in one run.

The peer is xautodl's `NASNetworkDARTS` (xautodl/models/cell_searchs/search_model_darts_nasnet.py, the DARTS
search space with 8 ops, `affine=False`, running statistics tracked, as DARTS' own search), driven by DARTS'
first-order loop body (quark0/darts cnn/train_search.py): architecture Adam step on a validation batch
(3e-4, betas (0.5, 0.999), wd 1e-3), then the weight step (SGD 0.025, momentum 0.9, wd 3e-4, clip 5). xautodl
builds 3N cells, so DARTS' 8 cells (2 normal, reduce, 2 normal, reduce, 2 normal) are not available to it:
both sides run 9 cells (N=3: 3 normal, reduce, 2 normal, reduce, 2 normal), which our `layers=9` builds with
the same reduction positions (9//3, 2*9//3); our 8-cell figure is printed beside. Both sides get the same
CIFAR-shaped random uint8 data, augmented on the device by our `DeviceDataset`. Our side is
`SearchRun.run_epoch` exactly as a search runs (darts-v1 and balenas).

Settings are timed in interleaved rounds (rotating order, so other processes' load hits all alike); figures
are medians over rounds of (epoch time / steps), ratios to xautodl. `--memory` runs each setting once in a
fresh process and reports its peak resident memory (the process's VmHWM: model, data, activations, all
included; not ru_maxrss, which Linux carries over from the parent across fork and exec).

    python benchmarks/bench_darts_vs_xautodl.py --threads 2 --steps 1 --rounds 3 [--memory]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_methods import random_splits  # noqa: E402
from benchmarks.timing import print_ratio_rows, rotated_rounds  # noqa: E402
from trainables.search.loop import SearchRun  # noqa: E402

XAUTODL = "xautodl DARTS (N=3, 9 cells)"
# wall time, or this process's CPU time (`--clock cpu`: far less noisy on a shared CPU with one thread)
CLOCK = [time.perf_counter]


class XautodlDarts:
    """xautodl's DARTS-space search model with DARTS' first-order iteration (batches from our data)."""

    def __init__(self, C: int, N: int, batch: int, splits, channels_last: bool = False, seed: int = 0):
        from xautodl.models.cell_operations import SearchSpaceNames
        from xautodl.models.cell_searchs.search_model_darts_nasnet import NASNetworkDARTS

        torch.manual_seed(seed)
        self.net = NASNetworkDARTS(C, N, 4, 4, 3, 10, SearchSpaceNames["darts"], False, True).train()
        self.channels_last = channels_last
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.w_opt = torch.optim.SGD(self.net.get_weights(), lr=0.025, momentum=0.9, weight_decay=3e-4)
        self.a_opt = torch.optim.Adam(self.net.get_alphas(), lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        self.train, self.valid, self.batch = splits["search-train"], splits["search-valid"], batch
        self.generator = torch.Generator().manual_seed(seed)

    def iteration(self, i: int) -> None:
        index = torch.arange(i * self.batch, (i + 1) * self.batch) % len(self.train)
        x, y = self.train.batch(index, augment=True, generator=self.generator, channels_last=self.channels_last)
        xv, yv = self.valid.batch(index, augment=True, generator=self.generator, channels_last=self.channels_last)
        self.a_opt.zero_grad()
        F.cross_entropy(self.net(xv)[1], yv).backward()
        self.a_opt.step()
        self.w_opt.zero_grad()
        loss = F.cross_entropy(self.net(x)[1], y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.get_weights(), 5)
        self.w_opt.step()

    def time(self, steps: int) -> float:
        start = CLOCK[0]()
        for i in range(steps):
            self.iteration(i)
        return (CLOCK[0]() - start) / steps


def ours(method: str, layers: int, channels_last, args, splits) -> SearchRun:
    config = dict(space="darts", method=method, C=args.C, layers=layers, batch_size=args.batch, epochs=10_000,
                  steps_per_epoch=args.steps, device="cpu", seed=0)
    if channels_last is not None:
        config["channels_last"] = channels_last
    return SearchRun(config, splits=splits)


def time_ours(run: SearchRun) -> float:
    start = CLOCK[0]()
    row = run.run_epoch()
    return (CLOCK[0]() - start) / row["steps"]


def settings(args, splits) -> dict:
    """name -> a zero-argument timer (built lazily: `--only` builds one)."""
    return {
        XAUTODL: lambda: partial(XautodlDarts(args.C, 3, args.batch, splits).time, args.steps),
        "xautodl DARTS, channels_last": lambda: partial(
            XautodlDarts(args.C, 3, args.batch, splits, channels_last=True).time, args.steps),
        "ours darts-v1, 9 cells, default config": lambda: partial(time_ours, ours("darts-v1", 9, None, args, splits)),
        "ours darts-v1, 9 cells, NCHW": lambda: partial(time_ours, ours("darts-v1", 9, False, args, splits)),
        "ours balenas, 9 cells, default config": lambda: partial(time_ours, ours("balenas", 9, None, args, splits)),
        "ours darts-v1, 8 cells (DARTS), default config": lambda: partial(
            time_ours, ours("darts-v1", 8, None, args, splits)),
    }


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), which starts afresh at exec, unlike ru_maxrss."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1, help="iterations per timed epoch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--skip", nargs="*", default=[], help="settings to leave out (substring match)")
    parser.add_argument("--memory", action="store_true", help="peak RSS per setting, each in a fresh process")
    parser.add_argument("--only", default=None, help=argparse.SUPPRESS)   # internal: one setting, print RSS
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter
    splits = random_splits(max(args.batch * args.steps, args.batch))
    table = {k: v for k, v in settings(args, splits).items() if not any(s in k for s in args.skip)}
    if args.only:
        table[args.only]()()
        print(json.dumps({"peak_rss_mb": peak_rss_mb()}))
        return {}
    timers = {k: make() for k, make in table.items()}
    for t in timers.values():  # warm-up
        t()
    names = list(timers)
    load_before = os.getloadavg()[0]
    times = rotated_rounds(timers, args.rounds)
    load_after = os.getloadavg()[0]
    medians = {k: statistics.median(v) for k, v in times.items()}
    ref = medians[XAUTODL]
    memory = {}
    if args.memory:
        for name in names:
            out = subprocess.run([sys.executable, __file__, "--only", name, "--C", str(args.C), "--batch",
                                  str(args.batch), "--steps", str(args.steps), "--threads", str(args.threads)],
                                 capture_output=True, text=True, check=True)
            memory[name] = json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    print(f"torch {torch.__version__} threads={torch.get_num_threads()} clock={args.clock} C={args.C} "
          f"batch={args.batch} "
          f"steps/epoch={args.steps} rounds={args.rounds} load(1 min) {load_before:.1f} -> {load_after:.1f}")
    print("| setting | s / iteration (median) | min | max | x xautodl | peak RSS (MB) |")
    print("|---|---|---|---|---|---|")
    print_ratio_rows(times, medians, ref, extra=lambda k: f"{memory[k]:.0f}" if k in memory else "-")
    bal = medians.get("ours balenas, 9 cells, default config")
    v1 = medians.get("ours darts-v1, 9 cells, default config")
    if bal and v1:
        print(f"balenas / darts-v1 (ours, 9 cells): {bal / v1:.3f}")
    result = {"settings": vars(args), "torch": torch.__version__, "load_1min": [load_before, load_after],
              "iteration_s": times, "median_s": medians, "peak_rss_mb": memory,
              "ratio_to_xautodl": {k: m / ref for k, m in medians.items()}}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
