"""MeCo and ZiCo against ground truth (issue 24): tables for benchmarks/proxies.md and the per-architecture CSVs.

`nb201`: score-space output folders (Parquet) of the 1000-architecture NB201 sample
(benchmarks/results/nb201_sample1000.txt) joined with nb201_merged.csv; Spearman of every proxy column found
(meco, zico, naswot, ...) with each accuracy column, over the architectures the proxy scored, and again with
its failures ranked lowest (what the authors' code does: ZiCo returns 0 when no layer contributes).
`nb301`: darts_proxy_study.py CSVs (meco / zico) of the 500-architecture NB301 sample; Spearman with NB301's
val_accuracy beside naswot / synflow from the existing study's CSV and the parameter count, on the same architectures.

    python benchmarks/meco_zico_report.py nb201 /tmp/mz/nb201_b128 [/tmp/mz/nb201_naswot_b64 ...] \
        --csv benchmarks/results/meco_zico_nb201_sample1000.csv
    python benchmarks/meco_zico_report.py nb301 benchmarks/results/darts_proxy_study_nb301_meco_zico_b128.csv
    python benchmarks/meco_zico_report.py meco-variants --limit 300     # which definitional choices matter
"""

from __future__ import annotations

import argparse
import copy
import glob
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_study import spearman  # noqa: E402  (Spearman over the finite pairs, and their count)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("BALENAS_SHARED_DATA", REPO / ".." / "shared" / "data"))
NB201_COLUMNS = {  # label -> nb201_merged.csv column (every score is computed on CIFAR-10 images)
    "C10 valid": "cifar10_valid_acc_200ep",
    "C10-valid test": "cifar10valid_test_acc_200ep",
    "C10 test": "cifar10_test_acc_200ep",
    "C100 test": "cifar100_test_acc_200ep",
    "IN16 test": "imagenet16_test_acc_200ep",
}
NB301_REFERENCE = REPO / "benchmarks" / "results" / "darts_proxy_study_nb301_b32.csv"


def read_folders(folders: list[str]) -> pd.DataFrame:
    """Every score-space Parquet part under the folders, one row per architecture (later folders add columns)."""
    frame = None
    for folder in folders:
        if folder.endswith(".csv"):  # a CSV this script wrote (--csv): the same columns
            part = pd.read_csv(folder)
            frame = part if frame is None else frame.merge(part, on="arch", how="outer")
            continue
        parts = glob.glob(os.path.join(folder, "**", "*.parquet"), recursive=True)
        if not parts:
            raise SystemExit(f"no Parquet files under {folder}")
        part = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True).drop_duplicates("arch")
        frame = part if frame is None else frame.merge(part, on="arch", how="outer")
    return frame


def proxy_names(frame: pd.DataFrame) -> list[str]:
    return [c[: -len("_error")] for c in frame.columns if c.endswith("_error") and c[: -len("_error")] in frame]


def failures_lowest(values: pd.Series) -> pd.Series:
    """Failed (NaN) scores replaced by a value below every defined one."""
    v = values.astype(float)
    low = v.min() - 1.0 if v.notna().any() else 0.0
    return v.fillna(low)


def nb201_table(frame: pd.DataFrame, names: list[str]) -> str:
    head = "| proxy | scored | failures | " + " | ".join(NB201_COLUMNS) + " |"
    lines = [head, "|---" * (3 + len(NB201_COLUMNS)) + "|"]
    for name in names:
        failures = int(frame[f"{name}_error"].notna().sum()) if f"{name}_error" in frame else 0
        cells = [f"{spearman(frame[name], frame[c])[0]:.3f}" for c in NB201_COLUMNS.values()]
        lines.append(f"| {name} | {int(frame[name].notna().sum())} | {failures} | " + " | ".join(cells) + " |")
        if failures:
            low = failures_lowest(frame[name])
            cells = [f"{spearman(low, frame[c])[0]:.3f}" for c in NB201_COLUMNS.values()]
            lines.append(f"| {name}, failures ranked lowest | {len(frame)} | - | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cmd_nb201(args) -> None:
    archs = Path(args.archs).read_text().split()
    scores = read_folders(args.folders)
    names = proxy_names(scores)
    frame = pd.DataFrame({"arch": archs}).merge(scores, on="arch", how="left")
    missing = int((frame[names[0]].isna() & frame[f"{names[0]}_error"].isna()).sum())
    table = pd.read_csv(Path(args.data_root) / "nb201" / "nb201_merged.csv")
    frame = frame.merge(table[["arch_str", *NB201_COLUMNS.values(), "params_M_cifar10"]], left_on="arch",
                        right_on="arch_str", how="left").drop(columns="arch_str")
    print(f"{len(frame)} architectures in {args.archs}; not yet scored: {missing}")
    done = frame[frame[names[0]].notna() | frame[f"{names[0]}_error"].notna()]
    print(nb201_table(done, names + ["params_M_cifar10"] if args.params else names))
    if args.csv:
        keep = ["arch"] + [c for n in names for c in (n, f"{n}_error")]
        frame[keep].to_csv(args.csv, index=False, float_format="%.8g")
        print(f"wrote {args.csv}")


def cmd_nb301(args) -> None:
    ours = pd.concat([pd.read_csv(p) for p in args.csv], ignore_index=True).drop_duplicates("arch")
    names = [n for n in ("meco", "zico") if n in ours]
    ref = pd.read_csv(args.reference)
    from darts_proxy_study import load_sample

    sample = load_sample(Path(args.data_root))[["arch", "val_accuracy"]]
    frame = ours.merge(ref[["arch", "naswot", "synflow"]], on="arch", how="left").merge(sample, on="arch", how="left")
    assert frame["val_accuracy"].notna().all(), "architectures outside the NB301 sample"
    print(f"{len(frame)} of 500 NB301 architectures; median seconds per architecture ({', '.join(names)}): "
          f"{frame['seconds'].median():.1f}")
    print("| proxy | failures | Spearman with val_accuracy (same architectures) |\n|---|---|---|")
    for name in [*names, "naswot", "synflow", "params"]:
        failures = int(frame[f"{name}_error"].notna().sum()) if f"{name}_error" in frame else 0
        rho, n = spearman(frame[name], frame["val_accuracy"])
        print(f"| {name} | {failures} | {rho:.3f} (n={n}) |")
    if len(names) == 2:
        print(f"\nSpearman(meco, zico) = {spearman(frame['meco'], frame['zico'])[0]:.3f}; "
              f"Spearman(zico, params) = {spearman(frame['zico'], frame['params'])[0]:.3f}; "
              f"Spearman(meco, params) = {spearman(frame['meco'], frame['params'])[0]:.3f}")


def meco_variant(net, inputs: torch.Tensor, variant: str) -> float:
    """MeCo with one definitional choice changed (for `meco-variants`): `ours` (trainables.proxies.meco),
    `distinct` (each output tensor once: a container repeating its last child's output is not counted again),
    `leaves` (modules without children only), `batch` (the first image's features, but the whole batch through
    the network, so BatchNorm normalises with the whole batch's statistics)."""
    from trainables.proxies import meco

    if variant == "ours":
        return meco.compute(copy.deepcopy(net).train(), inputs, None)
    work, values, seen, kept = copy.deepcopy(net).train(), [], set(), []

    def hook(module, args, output):
        if not isinstance(output, torch.Tensor) or output.dim() < 2:
            return
        if variant == "distinct":
            if id(output) in seen:
                return
            seen.add(id(output))
            kept.append(output)  # alive until the end: no later tensor can reuse its id
        first = output[0].detach()
        feats = first.reshape(first.shape[0], -1)
        if feats.shape[0] >= 2 and feats.shape[1] >= 2:
            values.append(meco.layer_value(feats))

    modules = [m for m in work.modules() if variant != "leaves" or not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in modules]
    with torch.no_grad():
        work(inputs if variant == "batch" else inputs[:1])
    for h in handles:
        h.remove()
    return float(sum(values))


def cmd_meco_variants(args) -> None:
    from search_spaces.nb201 import network
    from trainables.proxies.batch import proxy_batch

    archs = Path(args.archs).read_text().split()[: args.limit]
    inputs, _ = proxy_batch("cifar10", Path(args.data_root) / "cifar10", args.batch_size)
    variants = ["ours", "distinct", "leaves", "batch"]
    rows = []
    for arch in archs:
        torch.manual_seed(0)
        net = network(arch)
        rows.append({"arch": arch, **{v: meco_variant(net, inputs, v) for v in variants}})
    frame = pd.DataFrame(rows).merge(pd.read_csv(Path(args.data_root) / "nb201" / "nb201_merged.csv"),
                                     left_on="arch", right_on="arch_str")
    print(f"MeCo variants on the first {len(frame)} architectures of {args.archs} (batch {args.batch_size} for "
          "`batch`)\n\n| variant | Spearman with ours | " + " | ".join(NB201_COLUMNS) + " |\n"
          + "|---" * (2 + len(NB201_COLUMNS)) + "|")
    for v in variants:
        cells = [f"{spearman(frame[v], frame[c])[0]:.3f}" for c in NB201_COLUMNS.values()]
        print(f"| {v} | {spearman(frame[v], frame['ours'])[0]:.3f} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(DEFAULT_DATA), help="the shared data folder")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("nb201")
    a.add_argument("folders", nargs="+", help="score-space output folders (or a CSV written by --csv)")
    a.add_argument("--archs", default=str(REPO / "benchmarks" / "results" / "nb201_sample1000.txt"))
    a.add_argument("--params", action="store_true", help="also a row for the parameter count")
    a.add_argument("--csv", help="write the per-architecture scores here")
    b = sub.add_parser("nb301")
    b.add_argument("csv", nargs="+", help="darts_proxy_study.py score CSVs with meco / zico")
    b.add_argument("--reference", default=str(NB301_REFERENCE), help="the existing study's CSV (naswot, synflow)")
    c = sub.add_parser("meco-variants", help="MeCo with one definitional choice changed at a time")
    c.add_argument("--archs", default=str(REPO / "benchmarks" / "results" / "nb201_sample1000.txt"))
    c.add_argument("--limit", type=int, default=300)
    c.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    np.seterr(all="ignore")
    {"nb201": cmd_nb201, "nb301": cmd_nb301, "meco-variants": cmd_meco_variants}[args.command](args)


if __name__ == "__main__":
    main()
