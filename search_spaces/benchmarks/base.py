"""A benchmark's ground truth as an in-memory column table: key -> row, one numpy array per metric.

Every tabular benchmark here (NB201, later NB101) answers the same questions: the accuracy of an
architecture on (data set, split) after a training budget, and all such numbers for one architecture at
once. Holding them as `dict key -> row` plus numpy columns makes a query a dict lookup and an array index
(microseconds), and the whole table a few MB instead of the official files' gigabytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

Metric = tuple[str, str, int]  # (dataset, split, epochs)


@dataclass(frozen=True)
class ReportColumn:
    """One column of a results table: its group (e.g. 'CIFAR-10') and split, a key naming it in published
    results, and the record keys (`bench_*`) that hold it (the first one present in the data is used)."""

    group: str
    split: str
    key: str
    bench: tuple[str, ...]


def bench_column(dataset: str, split: str) -> str:
    """The column name of a ground-truth accuracy: 'bench_' + dataset (lower-case, '-' -> '_') + '_' + split.

    e.g. ('cifar10', 'test') -> 'bench_cifar10_test', ('cifar10-valid', 'valid') -> 'bench_cifar10_valid_valid',
    ('ImageNet16-120', 'test') -> 'bench_imagenet16_120_test'.
    """
    if not dataset or not split:
        raise ValueError(f"bench_column needs a data set and a split, got {dataset!r}, {split!r}")
    return f"bench_{dataset.lower().replace('-', '_')}_{split.lower().replace('-', '_')}"


def table_column(dataset: str, split: str, epochs: int) -> str:
    """The stored column of one metric: bench_column(...) + '_<epochs>ep'."""
    return f"{bench_column(dataset, split)}_{int(epochs)}ep"


class BenchmarkQueryError(ValueError):
    """A (data set, split, epochs) combination the table does not hold."""


class BenchmarkFileError(ValueError):
    """A benchmark file that cannot be read as that benchmark's table: not its format, truncated, a required
    column missing, or another benchmark's table. The message names the file and what is wrong."""


class UnknownArchitectureError(KeyError):
    """A well-formed architecture that is not in the table."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class Benchmark:
    """Ground truth for the architectures of one search space, loaded into memory.

    `keys[i]` is the canonical key of row i; `metrics` maps (dataset, split, epochs) to a float64 column
    aligned with `keys` (NaN where a value is missing); `extras` holds other per-architecture columns
    (e.g. params_M). Subclasses supply `canonical_key` (validation + normalisation of user input).
    """

    name = "benchmark"
    record_extras: tuple[str, ...] = ("params_M",)  # extras that `record` reports next to the accuracies
    #: the training budget `record`, `query` and `column` use when none is given (None: the largest held).
    default_epochs: ClassVar[int | None] = None
    #: the columns of a results table, in order (the benchmark's own data sets and splits).
    report_columns: ClassVar[tuple[ReportColumn, ...]] = ()
    #: what the report's columns mean (one sentence for the report's Results section; "" = nothing to add)
    report_note: ClassVar[str] = ""

    def __init__(self, keys: list[str], metrics: Mapping[Metric, np.ndarray],
                 extras: Mapping[str, np.ndarray] | None = None, source: str = ""):
        self._keys = list(keys)
        self._row = {k: i for i, k in enumerate(self._keys)}
        if len(self._row) != len(self._keys):
            raise ValueError(f"{self.name} table has duplicate architectures ({source})")
        n = len(self._keys)
        self._metrics = {(str(d), str(s), int(e)): np.asarray(v, dtype=np.float64) for (d, s, e), v in
                         metrics.items()}
        self._extras = {k: np.asarray(v, dtype=np.float64) for k, v in (extras or {}).items()}
        for what, col in [*self._metrics.items(), *self._extras.items()]:
            if col.shape != (n,):
                raise ValueError(f"{self.name} column {what} has shape {col.shape}, expected ({n},)")
        self.source = source

    # ---- what the subclass defines ------------------------------------------------------------------
    def canonical_key(self, arch: str) -> str:
        """Validate and normalise a user's architecture; ValueError when malformed."""
        return arch

    @classmethod
    def open(cls, path: Path | str) -> Benchmark:
        """The benchmark read from `path`: FileNotFoundError when it is missing, BenchmarkFileError (naming the
        file and the problem) when it is not this benchmark's table."""
        raise NotImplementedError(f"{cls.__name__} defines no `open`")

    @classmethod
    def check(cls, path: Path | str) -> None:
        """Raise what `open` would (FileNotFoundError, BenchmarkFileError) for a file that cannot serve as this
        benchmark, before any run starts. By default it opens the file; a benchmark whose tables are large may
        check less (their format, metadata and columns)."""
        cls.open(path)

    # ---- budgets and columns -------------------------------------------------------------------------
    def epochs(self) -> list[int]:
        """The training budgets the table holds."""
        return sorted({e for _, _, e in self._metrics})

    def budget(self, epochs: int | None = None) -> int:
        """`epochs`, or the default budget (`default_epochs`, else the largest held) when None."""
        if epochs is not None:
            return int(epochs)
        held = self.epochs()
        if self.default_epochs is not None and self.default_epochs in held:
            return self.default_epochs
        if not held:
            raise BenchmarkQueryError(f"{self.name} table holds no accuracies ({self.source})")
        return held[-1]

    @classmethod
    def test_column(cls, dataset: str) -> str:
        """The record key of the test accuracy worth watching for a search on `dataset` (progress tables)."""
        return bench_column(dataset, "test")

    # ---- lookups ------------------------------------------------------------------------------------
    def row(self, arch: str) -> int:
        """Row index of `arch` (fast path: already canonical)."""
        row = self._row.get(arch)
        if row is None:
            key = self.canonical_key(arch)
            row = self._row.get(key)
            if row is None:
                raise UnknownArchitectureError(f"architecture {arch!r} is not in the {self.name} table "
                                               f"({len(self._keys)} architectures, {self.source})")
        return row

    def column(self, dataset: str, split: str = "test", epochs: int | None = None) -> np.ndarray:
        """The whole metric column (aligned with `architectures()`); read-only view."""
        epochs = self.budget(epochs)
        col = self._metrics.get((dataset, split, epochs))
        if col is None:
            raise BenchmarkQueryError(f"{self.name} has no accuracy for dataset={dataset!r}, split={split!r}, "
                                      f"epochs={epochs!r}; available (dataset, split, epochs): "
                                      f"{', '.join(map(str, self.available()))}")
        view = col.view()
        view.flags.writeable = False
        return view

    def query(self, arch: str, dataset: str, split: str = "test", epochs: int | None = None) -> float:
        """Accuracy (%) of `arch` on (dataset, split) after `epochs` (default: the default budget); NaN where
        the table lacks this value."""
        epochs = self.budget(epochs)
        col = self._metrics.get((dataset, split, epochs))
        if col is None:
            self.column(dataset, split, epochs)  # raises the descriptive error
        return float(col[self.row(arch)])

    def record(self, arch: str, epochs: int | None = None) -> dict[str, float]:
        """Every available accuracy of `arch` at `epochs` (default: the default budget), keyed by
        `bench_column(dataset, split)`, plus the `record_extras` (params_M). Values missing for this
        architecture (NaN) are left out.
        """
        epochs = self.budget(epochs)
        if not any(e == epochs for _, _, e in self._metrics):
            raise BenchmarkQueryError(f"{self.name} has no results at epochs={epochs!r}; available: "
                                      f"{sorted({e for _, _, e in self._metrics})}")
        row = self.row(arch)
        out = {}
        for (dataset, split, e), col in self._metrics.items():
            if e == epochs and not math.isnan(col[row]):
                out[bench_column(dataset, split)] = float(col[row])
        for name in self.record_extras:
            col = self._extras.get(name)
            if col is not None and not math.isnan(col[row]):
                out[name] = float(col[row])
        return out

    def available(self) -> list[Metric]:
        """The (dataset, split, epochs) combinations the table holds."""
        return sorted(self._metrics)

    def extra(self, name: str) -> np.ndarray:
        """A non-accuracy column (e.g. 'params_M'), aligned with `architectures()`."""
        if name not in self._extras:
            raise KeyError(f"{self.name} has no column {name!r}; extras: {sorted(self._extras)}")
        return self._extras[name]

    def extra_names(self) -> list[str]:
        return sorted(self._extras)

    def architectures(self) -> list[str]:
        return list(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, arch: object) -> bool:
        if not isinstance(arch, str):
            return False
        try:
            self.row(arch)
        except (ValueError, KeyError):
            return False
        return True

    def to_frame(self):
        """A pandas DataFrame, one row per architecture: 'arch', metrics as table_column(...), extras."""
        import pandas as pd  # lazily: opening a table should not pay for importing pandas

        data = {"arch": self._keys}
        data.update({table_column(*m): self._metrics[m] for m in self.available()})
        data.update(self._extras)
        return pd.DataFrame(data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} architectures, {len(self._metrics)} metrics, {self.source})"
