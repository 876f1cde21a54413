"""The search Trainable: one Tune trial = one `SearchRun`, one `step()` = one search epoch.

`setup` builds the run (space, supernet, distribution, data) on the trial's device; `step` runs an epoch and
returns its metrics plus the trial's identity (method, seed, label, `hp_<name>` columns) so every result row
stands on its own; `save_checkpoint`/`load_checkpoint` write and read the run's complete state (weights,
distribution, optimizers, RNG states, epoch) through `SearchRun.save` / `load_state_dict`, which is what Tune
restores a failed trial from. Result rows reach the Parquet store through the driver's `ParquetResults`
callback (trainables/tune_results.py), not from here, so workers need no access to the results folder.
"""

from __future__ import annotations

import json
import platform as _platform_info  # the standard library module (our platform/ folder is not a package)
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from trainables.search import CHECKPOINT_FILE, SearchRun, checkpoint_file  # noqa: F401 - the sweep's import

#: result keys that describe the trial rather than an epoch; the sweep driver puts them in the `trials` table.
TRIAL_INFO_PREFIX = "info_"


def hp_fields(hp: dict[str, Any]) -> dict[str, Any]:
    """`hp_<name>` columns; non-scalar values as JSON text so each column has one Parquet type."""
    return {f"hp_{k}": (json.dumps(v, sort_keys=True) if isinstance(v, (list, dict, tuple)) else v)
            for k, v in sorted(hp.items())}


def library_versions() -> dict[str, str]:
    import ray

    try:
        balenas = version("balenas")
    except PackageNotFoundError:  # a checkout on PYTHONPATH, not installed as a distribution
        balenas = "unknown"
    return {"python": _platform_info.python_version(), "torch": torch.__version__, "ray": ray.__version__,
            "balenas": balenas}


class RunTrainable(tune.Trainable):
    """Tune plumbing shared by the search and training Trainables; `self.run` is the trial's run object.

    The run gives `run_epoch()`, `done`, `device`, `save(path)` and `load_state_dict(state)`; subclasses build it
    in `setup` (with `identity` and `info`, the columns every result row carries) and name their checkpoint
    file in `checkpoint_name`.
    """

    checkpoint_name: str

    def _cpu_share(self) -> int:
        """CPUs Tune gave this trial (the torch thread count); 0 outside Tune."""
        resources = self.trial_resources
        if resources is None:
            return 0
        cpus = sum(b.get("CPU", 0) for b in resources.bundles)
        return max(1, int(cpus))

    def _result(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """An epoch's result row: the trial's identity, the metrics, the trial info; `done` after the last."""
        out = {**self.identity, **metrics, **self.info}
        if self.run.done:
            out["done"] = True
        return out

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        self.run.save(Path(checkpoint_dir) / self.checkpoint_name)

    def load_checkpoint(self, checkpoint: str | dict) -> None:
        path = Path(checkpoint) / self.checkpoint_name
        if not path.is_file():
            raise FileNotFoundError(f"trial checkpoint has no {self.checkpoint_name}: {path}")
        self.run.load_state_dict(torch.load(path, map_location=self.run.device, weights_only=True))

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Reuse this actor for the next trial (Tune's reuse_actors): saves a process start and torch import."""
        self.run = None
        self.setup(new_config)
        return True

    def cleanup(self) -> None:
        self.run = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class SearchTrainable(RunTrainable):
    """`config["trial"]` is a `TrialSpec.as_config()`: label, method, seed, hp and the SearchRun config."""

    checkpoint_name = CHECKPOINT_FILE

    def setup(self, config: dict[str, Any]) -> None:
        trial = config["trial"]
        threads = self._cpu_share()
        if threads:
            torch.set_num_threads(threads)
        self.trial = trial
        self.run = self.build_run(trial["search"])
        self.identity = {"method": trial["method"], "seed": int(trial["seed"]), "trial_label": trial["label"],
                         "dataset": trial["search"]["dataset"], "space": trial["search"]["space"],
                         **hp_fields(trial["hp"])}
        info = {"device": str(self.run.device), "total_epochs": self.run.total_epochs,
                "node_id": ray.get_runtime_context().get_node_id(),  # the node this attempt runs on
                "config_json": json.dumps(trial["search"], sort_keys=True),
                **{f"version_{k}": v for k, v in library_versions().items()}}
        self.info = {TRIAL_INFO_PREFIX + k: v for k, v in info.items()}

    def build_run(self, search_config: dict[str, Any]) -> SearchRun:
        """The SearchRun of this trial (a seam for tests that inject failures)."""
        return SearchRun(search_config)

    def step(self) -> dict[str, Any]:
        return self._result(self.run.run_epoch())
