"""The Tune plumbing shared by every stage's Trainable: checkpoint save/restore through the run object, the result
row (identity + metrics + trial info), CPU share and actor reuse; plus the columns every trial row carries."""

from __future__ import annotations

import json
import platform as _platform_info  # the standard library module (our platform/ folder is not a package)
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
from ray import tune

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

    #: the key of the trial config that holds the run's own config ("search", "train")
    run_key: str

    def setup(self, config: dict[str, Any]) -> None:
        """Threads from the trial's CPU share, the run (`build_run`), and the columns every row carries
        (`describe`: identity, and trial info stored with the `info_` prefix)."""
        trial = config["trial"]
        threads = self._cpu_share()
        if threads:
            torch.set_num_threads(threads)
        self.trial = trial
        self.run = self.build_run(trial[self.run_key])
        self.identity, info = self.describe(trial)
        info = {**info, "config_json": json.dumps(trial[self.run_key], sort_keys=True),
                **{f"version_{k}": v for k, v in library_versions().items()}}
        self.info = {TRIAL_INFO_PREFIX + k: v for k, v in info.items() if k not in self.identity}

    def build_run(self, run_config: dict[str, Any]):
        raise NotImplementedError

    def describe(self, trial: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(identity columns, trial info) of this trial and its run."""
        raise NotImplementedError

    def _ended(self, err: Exception, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        """The last result of a trial that ends itself with an error (a non-finite loss: the run is deterministic,
        so a retry from the last checkpoint would meet it again): Tune finishes the trial without retrying, and the
        stage's trial row turns the `error` into status ERROR."""
        return {**self.identity, **(metrics or {}), "epoch": self.run.epoch, "error": str(err), **self.info,
                "done": True}

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
