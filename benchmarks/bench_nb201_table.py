"""Load time, memory and query speed of the compact NB201 table.

Goals: open in <= 0.5 s and <= 100 MB (nas_201_api holds the whole official file in memory: GBs), and
answer a query in microseconds. Run in a fresh process so that the memory figures are this table's:

    python benchmarks/bench_nb201_table.py [--table nb201.parquet | --csv ../shared/data/nb201/nb201_merged.csv]

With --csv (the default when no table is given) the CSV is first converted to a temporary Parquet file,
outside the measurement.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

DEFAULT_CSV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nb201" / "nb201_merged.csv"


def maxrss_mb() -> float:
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, help="compact NB201 Parquet table")
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="CSV to convert when --table is absent")
    parser.add_argument("--repeats", type=int, default=5, help="timed loads (the best is reported)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    from search_spaces.benchmarks import open_benchmark
    from search_spaces.benchmarks.table_io import write_table
    from search_spaces.nb201.benchmark import NB201Benchmark
    t_import = time.perf_counter() - t0

    tmp = None
    table = args.table
    if table is None:
        tmp = tempfile.TemporaryDirectory(prefix="nb201_bench_")
        table = write_table(NB201Benchmark.from_csv(args.csv), Path(tmp.name) / "nb201.parquet")
    size_mb = table.stat().st_size / 2**20

    rss_before = maxrss_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    bench = open_benchmark("nb201", table)
    first_load = time.perf_counter() - t0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_delta = maxrss_mb() - rss_before
    loads = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        open_benchmark("nb201", table)
        loads.append(time.perf_counter() - t0)

    archs = bench.architectures()
    t0 = time.perf_counter()
    total = 0.0
    for arch in archs:
        total += bench.query(arch, "cifar10", "test", 200)
    t_query = time.perf_counter() - t0
    t0 = time.perf_counter()
    for arch in archs:
        bench.record(arch)
    t_record = time.perf_counter() - t0
    from search_spaces.nb201 import to_string, to_tuple
    noncanonical = [" " + a for a in archs[:2000]]  # forces the validate-and-normalise path
    t0 = time.perf_counter()
    for arch in noncanonical:
        bench.query(arch, "cifar10", "test", 200)
    t_slow = time.perf_counter() - t0
    assert to_string(to_tuple(archs[0])) == archs[0]

    print(f"table: {table} ({size_mb:.2f} MB on disk, {len(bench)} architectures, {len(bench.available())} "
          f"accuracy columns)")
    print(f"imports (search_spaces.benchmarks + .nb201; torch is not imported): "
          f"{t_import * 1e3:.0f} ms")
    print(f"open_benchmark: first {first_load * 1e3:.1f} ms (includes importing pyarrow.parquet), "
          f"best of {args.repeats} {min(loads) * 1e3:.1f} ms "
          f"(goal <= 500 ms)")
    print(f"memory of the first load: tracemalloc peak {traced_peak / 2**20:.1f} MB, ru_maxrss delta "
          f"{rss_delta:.1f} MB (goal <= 100 MB)")
    print(f"{len(archs)} queries (canonical strings): {t_query * 1e3:.1f} ms total, "
          f"{t_query / len(archs) * 1e6:.2f} us/query (mean cifar10 test acc {total / len(archs):.2f})")
    print(f"{len(archs)} records: {t_record * 1e3:.1f} ms total, {t_record / len(archs) * 1e6:.2f} us/record")
    print(f"{len(noncanonical)} queries needing normalisation: {t_slow / len(noncanonical) * 1e6:.2f} us/query")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
