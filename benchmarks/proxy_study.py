"""Our zero-cost proxies against published numbers on NAS-Bench-201 (CIFAR-10).

Scores the 491 architectures of NAS-Bench-Suite-Zero's NB201 sample (zc_nasbench201_small.json) with every
proxy (networks from `search_spaces.nb201.network`, C=16, N=5, weights seeded per architecture, one
un-augmented CIFAR-10 training batch), then reports Spearman rank correlations:
  - with the same proxy as published by NAS-Bench-Suite-Zero (automl/NASLib);
  - jacob_cov with the `jacob_cov_score` column of nb201_merged.csv (BayesWatch/nas-without-training v1);
  - with true accuracy (cifar10-valid valid, cifar10 test, cifar100 test, ImageNet16-120 test).

Scoring appends to a CSV (resumable; `--shard i/n` splits the work between processes); `--report` reads
one or more such CSVs and prints the markdown tables for benchmarks/proxies.md.

    OMP_NUM_THREADS=1 nice python benchmarks/proxy_study.py score --shard 0/2 --out /tmp/study_0.csv &
    OMP_NUM_THREADS=1 nice python benchmarks/proxy_study.py score --shard 1/2 --out /tmp/study_1.csv &
    python benchmarks/proxy_study.py report /tmp/study_0.csv /tmp/study_1.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from search_spaces.nb201 import network
from trainables import proxies
from trainables.proxies.batch import proxy_batch
from trainables.proxies.published import SUITE_ZERO_NAMES, load_suite_zero

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("BALENAS_SHARED_DATA", REPO / ".." / "shared" / "data"))
ACCURACY_COLUMNS = {  # label -> nb201_merged.csv column
    "C10 valid": "cifar10_valid_acc_200ep",
    "C10 test": "cifar10_test_acc_200ep",
    "C100 test": "cifar100_test_acc_200ep",
    "IN16 test": "imagenet16_test_acc_200ep",
}
# Published Spearman rank correlations with CIFAR-10 accuracy on NB201 (for the table beside ours).
PUBLISHED_VS_ACCURACY = {
    "jacob_cov": "0.741 (C10 valid; nb201_merged.csv jacob_cov_score vs cifar10-valid)",
}


def score_archs(archs: list[str], inputs: torch.Tensor, targets: torch.Tensor, names: list[str],
                C: int = 16, N: int = 5, seed: int = 0, num_classes: int = 10):
    """Yield one row per architecture: arch, seconds, and `to_row` proxy columns (network weights seeded)."""
    for arch in archs:
        start = time.perf_counter()
        torch.manual_seed(seed)
        net = network(arch, num_classes=num_classes, C=C, N=N)
        row = {"arch": arch, **proxies.to_row(proxies.score(net, inputs, targets, names, seed=seed))}
        row["seconds"] = time.perf_counter() - start
        yield row


def spearman(a, b) -> tuple[float, int]:
    """Spearman rho over the pairs where both are finite, and how many pairs that was."""
    frame = pd.DataFrame({"a": np.asarray(a, dtype=float), "b": np.asarray(b, dtype=float)})
    frame = frame[np.isfinite(frame.a) & np.isfinite(frame.b)]
    if len(frame) < 3:
        return float("nan"), len(frame)
    return float(frame.a.rank().corr(frame.b.rank())), len(frame)


def study_frame(ours: pd.DataFrame, data_root: Path, dataset: str = "cifar10") -> pd.DataFrame:
    """Our scores joined with NAS-Bench-Suite-Zero's (prefixed `pub_`) and the NB201 table."""
    pub = load_suite_zero(data_root / "zero_cost" / "zc_nasbench201_small.json", dataset)
    pub = pub.rename(columns={c: f"pub_{c}" for c in pub.columns if c != "arch"})
    table = pd.read_csv(data_root / "nb201" / "nb201_merged.csv")
    return ours.merge(pub, on="arch", how="left").merge(table, left_on="arch", right_on="arch_str", how="left")


def report(frame: pd.DataFrame, names: list[str]) -> str:
    lines = [f"Architectures scored: {len(frame)}; median seconds per architecture (all proxies): "
             f"{frame['seconds'].median():.2f}", ""]
    lines.append("| proxy | vs Suite-Zero (rho, n) | failures | " + " | ".join(ACCURACY_COLUMNS)
                 + " | Suite-Zero's own vs C10 valid |")
    lines.append("|---" * (4 + len(ACCURACY_COLUMNS)) + "|")
    for name in names:
        if name not in frame:
            continue
        failures = int(frame[f"{name}_error"].notna().sum())
        pub_col = f"pub_{SUITE_ZERO_NAMES.get(name, '-')}"
        vs_pub = "n/a"
        if pub_col in frame:
            rho, n = spearman(frame[name], frame[pub_col])
            vs_pub = f"{rho:.3f} ({n})"
        accs = [f"{spearman(frame[name], frame[col])[0]:.3f}" for col in ACCURACY_COLUMNS.values()]
        pub_acc = (f"{spearman(frame[pub_col], frame['cifar10_valid_acc_200ep'])[0]:.3f}"
                   if pub_col in frame else "n/a")
        lines.append(f"| {name} | {vs_pub} | {failures} | " + " | ".join(accs) + f" | {pub_acc} |")
    if "jacob_cov" in frame:
        rho, n = spearman(frame["jacob_cov"], frame["jacob_cov_score"])
        rho_pub, _ = spearman(frame["pub_jacov"], frame["jacob_cov_score"])
        lines += ["", f"jacob_cov vs nb201_merged.csv jacob_cov_score: Spearman {rho:.3f} over {n} architectures "
                      f"(Suite-Zero's jacov vs the same column on these architectures: {rho_pub:.3f})"]
    return "\n".join(lines)


def seed_sensitivity(frame: pd.DataFrame, other: pd.DataFrame, names: list[str]) -> str:
    """Spearman between our scores with weight seed 0 and another seed on the same architectures."""
    both = frame.merge(other, on="arch", suffixes=("", "_other"))
    lines = [f"Weight-initialisation sensitivity ({len(both)} architectures, seed 0 vs the other run's seed):",
             "", "| proxy | Spearman(seed 0, other seed) |", "|---|---|"]
    for name in names:
        if f"{name}_other" in both:
            lines.append(f"| {name} | {spearman(both[name], both[f'{name}_other'])[0]:.3f} |")
    return "\n".join(lines)


def search_simulation(frame: pd.DataFrame, name: str, n: int, draws: int = 500, seed: int = 0) -> str:
    """NASWOT's search (the paper's Table: best score among N random architectures, its accuracy), simulated by
    drawing N of the scored architectures `draws` times."""
    ok = frame[np.isfinite(frame[name].astype(float))]
    rng = np.random.default_rng(seed)
    picks = []
    for _ in range(draws):
        idx = rng.choice(len(ok), size=min(n, len(ok)), replace=False)
        picks.append(ok.iloc[idx].sort_values(name).iloc[-1])
    chosen = pd.DataFrame(picks)
    cols = {"C10 valid": "cifar10_valid_acc_200ep", "C10 test": "cifar10_test_acc_200ep",
            "C100 test": "cifar100_test_acc_200ep", "IN16 test": "imagenet16_test_acc_200ep"}
    cells = [f"{chosen[c].mean():.2f} +- {chosen[c].std():.2f}" for c in cols.values()]
    return f"| {name}, N={n} (ours, {draws} draws from {len(ok)}) | " + " | ".join(cells) + " |"


def _read_done(path: Path) -> set[str]:
    if not path.is_file() or path.stat().st_size == 0:
        return set()
    return set(pd.read_csv(path, usecols=["arch"])["arch"])


def cmd_score(args) -> None:
    data_root = Path(args.data_root)
    pub = load_suite_zero(data_root / "zero_cost" / "zc_nasbench201_small.json", args.dataset)
    archs = sorted(pub["arch"])
    rng = np.random.default_rng(0)  # a fixed random order: a partial run is still a random subset
    archs = [archs[i] for i in rng.permutation(len(archs))]
    index, count = (int(v) for v in args.shard.split("/"))
    archs = archs[index::count][: args.limit]
    out = Path(args.out)
    done = _read_done(out)
    todo = [a for a in archs if a not in done]
    names = proxies.validate_names(args.names or proxies.names())
    inputs, targets = proxy_batch(args.dataset, data_root / "cifar10", args.batch_size, seed=args.data_seed)
    print(f"scoring {len(todo)} architectures ({len(done)} already in {out}) with {', '.join(names)}; "
          f"batch {tuple(inputs.shape)}", flush=True)
    header = ["arch"] + [c for n in names for c in (n, f"{n}_error")] + ["seconds"]
    new_file = not out.is_file() or out.stat().st_size == 0
    with open(out, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        if new_file:
            writer.writeheader()
        for i, row in enumerate(score_archs(todo, inputs, targets, names, args.C, args.N, args.seed), 1):
            writer.writerow(row)
            f.flush()
            if i % 10 == 0:
                print(f"{i}/{len(todo)} ({row['seconds']:.1f}s last)", flush=True)


def cmd_report(args) -> None:
    ours = pd.concat([pd.read_csv(p) for p in args.csv], ignore_index=True).drop_duplicates("arch")
    names = [n for n in proxies.names() if n in ours]
    frame = study_frame(ours, Path(args.data_root), args.dataset)
    print(report(frame, names))
    if args.seed_csv:
        print()
        print(seed_sensitivity(frame, pd.read_csv(args.seed_csv), names))
    if "naswot" in frame:
        print("\n| search | C10 valid | C10 test | C100 test | IN16 test |\n|---|---|---|---|---|")
        for n in (10, 100):
            print(search_simulation(frame, "naswot", n))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(DEFAULT_DATA), help="the shared data folder")
    parser.add_argument("--dataset", default="cifar10")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score")
    s.add_argument("--out", required=True, help="CSV to append to (resumable)")
    s.add_argument("--names", nargs="*", help="proxies (default: all)")
    s.add_argument("--batch-size", type=int, default=32,
                   help="32: NAS-Bench-Suite-Zero's jacov scores are all <= -32.2, which needs B <= 32")
    s.add_argument("--data-seed", type=int, default=None, help="None: the first images of the training set")
    s.add_argument("--seed", type=int, default=0, help="weight-initialisation seed for every network")
    s.add_argument("--C", type=int, default=16)
    s.add_argument("--N", type=int, default=5)
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--shard", default="0/1", help="i/n: every n-th architecture starting at i")
    r = sub.add_parser("report")
    r.add_argument("csv", nargs="+")
    r.add_argument("--seed-csv", help="scores of the same architectures with another weight seed")
    args = parser.parse_args(argv)
    {"score": cmd_score, "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
