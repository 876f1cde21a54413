"""One `tune.Tuner` over an explicit list of trial configs, its run folder, and joining or starting Ray.

Generic over what a trial does: the search sweep (trainables/sweep/driver.py) and the final-training driver pass
their Trainable class, their trial configs and their tables. Trials are given to Tune as one
`tune.grid_search` over the configs (`{"trial": config}`); each config carries a `label` that names its
folder. Why not one `grid_search` per axis: methods have different hyper-parameters, and per-axis grids
would cross every method with every other method's axes (or need conditional search spaces); the explicit
list is exactly the validated set, in a fixed order, and each config is visible in Tune's params.json.

Run folder `<storage>/<name>/`: Tune's own files (trial folders with checkpoints, experiment state), the
spec the run was started with (`spec.yaml`), and the Parquet tables written by `results.ParquetResults`.

Tune pickles the callbacks and `trial_dirname` into the run folder (tuner.pkl, experiment state) by module path
and unpickles them on `--resume` before any of our code runs: those paths are part of the run-folder format.
Run folders written before the layout move (c23f5f1 and earlier) name the old paths; `moved_names` makes them
importable there again (tests/fixtures/pre_layout_runs holds such folders).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import types
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.tune import Callback

from trainables.runs.fsfolder import Folder, is_uri, location
from trainables.runs.results import SPEC_FILE, ParquetResults

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
    #: reuse a finished trial's actor for the next trial (saves a process start and the torch import). Off on
    #: a multi-node cluster: a cached actor takes over trials whose own actors are still starting on other
    #: nodes, which piles trials on one node, and in Ray 2.60 can fail such a trial ("The actor never ran -
    #: it was cancelled before it started running"), seen on a loaded two-node cluster.
    reuse_actors: bool = True


def _dirname(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", label).strip("_")[:80]


def trial_dirname(trial) -> str:
    """Short, readable trial folder names: `<trial_id>_<label>` (e.g. `..._darts-v1_seed=0`)."""
    return f"{trial.trial_id}_{_dirname(trial.config['trial']['label'])}"


def moved_names(names: Mapping[str, Mapping[str, Any]]) -> None:
    """Make each `module.attribute` of `names` importable at the module path an older run folder pickled it under
    (a stand-in module in `sys.modules`; attributes merge when several stages register the same path)."""
    for module_name, attributes in names.items():
        module = sys.modules.get(module_name)
        if module is None:
            module = sys.modules[module_name] = types.ModuleType(module_name, "moved; see trainables.runs.tuner")
        for attribute, value in attributes.items():
            setattr(module, attribute, value)


#: where run folders written before the layout move (<= c23f5f1) pickled the generic plumbing
PRE_LAYOUT_NAMES: dict[str, dict[str, Any]] = {
    "trainables.tuner": {"trial_dirname": trial_dirname},
    "trainables.tune_results": {"ParquetResults": ParquetResults},
    "analysis.fsfolder": {"Folder": Folder},
}


def with_resources(trainable: type, resources: Mapping[str, float]):
    """The Trainable with per-trial resources (fractional GPUs pack trials on one GPU)."""
    from ray import tune

    return tune.with_resources(trainable, {"cpu": resources.get("cpu", 1), "gpu": resources.get("gpu", 0)})


def param_space(trial_configs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One grid axis over the explicit trial list (see the module docstring for why)."""
    from ray import tune

    return {"trial": tune.grid_search([dict(c) for c in trial_configs])}


def build_tuner(trainable: type, trial_configs: Sequence[Mapping[str, Any]], run_dir: Folder, plan: TunerPlan, *,
                resume: bool, results: ParquetResults, callbacks: Sequence = (),
                progress_reporter=None, verbose: int = 1,
                pre_layout_names: Mapping[str, Mapping[str, Any]] | None = None):
    """A new Tuner over `trial_configs` writing to `run_dir` (named `plan.name`), or with `resume` the one
    stored there. `results` is the stage's `ParquetResults` callback (its tables and trial-row builder);
    `pre_layout_names` the stage's own objects that run folders from before the layout move pickled (see
    `moved_names`).
    Tune's storage is the run folder's filesystem (any pyarrow filesystem: local, NFS, s3://, gs://)."""
    from ray import tune

    trainable = with_resources(trainable, plan.resources)
    if resume:
        moved_names(PRE_LAYOUT_NAMES)
        moved_names(pre_layout_names or {})
        if not tune.Tuner.can_restore(run_dir.path, storage_filesystem=run_dir.fs):
            raise FileNotFoundError(f"--resume: {run_dir} holds no Tune experiment state to restore "
                                    f"(the first run stopped before Tune started?); delete it and start again")
        return tune.Tuner.restore(run_dir.path, trainable=trainable, resume_unfinished=True, resume_errored=True,
                                  storage_filesystem=run_dir.fs)
    run_config = tune.RunConfig(
        name=plan.name, storage_path=run_dir.parent.path, storage_filesystem=run_dir.fs,
        stop={"training_iteration": plan.iterations},
        failure_config=tune.FailureConfig(max_failures=plan.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=plan.checkpoints_to_keep,
                                                checkpoint_frequency=plan.checkpoint_frequency,
                                                checkpoint_at_end=True),
        callbacks=[results, *callbacks], verbose=verbose,
        progress_reporter=progress_reporter)
    tune_config = tune.TuneConfig(max_concurrent_trials=plan.max_concurrent_trials, reuse_actors=plan.reuse_actors,
                                  trial_dirname_creator=trial_dirname)
    return tune.Tuner(trainable, param_space=param_space(trial_configs), tune_config=tune_config,
                      run_config=run_config)


class StorageError(ValueError):
    """A results folder the run cannot use: a scheme pyarrow cannot open, a store that does not answer or refuses
    the credentials, a file where a folder belongs, no write access."""


#: how long the storage check waits for the filesystem to answer (an unreachable object store retries for long)
STORAGE_TIMEOUT_S = 30.0
_PROBE = ".balenas-write-probe-"


def check_run_dir(run_dir: Folder, *, resume: bool, kind: str = "sweep") -> None:
    """The run-folder rule, reading only: without `resume` `run_dir` must not exist; with it, it must hold the
    spec.yaml of a run. `kind` ("sweep", "training") names the run in the messages."""
    spec_path = run_dir / SPEC_FILE
    if resume:
        if not spec_path.is_file():
            raise FileNotFoundError(f"--resume: no {kind} to resume at {run_dir} (no {SPEC_FILE}); "
                                    f"run without --resume to start it")
    elif run_dir.exists():
        raise FileExistsError(f"run folder {run_dir} already exists: pass --resume to finish that {kind}, or "
                              f"change `name` / --storage (a {kind} never overwrites another's results)")


def _nearest_existing(folder: Folder) -> tuple[Folder, Any]:
    """`folder` or its closest ancestor that exists, with its file type (NotFound when not even the top exists;
    on an object store the walk stops at the bucket)."""
    import pyarrow.fs as pafs

    local = folder.local_path() is not None
    while True:
        kind = folder.fs.get_file_info(folder.path).type
        if kind != pafs.FileType.NotFound:
            return folder, kind
        parent = folder.parent
        if parent.path == folder.path or (not local and "/" not in folder.path.strip("/")):
            return folder, kind
        folder = parent


def _probe_write(folder: Folder, root: Folder) -> None:
    """Write an empty hidden file in `folder` and remove it; a StorageError (naming `root`) says what failed."""
    probe = folder / f"{_PROBE}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with folder.fs.open_output_stream(probe.path) as f:
            f.write(b"")
    except OSError as err:
        raise StorageError(f"storage {root}: cannot write in {folder} ({_first_line(err)})") from None
    try:
        folder.fs.delete_file(probe.path)
    except OSError as err:
        raise StorageError(f"storage {root}: wrote {probe} but cannot delete it ({_first_line(err)}); Tune "
                           f"deletes old checkpoints there") from None


def _check_storage(storage: str | os.PathLike | Folder, name: str, resume: bool, kind: str) -> Folder:
    import pyarrow.fs as pafs

    root = location(storage)  # a scheme pyarrow cannot open: ValueError naming the URI
    run_dir = root / name
    try:
        found, found_type = _nearest_existing(run_dir)
    except OSError as err:
        raise StorageError(f"storage {root}: cannot be read ({_first_line(err)}); check the address and the "
                           f"credentials") from None
    if found_type == pafs.FileType.File and found.path != run_dir.path:
        raise StorageError(f"storage {root}: {'' if found == root else f'{found} '}is a file, not a folder")
    check_run_dir(run_dir, resume=resume, kind=kind)
    _probe_write(found if found_type == pafs.FileType.Directory else root, root)
    return run_dir


def _first_line(err: BaseException) -> str:
    """Why `err` happened, in one line: the system's words for a local error number, else the first line."""
    if isinstance(err, OSError) and err.errno:
        return os.strerror(err.errno)
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def check_storage(storage: str | os.PathLike | Folder, name: str, *, resume: bool, kind: str = "sweep",
                  timeout: float | None = None) -> Folder:
    """Before Ray starts: the run folder `<storage>/<name>` can be made (or, with `resume`, resumed) there.

    Checks the scheme (`location`), that the store answers (within `timeout`, default `STORAGE_TIMEOUT_S`), that
    no file stands where a folder belongs, the run-folder rule (`check_run_dir`), and that the closest existing
    folder (the run folder itself when resuming) takes a file: an empty hidden probe file, removed at once.
    Creates nothing: the run folder is made after Ray connects (`prepare_run_dir`), so a refused address leaves
    nothing behind. Raises StorageError (a ValueError), FileExistsError or FileNotFoundError; returns the run
    folder."""
    timeout = STORAGE_TIMEOUT_S if timeout is None else timeout
    outcome: dict[str, Any] = {}

    def check() -> None:
        try:
            outcome["run_dir"] = _check_storage(storage, name, resume, kind)
        except BaseException as err:  # handed to the caller's thread
            outcome["error"] = err

    thread = threading.Thread(target=check, name="balenas-storage-check", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise StorageError(f"storage {os.fspath(storage) if not isinstance(storage, Folder) else storage}: no answer "
                           f"within {timeout:g} s; check the address, the network and the credentials")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["run_dir"]


def prepare_run_dir(storage: str | os.PathLike | Folder, name: str, spec_text: str, *, resume: bool,
                    same_trials: Callable[[Folder], bool], kind: str = "sweep") -> Folder:
    """`<storage>/<name>`, holding `spec_text` as spec.yaml: refused if it exists (unless resuming); when
    resuming it must exist and `same_trials(stored spec file)` must hold (`.read_text()` reads it).
    `storage`: a path, a pyarrow filesystem URI or a `Folder`; a URI pyarrow cannot open is a ValueError, a folder
    that cannot be made a StorageError. `kind` ("sweep", "training") names the run in the messages.
    `check_storage` checks the same before Ray starts, without creating anything."""
    run_dir = location(storage) / name
    spec_path = run_dir / SPEC_FILE
    check_run_dir(run_dir, resume=resume, kind=kind)
    if resume:
        if not same_trials(spec_path):
            raise ValueError(f"--resume: the trials of this spec differ from the stored {spec_path}; "
                             f"resume with the same spec or start a {kind} with another name")
        return run_dir
    try:
        run_dir.mkdir()
        spec_path.write_text(spec_text)
    except OSError as err:
        raise StorageError(f"storage {run_dir.parent}: cannot create the run folder {run_dir} "
                           f"({_first_line(err)})") from None
    return run_dir


def check_address(address: str, timeout: float = 5.0) -> None:
    """A clear ConnectionError naming `address` when nothing answers there (before Ray waits and retries)."""
    if address in ("auto", "local"):
        return
    host_port = address.removeprefix("ray://")
    if "://" in host_port:
        raise ValueError(f"--address {address!r}: give the cluster's GCS address host:port (e.g. 10.0.0.1:6379) "
                         f"or 'auto'; a dashboard URL is for `ray job submit --address`")
    host, sep, port = host_port.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--address {address!r}: expected host:port, ray://host:port or 'auto'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise ConnectionError(f"--address {address}: no Ray cluster answers at {host}:{port} ({err})") from None


def _token_hint() -> str:
    mode = os.environ.get("RAY_AUTH_MODE", "unset")
    token = ("RAY_AUTH_TOKEN" if os.environ.get("RAY_AUTH_TOKEN") else
             "RAY_AUTH_TOKEN_PATH" if os.environ.get("RAY_AUTH_TOKEN_PATH") else
             "~/.ray/auth_token" if Path("~/.ray/auth_token").expanduser().is_file() else "none")
    return (f"a cluster with token authentication needs RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN, "
            f"RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token (this client: RAY_AUTH_MODE={mode}, token from {token})")


def joins_cluster(address: str | None = None) -> bool:
    """Whether `init_ray(address)` joins an existing cluster rather than starting a local Ray."""
    address = address or os.environ.get("RAY_ADDRESS")
    return bool(address) and address != "local"


def init_ray(address: str | None = None, *, num_cpus: int | None = None, temp_dir: str | None = None,
             **kwargs) -> bool:
    """Join a cluster (`address`, or $RAY_ADDRESS as set by `ray job submit`) or start an embedded local Ray.

    Token authentication stays as Ray configures it for clusters; only the embedded local instance (reachable
    from this machine only) is started with RAY_AUTH_MODE=disabled unless the user set it. Without an address
    the local instance is started explicitly (`address="local"`): a plain `ray.init()` would join whatever
    cluster was last started with `ray start` on this machine. Returns whether this call started Ray (and so
    should shut it down).
    """
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if joins_cluster(address):
        if num_cpus is not None or temp_dir is not None:
            log.warning("joining the cluster at %s: --num-cpus / --ray-temp-dir apply to a local Ray only", address)
        check_address(address)
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, ray.exceptions.AuthenticationError) as err:
            # something answers at the address (check_address), so a refusal is mostly the auth token
            raise ConnectionError(f"--address {address}: {str(err).strip().splitlines()[0]}; {_token_hint()}") from None
    else:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(address="local", num_cpus=num_cpus, _temp_dir=temp_dir, **kwargs)
    return True


def check_paths_on_cluster(paths: Mapping[str, str]) -> None:
    """Before any trial: each of `paths` ({spec field: path}) must exist on at least one alive node of the
    cluster Ray is connected to; a path on some nodes only gets a warning naming the others."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    paths = {k: str(v) for k, v in paths.items() if v}
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if not paths or not nodes:
        return
    probe = ray.remote(num_cpus=0)(_existing)
    found = ray.get([probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                     .remote(list(paths.values())) for n in nodes])
    for i, (field, path) in enumerate(paths.items()):
        where = [n["NodeManagerAddress"] + " " + n["NodeID"][:8] for n, ok in zip(nodes, found) if ok[i]]
        if not where:
            raise FileNotFoundError(f"{field} {path}: exists on none of the cluster's {len(nodes)} node(s); put it "
                                    f"on every worker (or a shared mount) before starting the sweep")
        if len(where) < len(nodes):
            log.warning("%s %s exists on %d of %d nodes only (%s): trials elsewhere will fail", field, path,
                        len(where), len(nodes), ", ".join(where))


def _existing(paths: list[str]) -> list[bool]:
    return [os.path.exists(p) for p in paths]


def ray_job_working_dir() -> Path | None:
    """This process's working directory when it is the entrypoint of `ray job submit --working-dir` (else None).

    That folder is Ray's unpacked copy of the upload. When several nodes share one session folder (nodes on
    one host), another node's runtime-env agent deletes and unpacks it again while the driver runs in it, so
    the driver's current directory stops existing (Tune then fails in os.getcwd with a bare [Errno 2]).
    """
    config = os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")
    if not config:
        return None
    try:
        working_dir = json.loads(config).get("runtime_env", {}).get("working_dir")
    except (ValueError, AttributeError):
        return None
    if not working_dir:
        return None
    try:
        return Path.cwd()
    except FileNotFoundError:
        return None


def leave_job_working_dir(storage: str | os.PathLike) -> None:
    """Under `ray job submit --working-dir`: refuse results inside the job's temporary copy, and move this
    process's current directory out of it (see `ray_job_working_dir`)."""
    job_dir = ray_job_working_dir()
    if job_dir is None:
        return
    if not is_uri(storage):
        resolved = Path(storage).expanduser().resolve()
        if resolved == job_dir or job_dir in resolved.parents:
            raise ValueError(f"storage {storage!s} lies inside this job's temporary copy of --working-dir "
                             f"({job_dir}); give --storage (or `storage:`) as an absolute folder or a URI "
                             f"outside it")
    os.chdir(tempfile.gettempdir())


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
