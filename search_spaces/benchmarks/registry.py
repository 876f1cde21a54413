"""Which benchmarks exist: name -> "module:Class" (imported only when opened).

Adding a benchmark is one line here; the class needs `open(path) -> Benchmark` (see base.Benchmark).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from search_spaces.benchmarks.base import Benchmark

BENCHMARKS: dict[str, str] = {
    "nb201": "search_spaces.benchmarks.nb201:NB201Benchmark",
    "nb101": "search_spaces.benchmarks.nb101:NB101Benchmark",
    "nb301-zc": "search_spaces.benchmarks.nb301:NB301ZCBenchmark",
}


def benchmark_class(name: str) -> type[Benchmark]:
    """The class registered under `name`; a ValueError lists the registered names."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {', '.join(sorted(BENCHMARKS))}")
    module, _, cls = BENCHMARKS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def open_benchmark(name: str, path: Path | str) -> Benchmark:
    """Open benchmark `name` ('nb201', ...) from `path` (its compact Parquet table, or a source it reads)."""
    return benchmark_class(name).open(path)
