"""The Tune callback that keeps a run folder's Parquet tables current: one row per epoch, one per trial.

`ParquetResults` runs on the driver (the node that calls `Tuner.fit`, also under `ray submit` / `ray job
submit`), so workers never need the results folder. After every result it rewrites that trial's partition of
the epochs table with the trial's whole history, keyed by epoch: a retried trial (restored from its last
checkpoint) or a resumed sweep re-reports epochs after that checkpoint and replaces them, never duplicates
them. The history is re-read from the partition when a resumed driver first sees a trial. The trials table gets
one row per trial on completion, on error and at the end of the experiment. Storage is `analysis.store`.

Table names and the function that turns a Tune trial into its trials row are arguments, so the final-training
driver reuses the callback with its own tables; `trial_row` here is the search sweep's row.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pandas as pd
from ray.tune import Callback

from analysis import store
from analysis.fsfolder import Folder, location
from trainables.trainable import TRIAL_INFO_PREFIX, checkpoint_file, hp_fields, library_versions

SPEC_FILE = "spec.yaml"
EPOCHS, TRIALS = "epochs", "trials"
#: Tune's bookkeeping keys that are not epoch metrics.
_TUNE_KEYS = frozenset({"config", "done", "date", "timestamp", "pid", "time_since_restore",
                        "iterations_since_restore", "timesteps_since_restore", "timesteps_total", "episodes_total",
                        "experiment_tag", "checkpoint_dir_name", "should_checkpoint", "trial_id", "__duplicate__",
                        "__trial_info__"})
#: `trials.status` of a trial stopped before its last epoch (the sweep was interrupted; --resume finishes it)
INTERRUPTED = "INTERRUPTED"


def _scalar(v: Any) -> Any:
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict, tuple)) else v


def epoch_row(result: dict[str, Any]) -> dict[str, Any]:
    """The `epochs` row of one Tune result: the trainable's metrics and identity, minus Tune bookkeeping."""
    return {k: _scalar(v) for k, v in result.items()
            if k not in _TUNE_KEYS and not k.startswith(TRIAL_INFO_PREFIX)}


def _error_message(trial) -> str | None:
    text = trial.get_error() if hasattr(trial, "get_error") else None
    if not text:
        return None
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else None


def trial_row(trial, history: pd.DataFrame | None) -> dict[str, Any]:
    """The search sweep's `trials` row of a Tune Trial: identity from its config, final metrics, status and
    checkpoint."""
    spec = trial.config["trial"]
    last = dict(trial.last_result or {})
    search = spec["search"]
    row: dict[str, Any] = {"trial_label": spec["label"], "method": spec["method"], "seed": int(spec["seed"]),
                           "dataset": search["dataset"], "space": search["space"]}
    row.update(hp_fields(spec["hp"]))
    if history is not None and len(history):
        final = history.sort_values("epoch").iloc[-1].to_dict()
        row.update({k: v for k, v in final.items() if k not in row})
        row["final_genotype"] = final.get("genotype")
    row["epochs_done"] = int(history["epoch"].max()) if history is not None and len(history) else 0
    row["total_epochs"] = int(search.get("epochs", last.get(TRIAL_INFO_PREFIX + "total_epochs", 0)))
    status = str(trial.status)
    if status == "TERMINATED" and row["epochs_done"] < row["total_epochs"]:
        status = INTERRUPTED  # Tune marks trials stopped by Ctrl-C TERMINATED; they are not finished
    row["status"] = status
    row["error"] = _error_message(trial) if status == "ERROR" else None
    row["num_failures"] = int(getattr(trial.run_metadata, "num_failures", 0))
    ckpt = trial.checkpoint
    if ckpt is not None:  # a local path where the checkpoint's filesystem is a local disk (also under a SubTree)
        where = Folder(ckpt.filesystem, ckpt.path)
        row["checkpoint_path"] = checkpoint_file(where.local_path() or ckpt.path)
    else:
        row["checkpoint_path"] = None
    row["trial_path"] = trial.path
    row["config_json"] = json.dumps(search, sort_keys=True)
    versions = {k.removeprefix(TRIAL_INFO_PREFIX + "version_"): v for k, v in last.items()
                if k.startswith(TRIAL_INFO_PREFIX + "version_")} or library_versions()
    row.update({f"{k}_version": v for k, v in versions.items()})
    row["device"] = last.get(TRIAL_INFO_PREFIX + "device")
    row["node_id"] = last.get(TRIAL_INFO_PREFIX + "node_id")  # of the last attempt (a retry may move it)
    row["node_ip"] = last.get("node_ip")
    return {k: _scalar(v) for k, v in row.items()}


TrialRow = Callable[[Any, "pd.DataFrame | None"], dict[str, Any]]


class ParquetResults(Callback):
    """A Tune callback that keeps the run folder's epochs and trials tables current (see module doc).

    The run folder is taken from each trial's storage when it holds our spec (so it stays right when a
    stopped sweep was moved before `--resume`), else from `run_dir`.
    """

    def __init__(self, run_dir: str | os.PathLike | Folder, *, epochs_table: str = EPOCHS,
                 trials_table: str = TRIALS, make_trial_row: TrialRow = trial_row):
        self.run_dir = location(run_dir)
        self.epochs_table, self.trials_table, self.make_trial_row = epochs_table, trials_table, make_trial_row
        self._history: dict[str, dict[int, dict[str, Any]]] = {}

    def __getstate__(self):  # tuner.pkl holds the callback: no cached rows in it
        return {k: v for k, v in self.__dict__.items() if k != "_history"}

    def __setstate__(self, state):
        self.__dict__.update({"epochs_table": EPOCHS, "trials_table": TRIALS, "make_trial_row": trial_row})
        self.__dict__.update(state)
        self.run_dir = location(self.run_dir)
        self._history = {}

    def _dir(self, trial) -> Folder:
        storage = getattr(trial, "storage", None)
        path = getattr(storage, "experiment_fs_path", None)
        fs = getattr(storage, "storage_filesystem", None) or self.run_dir.fs
        if path:
            folder = Folder(fs, path)
            if (folder / SPEC_FILE).is_file():
                return folder
        return self.run_dir

    def _trial_history(self, trial) -> dict[int, dict[str, Any]]:
        if trial.trial_id not in self._history:  # first sight (also after --resume): what is stored already
            old = store.read_partition(self._dir(trial), self.epochs_table, trial.trial_id)
            self._history[trial.trial_id] = {int(r["epoch"]): r for r in old.to_dict("records")} if len(old) else {}
        return self._history[trial.trial_id]

    def _frame(self, trial) -> pd.DataFrame:
        rows = self._trial_history(trial)
        return pd.DataFrame([rows[e] for e in sorted(rows)])

    def on_trial_result(self, iteration, trials, trial, result, **info):
        row = epoch_row(result)
        if "epoch" not in row:
            return
        epoch = int(row["epoch"])
        history = self._trial_history(trial)
        # epochs after this one came from an attempt that failed before its next checkpoint: this attempt
        # runs them again, so they are dropped rather than mixed with the new attempt's rows.
        for e in [e for e in history if e > epoch]:
            del history[e]
        history[epoch] = row
        store.write_partition(self._dir(trial), self.epochs_table, self._frame(trial), trial.trial_id)

    def _write_trial(self, trial) -> None:
        row = self.make_trial_row(trial, self._frame(trial))
        store.write_partition(self._dir(trial), self.trials_table, pd.DataFrame([row]), trial.trial_id)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._write_trial(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._write_trial(trial)

    def on_experiment_end(self, trials, **info):
        for trial in trials:
            self._write_trial(trial)


def read_trials(run_dir: str | os.PathLike | Folder, table: str = TRIALS) -> pd.DataFrame:
    """The trials table, or an empty one (with `trial_id` and `status`) when no trial has written yet."""
    try:
        return store.read_table(run_dir, table)
    except FileNotFoundError:
        return pd.DataFrame(columns=["trial_id", "status"])
