"""Hand-built sweep tables written in the documented run-directory layout, for the analysis tests.

`<run_dir>/spec.yaml` and `<run_dir>/<table>/trial_id=<id>/part.parquet` (the trial id only in the folder
name), written with plain pandas/pyarrow so the tests do not depend on the sweep's writer. Values are random
but seeded; the tests compare what analysis computes with direct pandas computations on these frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
BENCH = ("bench_cifar10_valid_valid", "bench_cifar10_valid_test", "bench_cifar10_test", "bench_cifar100_test",
         "bench_imagenet16_120_test")
PROXIES = ("naswot", "synflow")


def arch_string(ops: tuple[int, ...]) -> str:
    names = [OPS[o] for o in ops]
    return (f"|{names[0]}~0|+|{names[1]}~0|{names[2]}~1|+|{names[3]}~0|{names[4]}~1|{names[5]}~2|")


def _bench(rng: np.random.Generator) -> dict[str, float]:
    base = rng.uniform(60, 94)
    return {"bench_cifar10_valid_valid": base - 2.5, "bench_cifar10_valid_test": base - 0.3,
            "bench_cifar10_test": base, "bench_cifar100_test": base - 22 + rng.normal(0, 1),
            "bench_imagenet16_120_test": base - 48 + rng.normal(0, 1)}


def trial_ids(prefix: str, methods, seeds) -> dict[tuple[str, int], str]:
    ids, k = {}, 0
    for m in methods:
        for s in seeds:
            ids[(m, s)] = f"{prefix}_{k:05d}"
            k += 1
    return ids


def make_frames(prefix: str = "a1b2c", methods=("balenas", "darts"), seeds=(0, 1, 2), epochs: int = 4,
                failed: tuple[str, int] | None = ("darts", 2), proxies: bool = True, seed: int = 0,
                dataset: str = "cifar10", balenas_lambdas=(0.1,)) -> dict[str, pd.DataFrame]:
    """epochs/trials/samples/selections frames of a small sweep. `failed` = (method, seed) of an ERROR trial
    that stopped after epoch 1. BaLeNAS trials get `hp_lambda` (one grid value per entry of balenas_lambdas,
    each run over all seeds)."""
    rng = np.random.default_rng(seed)
    configs = []
    for m in methods:
        lambdas = balenas_lambdas if m == "balenas" else (None,)
        for lam in lambdas:
            for s in seeds:
                configs.append((m, lam, s))
    epochs_rows, trial_rows, sample_rows, sel_rows = [], [], [], []
    for k, (method, lam, s) in enumerate(configs):
        tid = f"{prefix}_{k:05d}"
        hp = {"hp_lr": 0.025}
        if lam is not None:
            hp["hp_lambda"] = lam
        is_failed = failed is not None and (method, s) == tuple(failed)
        n_epochs = 1 if is_failed else epochs
        logits = rng.normal(size=(6, 5))
        for e in range(1, n_epochs + 1):
            logits += rng.normal(scale=0.5, size=(6, 5))
            probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            geno = arch_string(tuple(int(i) for i in probs.argmax(axis=1)))
            row = {"trial_id": tid, "method": method, "seed": s, "epoch": e, "genotype": geno,
                   "train_loss": float(rng.uniform(0.5, 2)), "train_acc": float(rng.uniform(30, 90)),
                   "valid_loss": float(rng.uniform(0.5, 2)), "valid_acc": float(rng.uniform(30, 90)),
                   "entropy": float(-(probs * np.log(probs)).sum(axis=1).mean()),
                   "op_probs": json.dumps({"edges": probs.tolist()}), "epoch_time_s": float(rng.uniform(1, 3)) *
                   (2.0 if method == "balenas" else 1.0), "lr": 0.025, "dataset": dataset, "space": "nb201",
                   **hp, **_bench(rng)}
            if method == "balenas":
                row["posterior_std_mean"] = float(0.5 / e + rng.uniform(0, 0.05))
            epochs_rows.append(row)
        last = epochs_rows[-1]
        trial = {"trial_id": tid, "method": method, "seed": s, "status": "ERROR" if is_failed else "TERMINATED",
                 "error": "RuntimeError: CUDA out of memory. Tried to allocate 2 GiB\nmore traceback" if is_failed
                 else None, "final_genotype": None if is_failed else last["genotype"], "epochs_done": n_epochs,
                 "dataset": dataset, "space": "nb201", "config_json": json.dumps({"method": method, "seed": s}),
                 "checkpoint_path": None if is_failed else f"/ckpt/{tid}.pt", "torch_version": "2.13.0",
                 "ray_version": "2.60.0", "device": "cpu", **hp}
        if not is_failed:
            trial.update({b: last[b] for b in BENCH})
        trial_rows.append(trial)
        if proxies and not is_failed:
            samples = []
            for i in range(12):
                ops = tuple(int(o) for o in rng.integers(0, 5, size=6))
                b = _bench(rng)
                rec = {"trial_id": tid, "method": method, "seed": s, "sample": i, "arch": arch_string(ops),
                       "naswot": float(b["bench_cifar10_test"] * 10 + rng.normal(0, 80)),
                       "naswot_error": None, "synflow": float(np.exp(rng.uniform(0, 20))), "synflow_error": None,
                       "dataset": dataset, **b}
                if i == 5:  # a failed proxy score
                    rec["synflow"], rec["synflow_error"] = float("nan"), "RuntimeError: overflow"
                samples.append(rec)
            sample_rows += samples
            sf = pd.DataFrame(samples)
            argmax_b = {b: last[b] for b in BENCH}
            sel_rows.append({"trial_id": tid, "method": method, "seed": s, "rule": "argmax", "arch": last["genotype"],
                             **argmax_b})
            for p in PROXIES:
                best = sf.loc[sf[p].idxmax()]
                sel_rows.append({"trial_id": tid, "method": method, "seed": s, "rule": f"proxy:{p}",
                                 "arch": best["arch"], **{b: best[b] for b in BENCH}})
            ranks = sf[list(PROXIES)].rank().sum(axis=1)
            best = sf.loc[ranks.idxmax()]
            sel_rows.append({"trial_id": tid, "method": method, "seed": s, "rule": "rank:naswot+synflow",
                             "arch": best["arch"], **{b: best[b] for b in BENCH}})
    frames = {"epochs": pd.DataFrame(epochs_rows), "trials": pd.DataFrame(trial_rows)}
    if proxies:
        frames["samples"] = pd.DataFrame(sample_rows)
        frames["selections"] = pd.DataFrame(sel_rows)
    return frames


def write_run(run_dir: Path, frames: dict[str, pd.DataFrame], spec: dict | None = None) -> Path:
    """Write `frames` as `<run_dir>/<table>/trial_id=<id>/part.parquet` (one file per trial) plus spec.yaml."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    spec = spec if spec is not None else {"name": run_dir.name, "space": "nb201", "dataset": "cifar10",
                                          "methods": {"balenas": {}, "darts": {}}, "seeds": [0, 1, 2]}
    (run_dir / "spec.yaml").write_text(yaml.safe_dump(spec))
    for table, df in frames.items():
        for tid, part in df.groupby("trial_id", sort=False):
            folder = run_dir / table / f"trial_id={tid}"
            folder.mkdir(parents=True, exist_ok=True)
            part.drop(columns=["trial_id"]).dropna(axis=1, how="all").to_parquet(folder / "part.parquet",
                                                                                 index=False)
    return run_dir


def make_run(run_dir: Path, **kwargs) -> tuple[Path, dict[str, pd.DataFrame]]:
    frames = make_frames(**kwargs)
    return write_run(run_dir, frames), frames
