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
The search settings are checked by the search loop's own `SearchConfig` on every expanded trial, so a spec
and a single `run_search` accept exactly the same values.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from search_spaces.space import DEFAULT_SPACE, get_space
from trainables.methods import available_methods, get_method
from trainables.methods.params import list_valued
from trainables.proxy_config import ProxySettings
from trainables.search_config import SearchConfig, SpaceName

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _run_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError("must be 1-100 characters of letters, digits, '_', '-', '.' (it names a folder)")
    return v


#: A run's name (it names the results folder; shared by the sweep and the training spec).
RunName = Annotated[str, AfterValidator(_run_name)]
#: keys of the search loop's config that the spec sets per trial (so `search:` must not).
_PER_TRIAL_KEYS = frozenset({"space", "dataset", "data_root", "download", "split_file", "benchmark", "method",
                             "method_params", "seed"})
SEARCH_KEYS = tuple(k for k in SearchConfig.model_fields if k not in _PER_TRIAL_KEYS)

BENCHMARK_HINT = ("a ground-truth table with one row per architecture: `nb201` (the table shipped with the package), "
                  "NB201's merged CSV, or a Parquet converted once from the official NAS-Bench-201 file "
                  "(NAS-Bench-201-v1_1-096897.pth, https://github.com/D-X-Y/NAS-Bench-201) with `python -m "
                  "search_spaces.benchmarks convert NAS-Bench-201-v1_1-096897.pth nb201.parquet --trust-pickle`; "
                  "or leave `benchmark` out to search without ground truth")


class SpecError(ValueError):
    """A malformed sweep spec. `problems` holds (dotted field path, message) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = "\n".join(f"  {loc}: {msg}" for loc, msg in problems)
        super().__init__(f"invalid sweep spec {source}:\n{lines}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resources(_Strict):
    """Per trial. `gpu` may be fractional (several trials share one GPU), at most 1 (a search uses one device)."""

    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)

    @field_validator("gpu")
    @classmethod
    def _one_device(cls, v: float) -> float:
        if v > 1:
            raise ValueError("a search runs on one device: use at most 1 GPU per trial (a fraction such as "
                             "0.5 packs several trials on one GPU)")
        return v


class Failure(_Strict):
    """How often a failed trial is retried from its last checkpoint (-1: forever)."""

    max_failures: int = Field(2, ge=-1)


class Checkpointing(_Strict):
    """A checkpoint every `frequency` epochs (and at the end); the last `num_to_keep` are kept."""

    frequency: int = Field(1, ge=1)
    num_to_keep: int = Field(2, ge=1)


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

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("seeds must be unique")
        return v

    # ----- expansion -----------------------------------------------------------------------------------
    def trials(self) -> list[TrialSpec]:
        """Every trial in a fixed order: methods (spec order) x hyper-parameter grid x seeds."""
        out = []
        for method, params in self.methods.items():
            for hp in expand_grid(method, params):
                for seed in self.seeds:
                    out.append(TrialSpec(method=method, seed=seed, hp=hp, search=self.search_config(method, hp,
                                                                                                   seed)))
        return out

    def search_config(self, method: str, hp: Mapping[str, Any], seed: int) -> dict[str, Any]:
        """The `SearchRun` config of one trial."""
        return {"space": self.space, "dataset": self.dataset, "data_root": self.data_root, "download": self.download,
                "split_file": self.split_file, "benchmark": self.benchmark, "method": method,
                "method_params": dict(hp), "seed": int(seed), **self.search}

    @property
    def epochs(self) -> int:
        return int(self.search.get("epochs", SearchConfig.model_fields["epochs"].default))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


class TrialSpec(_Strict):
    """One trial: its method, seed, hyper-parameters (one point of the grid) and full search config."""

    method: str
    seed: int
    hp: dict[str, Any]
    search: dict[str, Any]

    @property
    def label(self) -> str:
        """Readable identity, e.g. `balenas[arch_lr=0.001]/seed=0`."""
        hp = ",".join(f"{k}={_short(v)}" for k, v in sorted(self.hp.items()))
        return f"{self.method}[{hp}]/seed={self.seed}" if hp else f"{self.method}/seed={self.seed}"

    def as_config(self) -> dict[str, Any]:
        """What the Trainable receives (Tune's `config["trial"]`)."""
        return {"label": self.label, "method": self.method, "seed": self.seed, "hp": self.hp,
                "search": self.search}


def _short(v: Any) -> str:
    return json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict)) else str(v)


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
def _loc(parts) -> str:
    return ".".join(str(p) for p in parts) or "(top level)"


def _pydantic_problems(err: ValidationError, prefix: tuple = ()) -> list[tuple[str, str]]:
    out = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] != "missing":
            msg += f" (got {e.get('input')!r})"
        out.append((_loc(prefix + tuple(e["loc"])), msg))
    return out


def _check_methods(spec: SweepSpec) -> list[tuple[str, str]]:
    """Unknown methods, then every point of each method's grid through the method's `Params` model."""
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
            for key, msg in cls.param_problems(hp):
                item = (f"{where}.{key}" if key != "(model)" else where, msg)
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
        try:
            SearchConfig(**trial.search)
        except ValidationError as err:
            for e in err.errors():
                key = e["loc"][0] if e["loc"] else None
                where = {"method_params": f"methods.{trial.method}", "dataset": "dataset", "space": "space",
                         "seed": "seeds", "method": f"methods.{trial.method}"}.get(key, f"search.{key}")
                if not e["loc"]:  # model-level check (e.g. w_lr_min > w_lr, unknown hyper-parameter)
                    where = "search"
                msg = e["msg"].removeprefix("Value error, ")
                item = (where, msg + (f" (got {e.get('input')!r})" if e["loc"] else ""))
                if item not in seen:
                    seen.add(item)
                    problems.append(item)
    return problems


def _check_consistency(spec: SweepSpec) -> list[tuple[str, str]]:
    problems = []
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


def resolve_path(value: str | None, base: Path) -> str | None:
    if value is None or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value):  # a URI (e.g. `storage: s3://...`) as is
        return value
    p = Path(value).expanduser()
    return str((p if p.is_absolute() else base / p).resolve())


def validate_spec(data: Any, *, base_dir: Path | str = ".", source: str = "<spec>") -> SweepSpec:
    """A SweepSpec from parsed YAML (`data`), paths resolved against `base_dir`; SpecError lists problems."""
    if not isinstance(data, dict):
        raise SpecError(source, [("(top level)", f"a spec must be a mapping of keys, got {type(data).__name__}")])
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(source, _pydantic_problems(err)) from None
    problems = _check_methods(spec)
    if not problems:
        problems = _check_search(spec)
    problems += _check_consistency(spec)
    if problems:
        raise SpecError(source, problems)
    base = Path(base_dir)
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
    if not path.is_file():
        raise FileNotFoundError(f"sweep spec not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SpecError(str(path), [("(yaml)", str(err))]) from None
    spec = validate_spec(data, base_dir=path.resolve().parent, source=str(path))
    if check_paths:
        check_spec_paths(spec)
    return spec


def check_spec_paths(spec: SweepSpec) -> None:
    """FileNotFoundError naming the spec field, the path and where to get the file, for data missing here;
    missing CIFAR data are downloaded first unless `spec.download` is off (download.DownloadError on failure).

    Skipped for cluster runs whose data exist only on the worker nodes (`--no-check-paths`).
    """
    from search_spaces.benchmarks.registry import is_builtin_reference
    from search_spaces.data import prepare_dataset

    try:
        prepare_dataset(spec.dataset, spec.data_root, download=spec.download)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"data_root ({spec.data_root or 'unset'}): {err}") from None
    if (spec.benchmark is not None and not is_builtin_reference(spec.benchmark)
            and not Path(spec.benchmark).is_file()):
        raise FileNotFoundError(f"benchmark: file not found: {spec.benchmark}; expected {BENCHMARK_HINT}")
    if spec.split_file is not None and not Path(spec.split_file).is_file():
        raise FileNotFoundError(f"split_file: file not found: {spec.split_file}; NB201's split files "
                                f"(e.g. cifar-split.txt) come with the NAS-Bench-201 release")
