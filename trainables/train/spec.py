"""The final-training spec: one YAML file -> architectures x seeds -> one `TrainTrainable` trial each.

```yaml
name: nb201_final
protocol: nb201-12              # darts-cifar | darts-imagenet | nb201 | nb201-12
overrides: {epochs: 2}          # any protocol field (trainables/train/protocol.py)
dataset: cifar10                # one of the protocol's data sets (nb201: cifar10-valid, cifar10, cifar100, ...)
data_root: data/cifar10
architectures: ['|nor_conv_3x3~0|+|...|']   # strings in the space's syntax, or {arch: ..., label: ...}
from: {sweep: runs/quickstart, rule: proxy:naswot}   # or: each selected architecture of a search sweep
seeds: [0, 1]
resources: {cpu: 1, gpu: 0.5}   # as in search sweeps; also failure, checkpoint, max_concurrent_trials, storage
```

`from` reads the sweep's `selections` table and trains each distinct architecture the rule chose once (per
seed), remembering which search trials chose it (`selected_by`). `resolve_sources` turns it into the concrete
`architectures` list before the run starts, so the run folder's spec.yaml names exactly what was trained.
Every architecture is stored as its space's canonical string, and one architecture given several times (in any
spelling, listed or selected) is trained once (`merge_duplicates`, with a warning naming the entries).
Every problem is a `SpecError` naming the field and the bad value, found before Ray starts: protocol overrides
the space's network or the data set cannot take (`protocol_problems`), and in `check_train_paths` a benchmark
file that is not the space's benchmark table.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from search_spaces.space import DEFAULT_SPACE
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
from trainables.train.config import ExportFormat, TrainConfig

log = logging.getLogger(__name__)

_RULE = re.compile(r"^(argmax|(proxy|pareto):[A-Za-z0-9_]+|rank:[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)+)$")
SELECTIONS = "selections"


class TrainSpecError(SpecError):
    """A malformed training spec (a SpecError, so callers catch both kinds the same way)."""

    kind = "training spec"


class TrainPathError(PathError, TrainSpecError):
    """A training spec field whose file cannot serve on this machine (`PathError`)."""


#: where a model-level problem belongs, by the start of its message
_WHERE = (("arch ", "architectures.{i}"), ("unknown protocol field", "overrides"), ("protocol ", "overrides"),
          ("unknown protocol", "protocol"), ("dataset ", "dataset"), ("space ", "space"))


def _where(message: str, i: int) -> str:
    return next((loc.format(i=i) for start, loc in _WHERE if message.startswith(start)), TOP_LEVEL)


class ArchEntry(_Strict):
    """One architecture to train; `selected_by` lists the search trials whose rule chose it (from `from`)."""

    arch: str
    label: str | None = None
    selected_by: list[dict[str, Any]] = Field(default_factory=list)


class SweepSource(_Strict):
    """Architectures from a finished search sweep: the `rule`'s selection of each of its trials."""

    sweep: str
    rule: str = "argmax"

    @field_validator("rule")
    @classmethod
    def _rule(cls, v: str) -> str:
        if not _RULE.match(v):
            raise ValueError("a selection rule is 'argmax', 'proxy:<name>', 'rank:<a>+<b>' or 'pareto:<name>' (every "
                             "architecture on a budgeted trial's front)")
        return v


class TrainSpec(_Strict):
    """A validated training run. Paths are absolute strings after `load_train_spec`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: RunName
    protocol: str = "nb201"
    overrides: dict[str, Any] = Field(default_factory=dict)
    space: str | None = None
    dataset: str = "cifar10"
    data_root: str | None = None
    split_file: str | None = None
    download: bool = True  # fetch missing CIFAR-10/100 (false: air-gapped clusters)
    benchmark: str | None = None  # ground truth of the space's benchmark (default: its packaged table) -> bench_*
    architectures: list[ArchEntry] = Field(default_factory=list)
    source: SweepSource | None = Field(None, alias="from")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    device: str = "auto"
    amp: bool = False
    channels_last: bool = False
    resources: Resources = Field(default_factory=Resources)
    failure: Failure = Field(default_factory=Failure)
    checkpoint: Checkpointing = Field(default_factory=Checkpointing)
    max_concurrent_trials: int | None = Field(None, ge=1)
    storage: str | None = None
    #: files written beside each finished training's last checkpoint: "onnx" (model.onnx, checked in onnxruntime)
    export: list[ExportFormat] = Field(default_factory=list)

    @field_validator("export", mode="before")
    @classmethod
    def _export_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("export", mode="after")
    @classmethod
    def _export_installed(cls, v: list[str]) -> list[str]:
        if "onnx" in v:
            from search_spaces.onnx_export import OnnxUnavailable, require_onnx

            try:
                require_onnx()
            except OnnxUnavailable as err:
                raise ValueError(str(err)) from None
        return v

    @field_validator("architectures", mode="before")
    @classmethod
    def _entries(cls, v: Any) -> Any:
        """A string, or a genotype in a structured form (e.g. a DARTS compact list) passed on as JSON text
        for the space's `canonical` to parse."""
        if not isinstance(v, list):
            return v
        out = []
        for a in v:
            entry = dict(a) if isinstance(a, dict) else {"arch": a}
            if not isinstance(entry.get("arch"), str) and entry.get("arch") is not None:
                entry["arch"] = json.dumps(entry["arch"])
            out.append(entry)
        return out

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or any(s < 0 for s in v):
            raise ValueError("seeds must be unique non-negative integers")
        return v

    @model_validator(mode="after")
    def _some_architectures(self) -> TrainSpec:
        if not self.architectures and self.source is None:
            raise ValueError("give `architectures` or `from: {sweep, rule}` (or --from / --rule)")
        return self

    # ----- expansion -------------------------------------------------------------------------------------
    def train_config(self, arch: str, seed: int) -> dict[str, Any]:
        return {"arch": arch, "protocol": self.protocol, "overrides": dict(self.overrides), "space": self.space,
                "dataset": self.dataset, "data_root": self.data_root, "split_file": self.split_file,
                "seed": int(seed), "device": self.device, "amp": self.amp, "channels_last": self.channels_last,
                **({"export": list(dict.fromkeys(self.export))} if self.export else {})}

    def trials(self) -> list[dict[str, Any]]:
        """Every trial's config in a fixed order: architectures (spec order) x seeds."""
        out = []
        for i, entry in enumerate(self.architectures):
            for seed in self.seeds:
                label = f"{entry.label or f'arch{i:02d}'}/seed={seed}"
                out.append({"label": label, "arch": entry.arch, "seed": int(seed), "arch_label": entry.label,
                            "selected_by": entry.selected_by, "benchmark": self.benchmark,
                            "train": self.train_config(entry.arch, seed)})
        return out

    @property
    def epochs(self) -> int:
        return TrainConfig(**self.train_config(self.architectures[0].arch, 0)).resolved_protocol().epochs

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", by_alias=True), sort_keys=False)


# ----- --from: a search sweep's selections -------------------------------------------------------------------
def read_selections(sweep_dir: str | Path, rule: str) -> list[ArchEntry]:
    """The distinct architectures `rule` chose in the sweep at `sweep_dir`, each with the trials that chose it."""
    from trainables.runs import store

    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"from.sweep: no sweep folder at {sweep_dir}")
    try:
        table = store.read_table(sweep_dir, SELECTIONS)
    except FileNotFoundError:
        raise ValueError(f"from.sweep: {sweep_dir} has no selections table (run the sweep with a `proxies:` "
                         f"section, or `python platform/proxy_stage.py {sweep_dir}`)") from None
    if table.empty or "rule" not in table.columns:
        raise ValueError(f"from.sweep: the selections table of {sweep_dir} is empty")
    chosen = table[table["rule"] == rule]
    if chosen.empty:
        raise ValueError(f"from.rule={rule!r}: not a rule of {sweep_dir}'s selections; rules there: "
                         f"{', '.join(sorted(table['rule'].dropna().unique()))}")
    chosen = chosen[chosen["arch"].notna()]
    if chosen.empty:
        raise ValueError(f"from.rule={rule!r}: no trial of {sweep_dir} has an architecture for this rule")
    entries: dict[str, list[dict[str, Any]]] = {}
    for row in chosen.sort_values(["method", "seed", "trial_id"]).to_dict("records"):
        entries.setdefault(row["arch"], []).append(
            {"sweep": sweep_dir.name, "rule": rule, "method": row.get("method"), "search_seed": int(row["seed"]),
             "search_trial_id": str(row["trial_id"])})
    return [ArchEntry(arch=arch, selected_by=by) for arch, by in entries.items()]


def _sweep_space(sweep_dir: Path) -> str | None:
    path = sweep_dir / "spec.yaml"
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text())
    return data.get("space", DEFAULT_SPACE) if isinstance(data, dict) else None


def resolve_sources(spec: TrainSpec) -> TrainSpec:
    """`from` expanded into `architectures` (appended after any listed ones; `merge_duplicates` then merges an
    architecture listed and selected, in whatever spelling)."""
    if spec.source is None:
        return spec
    sweep_dir = Path(spec.source.sweep)
    found = read_selections(sweep_dir, spec.source.rule)
    sweep_space, train_space = _sweep_space(sweep_dir), spec.space or _protocol_space(spec)
    if sweep_space is not None and train_space is not None and sweep_space != train_space:
        raise ValueError(f"from.sweep: {sweep_dir} searched space {sweep_space!r}, but this training is in "
                         f"{train_space!r}")
    # an architecture both listed and selected (in any spelling) is merged into the listed entry by
    # `merge_duplicates`, which validate_train_spec runs next
    return spec.model_copy(update={"architectures": [*spec.architectures, *found]})


def _protocol_space(spec: TrainSpec) -> str | None:
    from trainables.train.protocol import PRESETS

    preset = PRESETS.get(spec.protocol)
    return spec.overrides.get("space", preset.space) if preset else None


# ----- loading and validation --------------------------------------------------------------------------------
def _benchmark_value(spec: TrainSpec, base: Path) -> str | None:
    """A packaged table's name as is, a path resolved; unset: the space's packaged table where one ships."""
    from search_spaces.benchmarks.registry import builtin_table, is_builtin_reference
    from search_spaces.space import available_spaces, get_space

    if "benchmark" not in spec.model_fields_set:
        space = spec.space or _protocol_space(spec)
        name = get_space(space).benchmark_name if space in available_spaces() else None
        return name if name is not None and builtin_table(name) is not None else None
    return spec.benchmark if is_builtin_reference(spec.benchmark) else resolve_path(spec.benchmark, base)


def validate_train_spec(data: Any, *, base_dir: Path | str = ".", source: str = "<spec>",
                        from_sweep: str | None = None, rule: str | None = None) -> TrainSpec:
    """A TrainSpec from parsed YAML (`--from`/`--rule` override its `from`), with `from` resolved into
    architectures and every trial's config checked by TrainConfig; a SpecError lists the problems."""
    if not isinstance(data, dict):
        raise TrainSpecError(source, [(TOP_LEVEL, f"a spec must be a mapping of keys, got {type(data).__name__}")])
    data = dict(data)
    base = Path(base_dir)
    if from_sweep is not None or rule is not None:
        src = dict(data.get("from") or {})
        if from_sweep is not None:
            src["sweep"] = str(Path(from_sweep).expanduser().resolve())
        if rule is not None:
            src["rule"] = rule
        data["from"] = src
    try:
        spec = TrainSpec.model_validate(data)
    except ValidationError as err:
        raise TrainSpecError(source, located(err)) from None
    benchmark_problem = _benchmark_problem(spec)  # the value as written (a packaged table's name, a path)
    spec = spec.model_copy(update={
        "data_root": resolve_path(spec.data_root, base), "split_file": resolve_path(spec.split_file, base),
        "benchmark": _benchmark_value(spec, base), "storage": resolve_path(spec.storage, base),
        "source": spec.source.model_copy(update={"sweep": resolve_path(spec.source.sweep, base)})
        if spec.source else None})
    try:
        spec = resolve_sources(spec)
    except (ValueError, FileNotFoundError) as err:
        raise TrainSpecError(source, [("from", str(err))]) from None
    problems = []
    for i, entry in enumerate(spec.architectures):
        try:
            TrainConfig(**spec.train_config(entry.arch, spec.seeds[0]))
        except ValidationError as err:
            for p in validation_problems(err):
                item = (p.path or _where(p.message, i), p.text)
                if item not in problems:
                    problems.append(item)
            if any(not p[0].startswith("architectures") for p in problems):
                break  # a protocol / data set problem: the same for every architecture
    resolved = _space_and_protocol(spec)
    if resolved is not None and not problems:
        problems += protocol_problems(spec, *resolved)
    if benchmark_problem:
        problems.append(("benchmark", benchmark_problem))
    device = spec.device
    if device.startswith("cuda") and spec.resources.gpu == 0:
        problems.append(("resources.gpu", f"is 0 but device is {device!r}: Ray would hide every GPU from the trial"))
    if problems:
        raise TrainSpecError(source, problems)
    if resolved is None:  # unreachable: TrainConfig reported an unknown protocol or space
        return spec
    from search_spaces.space import get_space

    space = get_space(resolved[0])
    n_listed = len(data.get("architectures") or [])
    return spec.model_copy(update={"architectures": merge_duplicates(spec.architectures, space.canonical,
                                                                     n_listed)})


def _space_and_protocol(spec: TrainSpec):
    """(space name, resolved protocol) of a spec, or None where the protocol or space is unknown (reported by
    TrainConfig)."""
    from search_spaces.space import available_spaces
    from trainables.train.protocol import resolve_protocol

    try:
        protocol = resolve_protocol(spec.protocol, spec.overrides)
    except ValueError:
        return None
    space = spec.space or protocol.space
    return (space, protocol) if space in available_spaces() else None


def _benchmark_problem(spec: TrainSpec) -> str | None:
    """What is wrong with the spec's `benchmark` for its space without reading a file (see `value_problem`)."""
    from search_spaces.benchmarks.registry import value_problem
    from search_spaces.space import get_space

    resolved = _space_and_protocol(spec)
    if resolved is None or "benchmark" not in spec.model_fields_set:
        return None
    return value_problem(get_space(resolved[0]).benchmark_name, spec.benchmark, resolved[0])


def protocol_problems(spec: TrainSpec, space_name: str, protocol) -> list[tuple[str, str]]:
    """What the trial would only find when it builds its network or reads its data: protocol `size` keys, `network`
    extras or `auxiliary` the space's network does not take (`space.sizes`, `space.network_extras`), and data sets
    or split names of `splits` that search_spaces.data does not have. Fields are named `overrides.<key>` (where the
    fix goes)."""
    from search_spaces.data.datasets import DATASETS, FOLDER_DATASETS
    from search_spaces.space import get_space
    from trainables.train.loop import network_keywords

    problems = []
    try:
        network_keywords(get_space(space_name), protocol)
    except ValueError as err:
        message = str(err)
        if message.startswith("protocol.size."):  # "protocol.size.<key>: <why>"
            where, _, why = message.partition(": ")
            problems.append(("overrides." + where.removeprefix("protocol."), why))
        else:  # "protocol network.<key>=<value>: ..." or "protocol auxiliary=True: ..."
            key = message.removeprefix("protocol ").split("=")[0]
            problems.append((f"overrides.{key}", message.removeprefix("protocol ")))
    for name, where in protocol.splits.items():
        field = f"overrides.splits.{name}"
        if where.data in DATASETS:
            known = list(DATASETS[where.data].splits)
        elif where.data in FOLDER_DATASETS:
            known = list(FOLDER_DATASETS[where.data].folders)
        else:
            problems.append((f"{field}.data", f"unknown data set; expected one of "
                                              f"{', '.join([*DATASETS, *FOLDER_DATASETS])} (got {where.data!r})"))
            continue
        for role, split in [("train", where.train), *((f"eval.{r}", v) for r, v in where.eval.items())]:
            if split not in known:
                problems.append((f"{field}.{role}", f"unknown split of data set {where.data!r}; its splits: "
                                                    f"{', '.join(known)} (got {split!r})"))
    return problems


def merge_duplicates(entries: list[ArchEntry], canonical, n_listed: int | None = None) -> list[ArchEntry]:
    """Each architecture once, as its space's canonical string (`canonical`): entries that are one architecture
    in different spellings (an NB201 string twice, a DARTS genotype as text, compact list or with a node's pairs
    swapped) merge into the first, which keeps its place, takes the first label given and the `selected_by` of all;
    a warning names the merged entries. `n_listed`: how many entries the spec listed (the others came from `from`).
    """
    merged: dict[str, ArchEntry] = {}
    positions: dict[str, list[int]] = {}
    for i, entry in enumerate(entries):
        key = canonical(entry.arch)
        first = merged.get(key)
        positions.setdefault(key, []).append(i)
        if first is None:
            merged[key] = entry.model_copy(update={"arch": key})
            continue
        by = [*first.selected_by, *(s for s in entry.selected_by if s not in first.selected_by)]
        merged[key] = first.model_copy(update={"selected_by": by, "label": first.label or entry.label})
    n_listed = len(entries) if n_listed is None else n_listed
    for key, where in positions.items():
        if len(where) > 1:
            names = [f"architectures.{i} ({entries[i].arch!r})" if i < n_listed else
                     f"from ({entries[i].arch!r}, selected by {len(entries[i].selected_by)} search trial(s))"
                     for i in where]
            labels = sorted({entries[i].label for i in where if entries[i].label})
            log.warning("%s are one architecture, %r: it is trained once per seed%s", ", ".join(names), key,
                        f" (label {merged[key].label!r} of {labels})" if len(labels) > 1 else "")
    return list(merged.values())


def load_train_spec(path: str | Path, *, from_sweep: str | None = None, rule: str | None = None,
                    check_paths: bool = True) -> TrainSpec:
    """Read and validate a training spec file (`--from` / `--rule` as in `validate_train_spec`)."""
    path = Path(path)
    data = read_spec_yaml(path, TrainSpecError)
    spec = validate_train_spec(data, base_dir=path.resolve().parent, source=str(path), from_sweep=from_sweep,
                               rule=rule)
    if check_paths:
        check_train_paths(spec)
    return spec


def check_train_paths(spec: TrainSpec) -> None:
    """FileNotFoundError naming the field and path for data missing on this machine; missing CIFAR data are
    downloaded first unless `spec.download` is off (download.DownloadError on failure); ImageNet's folders are
    checked (split and class folders, not every image) and never downloaded. The benchmark file is opened (large
    tables: their format and columns checked): one that is not the space's benchmark table is a TrainPathError
    naming `benchmark`, the path and the problem, before Ray starts rather than after the last epoch."""
    from search_spaces.benchmarks.registry import is_builtin_reference
    from search_spaces.data import prepare_dataset

    config = TrainConfig(**spec.train_config(spec.architectures[0].arch, spec.seeds[0]))
    protocol = config.resolved_protocol()
    if spec.dataset not in protocol.splits:
        raise TrainPathError("dataset", f"{spec.dataset!r}: protocol {protocol.name!r} has no splits for it")
    # the files first: a bad benchmark is found before a data set is downloaded
    if spec.benchmark is not None and not is_builtin_reference(spec.benchmark) and not Path(spec.benchmark).is_file():
        raise FileNotFoundError(f"benchmark: file not found: {spec.benchmark}")
    check_benchmark_file(config.space_name, spec.benchmark, TrainPathError)
    if spec.split_file is not None and not Path(spec.split_file).is_file():
        raise FileNotFoundError(f"split_file: file not found: {spec.split_file}")
    try:
        prepare_dataset(protocol.splits[spec.dataset].data, spec.data_root, download=spec.download)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"data_root ({spec.data_root or 'unset'}): {err}") from None

