"""SWAP and Zen-score against ground truth (issue 24): tables for benchmarks/proxies.md and the per-architecture CSVs.

`nb201`: score-space output folders (Parquet; any of swap / zen columns) of the 1000-architecture NB201 sample
(benchmarks/results/nb201_sample1000.txt) joined with nb201_merged.csv; Spearman with each accuracy column.
`nb301`: darts_proxy_study.py CSVs of the 500-architecture NB301 sample; Spearman with NB301's val_accuracy, beside
naswot / synflow from the existing study's CSV on the same architectures.

    python benchmarks/swap_zen_report.py nb201 --swap /tmp/nb201_swap_b16 --zen /tmp/nb201_zen_b64 \
        --csv benchmarks/results/swap_zen_nb201_sample1000.csv
    python benchmarks/swap_zen_report.py nb301 /tmp/nb301_b16.csv [--csv benchmarks/results/...]
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_study import spearman  # noqa: E402  (Spearman over the finite pairs, and their count)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("BALENAS_SHARED_DATA", REPO / ".." / "shared" / "data"))
NB201_COLUMNS = {  # label -> nb201_merged.csv column (all scores are computed on CIFAR-10 images)
    "C10 test": "cifar10_test_acc_200ep",
    "C10 valid": "cifar10_valid_acc_200ep",
    "C100 test": "cifar100_test_acc_200ep",
    "IN16 test": "imagenet16_test_acc_200ep",
}


def read_scores(folder: str, name: str) -> pd.DataFrame:
    parts = glob.glob(os.path.join(folder, "**", "*.parquet"), recursive=True)
    if not parts:
        raise SystemExit(f"no Parquet files under {folder}")
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True).drop_duplicates("arch")
    return frame[["arch", name, f"{name}_error"]]


def cmd_nb201(args) -> None:
    archs = Path(args.archs).read_text().split()
    frame = pd.DataFrame({"arch": archs})
    names = []
    for name, folder in (("swap", args.swap), ("zen", args.zen)):
        if folder:
            frame = frame.merge(read_scores(folder, name), on="arch", how="left")
            names.append(name)
    table = pd.read_csv(Path(args.data_root) / "nb201" / "nb201_merged.csv")
    full = frame.merge(table, left_on="arch", right_on="arch_str", how="left")
    assert full["arch_str"].notna().all(), "architectures missing from nb201_merged.csv"
    print(f"NB201 sample: {len(archs)} architectures")
    print("\n| proxy | scored | failures | " + " | ".join(NB201_COLUMNS) + " |")
    print("|---" * (3 + len(NB201_COLUMNS)) + "|")
    for name in [*names, "params_M_cifar10"]:
        scored = int(full[name].notna().sum())
        failures = int(full[f"{name}_error"].notna().sum()) if f"{name}_error" in full else 0
        rhos = [f"{spearman(full[name], full[col])[0]:.3f}" for col in NB201_COLUMNS.values()]
        label = "params (nb201_merged.csv)" if name == "params_M_cifar10" else name
        print(f"| {label} | {scored} | {failures} | " + " | ".join(rhos) + " |")
        if failures:  # a failure means "no signal at all": rank those architectures last
            lowest = full[name].fillna(full[name].min() - 1.0)
            rhos = [f"{spearman(lowest, full[col])[0]:.3f}" for col in NB201_COLUMNS.values()]
            print(f"| {name}, failures ranked last | {len(full)} | - | " + " | ".join(rhos) + " |")
    for name in names:
        errors = full[f"{name}_error"].dropna()
        if len(errors):
            print(f"\n{name} failures: " + "; ".join(f"{n} x {r}" for r, n in errors.value_counts().items()))
    if len(names) == 2:
        params = full.params_M_cifar10
        print(f"\nSpearman(swap, zen) = {spearman(full.swap, full.zen)[0]:.3f}; with params: swap "
              f"{spearman(full.swap, params)[0]:.3f}, zen {spearman(full.zen, params)[0]:.3f}")
    if args.csv:
        frame.to_csv(args.csv, index=False)
        print(f"\nwrote {args.csv}")


def cmd_nb301(args) -> None:
    from darts_proxy_study import load_sample

    ours = pd.concat([pd.read_csv(p) for p in args.study_csv], ignore_index=True).drop_duplicates("arch")
    sample = load_sample(Path(args.data_root))
    base = pd.read_csv(args.baseline)[["arch", "naswot", "synflow"]]
    published = sample[["arch", "val_accuracy", "nwot", "synflow"]].rename(
        columns={"nwot": "pub_nwot", "synflow": "pub_synflow"})
    frame = ours.merge(published, on="arch", how="left").merge(base, on="arch", how="left")
    names = [n for n in ("swap", "zen") if n in frame]
    print(f"NB301 sample: {len(frame)} of 500 architectures scored")
    print("\n| proxy | failures | Spearman with NB301 val_accuracy (n) |\n|---|---|---|")
    for name in [*names, "naswot", "synflow", "pub_nwot", "params"]:
        rho, n = spearman(frame[name], frame["val_accuracy"])
        failures = int(frame[f"{name}_error"].notna().sum()) if f"{name}_error" in frame else 0
        label = {"naswot": "naswot (darts_proxy_study_nb301_b32.csv)", "synflow": "synflow (same CSV)",
                 "pub_nwot": "nwot as published (Suite-Zero)", "params": "params"}.get(name, name)
        print(f"| {label} | {failures} | {rho:.3f} ({n}) |")
    for name in names:
        print(f"\n{name}: range {frame[name].min():.6g} .. {frame[name].max():.6g}, distinct values "
              f"{frame[name].nunique()}; Spearman with params {spearman(frame[name], frame.params)[0]:.3f}, "
              f"with naswot {spearman(frame[name], frame.naswot)[0]:.3f}")
    if args.csv:
        frame[["arch", *[c for n in names for c in (n, f"{n}_error")]]].to_csv(args.csv, index=False)
        print(f"\nwrote {args.csv}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(DEFAULT_DATA), help="the shared data folder")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("nb201")
    a.add_argument("--archs", default=str(REPO / "benchmarks" / "results" / "nb201_sample1000.txt"))
    a.add_argument("--swap", help="score-space folder with a swap column")
    a.add_argument("--zen", help="score-space folder with a zen column")
    a.add_argument("--csv", help="write the per-architecture scores here")
    b = sub.add_parser("nb301")
    b.add_argument("study_csv", nargs="+", help="darts_proxy_study.py score output(s) with swap / zen columns")
    b.add_argument("--baseline", default=str(REPO / "benchmarks" / "results" / "darts_proxy_study_nb301_b32.csv"))
    b.add_argument("--csv", help="write the per-architecture scores here")
    args = parser.parse_args(argv)
    {"nb201": cmd_nb201, "nb301": cmd_nb301}[args.command](args)


if __name__ == "__main__":
    main()
