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
Every problem is a `SpecError` naming the field and the bad value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from trainables.runs.spec import (
    TOP_LEVEL,
    Checkpointing,
    Failure,
    Resources,
    RunName,
    SpecError,
    located,
    resolve_path,
    validation_problems,
)
from trainables.runs.spec import StrictModel as _Strict
from trainables.train.config import TrainConfig

_RULE = re.compile(r"^(argmax|proxy:[A-Za-z0-9_]+|rank:[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)+)$")
SELECTIONS = "selections"


class TrainSpecError(SpecError):
    """A malformed training spec (a SpecError, so callers catch both kinds the same way)."""

    kind = "training spec"


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
            raise ValueError("a selection rule is 'argmax', 'proxy:<name>' or 'rank:<a>+<b>'")
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
                "seed": int(seed), "device": self.device, "amp": self.amp, "channels_last": self.channels_last}

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
    return data.get("space", "nb201") if isinstance(data, dict) else None


def resolve_sources(spec: TrainSpec) -> TrainSpec:
    """`from` expanded into `architectures` (appended after any listed ones)."""
    if spec.source is None:
        return spec
    sweep_dir = Path(spec.source.sweep)
    found = read_selections(sweep_dir, spec.source.rule)
    sweep_space, train_space = _sweep_space(sweep_dir), spec.space or _protocol_space(spec)
    if sweep_space is not None and train_space is not None and sweep_space != train_space:
        raise ValueError(f"from.sweep: {sweep_dir} searched space {sweep_space!r}, but this training is in "
                         f"{train_space!r}")
    known = {e.arch for e in spec.architectures}
    return spec.model_copy(update={"architectures": [*spec.architectures,
                                                     *(e for e in found if e.arch not in known)]})


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
    device = spec.device
    if device.startswith("cuda") and spec.resources.gpu == 0:
        problems.append(("resources.gpu", f"is 0 but device is {device!r}: Ray would hide every GPU from the trial"))
    if problems:
        raise TrainSpecError(source, problems)
    return spec


def load_train_spec(path: str | Path, *, from_sweep: str | None = None, rule: str | None = None,
                    check_paths: bool = True) -> TrainSpec:
    """Read and validate a training spec file (`--from` / `--rule` as in `validate_train_spec`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training spec not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise TrainSpecError(str(path), [("(yaml)", str(err))]) from None
    spec = validate_train_spec(data, base_dir=path.resolve().parent, source=str(path), from_sweep=from_sweep,
                               rule=rule)
    if check_paths:
        check_train_paths(spec)
    return spec


def check_train_paths(spec: TrainSpec) -> None:
    """FileNotFoundError naming the field and path for data missing on this machine; missing CIFAR data are
    downloaded first unless `spec.download` is off (download.DownloadError on failure); ImageNet's folders are
    checked (split and class folders, not every image) and never downloaded."""
    from search_spaces.benchmarks.registry import is_builtin_reference
    from search_spaces.data import prepare_dataset

    protocol = TrainConfig(**spec.train_config(spec.architectures[0].arch, spec.seeds[0])).resolved_protocol()
    if spec.dataset not in protocol.splits:
        raise ValueError(f"dataset {spec.dataset!r}: protocol {protocol.name!r} has no splits for it")
    try:
        prepare_dataset(protocol.splits[spec.dataset].data, spec.data_root, download=spec.download)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"data_root ({spec.data_root or 'unset'}): {err}") from None
    if spec.benchmark is not None and not is_builtin_reference(spec.benchmark) and not Path(spec.benchmark).is_file():
        raise FileNotFoundError(f"benchmark: file not found: {spec.benchmark}")
    if spec.split_file is not None and not Path(spec.split_file).is_file():
        raise FileNotFoundError(f"split_file: file not found: {spec.split_file}")
