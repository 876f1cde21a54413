"""What every run spec shares (the search sweep's and the final training's): the one formatter of pydantic's
validation errors, the `SpecError` that lists problems as dotted field paths, and the spec sections of a Tune run
(per-trial resources, retries, checkpoints, the run's name, paths relative to the spec file), and the reading of
a spec file (`read_spec_text`: UTF-8 text or a `SpecError` naming the path and the byte offset).

Every validation error of the project reads the same way: `dotted.path: message (got value)` (`Problem.located`),
or, in a one-line config error, `path=value: message` (`Problem.assigned`); `validation_problems(err)` is the only
place that reads a pydantic `ValidationError`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

TOP_LEVEL = "(top level)"


# ----- pydantic errors -> problems ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One problem pydantic found: where (`path`, dotted, after the caller's prefix; `loc` pydantic's own location,
    empty for a check of the model as a whole), what (`message`, without pydantic's "Value error, "), the bad
    `value` and pydantic's error `kind` (e.g. "missing", "extra_forbidden")."""

    path: str
    loc: tuple[str | int, ...]
    message: str
    value: Any
    kind: str

    @property
    def text(self) -> str:
        """The message, quoting the bad value of a field (not of a missing field or a whole-model check)."""
        return f"{self.message} (got {self.value!r})" if self.loc and self.kind != "missing" else self.message

    def located(self, top: str = TOP_LEVEL) -> tuple[str, str]:
        """(path, text): a spec's form, e.g. ("search.epochs", "Input should be ... (got 0)"); `top` stands for an
        empty path."""
        return self.path or top, self.text

    def assigned(self) -> str:
        """`path=value: message` (a config's one-line form, e.g. "epochs=0: Input should be ..."), or the message
        alone for a whole-model check."""
        return f"{self.path}={self.value!r}: {self.message}" if self.path else self.message


def validation_problems(err: ValidationError, prefix: Sequence[str | int] = ()) -> list[Problem]:
    """Each error of `err` as a `Problem`, its path `prefix` + pydantic's location (dotted)."""
    out = []
    for e in err.errors():
        loc = tuple(e["loc"])
        out.append(Problem(path=".".join(str(p) for p in (*prefix, *loc)), loc=loc,
                           message=e["msg"].removeprefix("Value error, "), value=e.get("input"), kind=e["type"]))
    return out


def located(err: ValidationError, prefix: Sequence[str | int] = ()) -> list[tuple[str, str]]:
    """(dotted path, text) of each error of `err`: what a `SpecError` lists."""
    return [p.located() for p in validation_problems(err, prefix)]


class SpecError(ValueError):
    """A malformed run spec. `problems` holds (dotted field path, message) pairs."""

    kind = "sweep spec"

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = "\n".join(f"  {loc}: {msg}" for loc, msg in problems)
        super().__init__(f"invalid {self.kind} {source}:\n{lines}")


class PathError(SpecError):
    """A spec field whose file cannot serve on this machine (found before Ray starts): one line, `field: message`.
    Each spec's path error derives from it and its own SpecError (its `kind`)."""

    def __init__(self, field: str, message: str):
        self.problems = [(field, message)]
        ValueError.__init__(self, f"{field}: {message}")


def read_spec_text(path: str | Path, error: type[SpecError] = SpecError) -> str:
    """The text of the spec file at `path` (UTF-8). FileNotFoundError when it is no file; `error` (the loader's
    SpecError class, e.g. TrainSpecError) naming the path when it cannot be read, or the byte offset, line and
    column of the first byte that is not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{error.kind} not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise error(str(path), [("(file)", f"cannot be read: {err.strerror or err}")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = len(data[data.rfind(b"\n", 0, err.start) + 1:err.start].decode("utf-8")) + 1
        raise error(str(path), [("(encoding)", f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start} "
                                               f"(line {line}, column {column}); save the spec as UTF-8")]) from None


def read_spec_yaml(path: str | Path, error: type[SpecError] = SpecError) -> Any:
    """The parsed YAML of the spec file at `path` (`read_spec_text`'s checks; a YAML syntax error is `error`
    naming the path)."""
    text = read_spec_text(path, error)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise error(str(path), [("(yaml)", str(err))]) from None


# ----- the sections every run spec has -------------------------------------------------------------------------
class StrictModel(BaseModel):
    """A spec section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _run_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError("must be 1-100 characters of letters, digits, '_', '-', '.' (it names a folder)")
    return v


#: A run's name (it names the results folder; shared by the sweep and the training spec).
RunName = Annotated[str, AfterValidator(_run_name)]


class Resources(StrictModel):
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


class Failure(StrictModel):
    """How often a failed trial is retried from its last checkpoint (-1: forever)."""

    max_failures: int = Field(2, ge=-1)


class Checkpointing(StrictModel):
    """A checkpoint every `frequency` epochs (and at the end); the last `num_to_keep` are kept."""

    frequency: int = Field(1, ge=1)
    num_to_keep: int = Field(2, ge=1)


def resolve_path(value: str | None, base: Path) -> str | None:
    """`value` made absolute against `base` (the spec file's folder); None and URIs (`s3://...`) as they are."""
    if value is None or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", value):
        return value
    p = Path(value).expanduser()
    return str((p if p.is_absolute() else base / p).resolve())


def check_benchmark_file(space: str, value: str | None, error: type[SpecError]) -> None:
    """Open (large tables: inspect) a spec's benchmark file on this machine; `error("benchmark", message)` (the
    spec's path-error class) names the path and what is wrong (not the format, truncated, a column missing, another
    benchmark's table), before Ray starts."""
    from search_spaces.benchmarks import BenchmarkFileError, check_benchmark
    from search_spaces.space import get_space

    name = get_space(space).benchmark_name if value is not None else None
    if name is None:
        return
    try:
        check_benchmark(name, value)
    except BenchmarkFileError as err:
        raise error("benchmark", f"{err} (space {space!r} reads benchmark {name!r})") from None
