"""Benchmark ground truth (NAS-Bench-201, ...) as compact in-memory tables.

Public API: `open_benchmark(name, path=None) -> Benchmark` (no path: the table shipped with the package) with
`query(arch, dataset, split="test", epochs=None)`, `record(arch, epochs=None)` (None: the benchmark's default
budget, NB201 200, NB101 108), `epochs()`, `available()`, and the class-level `report_columns` /
`test_column(dataset)`; `bench_column(dataset, split)` names record keys. `check_benchmark(name, path)` raises
what opening would (FileNotFoundError; `BenchmarkFileError`, naming the file and the problem) before a run
starts. Converting a source to a table is `balenas benchmark convert` (balenas/commands/benchmark.py); the
per-benchmark code lives with each space (`search_spaces.nb201.convert`, `search_spaces.nb1shot1.nb101.benchmark`).
"""

from search_spaces.benchmarks.base import (
    Benchmark,
    BenchmarkFileError,
    BenchmarkQueryError,
    ReportColumn,
    UnknownArchitectureError,
    bench_column,
    table_column,
)
from search_spaces.benchmarks.registry import (
    BENCHMARKS,
    BUILTIN_TABLES,
    benchmark_class,
    builtin_table,
    check_benchmark,
    is_builtin_reference,
    open_benchmark,
    table_path,
)

__all__ = ["Benchmark", "BenchmarkFileError", "BenchmarkQueryError", "ReportColumn", "UnknownArchitectureError",
           "bench_column", "table_column", "BENCHMARKS", "benchmark_class", "open_benchmark", "BUILTIN_TABLES",
           "builtin_table", "is_builtin_reference", "table_path", "check_benchmark"]
