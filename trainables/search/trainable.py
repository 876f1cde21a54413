"""The search Trainable: one Tune trial = one `SearchRun`, one `step()` = one search epoch.

`setup` builds the run (space, supernet, distribution, data) on the trial's device; `step` runs an epoch and
returns its metrics plus the trial's identity (method, seed, label, `hp_<name>` columns) so every result row
stands on its own; `save_checkpoint`/`load_checkpoint` (in `RunTrainable`) write and read the run's complete
state (weights, distribution, optimizers, RNG states, epoch) through `SearchRun.save` / `load_state_dict`, which
is what Tune restores a failed trial from. Result rows reach the Parquet store through the driver's
`ParquetResults` callback (trainables/runs/results.py), not from here, so workers need no access to the results
folder.

A search that diverges (`NonFiniteSearch`: a NaN or infinite weight or architecture loss, or distribution
parameters) ends its trial at once with a last result carrying that epoch's metrics and an `error` naming the
epoch and the quantity; retrying from the last checkpoint would meet the same divergence (the run is
deterministic), so no retry is spent on it. `trial_row` turns that result into status ERROR, the proxy stage
skips the trial and the sweep exits 1, while the other trials go on.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import ray

from trainables.runs.fsfolder import Folder
from trainables.runs.results import cell, error_message, trial_status, versions
from trainables.runs.trainable import TRIAL_INFO_PREFIX, RunTrainable, hp_fields
from trainables.search.loop import CHECKPOINT_FILE, NonFiniteSearch, SearchRun, checkpoint_file


class SearchTrainable(RunTrainable):
    """`config["trial"]` is a `TrialSpec.as_config()`: label, method, seed, hp and the SearchRun config."""

    checkpoint_name = CHECKPOINT_FILE

    run_key = "search"

    def describe(self, trial: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        identity = {"method": trial["method"], "seed": int(trial["seed"]), "trial_label": trial["label"],
                    "dataset": trial["search"]["dataset"], "space": trial["search"]["space"],
                    **hp_fields(trial["hp"])}
        info = {"device": str(self.run.device), "total_epochs": self.run.total_epochs,
                "node_id": ray.get_runtime_context().get_node_id()}  # the node this attempt runs on
        return identity, info

    def build_run(self, search_config: dict[str, Any]) -> SearchRun:
        """The SearchRun of this trial (a seam for tests that inject failures)."""
        return SearchRun(search_config)

    def step(self) -> dict[str, Any]:
        try:
            metrics = self.run.run_epoch()
        except NonFiniteSearch as err:  # deterministic: end the trial (no retry), its rows stay for inspection
            return self._ended(err, err.metrics)
        return self._result(metrics)


def _last_epoch(history: pd.DataFrame) -> dict[str, Any]:
    """The last epoch row of a trial's history; a text column's missing value is None, not NaN (a NaN would give
    the one-row trials partition a float column where other partitions hold text)."""
    final = history.sort_values("epoch").iloc[-1].to_dict()
    return {k: (None if isinstance(v, float) and v != v and history[k].dtype == object else v)
            for k, v in final.items()}


def trial_row(trial, history: pd.DataFrame | None) -> dict[str, Any]:
    """The search sweep's `trials` row of a Tune Trial: identity from its config, final metrics, status and
    checkpoint."""
    spec = trial.config["trial"]
    last = dict(trial.last_result or {})
    search = spec["search"]
    row: dict[str, Any] = {"trial_label": spec["label"], "method": spec["method"], "seed": int(spec["seed"]),
                           "dataset": search["dataset"], "space": search["space"]}
    row.update(hp_fields(spec["hp"]))
    final: dict[str, Any] = {}
    if history is not None and len(history):
        final = _last_epoch(history)
        row.update({k: v for k, v in final.items() if k not in row})
        row["final_genotype"] = final.get("genotype")
    row["epochs_done"] = int(history["epoch"].max()) if history is not None and len(history) else 0
    row["total_epochs"] = int(search.get("epochs", last.get(TRIAL_INFO_PREFIX + "total_epochs", 0)))
    status = trial_status(trial, row["epochs_done"], row["total_epochs"])
    diverged = final.get("error") if isinstance(final.get("error"), str) else None
    if diverged:  # the trainable ended the trial itself (a non-finite loss or distribution): no genotype
        status, row["genotype"], row["final_genotype"] = "ERROR", None, None
    row["status"] = status
    row["error"] = diverged or (error_message(trial) if status == "ERROR" else None)
    row["num_failures"] = int(getattr(trial.run_metadata, "num_failures", 0))
    ckpt = trial.checkpoint
    if ckpt is not None:  # a local path where the checkpoint's filesystem is a local disk (also under a SubTree)
        where = Folder(ckpt.filesystem, ckpt.path)
        row["checkpoint_path"] = checkpoint_file(where.local_path() or ckpt.path)
    else:
        row["checkpoint_path"] = None
    row["trial_path"] = trial.path
    row["config_json"] = json.dumps(search, sort_keys=True)
    row.update(versions(last))
    row["device"] = last.get(TRIAL_INFO_PREFIX + "device")
    row["node_id"] = last.get(TRIAL_INFO_PREFIX + "node_id")  # of the last attempt (a retry may move it)
    row["node_ip"] = last.get("node_ip")
    return {k: cell(v) for k, v in row.items()}
