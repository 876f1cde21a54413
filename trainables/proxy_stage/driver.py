"""The proxy stage of BaLeNAS-TF as Ray tasks and Parquet tables: schedules the pure steps of
`trainables.proxy_stage.selection` (sample, score, select) across the cluster and writes their rows.

Flow of `run_proxy_stage(run_dir, stage)`:
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
   `selections` table. A trial searched under a cost budget (its config's `cost`) selects among the samples
   within the budget, adds the `pareto:<name>` rules, and its rows in both tables carry `budget_metric`,
   `budget_source`, `budget`, `budget_cost` (the architecture's true cost from the budget's source) and
   `within_budget`; a rule with no candidate within the budget has no architecture and a `note`.

Both tables carry each architecture's cost columns (`search_spaces.costs.cost_columns` at the stage's network size
and data set): `cost_params_M` and `cost_flops_M`, counted in the scoring task on the network it built (the
argmax, when not among the samples, on the driver), and `cost_latency_<device>_ms` for `proxies.cost_devices`
(default: every device of the space's latency source) where the source has a figure (NB201: C=16, N=5 only).

`stage` (`trainables.proxy_stage.config.ProxyStage`) holds what the stage reads of the sweep, validated once by its
builder (the sweep driver from its `SweepSpec`, `balenas proxies` from the run folder's spec.yaml): space, dataset,
data_root, download, benchmark, the network size and the `proxies` section (`ProxySettings`: samples, names,
batch_size, seed, archs_per_task, data_split, resources, combine, max_in_flight, channels_last).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from search_spaces.costs import latency_columns
from search_spaces.space import get_space
from trainables.proxy_stage.config import ProxyStage
from trainables.proxy_stage.selection import (
    BudgetView,
    chunks,
    cost_devices,
    failed_rows,
    sample_trial,
    sampling_seed,
    score_architectures,
    select,
)
from trainables.search.budget import CostConstraint

log = logging.getLogger(__name__)

TRIAL_COLUMNS = ("trial_id", "method", "seed")
#: every cost column starts so (`search_spaces.costs.cost_columns`); the parameter count's says a row has costs
COST_PREFIX, PARAMS_COLUMN = "cost_", "cost_params_M"


# ----- work done inside Ray tasks ---------------------------------------------------------------------------
def task_device(gpu: float) -> torch.device:
    return torch.device("cuda") if gpu > 0 and torch.cuda.is_available() else torch.device("cpu")


# ----- the distributed score loop (shared with score_space) --------------------------------------------------
def default_in_flight(cpu: float, gpu: float) -> int:
    """Twice as many tasks as the cluster can run at once (keeps workers busy without flooding the queue)."""
    import ray

    res = ray.cluster_resources()
    slots = res.get("GPU", 0) / gpu if gpu > 0 else res.get("CPU", 1) / cpu
    return max(2, int(2 * max(slots, 1)))


def score_distributed(archs: Sequence[str], batch: tuple[torch.Tensor, torch.Tensor], names: Sequence[str], *,
                      on_rows: Callable[[list[dict[str, Any]]], None], archs_per_task: int, space: str,
                      num_classes: int = 10, size: Mapping[str, int] | None = None, seed: int = 0, cpu: float = 1.0,
                      gpu: float = 0.0, max_in_flight: int | None = None, progress: bool = True,
                      desc: str = "scoring", channels_last: bool = False, costs: bool = False) -> None:
    """Score `archs` in Ray tasks of `archs_per_task`; `on_rows` gets each finished task's rows (driver side).

    At most `max_in_flight` tasks are pending at once; a task that fails gives error rows for its
    architectures (reason in `<proxy>_error`) instead of stopping the stage. Ray must be initialised.

    Args:
        archs: architecture strings of `space` to score (each once).
        batch: the (inputs, targets) batch every proxy scores on, shared by all tasks (`ray.put` once).
        names: registered proxy names (`trainables.proxies.names()`).
        on_rows: called on the driver with each finished task's rows ({"arch", "node_id", <proxy>,
            <proxy>_error}).
        archs_per_task: architectures per Ray task.
        space: the registered space the architectures belong to.
        num_classes: classes of the scored networks' heads.
        size: the networks' size keywords (the space's `proxy_size` when None or for keys left out).
        seed: seeds every network's weights (a score is a function of the architecture alone).
        cpu: CPUs per task (Ray's num_cpus).
        gpu: GPUs per task (fractional allowed; 0: the task scores on the CPU).
        max_in_flight: most tasks pending at once (None: `default_in_flight`, twice the cluster's slots).
        progress: show a tqdm bar.
        desc: the bar's label.
        channels_last: score in the channels_last memory format.
        costs: add each network's `cost_params_M` and `cost_flops_M` to its row (counted in the task on the
            network it built, one extra forward of one image per architecture).
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
                ref = remote.remote(part, batch_ref, names, space, num_classes, dict(size or {}), seed, gpu,
                                    channels_last, costs)
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


def _score_task(archs, batch, names, space, num_classes, size, seed, gpu, channels_last, costs=False):
    import ray

    inputs, targets = batch
    rows = score_architectures(archs, inputs, targets, names, space=space, num_classes=num_classes, size=size,
                               seed=seed, device=task_device(gpu), channels_last=channels_last, costs=costs)
    node = ray.get_runtime_context().get_node_id()  # where each row was scored (spread across a cluster)
    return [{**row, "node_id": node} for row in rows]


# ----- storage ------------------------------------------------------------------------------------------------
def _write(run_dir: Path, table: str, df: pd.DataFrame, trial_id: str) -> None:
    from trainables.runs import store

    store.write_partition(run_dir, table, df, trial_id)


def _trials(run_dir: Path, trials: pd.DataFrame | None) -> pd.DataFrame:
    if trials is None:
        from trainables.runs import store

        trials = store.read_table(run_dir, "trials")
    missing = [c for c in (*TRIAL_COLUMNS, "checkpoint_path") if c not in trials.columns]
    if missing:
        raise ValueError(f"trials table lacks column(s) {', '.join(missing)}")
    if "status" in trials.columns:  # a failed trial (e.g. a diverged search) has no distribution worth sampling
        failed = trials["status"].astype(str).eq("ERROR")
        for r in trials[failed].to_dict("records"):
            log.warning("proxy stage: trial %s (%s, seed %s) skipped: status ERROR (%s)", r["trial_id"], r["method"],
                        r["seed"], r.get("error") or "no error recorded")
        trials = trials[~failed]
    usable = trials[trials["checkpoint_path"].notna() & (trials["checkpoint_path"].astype(str) != "")]
    skipped = sorted(set(trials["trial_id"].astype(str)) - set(usable["trial_id"].astype(str)))
    if skipped:
        log.warning("proxy stage: %d trial(s) without a checkpoint skipped: %s", len(skipped), ", ".join(skipped))
    return usable.reset_index(drop=True)


def _ground_truth(stage: ProxyStage) -> Callable[[str | None], dict[str, float]]:
    """arch -> its benchmark record (bench_* columns; empty when the sweep names no benchmark)."""
    if not stage.benchmark:
        return lambda arch: {}
    from search_spaces.benchmarks.registry import open_benchmark

    name = get_space(stage.space).benchmark_name
    if name is None:
        raise ValueError(f"space {stage.space!r} has no ground-truth benchmark, but spec.benchmark is set")
    bench = open_benchmark(name, stage.benchmark)
    return lambda arch: bench.record(arch) if arch is not None and arch in bench else {}


def _proxy_batch(stage: ProxyStage) -> tuple[torch.Tensor, torch.Tensor]:
    from trainables.proxies.batch import proxy_batch

    # data_root None: $BALENAS_DATA_ROOT, else the per-user cache (missing CIFAR data downloaded unless
    # the sweep says `download: false`)
    return proxy_batch(stage.dataset, stage.data_root, stage.proxies.batch_size, seed=None,
                       split=stage.proxies.data_split, download=stage.download)


# ----- the stage ------------------------------------------------------------------------------------------------
@dataclass
class _TrialState:
    info: dict[str, Any]
    samples: list[str]
    argmax: str
    waiting: set[str] = field(default_factory=set)
    likelihood: dict[str, float] = field(default_factory=dict)
    budget: CostConstraint | None = None


def trial_budget(row: Mapping[str, Any]) -> CostConstraint | None:
    """The cost budget a trial searched under (its stored search config's `cost`), or None."""
    raw = row.get("config_json")
    if not isinstance(raw, str) or not raw:
        return None
    cost = json.loads(raw).get("cost")
    if not cost:
        return None
    try:
        return CostConstraint.model_validate(cost)
    except ValueError as err:  # e.g. its measured LUT is not on this machine: select without the budget
        log.warning("proxy stage: trial %s: its cost budget cannot be evaluated here, selecting without it: %s",
                    row.get("trial_id"), str(err).replace("\n", " "))
        return None


def budget_columns(constraint: CostConstraint, source: str, cost: float | None) -> dict[str, Any]:
    """The budget columns of one architecture's row (see the module docstring); `cost` None for a rule that chose
    nothing (its row still says which budget it missed)."""
    value = math.nan if cost is None else float(cost)
    return {"budget_metric": constraint.metric, "budget_source": source, "budget": float(constraint.budget),
            "budget_cost": value, "within_budget": bool(value <= constraint.budget)}


def run_proxy_stage(run_dir: str | os.PathLike, stage: ProxyStage, trials: pd.DataFrame | None = None, *,
                    progress: bool = True) -> pd.DataFrame:
    """Sample, score, flush and select for every trial with a checkpoint; returns the `selections` rows.

    Ray must be initialised by the caller (the entry script starts a local one when none is running).

    Args:
        run_dir: the sweep's run folder (a path, a pyarrow filesystem URI or a `Folder`); the `samples` and
            `selections` tables are written there.
        stage: the validated settings (`ProxyStage`: space, data, benchmark, network size and the `proxies`
            section), built by `trainables.sweep.spec.proxy_stage` or `stored_proxy_stage`.
        trials: the trials to sample from (columns trial_id, method, seed, checkpoint_path; status); None reads the
            run folder's `trials` table. Trials with status ERROR (e.g. a diverged search), without a checkpoint,
            or whose stored distribution holds NaN or infinite values are skipped with a warning.
        progress: show a progress bar while scoring.
    """
    import ray

    from search_spaces.data.datasets import dataset_spec
    from trainables.runs.fsfolder import location

    run_dir = location(run_dir)  # a path, a pyarrow filesystem URI or a Folder
    cfg = stage.proxies
    table = _trials(run_dir, trials)
    bench = _ground_truth(stage)
    devices = cost_devices(stage.space, cfg.cost_devices)  # checked by ProxyStage.build already
    start = time.perf_counter()

    # 1. sample (one light task per trial)
    sample_remote = ray.remote(sample_trial).options(num_cpus=min(cfg.resources.cpu, 1.0))
    refs = {str(r.trial_id): sample_remote.remote(str(r.checkpoint_path), cfg.samples,
                                                  sampling_seed(cfg.seed, r.seed))
            for r in table.itertuples()}
    states: dict[str, _TrialState] = {}
    for r in table.to_dict("records"):
        got = ray.get(refs[str(r["trial_id"])])
        if got.get("error"):  # e.g. a diverged trial stored as finished by an older version
            log.warning("proxy stage: trial %s (%s, seed %s) skipped: %s", r["trial_id"], r["method"], r["seed"],
                        got["error"])
            continue
        info = {c: r[c] for c in TRIAL_COLUMNS}
        info["trial_id"] = str(info["trial_id"])
        states[info["trial_id"]] = _TrialState(info, got["samples"], got["argmax"], set(got["samples"]),
                                               got.get("likelihood", {}), trial_budget(r))

    # 2.-3. score distinct architectures; flush each trial as soon as all of its samples are scored
    scored: dict[str, dict[str, Any]] = {}
    selections: list[pd.DataFrame] = []
    cost_cache: dict[str, dict[str, Any]] = {}

    def cost_of(arch: str | None) -> dict[str, Any]:
        """The cost columns of a selected architecture: its scored row's, else (the argmax is not always among
        the samples; a failed scoring task) `cost_columns` on the driver, once per architecture."""
        if arch is None:
            return {}
        row = scored.get(arch, {})
        if pd.notna(row.get(PARAMS_COLUMN, float("nan"))):
            return {k: v for k, v in row.items() if k.startswith(COST_PREFIX)}
        if arch not in cost_cache:
            from search_spaces.costs import cost_columns

            try:
                cost_cache[arch] = cost_columns(stage.space, arch, stage.size, stage.dataset, devices)
            except (ValueError, RuntimeError) as err:
                log.warning("proxy stage: no cost columns for %s: %s", arch, err)
                cost_cache[arch] = latency_columns(stage.space, arch, stage.size, stage.dataset, devices)
        return cost_cache[arch]

    def budget_of(state: _TrialState) -> tuple[BudgetView | None, Callable[[str | None], dict[str, Any]]]:
        """The trial's budget for the rules, and an architecture's budget columns (none without a budget)."""
        if state.budget is None:
            return None, lambda arch: {}
        true_cost, source = state.budget.true_cost(stage.space, stage.dataset)
        costs = {a: float(true_cost(a)) for a in {*state.samples, state.argmax}}
        view = BudgetView(state.budget.budget, costs, state.likelihood)
        return view, lambda arch: budget_columns(state.budget, source, None if arch is None else costs[arch])

    def finish(state: _TrialState) -> None:
        view, columns = budget_of(state)
        rows = [{**state.info, "sample": i, "arch": a, **scored[a], **columns(a)} for i, a in enumerate(state.samples)]
        frame = pd.DataFrame(rows)
        _write(run_dir, "samples", frame.drop(columns=["trial_id"]), state.info["trial_id"])
        chosen = select(frame, cfg.names, cfg.rank_groups, argmax=state.argmax, budget=view)
        sel = pd.DataFrame([{**state.info, **c, **cost_of(c["arch"]), **columns(c["arch"]), **bench(c["arch"])}
                            for c in chosen])
        _write(run_dir, "selections", sel.drop(columns=["trial_id"]), state.info["trial_id"])
        selections.append(sel)

    def on_rows(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            scored[row["arch"]] = {**{k: v for k, v in row.items() if k != "arch"},
                                   **latency_columns(stage.space, row["arch"], stage.size, stage.dataset, devices)}
        for state in list(states.values()):
            if state.waiting:
                state.waiting -= scored.keys()
                if not state.waiting:
                    finish(state)

    distinct = sorted({a for s in states.values() for a in s.samples})
    if distinct:
        score_distributed(distinct, _proxy_batch(stage), cfg.names, on_rows=on_rows,
                          archs_per_task=cfg.archs_per_task, space=stage.space,
                          num_classes=dataset_spec(stage.dataset).num_classes, size=stage.size, seed=cfg.seed,
                          cpu=cfg.resources.cpu, gpu=cfg.resources.gpu, max_in_flight=cfg.max_in_flight,
                          progress=progress, channels_last=cfg.channels_last, desc="proxy stage", costs=True)
    log.info("proxy stage: %d trials, %d distinct architectures, %.1f s", len(states), len(distinct),
             time.perf_counter() - start)
    if not selections:
        return pd.DataFrame(columns=[*TRIAL_COLUMNS, "rule", "arch"])
    return pd.concat(selections, ignore_index=True)
