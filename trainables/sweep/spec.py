"""The sweep spec: one YAML file validated (pydantic) before Ray starts, expanded into trial configs.

A spec names the search space, data set, methods with their hyper-parameters (a list value is a grid axis),
seeds, the search settings shared by all trials, per-trial resources, fault-tolerance and checkpoint settings,
and optionally the proxy stage. `load_spec(path)` returns a `SweepSpec` or raises `SpecError` (a ValueError)
whose message lists every bad field as a dotted path with the offending value, e.g.
`methods.balenas.arch_lrr: unknown hyper-parameter (got 0.001)`.

Relative paths in a spec resolve against the spec file's folder, so a spec can be run from any directory.
`data_root` is optional (each process resolves it: $BALENAS_DATA_ROOT, else the per-user cache, where missing
CIFAR data are downloaded unless `download: false`). `benchmark` may name a table shipped with the package
(`benchmark: nb201`); a space whose benchmark ships one uses it by default (`benchmark: null` turns it off).
Each method's hyper-parameters are checked once per point of its grid by the method's `Params` model (errors
name `methods.<method>.<name>`); the search settings are checked by the search loop's own `SearchConfig` on every
expanded trial (told that the hyper-parameters are already checked), so a spec and a single `run_search` accept
exactly the same values. `proxy_stage(spec)` gives the proxy stage its validated settings.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, Field, ValidationError, create_model, field_validator

from search_spaces.space import DEFAULT_SPACE, get_space
from trainables.methods import available_methods, get_method
from trainables.methods.params import list_valued
from trainables.proxy_stage.config import ProxySettings, ProxyStage
from trainables.runs.spec import (
    TOP_LEVEL,
    Checkpointing,
    Failure,
    PathError,
    Resources,
    RunName,
    SpecError,
    check_benchmark_file,
    located,
    read_spec_yaml,
    resolve_path,
    validation_problems,
)
from trainables.runs.spec import StrictModel as _Strict
from trainables.search.config import PARAMS_CHECKED, SearchConfig, SpaceName

__all__ = ["BENCHMARK_HINT", "SEARCH_KEYS", "Checkpointing", "Failure", "Resources", "RunName", "SpecError",
           "SpecPathError", "SweepSpec", "TrialSpec", "check_spec_paths", "expand_grid", "load_spec", "proxy_stage",
           "resolve_path", "stored_proxy_stage", "validate_spec"]

#: keys of the search loop's config that the spec sets per trial (so `search:` must not).
_PER_TRIAL_KEYS = frozenset({"space", "dataset", "data_root", "download", "split_file", "benchmark", "method",
                             "method_params", "seed"})
SEARCH_KEYS = tuple(k for k in SearchConfig.model_fields if k not in _PER_TRIAL_KEYS)

BENCHMARK_HINT = ("a ground-truth table with one row per architecture: `nb201` (the table shipped with the package), "
                  "NB201's merged CSV, or a Parquet converted once from the official NAS-Bench-201 file "
                  "(NAS-Bench-201-v1_1-096897.pth, https://github.com/D-X-Y/NAS-Bench-201) with `python -m "
                  "search_spaces.benchmarks convert NAS-Bench-201-v1_1-096897.pth nb201.parquet --trust-pickle`; "
                  "or leave `benchmark` out to search without ground truth")


class SpecPathError(PathError, SpecError):
    """A sweep spec field whose file cannot serve on this machine (`PathError`)."""


class SweepSpec(_Strict):
    """A validated sweep. Paths are absolute strings after `load_spec`."""

    name: RunName
    space: SpaceName = DEFAULT_SPACE
    dataset: str = "cifar10"
    data_root: str | None = None  # None: $BALENAS_DATA_ROOT, else the per-user cache (resolved by each process)
    download: bool = True  # fetch missing CIFAR-10/100 (false: air-gapped clusters)
    split_file: str | None = None
    benchmark: str | None = None
    methods: dict[str, dict[str, Any]] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    search: dict[str, Any] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    failure: Failure = Field(default_factory=Failure)
    checkpoint: Checkpointing = Field(default_factory=Checkpointing)
    max_concurrent_trials: int | None = Field(None, ge=1)
    storage: str | None = None  # default results folder (the CLI's --storage wins)
    proxies: ProxySettings | None = None
    #: a budget on the searched architecture's cost, for every trial (trainables/search/budget.py); a list value of
    #: `budget` (or `device`) is a grid axis, and a list of such blocks is one more axis (e.g. two devices)
    cost: dict[str, Any] | list[dict[str, Any]] | None = None

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("seeds must be unique")
        return v

    # ----- expansion -----------------------------------------------------------------------------------
    def trials(self) -> list[TrialSpec]:
        """Every trial in a fixed order: methods (spec order) x hyper-parameter grid x cost budgets x seeds."""
        out = []
        for method, params in self.methods.items():
            for hp in expand_grid(method, params):
                for cost in self.cost_points():
                    for seed in self.seeds:
                        out.append(TrialSpec(method=method, seed=seed, hp=hp, cost=cost,
                                             search=self.search_config(method, hp, seed, cost)))
        return out

    def cost_points(self) -> list[dict[str, Any] | None]:
        """The cost budgets of the grid (`[None]` without `cost`): each block of `cost` (one, or a list) expanded
        over its list-valued keys (`budget`, `device`), in key order."""
        if not self.cost:
            return [None]
        return [point for block in _cost_blocks(self.cost) for point in _expand_block(block)]

    def search_config(self, method: str, hp: Mapping[str, Any], seed: int,
                      cost: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The `SearchRun` config of one trial (`cost`: one point of `cost_points()`; default the first)."""
        cost = cost if cost is not None else self.cost_points()[0]
        return {"space": self.space, "dataset": self.dataset, "data_root": self.data_root, "download": self.download,
                "split_file": self.split_file, "benchmark": self.benchmark, "method": method,
                "method_params": dict(hp), "seed": int(seed), **({"cost": dict(cost)} if cost else {}),
                **self.search}

    @property
    def epochs(self) -> int:
        return int(self.search.get("epochs", SearchConfig.model_fields["epochs"].default))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


class TrialSpec(_Strict):
    """One trial: its method, seed, hyper-parameters (one point of the grid), cost budget and full search config."""

    method: str
    seed: int
    hp: dict[str, Any]
    search: dict[str, Any]
    cost: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        """Readable identity, e.g. `balenas[arch_lr=0.001]/seed=0` or `unas/latency:pixel3<=14/seed=0`."""
        hp = ",".join(f"{k}={_short(v)}" for k, v in sorted(self.hp.items()))
        name = f"{self.method}[{hp}]" if hp else self.method
        if self.cost:
            source = self.cost.get("device") or (Path(self.cost["lut"]).stem if self.cost.get("lut") else None)
            name += f"/{self.cost.get('metric')}{':' + source if source else ''}<={_short(self.cost.get('budget'))}"
        return f"{name}/seed={self.seed}"

    def as_config(self) -> dict[str, Any]:
        """What the Trainable receives (Tune's `config["trial"]`)."""
        return {"label": self.label, "method": self.method, "seed": self.seed, "hp": self.hp,
                "search": self.search}


def _short(v: Any) -> str:
    return json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict)) else str(v)


def _cost_blocks(cost: Mapping[str, Any] | list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return list(cost) if isinstance(cost, list) else [cost]


def _expand_block(block: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One `cost` block's grid: `budget` and `device` may be lists (axes, product in key order)."""
    axes = [[(k, x) for x in v] if k in _COST_AXES and isinstance(v, list) else [(k, v)] for k, v in block.items()]
    return [dict(point) for point in itertools.product(*axes)]


#: keys of a `cost` block that may be grid axes
_COST_AXES = ("budget", "device")


def _check_cost(spec: SweepSpec) -> list[tuple[str, str]]:
    """The shape of `cost` (blocks of keys; empty axes), before each trial's config checks its values."""
    if spec.cost is None:
        return []
    problems = []
    blocks = _cost_blocks(spec.cost)
    if not blocks:
        return [("cost", "an empty list: give a budget block, or leave `cost` out")]
    for i, block in enumerate(blocks):
        where = "cost" if isinstance(spec.cost, Mapping) else f"cost.{i}"
        for key in _COST_AXES:
            if isinstance(block.get(key), list) and not block[key]:
                problems.append((f"{where}.{key}", "an empty list is an empty grid axis"))
    return problems


def _resolve_cost_paths(cost: Any, base: Path) -> Any:
    """`cost.lut` (in each block) resolved against the spec's folder, as the spec's other paths."""
    if isinstance(cost, list):
        return [_resolve_cost_paths(block, base) for block in cost]
    if isinstance(cost, Mapping) and isinstance(cost.get("lut"), str):
        return {**cost, "lut": resolve_path(cost["lut"], base)}
    return cost


def expand_grid(method: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The grid of one method's hyper-parameters: every list value is an axis (product in key order).

    A hyper-parameter whose default is itself a list takes a list as a single value; give a list of lists to
    make such a hyper-parameter a grid axis.
    """
    listy = list_valued(get_method(method).Params)
    axes = []
    for key, value in params.items():
        is_axis = isinstance(value, list) and (key not in listy or all(isinstance(x, list) for x in value))
        axes.append([(key, v) for v in value] if is_axis else [(key, value)])
    return [dict(point) for point in itertools.product(*axes)]


# ----- loading and validation ------------------------------------------------------------------------------
def _check_methods(spec: SweepSpec) -> list[tuple[str, str]]:
    """Unknown methods, then every point of each method's grid through the method's `Params` model (the one check
    of a sweep's hyper-parameters; the trials' search configs are then checked with PARAMS_CHECKED)."""
    problems: list[tuple[str, str]] = []
    known = available_methods()
    for method, params in spec.methods.items():
        where = f"methods.{method}"
        if method not in known:
            problems.append((where, f"unknown method; available: {', '.join(known)}"))
            continue
        if not isinstance(params, dict):
            problems.append((where, f"hyper-parameters must be a mapping (got {params!r})"))
            continue
        empty = [k for k, v in params.items() if isinstance(v, list) and not v]
        if empty:
            problems += [(f"{where}.{k}", "an empty list is an empty grid axis") for k in empty]
            continue
        cls = get_method(method)
        for hp in expand_grid(method, params):
            for key, msg in cls.check_params(hp)[1]:
                item = (f"{where}.{key}" if key else where, msg)
                if item not in problems:
                    problems.append(item)
    return problems


def _check_search(spec: SweepSpec) -> list[tuple[str, str]]:
    """Unknown `search` keys, then the full search config of every trial through SearchConfig."""
    problems = []
    space = get_space(spec.space)
    for key in spec.search:
        if key in _PER_TRIAL_KEYS:
            problems.append((f"search.{key}", f"is set by the spec's top level / methods / seeds, not in search "
                                              f"(got {spec.search[key]!r})"))
        elif key not in SEARCH_KEYS and key not in space.search_size:
            problems.append((f"search.{key}", f"unknown search setting (got {spec.search[key]!r}); allowed: "
                                              f"{', '.join(SEARCH_KEYS)} and space {spec.space!r}'s size keys "
                                              f"{', '.join(space.search_size) or '(none)'}"))
    for key in space.search_size:
        if key in spec.search:
            try:
                space.sizes("search", {key: spec.search[key]})
            except ValueError as err:
                problems.append((f"search.{key}", str(err).partition(": ")[2]))
    if problems:
        return problems
    seen = set()
    for trial in spec.trials():
        try:  # the method's hyper-parameters were checked by _check_methods
            SearchConfig.model_validate(trial.search, context=PARAMS_CHECKED)
        except ValidationError as err:
            for p in validation_problems(err):
                key = p.loc[0] if p.loc else None  # None: a model-level check (e.g. w_lr_min > w_lr)
                where = {"method_params": f"methods.{trial.method}", "dataset": "dataset", "space": "space",
                         "seed": "seeds", "method": f"methods.{trial.method}", "cost": p.path,
                         None: "search"}.get(key, f"search.{key}")
                text = p.text
                if key is None and text.startswith("cost."):  # a check of the cost block against the space
                    where, _, text = text.partition(": ")
                item = (where, text)
                if item not in seen:
                    seen.add(item)
                    problems.append(item)
    return problems


def _check_consistency(spec: SweepSpec) -> list[tuple[str, str]]:
    from search_spaces.benchmarks.registry import value_problem

    problem = value_problem(get_space(spec.space).benchmark_name, spec.benchmark, spec.space)
    problems = [("benchmark", problem)] if problem else []
    device = str(spec.search.get("device", "auto"))
    if device.startswith("cuda") and spec.resources.gpu == 0:
        problems.append(("resources.gpu", f"is 0 but search.device is {device!r}: Ray would hide every GPU "
                                          f"from the trial"))
    if spec.proxies is not None:
        try:  # the network size keys belong to the space
            spec.proxies.size(spec.space)
        except ValueError as err:
            loc, _, msg = str(err).partition(": ")
            problems.append((loc, msg))
    return problems


def validate_spec(data: Any, *, base_dir: Path | str = ".", source: str = "<spec>") -> SweepSpec:
    """A SweepSpec from parsed YAML (`data`), paths resolved against `base_dir`; SpecError lists problems."""
    if not isinstance(data, dict):
        raise SpecError(source, [(TOP_LEVEL, f"a spec must be a mapping of keys, got {type(data).__name__}")])
    base = Path(base_dir)
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(source, located(err)) from None
    spec = spec.model_copy(update={"cost": _resolve_cost_paths(spec.cost, base)})
    problems = _check_methods(spec) + _check_cost(spec)
    if not problems:
        problems = _check_search(spec)
    problems += _check_consistency(spec)
    if problems:
        raise SpecError(source, problems)
    return spec.model_copy(update={
        "data_root": resolve_path(spec.data_root, base), "split_file": resolve_path(spec.split_file, base),
        "benchmark": _benchmark_value(spec, base), "storage": resolve_path(spec.storage, base)})


def _benchmark_value(spec: SweepSpec, base: Path) -> str | None:
    """A packaged table's name as is, a path resolved; unset: the space's packaged table where one ships."""
    from search_spaces.benchmarks.registry import builtin_table, is_builtin_reference

    if "benchmark" not in spec.model_fields_set:
        name = get_space(spec.space).benchmark_name
        return name if name is not None and builtin_table(name) is not None else None
    return spec.benchmark if is_builtin_reference(spec.benchmark) else resolve_path(spec.benchmark, base)


def load_spec(path: str | Path, *, check_paths: bool = True) -> SweepSpec:
    """Read, validate and (with `check_paths`) check that the data and benchmark files exist here."""
    path = Path(path)
    data = read_spec_yaml(path, SpecError)
    spec = validate_spec(data, base_dir=path.resolve().parent, source=str(path))
    if check_paths:
        check_spec_paths(spec)
    return spec


# ----- the proxy stage's settings ---------------------------------------------------------------------------
#: the keys of a sweep the proxy stage reads
_STAGE_KEYS = ("space", "dataset", "data_root", "download", "benchmark", "proxies")
#: those keys of a stored spec.yaml, validated by SweepSpec's own fields (their checks and defaults)
_StoredStage = create_model("_StoredStage", __config__=ConfigDict(extra="ignore"),
                            **{k: (SweepSpec.model_fields[k].annotation, SweepSpec.model_fields[k])
                               for k in _STAGE_KEYS})


def proxy_stage(spec: SweepSpec, **overrides: Any) -> ProxyStage:
    """The proxy stage of a validated sweep; `overrides` (None = keep) replace keys of its `proxies` section (the
    section's defaults where the spec has none)."""
    return ProxyStage.build(**{k: getattr(spec, k) for k in _STAGE_KEYS}, **overrides)


def stored_proxy_stage(data: Mapping[str, Any], *, source: str = "<spec>", **overrides: Any) -> ProxyStage:
    """The proxy stage of a run folder's spec.yaml (`data`, as parsed): the keys the stage reads, validated by the
    sweep spec's own fields (a key left out takes its default), with `overrides` as in `proxy_stage`; a SpecError
    (or a ValueError naming `proxies.<path>` for an override) lists the problems."""
    if not isinstance(data, Mapping):
        raise SpecError(source, [(TOP_LEVEL, f"a spec must be a mapping of keys, got {type(data).__name__}")])
    try:
        stored = _StoredStage.model_validate({k: data[k] for k in _STAGE_KEYS if k in data})
    except ValidationError as err:
        raise SpecError(source, located(err)) from None
    return ProxyStage.build(**{k: getattr(stored, k) for k in _STAGE_KEYS}, **overrides)



def check_spec_paths(spec: SweepSpec) -> None:
    """FileNotFoundError naming the spec field, the path and where to get the file, for data missing here;
    missing CIFAR data are downloaded first unless `spec.download` is off (download.DownloadError on failure).
    The benchmark file is opened (large tables: their format and columns checked), so a file that is not the
    space's benchmark table is a `SpecPathError` naming `benchmark`, the path and the problem, not a failure in
    every trial.

    Skipped for cluster runs whose data exist only on the worker nodes (`--no-check-paths`).
    """
    from search_spaces.benchmarks.registry import is_builtin_reference
    from search_spaces.data import prepare_dataset

    # the files first: a bad benchmark is found before a data set is downloaded
    if (spec.benchmark is not None and not is_builtin_reference(spec.benchmark)
            and not Path(spec.benchmark).is_file()):
        raise FileNotFoundError(f"benchmark: file not found: {spec.benchmark}; expected {BENCHMARK_HINT}")
    check_benchmark_file(spec.space, spec.benchmark, SpecPathError)
    if spec.split_file is not None and not Path(spec.split_file).is_file():
        raise FileNotFoundError(f"split_file: file not found: {spec.split_file}; NB201's split files "
                                f"(e.g. cifar-split.txt) come with the NAS-Bench-201 release")
    try:
        prepare_dataset(spec.dataset, spec.data_root, download=spec.download)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"data_root ({spec.data_root or 'unset'}): {err}") from None
