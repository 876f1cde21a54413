"""Which benchmarks exist: name -> "module:Class" (imported only when opened), and the tables shipped with the package.

Adding a benchmark is one line here; the class needs `open(path) -> Benchmark` (see base.Benchmark). A benchmark
whose compact table ships as package data of its space (`BUILTIN_TABLES`, provenance in the `data/README.md` beside
the table) opens without a
path, and wherever a table path is taken (spec `benchmark:`, search config) the benchmark's name stands for it.
"""

from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path

from search_spaces.benchmarks.base import Benchmark

BENCHMARKS: dict[str, str] = {
    "nb201": "search_spaces.nb201.benchmark:NB201Benchmark",
    "nb101": "search_spaces.nb1shot1.nb101.benchmark:NB101Benchmark",
    "nb301-zc": "search_spaces.darts.nb301:NB301ZCBenchmark",
}


def benchmark_class(name: str) -> type[Benchmark]:
    """The class registered under `name` (its `name` set to that key); a ValueError lists the registered names."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {', '.join(sorted(BENCHMARKS))}")
    module, _, attr = BENCHMARKS[name].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    cls.name = name  # the registry key is the benchmark's name (one spelling, here)
    return cls


#: benchmark name -> (package, file inside it) of its compact table, shipped by the space that owns the benchmark
BUILTIN_TABLES: dict[str, tuple[str, str]] = {
    "nb201": ("search_spaces.nb201", "data/nb201.parquet"),
}


def builtin_table(name: str) -> Path | None:
    """The packaged table of benchmark `name`, or None when the package ships none."""
    if name not in BUILTIN_TABLES:
        return None
    package, file = BUILTIN_TABLES[name]
    return Path(str(resources.files(package).joinpath(file)))


def is_builtin_reference(value: str | Path | None) -> bool:
    """Whether a table value (spec `benchmark:`) names a packaged table rather than a file path."""
    return value is not None and str(value) in BUILTIN_TABLES


def table_path(name: str, path: Path | str | None = None) -> Path:
    """The file to open for benchmark `name`: `path`, or the packaged table when `path` is None or the name."""
    if path is None or str(path) == name:
        table = builtin_table(name)
        if table is None:
            raise ValueError(f"benchmark {name!r} ships no table with the package: give the path of its table "
                             f"(packaged tables: {', '.join(sorted(BUILTIN_TABLES))})")
        return table
    return Path(path).expanduser()


def open_benchmark(name: str, path: Path | str | None = None) -> Benchmark:
    """Open benchmark `name` ('nb201', ...) from `path` (its compact Parquet table, or a source it reads);
    without a path (or with the benchmark's name as the path), the table shipped with the package."""
    return benchmark_class(name).open(table_path(name, path))


def check_benchmark(name: str, path: Path | str | None = None) -> None:
    """Raise what opening benchmark `name` from `path` would, before a run starts: FileNotFoundError for a
    missing file, `BenchmarkFileError` (a ValueError naming the file) for one that is not that benchmark's table
    (its format, required columns, the benchmark it was converted for). Packaged tables are not re-read."""
    if path is None or str(path) == name:
        table_path(name, path)  # raises for a benchmark that ships no table
        return
    benchmark_class(name).check(table_path(name, path))


def value_problem(name: str | None, value: str | Path | None, space: str) -> str | None:
    """Why `value` (a spec's `benchmark:`, a table path or a packaged table's name) cannot serve space `space`,
    whose benchmark is `name`, found without reading a file: the space has no ground truth, or `value` names the
    packaged table of another benchmark. None when it may serve."""
    if value is None:
        return None
    if name is None:
        return f"space {space!r} has no ground-truth benchmark; leave `benchmark` out (got {str(value)!r})"
    if is_builtin_reference(value) and str(value) != name:
        return (f"{str(value)!r} is the packaged table of benchmark {str(value)!r}, but space {space!r} reads "
                f"benchmark {name!r} (got {str(value)!r})")
    return None
