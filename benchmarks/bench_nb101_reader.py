"""Throughput of the NB101 reader and converter on a generated multi-hundred-MB record file.

Writes a file in the official layout (TFRecord framing with CRCs, JSON payload, base64 ModelMetrics with
3 evaluations; cells x 4 budgets x 3 repeats like nasbench_full.tfrecord) into a temporary folder, then
measures, each in a fresh child process (so that peak RSS is that step's own): reading with CRC checks,
reading + decoding every record, the full conversion to Parquet; then opening the table and querying it.
The temporary folder is deleted at the end.

    python benchmarks/bench_nb101_reader.py --size-mb 300 [--tmp-dir /tmp]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from search_spaces.nb1shot1.nb101.graph import spec_hash
from search_spaces.nb1shot1.nb101.records import encode_record
from search_spaces.nb1shot1.nb101.tfrecord import _gcrc, frame


def _cell_pool(n: int, rng: np.random.Generator) -> list[tuple[np.ndarray, list[str]]]:
    from search_spaces.nb1shot1.encoding import random_architecture, to_nb101

    return [to_nb101(random_architecture(3, rng)) for _ in range(n)]


def generate(path: Path, size_mb: float, seed: int = 0) -> tuple[int, int]:
    """Records for synthetic cells until the file reaches `size_mb`; returns (records, cells)."""
    rng = np.random.default_rng(seed)
    pool = _cell_pool(512, rng)
    target = size_mb * 1e6
    written = n_records = n_cells = 0
    with open(path, "wb", buffering=1 << 22) as f:
        while written < target:
            m, ops = pool[n_cells % len(pool)]
            # the first pass over the pool uses the real module hashes (so that queries by spec find them);
            # later cells get distinct synthetic keys (the converter does not re-hash unless asked)
            h = spec_hash(m, ops) if n_cells < len(pool) else hashlib.md5(str(n_cells).encode()).hexdigest()
            n_cells += 1
            params = int(rng.integers(200_000, 40_000_000))
            for epochs in (4, 12, 36, 108):
                for _ in range(3):
                    final = {"current_epoch": float(epochs), "training_time": float(rng.uniform(100, 5000)),
                             "train_accuracy": float(rng.uniform(0.5, 1)),
                             "validation_accuracy": float(rng.uniform(0.1, 0.95)),
                             "test_accuracy": float(rng.uniform(0.1, 0.95))}
                    half = {k: v / 2 for k, v in final.items()}
                    start = {"current_epoch": 0.0, "training_time": 0.0, "train_accuracy": 0.1,
                             "validation_accuracy": 0.1, "test_accuracy": 0.1}
                    data = frame(encode_record(h, epochs, m, ops, params, [start, half, final],
                                               total_time=final["training_time"] * 1.1))
                    f.write(data)
                    written += len(data)
                    n_records += 1
    return n_records, n_cells


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _task(name: str, src: str, out: str, queue) -> None:
    try:
        queue.put(_measure(name, src, out))
    except Exception as err:  # report to the parent instead of leaving it waiting
        queue.put({"error": f"{name}: {err!r}"})


def _measure(name: str, src: str, out: str) -> dict:
    from search_spaces.nb1shot1.nb101.benchmark import NB101Benchmark, convert
    from search_spaces.nb1shot1.nb101.records import decode_record
    from search_spaces.nb1shot1.nb101.tfrecord import iter_records

    base = _peak_mb()
    start = time.perf_counter()
    result: dict = {}
    if name == "read+crc":
        result["records"] = sum(1 for _ in iter_records(src))
    elif name == "read+crc+decode":
        result["records"] = sum(1 for _, d in iter_records(src) if decode_record(d).epochs)
    elif name == "convert":
        result["records"] = convert(src, out)["records"]
    elif name == "open+query":
        bench = NB101Benchmark.open(out)
        result["open_s"] = time.perf_counter() - start
        result["cells"] = len(bench)
        m, ops = _cell_pool(1, np.random.default_rng(0))[0]  # generate()'s first cell (real hash)
        t = time.perf_counter()
        n = 2000
        for _ in range(n):
            bench.query(m, ops, epochs=108)
        result["query_us"] = 1e6 * (time.perf_counter() - t) / n
        result["records"] = 0
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_mb"] = _peak_mb()
    result["baseline_rss_mb"] = base
    return result


def run_in_child(name: str, src: Path, out: Path) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_task, args=(name, str(src), str(out), queue))
    proc.start()
    result = queue.get()
    proc.join()
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=300.0)
    parser.add_argument("--tmp-dir", default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nb101_bench_", dir=args.tmp_dir))
    try:
        src, out = tmp / "nasbench_generated.tfrecord", tmp / "nb101.parquet"
        t = time.perf_counter()
        ctx = mp.get_context("spawn")  # generate in a child too: the parent stays small (RSS high-water marks
        with ctx.Pool(1) as pool:  # are inherited by the measuring children)
            n_records, n_cells = pool.apply(generate, (src, args.size_mb))
        size_mb = src.stat().st_size / 1e6
        print(f"generated {src.name}: {size_mb:.0f} MB, {n_records:,} records, {n_cells:,} cells "
              f"in {time.perf_counter() - t:.1f} s (crc32c: {'google-crc32c' if _gcrc else 'pure python'})")
        rows = []
        for name in ("read+crc", "read+crc+decode", "convert", "open+query"):
            r = run_in_child(name, src, out)
            rows.append({"step": name, **r})
            if r["records"]:
                print(f"{name:16s} {r['seconds']:7.1f} s  {r['records'] / r['seconds']:10,.0f} records/s  "
                      f"{size_mb / r['seconds']:7.1f} MB/s  peak RSS {r['peak_rss_mb']:7.0f} MB "
                      f"(interpreter+imports {r['baseline_rss_mb']:.0f} MB)")
            else:
                print(f"{name:16s} open {r['open_s']:.2f} s ({r['cells']:,} cells), query {r['query_us']:.0f} us, "
                      f"peak RSS {r['peak_rss_mb']:.0f} MB")
        print(f"table: {out.stat().st_size / 1e6:.1f} MB Parquet ({100 * out.stat().st_size / src.stat().st_size:.1f}% "
              f"of the record file)")
        print(json.dumps(rows))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
