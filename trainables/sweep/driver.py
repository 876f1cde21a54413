"""The search sweep: a validated spec -> one Tune experiment over every trial -> Parquet tables -> proxy stage.

Trials are the explicit list `SweepSpec.trials()` (methods x hyper-parameter grid x seeds), run by
`trainables.runs.tuner` (Tuner building, run folder, Ray) with `trainables.runs.results.ParquetResults` writing the
`epochs` and `trials` tables; this module adds what is specific to a search sweep: the spec's Tune settings,
the progress columns, the proxy stage on the finished trials and the end-of-sweep summary.

Run folder `<storage>/<name>/`: Tune's own files (trial folders with checkpoints, experiment state), our
`spec.yaml`, and the tables `epochs/`, `trials/` (and `samples/`, `selections/` from the proxy stage).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd
import yaml

from trainables.runs.fsfolder import Folder, is_uri
from trainables.runs.results import (
    INTERRUPTED,
    ParquetResults,
    RunResult,
    read_trials,
)
from trainables.runs.tuner import (
    DEFAULT_STORAGE,
    InterruptAfter,
    TunerPlan,
    build_tuner,
    check_paths_on_cluster,
    init_ray,
    joins_cluster,
    leave_job_working_dir,
    prepare_run_dir,
    with_resources,
)
from trainables.runs.tuner import param_space as _param_space
from trainables.search.trainable import SearchTrainable, trial_row
from trainables.sweep.spec import SweepSpec, proxy_stage, validate_spec

__all__ = ["INTERRUPTED", "InterruptAfter", "SweepResult", "run_sweep", "summary_table", "watched_bench_column"]

log = logging.getLogger(__name__)

#: what `run_sweep` returns (the same type as a training's result)
SweepResult = RunResult


def tuner_plan(spec: SweepSpec, *, cluster: bool = False) -> TunerPlan:
    """The spec's Tune settings (`cluster`: the sweep joins a multi-node cluster; no actor reuse there)."""
    return TunerPlan(name=spec.name, iterations=spec.epochs, reuse_actors=not cluster,
                     resources={"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
                     max_failures=spec.failure.max_failures, checkpoint_frequency=spec.checkpoint.frequency,
                     checkpoints_to_keep=spec.checkpoint.num_to_keep,
                     max_concurrent_trials=spec.max_concurrent_trials)


def trial_trainable(spec: SweepSpec, trainable: type | None = None):
    """The Trainable with the spec's per-trial resources (fractional GPUs pack trials on one GPU)."""
    return with_resources(trainable or SearchTrainable, tuner_plan(spec).resources)


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """Tune's param space: one grid axis over the spec's explicit trial list."""
    return _param_space([t.as_config() for t in spec.trials()])


def spec_paths(spec: SweepSpec) -> dict[str, str]:
    """The spec's local files the trials read ({field: path}); data sets and tables named by URI or by a
    built-in name are not paths."""
    from search_spaces.benchmarks.registry import is_builtin_reference

    out = {"data_root": spec.data_root, "split_file": spec.split_file}
    if spec.benchmark and not is_builtin_reference(spec.benchmark):
        out["benchmark"] = spec.benchmark
    return {k: v for k, v in out.items() if v and not is_uri(v)}


def prepare_sweep_dir(spec: SweepSpec, storage: str | os.PathLike | Folder, resume: bool) -> Folder:
    """The sweep's run folder (see `trainables.runs.tuner.prepare_run_dir`); a resumed one must hold the same trials."""
    def same_trials(stored_path: Folder) -> bool:
        stored = validate_spec(yaml.safe_load(stored_path.read_text()), source=str(stored_path))
        return [t.as_config() for t in stored.trials()] == [t.as_config() for t in spec.trials()]

    return prepare_run_dir(storage, spec.name, spec.to_yaml(), resume=resume, same_trials=same_trials)


def watched_bench_column(spec: SweepSpec) -> str | None:
    """The ground-truth column worth watching for this sweep (the benchmark's test accuracy on the searched
    data set, e.g. bench_cifar10_test for NB201), or None when the space has no benchmark."""
    from search_spaces.benchmarks.registry import benchmark_class
    from search_spaces.space import get_space

    name = get_space(spec.space).benchmark_name
    return benchmark_class(name).test_column(spec.dataset) if name else None


def progress_reporter(spec: SweepSpec):
    """Tune's table, one row per trial: its label, epoch and the metrics worth watching."""
    from ray.tune import CLIReporter

    metrics = {"epoch": "epoch", "train_loss": "train loss", "valid_acc": "valid acc", "entropy": "entropy"}
    watched = watched_bench_column(spec)
    if watched:
        metrics[watched] = "bench test acc"
    return CLIReporter(parameter_columns={"trial/label": "trial"}, metric_columns=metrics,
                       max_report_frequency=30, max_column_length=40)


def run_sweep(spec: SweepSpec, *, storage: str | os.PathLike | None = None, resume: bool = False,
              address: str | None = None, trainable: type | None = None, callbacks: Sequence = (),
              verbose: int = 1, ray_init: dict[str, Any] | None = None, proxies: bool = True) -> SweepResult:
    """Run (or with `resume`, finish) a sweep, then its proxy stage; returns the run folder and its `trials` table.

    Args:
        spec: the validated sweep (`trainables.sweep.spec.load_spec`).
        storage: where the run folder `<storage>/<spec.name>` goes (a path or a pyarrow filesystem URI); None: the
            spec's `storage`, else `DEFAULT_STORAGE`.
        resume: finish the sweep already in the run folder (which must hold the same trials) instead of starting
            one; without it an existing run folder is an error.
        address: a Ray cluster to join (None: $RAY_ADDRESS, else an embedded local Ray; a Ray this process has
            already initialised is used as it is and left running).
        trainable: the Tune Trainable of each trial (default `SearchTrainable`; a seam for tests).
        callbacks: extra Tune callbacks (the Parquet writer is always added).
        verbose: Tune's verbosity; 0 also hides the end-of-sweep summary and the proxy stage's progress bar.
        ray_init: keyword arguments of `trainables.runs.tuner.init_ray` (e.g. num_cpus of a local Ray).
        proxies: run the proxy stage when the spec has a `proxies` section and every trial finished.
    """
    storage = storage or spec.storage or DEFAULT_STORAGE
    leave_job_working_dir(storage)
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic reporter shows our chosen columns
    # Ray first: a refused address or token must leave no run folder behind (a retry would find it "in use")
    started = init_ray(address, **(ray_init or {}))
    try:
        run_dir = prepare_sweep_dir(spec, storage, resume)
        if joins_cluster(address):  # the data must be where the trials run, not only where the driver runs
            check_paths_on_cluster(spec_paths(spec))
        tuner = build_tuner(trainable or SearchTrainable, [t.as_config() for t in spec.trials()], run_dir,
                            tuner_plan(spec, cluster=joins_cluster(address)), resume=resume,
                            results=ParquetResults(run_dir, trial_row), callbacks=callbacks,
                            pre_layout_names={"trainables.tune_results": {"trial_row": trial_row}},
                            progress_reporter=progress_reporter(spec), verbose=verbose)
        tuner.fit()
        trials = read_trials(run_dir)
        finished = trials["status"].isin(["TERMINATED", "ERROR"]).all() if len(trials) else False
        interrupted = not finished or len(trials) < len(spec.trials())
        if verbose:
            print("\n" + summary_table(trials, watched_bench_column(spec)) + "\n", flush=True)
        if proxies and spec.proxies is not None and not interrupted:
            run_proxies(run_dir, spec, trials, progress=verbose > 0)
    finally:
        if started:
            import ray

            ray.shutdown()
    return SweepResult(run_dir, trials, interrupted)


def run_proxies(run_dir: Folder, spec: SweepSpec, trials: pd.DataFrame, progress: bool = True) -> None:
    """The proxy stage (trainables.proxy_stage.driver) on the finished trials."""
    from trainables.proxy_stage.driver import run_proxy_stage

    if run_dir.local_path() is None:  # sample_trial opens checkpoints by a disk path (trainables.proxy_stage.driver)
        log.warning("proxy stage skipped: the trials' checkpoints are in %s, not on a disk the scoring tasks can "
                    "open; run `python platform/proxy_stage.py` on a copy of the run folder", run_dir)
        return
    done = trials[trials["status"] == "TERMINATED"]
    for r in trials[trials["status"] == "ERROR"].to_dict("records"):  # diverged or failed: nothing to select
        log.warning("proxy stage: trial %s (%s, seed %s) skipped: status ERROR (%s)", r.get("trial_label"),
                    r.get("method"), r.get("seed"), r.get("error") or "no error recorded")
    if not len(done):
        log.warning("proxy stage skipped: no trial finished")
        return
    log.info("proxy stage: %d finished trial(s)", len(done))
    run_proxy_stage(run_dir, proxy_stage(spec), done, progress=progress)


# ----- the end-of-sweep summary -----------------------------------------------------------------------------
def summary_table(trials: pd.DataFrame, column: str | None = None) -> str:
    """method x hyper-parameters x seed: status, final genotype, benchmark accuracy (plain text)."""
    if not len(trials):
        return "(no trials)"
    bench_cols = [c for c in trials.columns if c.startswith("bench_")]
    if column not in bench_cols:
        column = bench_cols[0] if bench_cols else None
    hp_cols = [c for c in trials.columns if c.startswith("hp_")]
    budgets = "cost_budget" in trials.columns and trials["cost_budget"].notna().any()
    lines = []
    header = (["method", "hp", "seed"] + (["budget", "argmax cost"] if budgets else [])
              + ["status", "epochs", "genotype"] + ([column] if column else []))
    for _, r in trials.sort_values(["method", "trial_label", "seed"]).iterrows():
        hp = ",".join(f"{c[3:]}={r[c]}" for c in hp_cols if not _missing(r[c]))
        epochs = f"{r.get('epochs_done', 0)}/{r.get('total_epochs', '?')}"
        bench = r.get(column) if column else None
        row = [r["method"], hp or "-", str(r["seed"])]
        if budgets:  # under a cost budget: the budget and the argmax's true cost (trainables/search/budget.py)
            row += [_number(r.get("cost_budget")), _number(r.get("cost_argmax"))]
        row += [str(r["status"]), epochs, str(r.get("genotype", "-"))]
        if column:
            row.append("-" if _missing(bench) else f"{float(bench):.2f}")
        lines.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header)] + [fmt.format(*row) for row in lines])


def _number(v: Any) -> str:
    return "-" if _missing(v) else f"{float(v):.4g}"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
