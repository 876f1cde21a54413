"""Our zero-cost proxies against published numbers in the DARTS space (NAS-Bench-301 sample, CIFAR-10).

Scores the 500 architectures of NAS-Bench-Suite-Zero's NB301 sample (zc_nasbench301_small.json) with naswot,
synflow, jacob_cov, snip, grad_norm and fisher on the network NASLib scored (its NB301 graph: C=32, 8 cells, no
auxiliary head, non-affine BN in the cell ops; `search_spaces.darts.networks.DartsNetwork(..., op_affine=False)`,
whose parameter counts equal the file's `params` for all 500), weights seeded per architecture, one
un-augmented CIFAR-10 training batch. Reports Spearman rank correlations of each proxy
  - with the same proxy as NAS-Bench-Suite-Zero published it (`nwot`, `synflow`, `jacov`, `snip`, `grad_norm`,
    `fisher`), and
  - with NB301's `val_accuracy`, beside the published proxy's correlation on the same architectures.

Scoring appends to a CSV (resumable; `--shard i/n` splits the work; a fixed random order, so a partial run is
a random subset); `report` prints the markdown table for benchmarks/darts.md.

    OMP_NUM_THREADS=1 nice python benchmarks/darts_proxy_study.py score --out /tmp/darts_study.csv --limit 150
    python benchmarks/darts_proxy_study.py report /tmp/darts_study.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_study import spearman  # noqa: E402  (the NB201 study's Spearman over finite pairs)

from search_spaces.darts import Genotype  # noqa: E402
from search_spaces.darts.networks import DartsNetwork, count_parameters  # noqa: E402
from trainables import proxies  # noqa: E402
from trainables.proxies.batch import proxy_batch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("BALENAS_SHARED_DATA", REPO / ".." / "shared" / "data"))
PUBLISHED = {"naswot": "nwot", "synflow": "synflow", "jacob_cov": "jacov", "snip": "snip", "grad_norm": "grad_norm",
             "fisher": "fisher"}


def load_sample(data_root: Path) -> pd.DataFrame:
    """One row per architecture: arch (canonical genotype string) and the published columns."""
    rows = json.loads((data_root / "zero_cost" / "zc_nasbench301_small.json").read_text())["nasbench301"]["cifar10"]
    return pd.DataFrame([{"arch": str(Genotype.from_compact(k)), **v} for k, v in rows.items()])


def naslib_network(arch: str, C: int = 32, layers: int = 8) -> DartsNetwork:
    """NASLib's NB301 graph as a DartsNetwork (see the module docstring)."""
    return DartsNetwork(arch, num_classes=10, C=C, layers=layers, auxiliary=False, op_affine=False)


def cmd_score(args) -> None:
    data_root = Path(args.data_root)
    sample = load_sample(data_root)
    archs = sorted(sample["arch"])
    archs = [archs[i] for i in np.random.default_rng(0).permutation(len(archs))]
    index, count = (int(v) for v in args.shard.split("/"))
    archs = archs[index::count][: args.limit]
    out = Path(args.out)
    done = set(pd.read_csv(out)["arch"]) if out.is_file() and out.stat().st_size else set()
    todo = [a for a in archs if a not in done]
    names = proxies.validate_names(args.names)
    inputs, targets = proxy_batch("cifar10", data_root / "cifar10", args.batch_size, seed=args.data_seed)
    print(f"scoring {len(todo)} architectures ({len(done)} done in {out}) with {', '.join(names)}; "
          f"batch {tuple(inputs.shape)}", flush=True)
    header = ["arch", "params"] + [c for n in names for c in (n, f"{n}_error")] + ["seconds"]
    with open(out, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        if not done:
            writer.writeheader()
        for i, arch in enumerate(todo, 1):
            start = time.perf_counter()
            torch.manual_seed(args.seed)
            net = naslib_network(arch, C=args.C)
            row = {"arch": arch, "params": count_parameters(net) / 1e6,
                   **proxies.to_row(proxies.score(net, inputs, targets, names, seed=args.seed))}
            row["seconds"] = time.perf_counter() - start
            writer.writerow(row)
            f.flush()
            if i % 5 == 0:
                print(f"{i}/{len(todo)} ({row['seconds']:.1f}s last)", flush=True)


def report(frame: pd.DataFrame, names: list[str]) -> str:
    lines = [f"Architectures scored: {len(frame)} of 500; median seconds per architecture (all proxies): "
             f"{frame['seconds'].median():.1f}", "",
             "| proxy | vs published (Spearman, n) | failures | ours vs val_accuracy | published vs val_accuracy "
             "(same archs) | published vs val_accuracy (all 500) |", "|---|---|---|---|---|---|"]
    for name in names:
        pub = PUBLISHED[name]
        rho, n = spearman(frame[name], frame[f"pub_{pub}"])
        failures = int(frame[f"{name}_error"].notna().sum())
        ours_acc = spearman(frame[name], frame["val_accuracy"])[0]
        pub_acc = spearman(frame[f"pub_{pub}"], frame["val_accuracy"])[0]
        lines.append(f"| {name} | {rho:.3f} ({n}) | {failures} | {ours_acc:.3f} | {pub_acc:.3f} | "
                     f"{frame.attrs['all500'][pub]:.3f} |")
    return "\n".join(lines)


def cmd_report(args) -> None:
    ours = pd.concat([pd.read_csv(p) for p in args.csv], ignore_index=True).drop_duplicates("arch")
    sample = load_sample(Path(args.data_root))
    pub = sample.rename(columns={c: f"pub_{c}" for c in sample.columns if c not in ("arch", "val_accuracy")})
    frame = ours.merge(pub, on="arch", how="left")
    frame.attrs["all500"] = {p: spearman(sample[p], sample["val_accuracy"])[0] for p in PUBLISHED.values()}
    assert np.allclose(frame["params"], frame["pub_params"]), "scored networks differ from NASLib's"
    names = [n for n in PUBLISHED if n in frame]
    print(report(frame, names))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=str(DEFAULT_DATA), help="the shared data folder")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score")
    s.add_argument("--out", required=True, help="CSV to append to (resumable)")
    s.add_argument("--names", nargs="*", default=list(PUBLISHED))
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--data-seed", type=int, default=None, help="None: the first images of the training set")
    s.add_argument("--seed", type=int, default=0, help="weight-initialisation seed for every network")
    s.add_argument("--C", type=int, default=32)
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--shard", default="0/1", help="i/n: every n-th architecture starting at i")
    r = sub.add_parser("report")
    r.add_argument("csv", nargs="+")
    args = parser.parse_args(argv)
    {"score": cmd_score, "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    main()
