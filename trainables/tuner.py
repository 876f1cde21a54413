"""One `tune.Tuner` over an explicit list of trial configs, its run folder, and joining or starting Ray.

Generic over what a trial does: the search sweep (trainables/sweep.py) and the final-training driver pass
their Trainable class, their trial configs and their tables. Trials are given to Tune as one
`tune.grid_search` over the configs (`{"trial": config}`); each config carries a `label` that names its
folder. Why not one `grid_search` per axis: methods have different hyper-parameters, and per-axis grids
would cross every method with every other method's axes (or need conditional search spaces); the explicit
list is exactly the validated set, in a fixed order, and each config is visible in Tune's params.json.

Run folder `<storage>/<name>/`: Tune's own files (trial folders with checkpoints, experiment state), the
spec the run was started with (`spec.yaml`), and the Parquet tables written by `tune_results.ParquetResults`.
"""

from __future__ import annotations

import logging
import os
import re
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.tune import Callback

from trainables.tune_results import SPEC_FILE, ParquetResults

log = logging.getLogger(__name__)

DEFAULT_STORAGE = "runs"


@dataclass(frozen=True)
class TunerPlan:
    """What Tune needs beyond the trainable and the trial configs (a spec's `failure`/`checkpoint`/... parts)."""

    name: str
    iterations: int  # results per trial (`training_iteration` at which Tune stops it)
    resources: Mapping[str, float]  # per trial, e.g. {"cpu": 1, "gpu": 0.25}
    max_failures: int = 0
    checkpoint_frequency: int = 1
    checkpoints_to_keep: int | None = None
    max_concurrent_trials: int | None = None


def _dirname(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", label).strip("_")[:80]


def trial_dirname(trial) -> str:
    """Short, readable trial folder names: `<trial_id>_<label>` (e.g. `..._darts-v1_seed=0`)."""
    return f"{trial.trial_id}_{_dirname(trial.config['trial']['label'])}"


def with_resources(trainable: type, resources: Mapping[str, float]):
    """The Trainable with per-trial resources (fractional GPUs pack trials on one GPU)."""
    from ray import tune

    return tune.with_resources(trainable, {"cpu": resources.get("cpu", 1), "gpu": resources.get("gpu", 0)})


def param_space(trial_configs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One grid axis over the explicit trial list (see the module docstring for why)."""
    from ray import tune

    return {"trial": tune.grid_search([dict(c) for c in trial_configs])}


def build_tuner(trainable: type, trial_configs: Sequence[Mapping[str, Any]], run_dir: Path, plan: TunerPlan, *,
                resume: bool, results: ParquetResults | None = None, callbacks: Sequence = (),
                progress_reporter=None, verbose: int = 1):
    """A new Tuner over `trial_configs` writing to `run_dir` (named `plan.name`), or with `resume` the one
    stored there. `results` defaults to `ParquetResults(run_dir)` (the `epochs` and `trials` tables)."""
    from ray import tune

    trainable = with_resources(trainable, plan.resources)
    if resume:
        if not tune.Tuner.can_restore(str(run_dir)):
            raise FileNotFoundError(f"--resume: {run_dir} holds no Tune experiment state to restore "
                                    f"(the first run stopped before Tune started?); delete it and start again")
        return tune.Tuner.restore(str(run_dir), trainable=trainable, resume_unfinished=True,
                                  resume_errored=True)
    run_config = tune.RunConfig(
        name=plan.name, storage_path=str(run_dir.parent), stop={"training_iteration": plan.iterations},
        failure_config=tune.FailureConfig(max_failures=plan.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=plan.checkpoints_to_keep,
                                                checkpoint_frequency=plan.checkpoint_frequency,
                                                checkpoint_at_end=True),
        callbacks=[results or ParquetResults(run_dir), *callbacks], verbose=verbose,
        progress_reporter=progress_reporter)
    tune_config = tune.TuneConfig(max_concurrent_trials=plan.max_concurrent_trials, reuse_actors=True,
                                  trial_dirname_creator=trial_dirname)
    return tune.Tuner(trainable, param_space=param_space(trial_configs), tune_config=tune_config,
                      run_config=run_config)


def prepare_run_dir(storage: str | os.PathLike, name: str, spec_text: str, *, resume: bool,
                    same_trials: Callable[[Path], bool]) -> Path:
    """`<storage>/<name>`, holding `spec_text` as spec.yaml: refused if it exists (unless resuming); when
    resuming it must exist and `same_trials(stored spec path)` must hold."""
    if re.match(r"^[a-z][a-z0-9+]*://", str(storage)):
        raise ValueError(f"storage {storage!r}: the results store needs a local or mounted shared folder "
                         f"(e.g. NFS/EFS on a cluster), not a URI")
    run_dir = Path(storage).expanduser().resolve() / name
    spec_path = run_dir / SPEC_FILE
    if resume:
        if not spec_path.is_file():
            raise FileNotFoundError(f"--resume: no sweep to resume at {run_dir} (no {SPEC_FILE}); "
                                    f"run without --resume to start it")
        if not same_trials(spec_path):
            raise ValueError(f"--resume: the trials of this spec differ from the stored {spec_path}; "
                             f"resume with the same spec or start a sweep with another name")
        return run_dir
    if run_dir.exists():
        raise FileExistsError(f"run folder {run_dir} already exists: pass --resume to finish that sweep, or "
                              f"change `name` / --storage (a sweep never overwrites another's results)")
    run_dir.mkdir(parents=True)
    tmp = spec_path.with_name(f".{SPEC_FILE}.tmp")
    tmp.write_text(spec_text)
    os.replace(tmp, spec_path)
    return run_dir


def init_ray(address: str | None = None, *, num_cpus: int | None = None, temp_dir: str | None = None,
             **kwargs) -> bool:
    """Join a cluster (`address`, or $RAY_ADDRESS as set by `ray job submit`) or start an embedded local Ray.

    Token authentication stays as Ray configures it for clusters; only the embedded local instance (reachable
    from this machine only) is started with RAY_AUTH_MODE=disabled unless the user set it. Returns whether
    this call started Ray (and so should shut it down).
    """
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        if num_cpus is not None or temp_dir is not None:
            log.warning("joining the cluster at %s: --num-cpus / --ray-temp-dir apply to a local Ray only", address)
        ray.init(address=address, **kwargs)
    else:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=num_cpus, _temp_dir=temp_dir, **kwargs)
    return True


class InterruptAfter(Callback):
    """Interrupts the sweep like Ctrl-C (SIGINT to this process) after `n` results.

    Tune stops gracefully on SIGINT and saves its state, so `--resume` finishes the sweep; the interrupt is
    not carried into the resumed sweep (it pickles as a plain Callback). For tests and time budgets.
    """

    def __init__(self, n: int):
        self.n = int(n)
        self.count = 0

    def __reduce__(self):
        return (Callback, ())

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.count += 1
        if self.count == self.n:
            os.kill(os.getpid(), signal.SIGINT)
