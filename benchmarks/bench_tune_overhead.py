"""What Ray Tune costs on top of the search itself: a sweep of 8 short trials vs the same 8 searches without Ray.

Measured, in one process, on the same trial configs (darts-v1, seeds 0..7, tiny supernet):
- `plain`: `SearchRun(config)` + all its epochs, one trial after another, in this process (what `run_search`
  does); no checkpoints, no result files. Measured before and after the Ray sweep; the mean is the baseline.
- `ray.init`: starting the embedded local Ray (reported apart: paid once per sweep, not per trial).
- `tune`: `run_sweep` (Tuner with one concurrent trial, so the work is serial like `plain`): actor start and
  the worker's imports, per-epoch results, a checkpoint every `--checkpoint-every` epochs, Tune's experiment
  state, our Parquet callback. Overhead = tune / plain - 1, and per trial in seconds.
- `tune xN` (with `--concurrency N`): the same sweep with N trials at a time, for the speed-up.

Data: `--data-root` (a folder with cifar-10-batches-py, e.g. ../shared/data/cifar10) or tiny generated images.
Usage: python benchmarks/bench_tune_overhead.py [--epochs 3 --steps 6] [--repeats 2] [--concurrency 2] [--json f]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def tiny_cifar10(root: Path, n: int = 512) -> Path:
    """A cifar-10-batches-py folder of random images (the format of tests/conftest.py's fixture)."""
    import pickle

    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("data_batch_1", "data_batch_2", "test_batch"):
        labels = rng.integers(0, 10, size=n)
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels.tolist(), "data": data,
                         "filenames": [f"{i}.png" for i in range(n)]}, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f, protocol=2)
    return root


def make_spec(data_root: Path, args, name: str, concurrency: int):
    from trainables.sweep.spec import validate_spec

    return validate_spec({
        "name": name, "space": "nb201", "dataset": "cifar10", "data_root": str(data_root),
        "methods": {"darts-v1": {}}, "seeds": list(range(args.trials)),
        "search": {"epochs": args.epochs, "batch_size": args.batch_size, "C": args.C, "N": 1,
                   "steps_per_epoch": args.steps, "train_size": args.train_size},
        "resources": {"cpu": 1, "gpu": 0}, "max_concurrent_trials": concurrency,
        "checkpoint": {"frequency": args.checkpoint_every, "num_to_keep": 1}})


def plain(spec) -> float:
    from trainables.search.loop import SearchRun

    start = time.perf_counter()
    for trial in spec.trials():
        run = SearchRun(trial.search)
        while not run.done:
            run.run_epoch()
    return time.perf_counter() - start


def tune_sweep(spec, storage: Path) -> float:
    from trainables.sweep.driver import run_sweep

    start = time.perf_counter()
    result = run_sweep(spec, storage=storage, verbose=0, proxies=False)
    elapsed = time.perf_counter() - start
    if result.exit_code != 0:
        raise RuntimeError(f"sweep failed: {result.trials[['trial_id', 'status', 'error']]}")
    return elapsed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--C", type=int, default=4)
    p.add_argument("--train-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=2, help="interleaved (plain, tune) pairs; medians reported")
    p.add_argument("--checkpoint-every", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=0, help="also time N trials at a time (0: skip)")
    p.add_argument("--data-root", type=Path, help="folder holding cifar-10-batches-py (default: generated)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import logging

    import ray
    import torch

    logging.getLogger("search_spaces").setLevel(logging.ERROR)  # "2 of 5 training batches" per trial

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bto", dir="/tmp"))
    try:
        data_root = args.data_root or tiny_cifar10(work / "data")
        spec = make_spec(data_root, args, "overhead", 1)
        plain(make_spec(data_root, args, "warm", 1).model_copy(update={"seeds": [0]}))  # warm caches/imports
        start = time.perf_counter()
        ray.init(num_cpus=max(2, args.concurrency), _temp_dir=str(work / "r"), include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
        t_init = time.perf_counter() - start
        # interleaved (plain, tune) pairs, so that a change in machine load hits both sides alike
        plains, tunes = [], []
        for r in range(args.repeats):
            plains.append(plain(spec))
            tunes.append(tune_sweep(spec.model_copy(update={"name": f"overhead{r}"}), work / "runs"))
        plains.append(plain(spec))
        t_tune_n = tune_sweep(make_spec(data_root, args, "overhead_par", args.concurrency), work / "runs") \
            if args.concurrency > 1 else None
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    t_plain, t_tune = float(np.median(plains)), float(np.median(tunes))
    figures = {
        "trials": args.trials, "epochs": args.epochs, "steps_per_epoch": args.steps, "C": args.C,
        "checkpoint_every": args.checkpoint_every, "plain_s": [round(t, 2) for t in plains],
        "tune_serial_runs_s": [round(t, 2) for t in tunes],
        "plain_per_trial_s": round(t_plain / args.trials, 2), "ray_init_s": round(t_init, 2),
        "tune_serial_s": round(t_tune, 2), "overhead_serial": round(t_tune / t_plain - 1, 3),
        "overhead_per_trial_s": round((t_tune - t_plain) / args.trials, 2),
        "overhead_serial_incl_init": round((t_tune + t_init) / t_plain - 1, 3),
        "load_average_1min": round(os.getloadavg()[0], 1), "cpus": os.cpu_count(),
    }
    if t_tune_n is not None:
        figures.update({"concurrency": args.concurrency, "tune_parallel_s": round(t_tune_n, 2),
                        "speedup_vs_plain": round(t_plain / t_tune_n, 2)})
    print(f"plain (no Ray), {args.trials} trials x {args.epochs} epochs: median {t_plain:.1f}s "
          f"(runs: {', '.join(f'{t:.1f}' for t in plains)}s; {t_plain / args.trials:.2f}s per trial)")
    print(f"ray.init: {t_init:.1f}s (once per sweep)")
    runs = ", ".join(f"{t:.1f}" for t in tunes)
    print(f"tune, 1 trial at a time: median {t_tune:.1f}s (runs: {runs}s) -> "
          f"overhead {100 * figures['overhead_serial']:+.1f}% "
          f"({figures['overhead_per_trial_s']:+.2f}s per trial); with ray.init "
          f"{100 * figures['overhead_serial_incl_init']:+.1f}%")
    if t_tune_n is not None:
        print(f"tune, {args.concurrency} trials at a time: {t_tune_n:.1f}s -> {figures['speedup_vs_plain']:.2f}x "
              f"the plain serial loop")
    print(f"(1-min load average {figures['load_average_1min']} on {figures['cpus']} CPUs)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
