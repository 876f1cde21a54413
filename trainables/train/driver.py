"""The final-training driver: a validated `TrainSpec` -> one Tune experiment -> `train_epochs` and `final` tables.

The same machinery as search sweeps (`trainables.runs.tuner`: run folder safety, Tuner over an explicit trial list,
per-trial resources with fractional GPUs, retries from checkpoints, `--resume`; `trainables.runs.results`:
the keyed Parquet callback), with this stage's Trainable, tables and trial row:
- `train_epochs`: one row per trial and epoch (train loss/acc, lr, drop path, evaluation metrics, times);
- `final`: one row per trial: space, dataset, arch, protocol, seed, final train/test loss, accuracy and error
  (and valid where the protocol evaluates one), params, FLOPs, the cost columns (`cost_params_M`, `cost_flops_M`
  and `cost_latency_<device>_ms` where the space's latency source applies: `search_spaces.costs`), seconds per
  epoch, device, library versions,
  status and error (a non-finite loss names its epoch), `selected_by` (JSON: the search trials whose rule
  chose the architecture) and, with a `benchmark`, the table's accuracies of the architecture (`bench_*`).

The end of a trial cannot lose its training: a benchmark lookup that fails in `final_row` (a table changed or
removed during the run) leaves the row with its trained results, the status the training earned and the
lookup's error in `bench_error` (the exit status stays that of the trainings: 0 when all finished, with a
warning); `ParquetResults` records a row whose building or writing fails without failing the trial, and a trial
restored from its last epoch's checkpoint (a retry or `--resume` after the training ended) trains nothing and
only redoes the missing bookkeeping (its `final` row).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from trainables.runs.results import ParquetResults, RunResult, cell, error_message, read_trials, trial_status, versions
from trainables.runs.trainable import TRIAL_INFO_PREFIX
from trainables.runs.tuner import DEFAULT_STORAGE, TunerPlan, build_tuner, init_ray, prepare_run_dir
from trainables.train.protocol import PRESETS
from trainables.train.spec import TrainSpec, validate_train_spec
from trainables.train.trainable import CHECKPOINT_FILE, ONNX_FILE, TrainTrainable

log = logging.getLogger(__name__)

TRAIN_EPOCHS, FINAL = "train_epochs", "final"
COST_PREFIX = "cost_"
_FINAL_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "test_error", "valid_loss", "valid_acc",
                  "valid_error")


def benchmark_columns(benchmark_path: str | None, space: str, arch: str, dataset: str, protocol: str,
                      roles: Sequence[str]) -> dict[str, Any]:
    """The ground-truth table's accuracy of `arch` for each evaluated role, at the preset's epoch budget
    (`bench_epochs`), so a shortened run is still set against the schedule it imitates."""
    if not benchmark_path:
        return {}
    from search_spaces.benchmarks import open_benchmark
    from search_spaces.space import get_space

    name = get_space(space).benchmark_name
    if name is None:
        return {}
    bench = open_benchmark(name, benchmark_path)
    epochs = PRESETS[protocol].epochs if protocol in PRESETS else None
    out: dict[str, Any] = {"bench_epochs": epochs}
    for role in roles:
        try:
            out[f"bench_{role}_acc"] = bench.query(arch, dataset, role, epochs)
        except (ValueError, KeyError):  # the table lacks this (data set, split, epochs): no column value
            out[f"bench_{role}_acc"] = math.nan
    return out


def cost_row(spec: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    """The trial's cost columns (`search_spaces.costs.cost_columns` of the trained network, as its TrainRun
    counted them: `cost_params_M`, `cost_flops_M`, `cost_latency_<device>_ms`); where its results lack them (a
    trial that failed before its first result, a run of an older version) `cost_columns` of the protocol's
    network on the driver, or none when that fails."""
    prefix = TRIAL_INFO_PREFIX + COST_PREFIX
    got = {k.removeprefix(TRIAL_INFO_PREFIX): v for k, v in last.items() if k.startswith(prefix)}
    if got:
        return got
    try:
        from search_spaces.costs import check_devices, cost_columns
        from search_spaces.space import get_space
        from trainables.train.loop import network_keywords, parse_train_config

        cfg = parse_train_config(spec["train"])
        space = get_space(cfg.space_name)
        return cost_columns(space, cfg.arch, network_keywords(space, cfg.resolved_protocol()), cfg.dataset,
                            check_devices(space))
    except Exception as err:  # noqa: BLE001 - costs are extra columns: the trained result must be kept
        log.warning("%s: no cost columns (%s: %s)", spec.get("label"), type(err).__name__, err)
        return {}


def final_row(trial, history: pd.DataFrame | None) -> dict[str, Any]:
    """The `final` row of a Tune trial (see the module docstring)."""
    spec = trial.config["trial"]
    last = dict(trial.last_result or {})
    train = spec["train"]
    row: dict[str, Any] = {"trial_label": spec["label"], "arch": spec["arch"], "seed": int(spec["seed"]),
                           "protocol": train["protocol"], "dataset": train["dataset"],
                           "space": last.get("space") or train.get("space"),
                           "selected_by": json.dumps(spec.get("selected_by") or [], sort_keys=True)}
    final = history.sort_values("epoch").iloc[-1].to_dict() if history is not None and len(history) else {}
    row.update({k: final.get(k) for k in _FINAL_METRICS})
    row["epochs_done"] = int(history["epoch"].max()) if history is not None and len(history) else 0
    row["total_epochs"] = int(last.get(TRIAL_INFO_PREFIX + "total_epochs") or 0)
    times = history["epoch_time_s"].dropna() if history is not None and "epoch_time_s" in history else []
    row["seconds_per_epoch"] = float(pd.Series(times).mean()) if len(times) else None
    for key in ("params", "flops", "device"):
        row[key] = last.get(TRIAL_INFO_PREFIX + key)
    row.update(cost_row(spec, last))
    status, error = trial_status(trial, row["epochs_done"], row["total_epochs"]), None
    if final.get("error") and isinstance(final.get("error"), str):
        status, error = "ERROR", final["error"]  # a non-finite loss: the trainable ended the trial itself
    elif status == "ERROR":
        error = error_message(trial)
    row["status"], row["error"] = status, error
    row["num_failures"] = int(getattr(trial.run_metadata, "num_failures", 0))
    ckpt = trial.checkpoint
    row["checkpoint_path"] = str(Path(ckpt.path) / CHECKPOINT_FILE) if ckpt is not None else None
    if "onnx" in (train.get("export") or ()):
        exported = ckpt is not None and final.get("onnx_max_abs_diff") is not None and status == "TERMINATED"
        row["onnx_path"] = str(Path(ckpt.path) / ONNX_FILE) if exported else None
        row["onnx_max_abs_diff"] = final.get("onnx_max_abs_diff")
        row["onnx_error"] = final.get("onnx_error") if isinstance(final.get("onnx_error"), str) else None
    row["trial_path"] = trial.path
    row["config_json"] = json.dumps(train, sort_keys=True)
    row.update(versions(last))
    roles = [k.removesuffix("_acc") for k in ("test_acc", "valid_acc") if final.get(k) is not None]
    if row["space"]:
        try:
            row.update(benchmark_columns(spec.get("benchmark"), row["space"], row["arch"], row["dataset"],
                                         row["protocol"], roles or ["test"]))
        except Exception as err:  # noqa: BLE001 - the training is done: no lookup failure may cost its row
            row["bench_error"] = f"{type(err).__name__}: {err}"
            log.warning("%s: no ground truth for %s (%s); the trained result is kept, the error is in its "
                        "`bench_error`", spec["label"], row["arch"], row["bench_error"])
    return {k: cell(v) for k, v in row.items()}


def tuner_plan(spec: TrainSpec) -> TunerPlan:
    return TunerPlan(name=spec.name, iterations=spec.epochs,
                     resources={"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
                     max_failures=spec.failure.max_failures, checkpoint_frequency=spec.checkpoint.frequency,
                     checkpoints_to_keep=spec.checkpoint.num_to_keep, max_concurrent_trials=spec.max_concurrent_trials)


def prepare_train_dir(spec: TrainSpec, storage: str | os.PathLike, resume: bool) -> Path:
    """The run folder (`trainables.runs.tuner.prepare_run_dir`, whose refusals speak of a training); a resumed one
    must hold the same trials (the architectures compared as canonical strings: validation stores them so)."""
    def same_trials(stored_path: Path) -> bool:
        data = yaml.safe_load(stored_path.read_text())
        data.pop("from", None)  # already expanded into `architectures` when it was stored
        stored = validate_train_spec(data, source=str(stored_path))
        return stored.trials() == spec.trials()

    return prepare_run_dir(storage, spec.name, spec.to_yaml(), resume=resume, same_trials=same_trials, kind="training")


def progress_reporter():
    from ray.tune import CLIReporter

    metrics = {"epoch": "epoch", "train_loss": "train loss", "train_acc": "train acc", "test_acc": "test acc",
               "epoch_time_s": "s/epoch"}
    return CLIReporter(parameter_columns={"trial/label": "trial"}, metric_columns=metrics,
                       max_report_frequency=30, max_column_length=40)


def run_train(spec: TrainSpec, *, storage: str | os.PathLike | None = None, resume: bool = False,
              address: str | None = None, trainable: type | None = None, callbacks: Sequence = (),
              verbose: int = 1, ray_init: dict[str, Any] | None = None) -> RunResult:
    """Run (or with `resume`, finish) the trainings of `spec`; returns the run folder and its `final` table
    (`exit_code`: 0 all finished, 1 some failed, 130 interrupted).

    Args:
        spec: the validated training spec (`trainables.train.spec.load_train_spec`).
        storage: where the run folder `<storage>/<spec.name>` goes (a path or a pyarrow filesystem URI); None: the
            spec's `storage`, else `DEFAULT_STORAGE`.
        resume: finish the training already in the run folder (which must hold the same trials); a trial restored
            after its last epoch only redoes its `final` row.
        address: a Ray cluster to join (None: $RAY_ADDRESS, else an embedded local Ray).
        trainable: the Tune Trainable of each trial (default `TrainTrainable`; a seam for tests).
        callbacks: extra Tune callbacks (the Parquet writer is always added).
        verbose: Tune's verbosity.
        ray_init: keyword arguments of `trainables.runs.tuner.init_ray` (e.g. num_cpus of a local Ray).
    """
    storage = storage or spec.storage or DEFAULT_STORAGE
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    started = init_ray(address, **(ray_init or {}))  # before the run folder: a refused connection writes nothing
    try:
        run_dir = prepare_train_dir(spec, storage, resume)
        results = ParquetResults(run_dir, final_row, epochs_table=TRAIN_EPOCHS, trials_table=FINAL)
        tuner = build_tuner(trainable or TrainTrainable, spec.trials(), run_dir, tuner_plan(spec), resume=resume,
                            results=results, callbacks=callbacks, progress_reporter=progress_reporter(),
                            verbose=verbose)
        tuner.fit()
        final = read_trials(run_dir, FINAL)
        done = final["status"].isin(["TERMINATED", "ERROR"]).all() if len(final) else False
        interrupted = not done or len(final) < len(spec.trials())
        if verbose:
            print("\n" + summary_table(final) + "\n", flush=True)
        if "bench_error" in final and final["bench_error"].notna().any():
            log.warning("%d training(s) finished without ground truth (the benchmark lookup failed; see the "
                        "`bench_error` column of the final table): %s", int(final["bench_error"].notna().sum()),
                        final["bench_error"].dropna().iloc[0])
    finally:
        if started:
            import ray

            ray.shutdown()
    return RunResult(run_dir, final, interrupted)


def summary_table(final: pd.DataFrame) -> str:
    """arch x seed: status, epochs, test error, params, s/epoch (plain text)."""
    if not len(final):
        return "(no trials)"
    header = ["trial", "seed", "status", "epochs", "test err %", "params", "s/epoch", "arch"]
    lines = []
    for r in final.sort_values(["trial_label"]).to_dict("records"):
        err = r.get("test_error")
        lines.append([str(r["trial_label"]), str(r["seed"]), str(r["status"]),
                      f"{r.get('epochs_done', 0)}/{r.get('total_epochs', '?')}",
                      "-" if err is None or pd.isna(err) else f"{float(err):.2f}",
                      "-" if pd.isna(r.get("params")) else f"{int(r['params']):,}",
                      "-" if pd.isna(r.get("seconds_per_epoch")) else f"{float(r['seconds_per_epoch']):.1f}",
                      str(r["arch"])])
    widths = [max(len(x) for x in col) for col in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header)] + [fmt.format(*row) for row in lines])
