"""The proxy stage of BaLeNAS-TF as Ray tasks: sample architectures, score them, select, flush to Parquet.

Flow of `run_proxy_stage(run_dir, spec)`:
1. sample: one small task per trial loads the trial's final distribution (its last checkpoint), draws
   `proxies.samples` architectures (seeded by `proxies.seed` and the trial's seed) and its most likely
   architecture.
2. score: the distinct architectures of all trials are scored once each (a proxy score is a function of the
   architecture alone: every network is built with weights seeded by `proxies.seed`, every score uses the
   same data batch), in tasks of `archs_per_task` architectures with the spec's per-task resources; results
   are gathered with `ray.wait` in waves, so only a bounded number of tasks is in flight.
3. flush: as soon as every architecture of a trial is scored, the trial's rows go to the `samples` table
   (one keyed, atomic Parquet partition per trial: `<proxy>` and `<proxy>_error` columns).
4. select: per trial, the rules `argmax`, `proxy:<name>` (best among the samples by one proxy) and
   `rank:<a>+<b>` (best sum of ranks) pick an architecture; its ground truth (`bench_*`) joins it in the
   `selections` table.

Spec keys (the sweep's spec.yaml as a dict): space, dataset, data_root, split_file, benchmark, and
proxies: {samples, names, batch_size, seed, archs_per_task, data_split, C, N, resources: {cpu, gpu},
combine: [[a, b], ...], max_in_flight, channels_last}. Higher is better for every proxy (all are defined that way).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from trainables import proxies

log = logging.getLogger(__name__)

TRIAL_COLUMNS = ("trial_id", "method", "seed")


# ----- configuration --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProxyStageConfig:
    """The proxy stage's settings, from the spec's `proxies` section (defaults as in the spec model)."""

    samples: int = 100
    names: tuple[str, ...] = ("naswot",)
    batch_size: int = 64
    seed: int = 0
    archs_per_task: int = 100
    data_split: str = "train"
    C: int = 16
    N: int = 5
    cpu: float = 1.0
    gpu: float = 0.0
    combine: tuple[tuple[str, ...], ...] = ()
    max_in_flight: int | None = None
    channels_last: bool = False
    space: str = "nb201"
    dataset: str = "cifar10"
    data_root: str | None = None  # None: $BALENAS_DATA_ROOT, else the per-user cache
    split_file: str | None = None
    benchmark: str | None = None
    download: bool = True  # fetch missing CIFAR data (spec `download`)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], **overrides: Any) -> ProxyStageConfig:
        section = dict(spec.get("proxies") or {})
        section.update({k: v for k, v in overrides.items() if v is not None})
        resources = dict(section.pop("resources", None) or {})
        unknown = set(resources) - {"cpu", "gpu"}
        if unknown:
            raise ValueError(f"proxies.resources: unknown key(s) {', '.join(sorted(unknown))}; allowed: cpu, gpu")
        names = tuple(proxies.validate_names(section.pop("names", cls.names)))
        combine = section.pop("combine", None)
        combine = tuple(tuple(c) for c in combine) if combine is not None else ((names,) if len(names) > 1 else ())
        for group in combine:
            bad = [n for n in group if n not in names]
            if len(group) < 2 or bad:
                raise ValueError(f"proxies.combine: {list(group)} must name at least two of the scored proxies "
                                 f"{list(names)}" + (f" (not scored: {bad})" if bad else ""))
        known = {f for f in cls.__dataclass_fields__} - {"names", "combine", "cpu", "gpu"}
        extra = set(section) - known
        if extra:
            raise ValueError(f"proxies: unknown key(s) {', '.join(sorted(extra))}")
        values = {k: v for k, v in section.items() if v is not None}
        cfg = cls(names=names, combine=combine, cpu=float(resources.get("cpu", 1.0)),
                  gpu=float(resources.get("gpu", 0.0)), space=spec.get("space", "nb201"),
                  dataset=spec.get("dataset", "cifar10"), data_root=spec.get("data_root"),
                  split_file=spec.get("split_file"), benchmark=spec.get("benchmark"),
                  download=bool(spec.get("download", True)), **values)
        for name in ("samples", "batch_size", "archs_per_task", "C", "N"):
            if int(getattr(cfg, name)) < 1:
                raise ValueError(f"proxies.{name} must be >= 1, got {getattr(cfg, name)!r}")
        if cfg.cpu <= 0 or cfg.gpu < 0:
            raise ValueError(f"proxies.resources must have cpu > 0 and gpu >= 0, got cpu={cfg.cpu}, gpu={cfg.gpu}")
        return cfg

    @property
    def num_classes(self) -> int:
        from search_spaces.data.datasets import dataset_spec

        return dataset_spec(self.dataset).num_classes

    def load_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        from trainables.proxies.batch import proxy_batch

        return proxy_batch(self.dataset, self.data_root, self.batch_size, seed=None, split=self.data_split,
                           download=self.download)


# ----- work done inside Ray tasks ---------------------------------------------------------------------------
def task_device(gpu: float) -> torch.device:
    return torch.device("cuda") if gpu > 0 and torch.cuda.is_available() else torch.device("cpu")


def score_architectures(archs: Sequence[str], inputs: torch.Tensor, targets: torch.Tensor, names: Sequence[str],
                        *, space: str = "nb201", num_classes: int = 10, C: int = 16, N: int = 5, seed: int = 0,
                        device: torch.device | str = "cpu", channels_last: bool = False) -> list[dict[str, Any]]:
    """One row per architecture: `arch` plus `<proxy>` / `<proxy>_error`. Each network is built with weights
    seeded by `seed`, scored, and freed before the next one (flat memory). `channels_last` runs networks and
    inputs in NHWC memory layout (1.4x faster NASWOT on the project's CPU at batch 64; same scores up to
    float rounding)."""
    from search_spaces.space import get_space

    sp = get_space(space)
    device = torch.device(device)
    inputs, targets = inputs.to(device), targets.to(device)
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    rows = []
    for arch in archs:
        try:
            torch.manual_seed(seed)
            net = sp.network(arch, num_classes=num_classes, C=C, N=N).to(device)
            if channels_last:
                net = net.to(memory_format=torch.channels_last)
        except (ValueError, RuntimeError) as e:
            reason = f"cannot build network: {type(e).__name__}: {e}"
            rows.append({"arch": arch, **proxies.to_row({n: proxies.ProxyError(reason) for n in names})})
            continue
        rows.append({"arch": arch, **proxies.to_row(proxies.score(net, inputs, targets, names, seed=seed))})
        del net
    return rows


def checkpoint_file(path: str | os.PathLike) -> Path:
    """A trial's checkpoint: the SearchRun file itself, or a Tune checkpoint folder holding it."""
    p = Path(path)
    if not p.is_dir():
        return p
    from trainables.trainable import CHECKPOINT_FILE  # only here: it imports Ray Tune

    return p / CHECKPOINT_FILE


def sampling_seed(stage_seed: int, trial_seed: int) -> int:
    """The seed of one trial's architecture draws: independent across the trials' own seeds (so repeated
    runs of a method are independent samples) and reproducible from `proxies.seed`."""
    return int(stage_seed) * 1_000_003 + int(trial_seed)


def sample_trial(checkpoint_path: str, k: int, seed: int) -> dict[str, Any]:
    """The trial's final distribution: k sampled architectures and the most likely one."""
    from trainables.search import load_distribution

    dist, _ = load_distribution(checkpoint_file(checkpoint_path), device="cpu")
    return {"samples": dist.sample(int(k), seed=int(seed)), "argmax": dist.most_likely()}


# ----- the distributed score loop (shared with score_space) --------------------------------------------------
def chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def failed_rows(archs: Sequence[str], names: Sequence[str], reason: str) -> list[dict[str, Any]]:
    return [{"arch": a, **proxies.to_row({n: proxies.ProxyError(reason) for n in names})} for a in archs]


def default_in_flight(cpu: float, gpu: float) -> int:
    """Twice as many tasks as the cluster can run at once (keeps workers busy without flooding the queue)."""
    import ray

    res = ray.cluster_resources()
    slots = res.get("GPU", 0) / gpu if gpu > 0 else res.get("CPU", 1) / cpu
    return max(2, int(2 * max(slots, 1)))


def score_distributed(archs: Sequence[str], batch: tuple[torch.Tensor, torch.Tensor], names: Sequence[str], *,
                      on_rows: Callable[[list[dict[str, Any]]], None], archs_per_task: int, space: str = "nb201",
                      num_classes: int = 10, C: int = 16, N: int = 5, seed: int = 0, cpu: float = 1.0,
                      gpu: float = 0.0, max_in_flight: int | None = None, progress: bool = True,
                      desc: str = "scoring", channels_last: bool = False) -> None:
    """Score `archs` in Ray tasks of `archs_per_task`; `on_rows` gets each finished task's rows (driver side).

    At most `max_in_flight` tasks are pending at once; a task that fails gives error rows for its
    architectures (reason in `<proxy>_error`) instead of stopping the stage.
    """
    import ray
    from tqdm.auto import tqdm

    names = list(names)
    remote = ray.remote(_score_task).options(num_cpus=cpu, num_gpus=gpu)
    batch_ref = ray.put(batch)
    work = list(chunks(list(archs), int(archs_per_task)))
    limit = max_in_flight or default_in_flight(cpu, gpu)
    pending: dict[Any, list[str]] = {}
    bar = tqdm(total=len(archs), desc=desc, unit="arch", disable=not progress)
    try:
        while work or pending:
            while work and len(pending) < limit:
                part = work.pop(0)
                ref = remote.remote(part, batch_ref, names, space, num_classes, C, N, seed, gpu, channels_last)
                pending[ref] = part
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                part = pending.pop(ref)
                try:
                    rows = ray.get(ref)
                except (ray.exceptions.RayError, RuntimeError) as e:
                    log.warning("a scoring task for %d architectures failed: %s", len(part), e)
                    rows = failed_rows(part, names, f"task failed: {type(e).__name__}: {str(e)[:300]}")
                on_rows(rows)
                bar.update(len(part))
    finally:
        bar.close()
        for ref in pending:
            ray.cancel(ref)


def _score_task(archs, batch, names, space, num_classes, C, N, seed, gpu, channels_last):
    inputs, targets = batch
    return score_architectures(archs, inputs, targets, names, space=space, num_classes=num_classes, C=C, N=N,
                               seed=seed, device=task_device(gpu), channels_last=channels_last)


# ----- selection rules ----------------------------------------------------------------------------------------
def rank_sum(frame: pd.DataFrame, names: Sequence[str]) -> pd.Series:
    """Sum over `names` of each row's rank (1 = lowest value, ties averaged); rows with a failed proxy get NaN."""
    values = frame[list(names)].astype(float)
    ok = values.notna().all(axis=1)
    ranks = values[ok].rank(axis=0, method="average")
    out = pd.Series(math.nan, index=frame.index)
    out[ok] = ranks.sum(axis=1)
    return out


def select(scores: pd.DataFrame, names: Sequence[str], combine: Sequence[Sequence[str]] = (),
           argmax: str | None = None) -> list[dict[str, str | None]]:
    """Selection rules over one trial's scored samples (`arch` + proxy columns; NaN/None = failed).

    `proxy:<name>`: the architecture with the highest value (first in sample order on ties);
    `rank:<a>+<b>`: the highest sum of ranks over those proxies, among architectures scored by all of them;
    `argmax`: the distribution's most likely architecture (given). A rule with no valid candidate gives None.
    """
    distinct = scores.drop_duplicates("arch").reset_index(drop=True)
    rows: list[dict[str, str | None]] = []
    if argmax is not None:
        rows.append({"rule": "argmax", "arch": argmax})
    for name in names:
        values = distinct[name].astype(float)
        rows.append({"rule": f"proxy:{name}", "arch": None if values.isna().all() else distinct.arch[values.idxmax()]})
    for group in combine:
        total = rank_sum(distinct, group)
        rows.append({"rule": "rank:" + "+".join(group),
                     "arch": None if total.isna().all() else distinct.arch[total.idxmax()]})
    return rows


# ----- storage ------------------------------------------------------------------------------------------------
def _write(run_dir: Path, table: str, df: pd.DataFrame, trial_id: str) -> None:
    from analysis import store

    store.write_partition(run_dir, table, df, trial_id)


def _trials(run_dir: Path, trials: pd.DataFrame | None) -> pd.DataFrame:
    if trials is None:
        from analysis import store

        trials = store.read_table(run_dir, "trials")
    missing = [c for c in (*TRIAL_COLUMNS, "checkpoint_path") if c not in trials.columns]
    if missing:
        raise ValueError(f"trials table lacks column(s) {', '.join(missing)}")
    usable = trials[trials["checkpoint_path"].notna() & (trials["checkpoint_path"].astype(str) != "")]
    skipped = sorted(set(trials["trial_id"].astype(str)) - set(usable["trial_id"].astype(str)))
    if skipped:
        log.warning("proxy stage: %d trial(s) without a checkpoint skipped: %s", len(skipped), ", ".join(skipped))
    return usable.reset_index(drop=True)


def _bench_columns(cfg: ProxyStageConfig):
    """arch -> dict of bench_* columns (empty when the spec names no benchmark)."""
    if not cfg.benchmark:
        return lambda arch: {}
    from search_spaces.benchmarks.registry import open_benchmark
    from search_spaces.space import get_space

    name = get_space(cfg.space).benchmark_name
    if name is None:
        raise ValueError(f"space {cfg.space!r} has no ground-truth benchmark, but spec.benchmark is set")
    bench = open_benchmark(name, cfg.benchmark)
    return lambda arch: bench.record(arch) if arch is not None and arch in bench else {}


# ----- the stage ------------------------------------------------------------------------------------------------
@dataclass
class _TrialState:
    info: dict[str, Any]
    samples: list[str]
    argmax: str
    waiting: set[str] = field(default_factory=set)


def run_proxy_stage(run_dir: str | os.PathLike, spec: Mapping[str, Any], trials: pd.DataFrame | None = None, *,
                    progress: bool = True, **overrides: Any) -> pd.DataFrame:
    """Sample, score, flush and select for every trial with a checkpoint; returns the `selections` rows.

    `overrides` replace keys of the spec's `proxies` section (e.g. samples=..., names=[...]). Ray must be
    initialised by the caller (the entry script starts a local one when none is running).
    """
    import ray

    run_dir = Path(run_dir)
    cfg = ProxyStageConfig.from_spec(spec, **overrides)
    table = _trials(run_dir, trials)
    bench = _bench_columns(cfg)
    start = time.perf_counter()

    # 1. sample (one light task per trial)
    sample_remote = ray.remote(sample_trial).options(num_cpus=min(cfg.cpu, 1.0))
    refs = {str(r.trial_id): sample_remote.remote(str(r.checkpoint_path), cfg.samples,
                                                  sampling_seed(cfg.seed, r.seed))
            for r in table.itertuples()}
    states: dict[str, _TrialState] = {}
    for r in table.to_dict("records"):
        got = ray.get(refs[str(r["trial_id"])])
        info = {c: r[c] for c in TRIAL_COLUMNS}
        info["trial_id"] = str(info["trial_id"])
        states[info["trial_id"]] = _TrialState(info, got["samples"], got["argmax"], set(got["samples"]))

    # 2.-3. score distinct architectures; flush each trial as soon as all of its samples are scored
    scored: dict[str, dict[str, Any]] = {}
    selections: list[pd.DataFrame] = []

    def finish(state: _TrialState) -> None:
        rows = [{**state.info, "sample": i, "arch": a, **scored[a]} for i, a in enumerate(state.samples)]
        frame = pd.DataFrame(rows)
        _write(run_dir, "samples", frame.drop(columns=["trial_id"]), state.info["trial_id"])
        chosen = select(frame, cfg.names, cfg.combine, argmax=state.argmax)
        sel = pd.DataFrame([{**state.info, **c, **bench(c["arch"])} for c in chosen])
        _write(run_dir, "selections", sel.drop(columns=["trial_id"]), state.info["trial_id"])
        selections.append(sel)

    def on_rows(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            scored[row["arch"]] = {k: v for k, v in row.items() if k != "arch"}
        for state in list(states.values()):
            if state.waiting:
                state.waiting -= scored.keys()
                if not state.waiting:
                    finish(state)

    distinct = sorted({a for s in states.values() for a in s.samples})
    if distinct:
        score_distributed(distinct, cfg.load_batch(), cfg.names, on_rows=on_rows, archs_per_task=cfg.archs_per_task,
                          space=cfg.space, num_classes=cfg.num_classes, C=cfg.C, N=cfg.N, seed=cfg.seed,
                          cpu=cfg.cpu, gpu=cfg.gpu, max_in_flight=cfg.max_in_flight, progress=progress,
                          channels_last=cfg.channels_last,
                          desc="proxy stage")
    log.info("proxy stage: %d trials, %d distinct architectures, %.1f s", len(states), len(distinct),
             time.perf_counter() - start)
    if not selections:
        return pd.DataFrame(columns=[*TRIAL_COLUMNS, "rule", "arch"])
    return pd.concat(selections, ignore_index=True)
