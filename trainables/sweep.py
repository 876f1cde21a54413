"""The sweep driver: a validated spec -> one `tune.Tuner` over every trial -> Parquet tables in the run folder.

Trials are the explicit list `SweepSpec.trials()` (methods x hyper-parameter grid x seeds) given to Tune as
one `tune.grid_search` over trial configs. Why not one `grid_search` per axis: methods have different
hyper-parameters, and per-axis grids would cross every method with every other method's axes (or need
conditional search spaces); the explicit list is exactly the validated set, in a fixed order, and each
trial's config carries its full `SearchRun` config (visible in Tune's params.json).

Results: the `ParquetResults` callback runs on the driver (the node that calls `Tuner.fit`, also under
`ray submit` / `ray job submit`), so workers never need the results folder. After every result it rewrites
that trial's `epochs` partition with the trial's whole history, keyed by epoch: a retried trial (restored
from its last checkpoint) or a resumed sweep re-reports epochs after that checkpoint and replaces them, never
duplicates them. The history is re-read from the partition when a resumed driver first sees a trial.
`trials` gets one row per trial on completion, on error and at the end of the experiment.

Run folder `<storage>/<name>/`: Tune's own files (trial folders with checkpoints, experiment state), our
`spec.yaml`, and the tables `epochs/`, `trials/` (and `samples/`, `selections/` from the proxy stage).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from ray.tune import Callback

from analysis import store
from trainables.spec import SweepSpec, validate_spec
from trainables.trainable import TRIAL_INFO_PREFIX, SearchTrainable, checkpoint_file, hp_columns, library_versions

log = logging.getLogger(__name__)

DEFAULT_STORAGE = "runs"
SPEC_FILE = "spec.yaml"
EPOCHS, TRIALS = "epochs", "trials"
#: Tune's bookkeeping keys that are not epoch metrics.
_TUNE_KEYS = frozenset({"config", "done", "date", "timestamp", "pid", "time_since_restore",
                        "iterations_since_restore", "timesteps_since_restore", "timesteps_total", "episodes_total",
                        "experiment_tag", "checkpoint_dir_name", "should_checkpoint", "trial_id", "__duplicate__",
                        "__trial_info__"})
#: `trials.status` of a trial stopped before its last epoch (the sweep was interrupted; --resume finishes it)
INTERRUPTED = "INTERRUPTED"
#: exit codes of `platform/sweep.py`
EXIT_OK, EXIT_TRIALS_FAILED, EXIT_INTERRUPTED = 0, 1, 130


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
    """The `trials` row of a Tune Trial: identity from its config, final metrics, status and checkpoint."""
    spec = trial.config["trial"]
    last = dict(trial.last_result or {})
    search = spec["search"]
    row: dict[str, Any] = {"trial_label": spec["label"], "method": spec["method"], "seed": int(spec["seed"]),
                           "dataset": search["dataset"], "space": search["space"]}
    row.update(hp_columns(spec["hp"]))
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
    row["checkpoint_path"] = checkpoint_file(ckpt.path) if ckpt is not None else None
    row["trial_path"] = trial.path
    row["config_json"] = json.dumps(search, sort_keys=True)
    versions = {k.removeprefix(TRIAL_INFO_PREFIX + "version_"): v for k, v in last.items()
                if k.startswith(TRIAL_INFO_PREFIX + "version_")} or library_versions()
    row.update({f"{k}_version": v for k, v in versions.items()})
    row["device"] = last.get(TRIAL_INFO_PREFIX + "device")
    return {k: _scalar(v) for k, v in row.items()}


class ParquetResults(Callback):
    """A Tune callback that keeps the run folder's `epochs` and `trials` tables current (see module doc).

    The run folder is taken from each trial's storage when it holds our spec (so it stays right when a
    stopped sweep was moved before `--resume`), else from `run_dir`.
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = str(run_dir)
        self._history: dict[str, dict[int, dict[str, Any]]] = {}

    def __getstate__(self):  # tuner.pkl holds the callback: no cached rows in it
        return {"run_dir": self.run_dir}

    def __setstate__(self, state):
        self.run_dir = state["run_dir"]
        self._history = {}

    def _dir(self, trial) -> str:
        path = getattr(getattr(trial, "storage", None), "experiment_fs_path", None)
        return path if path and Path(path, SPEC_FILE).is_file() else self.run_dir

    def _trial_history(self, trial) -> dict[int, dict[str, Any]]:
        if trial.trial_id not in self._history:  # first sight (also after --resume): what is stored already
            old = store.read_partition(self._dir(trial), EPOCHS, trial.trial_id)
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
        store.write_partition(self._dir(trial), EPOCHS, self._frame(trial), trial.trial_id)

    def _write_trial(self, trial) -> None:
        row = trial_row(trial, self._frame(trial))
        store.write_partition(self._dir(trial), TRIALS, pd.DataFrame([row]), trial.trial_id)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._write_trial(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._write_trial(trial)

    def on_experiment_end(self, trials, **info):
        for trial in trials:
            self._write_trial(trial)


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


# ----- the sweep ---------------------------------------------------------------------------------------------
@dataclass
class SweepResult:
    run_dir: Path
    trials: pd.DataFrame
    interrupted: bool

    @property
    def failed(self) -> pd.DataFrame:
        return self.trials[self.trials["status"] == "ERROR"] if len(self.trials) else self.trials

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_TRIALS_FAILED if len(self.failed) else EXIT_OK


def _dirname(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", label).strip("_")[:80]


def trial_dirname(trial) -> str:
    """Short, readable trial folder names: `<trial_id>_<method>_..._seed=<s>`."""
    return f"{trial.trial_id}_{_dirname(trial.config['trial']['label'])}"


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


def prepare_run_dir(spec: SweepSpec, storage: str | os.PathLike, resume: bool) -> Path:
    """`<storage>/<name>`: refused if it exists (unless resuming), required with a matching spec when resuming."""
    if re.match(r"^[a-z][a-z0-9+]*://", str(storage)):
        raise ValueError(f"storage {storage!r}: the results store needs a local or mounted shared folder "
                         f"(e.g. NFS/EFS on a cluster), not a URI")
    run_dir = Path(storage).expanduser().resolve() / spec.name
    spec_path = run_dir / SPEC_FILE
    if resume:
        if not spec_path.is_file():
            raise FileNotFoundError(f"--resume: no sweep to resume at {run_dir} (no {SPEC_FILE}); "
                                    f"run without --resume to start it")
        stored = validate_spec(yaml.safe_load(spec_path.read_text()), source=str(spec_path))
        if [t.as_config() for t in stored.trials()] != [t.as_config() for t in spec.trials()]:
            raise ValueError(f"--resume: the trials of this spec differ from the stored {spec_path}; "
                             f"resume with the same spec or start a sweep with another name")
        return run_dir
    if run_dir.exists():
        raise FileExistsError(f"run folder {run_dir} already exists: pass --resume to finish that sweep, or "
                              f"change `name` / --storage (a sweep never overwrites another's results)")
    run_dir.mkdir(parents=True)
    tmp = spec_path.with_name(f".{SPEC_FILE}.tmp")
    tmp.write_text(spec.to_yaml())
    os.replace(tmp, spec_path)
    return run_dir


def build_tuner(spec: SweepSpec, run_dir: Path, *, resume: bool, trainable: type | None = None,
                callbacks: Sequence = (), verbose: int = 1):
    from ray import tune

    trainable = trial_trainable(spec, trainable)
    if resume:
        if not tune.Tuner.can_restore(str(run_dir)):
            raise FileNotFoundError(f"--resume: {run_dir} holds no Tune experiment state to restore "
                                    f"(the first run stopped before Tune started?); delete it and start again")
        return tune.Tuner.restore(str(run_dir), trainable=trainable, resume_unfinished=True,
                                  resume_errored=True)
    run_config = tune.RunConfig(
        name=spec.name, storage_path=str(run_dir.parent), stop={"training_iteration": spec.epochs},
        failure_config=tune.FailureConfig(max_failures=spec.failure.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.checkpoint.num_to_keep,
                                                checkpoint_frequency=spec.checkpoint.frequency,
                                                checkpoint_at_end=True),
        callbacks=[ParquetResults(run_dir), *callbacks], verbose=verbose, progress_reporter=progress_reporter(spec))
    tune_config = tune.TuneConfig(max_concurrent_trials=spec.max_concurrent_trials, reuse_actors=True,
                                  trial_dirname_creator=trial_dirname)
    return tune.Tuner(trainable, param_space=param_space(spec), tune_config=tune_config, run_config=run_config)


def trial_trainable(spec: SweepSpec, trainable: type | None = None):
    """The Trainable with the spec's per-trial resources (fractional GPUs pack trials on one GPU)."""
    from ray import tune

    return tune.with_resources(trainable or SearchTrainable, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """One grid axis over the explicit trial list (see the module docstring for why)."""
    from ray import tune

    return {"trial": tune.grid_search([t.as_config() for t in spec.trials()])}


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
    """Run (or with `resume`, finish) a sweep; returns the run folder and its `trials` table."""
    storage = storage or spec.storage or DEFAULT_STORAGE
    run_dir = prepare_run_dir(spec, storage, resume)
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the classic reporter shows our chosen columns
    started = init_ray(address, **(ray_init or {}))
    try:
        tuner = build_tuner(spec, run_dir, resume=resume, trainable=trainable, callbacks=callbacks,
                            verbose=verbose)
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


def read_trials(run_dir: str | os.PathLike) -> pd.DataFrame:
    try:
        return store.read_table(run_dir, TRIALS)
    except FileNotFoundError:
        return pd.DataFrame(columns=["trial_id", "status"])


def run_proxies(run_dir: Path, spec: SweepSpec, trials: pd.DataFrame, progress: bool = True) -> None:
    """The proxy stage (trainables.sampling) on the finished trials; skipped with a log line if absent."""
    try:
        from trainables.sampling import run_proxy_stage
    except ImportError as err:
        log.warning("proxy stage skipped: trainables.sampling is not available (%s)", err)
        return
    done = trials[trials["status"] == "TERMINATED"]
    if not len(done):
        log.warning("proxy stage skipped: no trial finished")
        return
    log.info("proxy stage: %d finished trial(s)", len(done))
    run_proxy_stage(run_dir, spec.model_dump(mode="json", exclude_none=True), done, progress=progress)


# ----- the end-of-sweep summary -----------------------------------------------------------------------------
def summary_table(trials: pd.DataFrame, bench_column: str | None = None) -> str:
    """method x hyper-parameters x seed: status, final genotype, benchmark accuracy (plain text)."""
    if not len(trials):
        return "(no trials)"
    bench_cols = [c for c in trials.columns if c.startswith("bench_")]
    if bench_column not in bench_cols:
        bench_column = bench_cols[0] if bench_cols else None
    hp_cols = [c for c in trials.columns if c.startswith("hp_")]
    lines = []
    header = ["method", "hp", "seed", "status", "epochs", "genotype"] + ([bench_column] if bench_column else [])
    for _, r in trials.sort_values(["method", "trial_label", "seed"]).iterrows():
        hp = ",".join(f"{c[3:]}={r[c]}" for c in hp_cols if not _missing(r[c]))
        epochs = f"{r.get('epochs_done', 0)}/{r.get('total_epochs', '?')}"
        bench = r.get(bench_column) if bench_column else None
        row = [r["method"], hp or "-", str(r["seed"]), str(r["status"]), epochs, str(r.get("genotype", "-"))]
        if bench_column:
            row.append("-" if _missing(bench) else f"{float(bench):.2f}")
        lines.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header)] + [fmt.format(*row) for row in lines])


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
