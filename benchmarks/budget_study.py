"""Search under a latency budget at reduced scale on the CPU (issue 23): balenas on NB201 with a Pixel 3 budget; the
chosen architectures' true latency and NB201 accuracy beside the table's optimum under the same budget.

For each budget (and once without one) a reduced-scale balenas search runs through the real loop
(`trainables.search.loop.SearchRun`, C=8, N=1, `--train-size` CIFAR-10 images, `--epochs` epochs; checkpointed per
epoch, so a rerun resumes), then `--samples` architectures are drawn from its final distribution
(`trainables.proxy_stage.selection.sample_trial`), scored with the proxies (NB201 C=16, N=5 networks, weights seeded
0, one CIFAR-10 batch) and chosen by the product's own budget-aware rules (`selection.select` with a `BudgetView` of
the packaged Pixel 3 latencies). Printed per budget: the search's final expected latency, the argmax's true latency,
each rule's choice (true latency, NB201 CIFAR-10 / CIFAR-100 test accuracy, 200 epochs) and the optimum under the
budget from the packaged tables (the best accuracy among all 15,625 cells within the budget).

CIFAR-100 images are not on our machines: every search and score uses CIFAR-10 images; the CIFAR-100 column is the
accuracy the NB201 table gives the chosen cells on CIFAR-100 (labelled so).

    OMP_NUM_THREADS=1 nice python benchmarks/budget_study.py --out benchmarks/results/budget_study_nb201_pixel3.csv

Data: $BALENAS_DATA_ROOT (CIFAR-10) or --data-root; ground truth and latencies: the packaged NB201 tables.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "runs" / "budget_study"


def _load_avg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def search(budget: float | None, args: argparse.Namespace) -> Path:
    """The reduced-scale balenas search under `budget` (ms on `args.device`; None: no budget), resumable."""
    from trainables.search.loop import SearchRun

    tag = "free" if budget is None else f"{args.device}_{budget:g}"
    tag += f"_lr{args.arch_lr:g}_e{args.epochs}" if args.arch_lr is not None or args.epochs != 5 else ""
    ckpt = RUNS / f"{tag}.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    config = {"method": "balenas", "space": "nb201", "dataset": "cifar10", "data_root": args.data_root,
              "download": False, "C": 8, "N": 1, "batch_size": 64, "epochs": args.epochs,
              "train_size": args.train_size, "device": "cpu", "seed": args.seed, "benchmark": "nb201",
              "method_params": {} if args.arch_lr is None else {"arch_lr": args.arch_lr}}
    if budget is not None:
        config["cost"] = {"metric": "latency", "device": args.device, "budget": budget, "mode": args.mode,
                          "weight": args.weight}
    run = SearchRun.from_checkpoint(ckpt) if ckpt.is_file() else SearchRun(config)
    start = time.perf_counter()
    while not run.done:
        m = run.run_epoch()
        run.save(ckpt)
        print(f"[{tag}] epoch {m['epoch']}/{run.total_epochs} {m['epoch_time_s']:.0f}s "
              f"E[latency] {m.get('cost_expected', math.nan):.2f} argmax latency {m.get('cost_argmax', math.nan):.2f}"
              f" dual {m.get('cost_dual', math.nan):.2f} load {_load_avg()}", flush=True)
        (ckpt.with_suffix(".last.json")).write_text(json.dumps({k: m.get(k) for k in (
            "epoch", "cost_expected", "cost_argmax", "cost_dual", "genotype")}))
    print(f"[{tag}] search done ({time.perf_counter() - start:.0f}s this session)", flush=True)
    return ckpt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=os.environ.get("BALENAS_DATA_ROOT"))
    parser.add_argument("--device", default="pixel3", help="a packaged NB201 latency device")
    parser.add_argument("--budgets", type=float, nargs="+", default=[6.0, 10.0, 14.0], help="ms")
    parser.add_argument("--mode", default="penalty", choices=["penalty", "lagrangian"])
    parser.add_argument("--weight", type=float, default=5.0)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--arch-lr", type=float, help="balenas' architecture learning rate (default: its own)")
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--names", nargs="+", default=["meco", "zico"])
    parser.add_argument("--batch-size", type=int, default=128, help="of the proxies' data batch")
    parser.add_argument("--out", help="CSV of every chosen architecture")
    args = parser.parse_args(argv)
    if not args.data_root:
        raise SystemExit("give --data-root or set $BALENAS_DATA_ROOT (the folder holding cifar-10-batches-py)")

    from search_spaces.benchmarks import open_benchmark
    from search_spaces.costs import latency_ms
    from search_spaces.nb201 import latency_table
    from trainables.proxies.batch import proxy_batch
    from trainables.proxy_stage.selection import BudgetView, sample_trial, score_architectures, select

    bench = open_benchmark("nb201")
    table = latency_table()
    archs = bench.architectures()
    lat = np.asarray([table.latency(a, args.device) for a in archs], dtype=float)
    acc = {d: np.asarray(bench.column(d, "test"), dtype=float) for d in ("cifar10", "cifar100")}
    inputs, targets = proxy_batch("cifar10", args.data_root, args.batch_size)
    rows = []
    for budget in [None, *args.budgets]:
        ckpt = search(budget, args)
        last = json.loads(ckpt.with_suffix(".last.json").read_text())
        drawn = sample_trial(str(ckpt), args.samples, args.seed)
        samples, argmax = drawn["samples"], drawn["argmax"]
        distinct = list(dict.fromkeys([*samples, argmax]))
        scores = pd.DataFrame(score_architectures(distinct, inputs, targets, args.names, space="nb201"))
        frame = pd.DataFrame({"arch": samples}).merge(scores, on="arch", how="left")
        costs = {a: latency_ms("nb201", a, {"C": 16, "N": 5}, "cifar10", [args.device])[args.device]
                 for a in distinct}
        limit = budget if budget is not None else math.inf
        view = BudgetView(limit, costs, drawn.get("likelihood", {}))
        combine = [args.names] if len(args.names) > 1 else []
        chosen = [c for c in select(frame, args.names, combine, argmax=argmax, budget=view)
                  if not c["rule"].startswith("pareto:")]
        within = lat <= limit
        best = {d: float(acc[d][within].max()) for d in acc}
        for c in chosen:
            a = c["arch"]
            rows.append({"budget_ms": budget, "expected_ms": last.get("cost_expected") or math.nan,
                         "rule": c["rule"], "arch": a,
                         "latency_ms": costs.get(a, math.nan) if a else math.nan,
                         "within": bool(a) and costs[a] <= limit,
                         "c10_test": bench.query(a, "cifar10", "test") if a else math.nan,
                         "c100_test": bench.query(a, "cifar100", "test") if a else math.nan,
                         "opt_c10": best["cifar10"], "opt_c100": best["cifar100"],
                         "samples_within": int(sum(costs[s] <= limit for s in samples)), "note": c.get("note")})
        print(f"budget {budget}: {sum(costs[s] <= limit for s in samples)}/{len(samples)} samples within",
              flush=True)
    out = pd.DataFrame(rows)
    if args.out:
        out.to_csv(args.out, index=False, float_format="%.4f")
    print(f"\ndevice {args.device}; search C=8, N=1, {args.epochs} epochs on {args.train_size} CIFAR-10 images, "
          f"{args.mode} weight {args.weight}, arch_lr {args.arch_lr or 'default'}; {args.samples} samples, "
          f"rules over {', '.join(args.names)}; load {_load_avg()}\n")
    print("| budget (ms) | E[latency] at the end | rule | latency (ms) | within | C10 test | C100 test (C10 search) "
          "| optimum under budget C10 / C100 | samples within |\n|---|---|---|---|---|---|---|---|---|")
    for r in out.itertuples():
        b = "none" if r.budget_ms is None or (isinstance(r.budget_ms, float) and math.isnan(r.budget_ms)) \
            else f"{r.budget_ms:g}"
        print(f"| {b} | {r.expected_ms:.2f} | {r.rule} | {r.latency_ms:.2f} | {'yes' if r.within else 'no'} | "
              f"{r.c10_test:.2f} | {r.c100_test:.2f} | {r.opt_c10:.2f} / {r.opt_c100:.2f} | {r.samples_within} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
