"""The Tune callback that keeps a run folder's Parquet tables current: one row per epoch, one per trial.

`ParquetResults` runs on the driver (the node that calls `Tuner.fit`, also under `ray submit` / `ray job
submit`), so workers never need the results folder. After every result it rewrites that trial's partition of
the epochs table with the trial's whole history, keyed by epoch: a retried trial (restored from its last
checkpoint) or a resumed sweep re-reports epochs after that checkpoint and replaces them, never duplicates
them. The history is re-read from the partition when a resumed driver first sees a trial. The trials table gets
one row per trial on completion, on error and at the end of the experiment. Storage is `trainables.runs.store`.
A row that cannot be built or written is logged and never fails the trial (Tune would retry a finished trial):
a failed row builder leaves `fallback_row` (the last result and the error), a failed write is done again later.

Table names and the function that turns a Tune trial into its trials row are arguments, so each stage passes its
own (the search sweep `trainables.search.trainable.trial_row`, final training `trainables.train.driver.final_row`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from ray.tune import Callback

from trainables.runs import store
from trainables.runs.fsfolder import Folder, location
from trainables.runs.trainable import TRIAL_INFO_PREFIX, library_versions

log = logging.getLogger(__name__)

SPEC_FILE = "spec.yaml"
EPOCHS, TRIALS = "epochs", "trials"
#: Tune's bookkeeping keys that are not epoch metrics.
_TUNE_KEYS = frozenset({"config", "done", "date", "timestamp", "pid", "time_since_restore",
                        "iterations_since_restore", "timesteps_since_restore", "timesteps_total", "episodes_total",
                        "experiment_tag", "checkpoint_dir_name", "should_checkpoint", "trial_id", "__duplicate__",
                        "__trial_info__"})
#: `trials.status` of a trial stopped before its last epoch (the sweep was interrupted; --resume finishes it)
INTERRUPTED = "INTERRUPTED"


def cell(v: Any) -> Any:
    """A value as one Parquet cell: lists and dicts as JSON text, so each column keeps one type."""
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict, tuple)) else v


def trial_status(trial, epochs_done: int, total_epochs: int) -> str:
    """Tune's status, except that a trial Tune marks TERMINATED before its last epoch (stopped by Ctrl-C) is
    INTERRUPTED: it is not finished, and `--resume` finishes it."""
    status = str(trial.status)
    return INTERRUPTED if status == "TERMINATED" and epochs_done < total_epochs else status


def versions(last: dict[str, Any]) -> dict[str, str]:
    """`<library>_version` columns: those the trial reported, else this process's."""
    found = {k.removeprefix(TRIAL_INFO_PREFIX + "version_"): v for k, v in last.items()
             if k.startswith(TRIAL_INFO_PREFIX + "version_")} or library_versions()
    return {f"{k}_version": v for k, v in found.items()}


def epoch_row(result: dict[str, Any]) -> dict[str, Any]:
    """The `epochs` row of one Tune result: the trainable's metrics and identity, minus Tune bookkeeping."""
    return {k: cell(v) for k, v in result.items()
            if k not in _TUNE_KEYS and not k.startswith(TRIAL_INFO_PREFIX)}


def error_message(trial) -> str | None:
    text = trial.get_error() if hasattr(trial, "get_error") else None
    if not text:
        return None
    """The last line of a failed trial's error (Tune keeps the whole traceback in the trial folder)."""
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else None


TrialRow = Callable[[Any, "pd.DataFrame | None"], dict[str, Any]]


def fallback_row(trial, err: BaseException) -> dict[str, Any]:
    """The trials row of a trial whose stage's row builder failed: its last result (identity, last epoch's
    metrics), status ERROR and the builder's error, so the trained result is kept and the failure shows."""
    row = epoch_row(dict(trial.last_result or {}))
    row.update({"status": "ERROR", "error": f"trial row failed: {type(err).__name__}: {err}",
                "trial_path": getattr(trial, "path", None)})
    return row


class ParquetResults(Callback):
    """A Tune callback that keeps the run folder's epochs and trials tables current (see module doc).

    The run folder is taken from each trial's storage when it holds our spec (so it stays right when a
    stopped sweep was moved before `--resume`), else from `run_dir`.
    """

    def __init__(self, run_dir: str | os.PathLike | Folder, make_trial_row: TrialRow, *, epochs_table: str = EPOCHS,
                 trials_table: str = TRIALS):
        self.run_dir = location(run_dir)
        self.epochs_table, self.trials_table, self.make_trial_row = epochs_table, trials_table, make_trial_row
        self._history: dict[str, dict[int, dict[str, Any]]] = {}
        self._unwritten: set[str] = set()  # trials whose last epochs write failed

    def __getstate__(self):  # tuner.pkl holds the callback: no cached rows in it
        return {k: v for k, v in self.__dict__.items() if k not in ("_history", "_unwritten")}

    def __setstate__(self, state):
        self.__dict__.update({"epochs_table": EPOCHS, "trials_table": TRIALS})
        self.__dict__.update(state)
        self.run_dir = location(self.run_dir)
        self._history = {}
        self._unwritten = set()

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
        try:
            store.write_partition(self._dir(trial), self.epochs_table, self._frame(trial), trial.trial_id)
        except Exception:  # noqa: BLE001 - the history stays in memory and is written with the next result
            self._unwritten.add(trial.trial_id)
            log.exception("trial %s: writing its %s rows failed; they are written again with its next result",
                          trial.trial_id, self.epochs_table)
        else:
            self._unwritten.discard(trial.trial_id)

    def _write_trial(self, trial) -> None:
        """The trial's row; a row that cannot be built or written never fails the trial (Tune would retry a
        finished training): a row that cannot be built is replaced by `fallback_row` (the trial's last result
        and the error), a failed write is logged and done again at the end of the experiment or on --resume."""
        try:
            if trial.trial_id in self._unwritten:  # an epochs write failed earlier: the history is in memory
                store.write_partition(self._dir(trial), self.epochs_table, self._frame(trial), trial.trial_id)
                self._unwritten.discard(trial.trial_id)
            try:
                row = self.make_trial_row(trial, self._frame(trial))
            except Exception as err:  # noqa: BLE001 - a bug or a lookup in the row builder must not lose the trial
                log.exception("trial %s: building its %s row failed; writing its last result with the error",
                              trial.trial_id, self.trials_table)
                row = fallback_row(trial, err)
            store.write_partition(self._dir(trial), self.trials_table, pd.DataFrame([row]), trial.trial_id)
        except Exception:  # noqa: BLE001 - e.g. a full disk: the row is written again later, the trial stands
            log.exception("trial %s: writing its %s row failed; it is written again at the end of the run or on "
                          "--resume", trial.trial_id, self.trials_table)

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


#: exit codes of `balenas sweep` and `balenas train`
EXIT_OK, EXIT_TRIALS_FAILED, EXIT_INTERRUPTED = 0, 1, 130


@dataclass
class RunResult:
    """What a stage's driver returns: the run folder, its trials (or final) table, and whether it was interrupted;
    `exit_code` is the command's exit status."""

    run_dir: Path | Folder  # a Path where the run folder is on a local (or mounted) disk
    trials: pd.DataFrame
    interrupted: bool

    def __post_init__(self):
        if isinstance(self.run_dir, Folder) and self.run_dir.local_path() is not None:
            self.run_dir = self.run_dir.local_path()

    @property
    def failed(self) -> pd.DataFrame:
        return self.trials[self.trials["status"] == "ERROR"] if len(self.trials) else self.trials

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_TRIALS_FAILED if len(self.failed) else EXIT_OK
