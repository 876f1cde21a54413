"""The compact on-disk form of a benchmark table: one Parquet file, self-describing.

Columns: `arch` (the canonical key), one float64 column per metric named `table_column(dataset, split,
epochs)`, and extra float64 columns (e.g. params_M). The schema metadata under `balenas.benchmark` (JSON)
records the benchmark name, the source it was converted from, and which column is which (dataset, split,
epochs), so readers never parse column names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from search_spaces.benchmarks.base import Benchmark, BenchmarkFileError, Metric, table_column

META_KEY = b"balenas.benchmark"
FORMAT = "balenas-benchmark-table"
VERSION = 1


def write_table(bench: Benchmark, out: Path | str) -> Path:
    """Write `bench` as compact Parquet (atomically: a temporary file renamed into place)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = {"arch": pa.array(bench.architectures(), type=pa.string())}
    metrics = []
    for dataset, split, epochs in bench.available():
        name = table_column(dataset, split, epochs)
        columns[name] = pa.array(bench.column(dataset, split, epochs), type=pa.float64())
        metrics.append({"column": name, "dataset": dataset, "split": split, "epochs": epochs})
    extras = bench.extra_names()
    for name in extras:
        columns[name] = pa.array(bench.extra(name), type=pa.float64())
    meta = {"format": FORMAT, "version": VERSION, "benchmark": bench.name, "source": bench.source,
            "key": "arch", "metrics": metrics, "extras": extras}
    table = pa.table(columns).replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def stored_benchmark(path: Path | str) -> str | None:
    """The benchmark name a Parquet file's `balenas.benchmark` metadata records (read from the footer only), or
    None for any other file."""
    try:
        raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
        return json.loads(raw).get("benchmark") if raw else None
    except (pa.ArrowInvalid, OSError, ValueError, AttributeError):
        return None


def read_table(path: Path | str) -> tuple[dict, list[str], dict[Metric, np.ndarray], dict[str, np.ndarray]]:
    """(metadata, keys, metrics, extras) of a table written by `write_table`; BenchmarkFileError (a ValueError)
    names the file and what is wrong: not Parquet, truncated, no or bad metadata, a column the metadata lists
    missing or not numeric, no accuracy at all."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise BenchmarkFileError(f"{path}: not a readable Parquet benchmark table ({err})") from None
    raw = (table.schema.metadata or {}).get(META_KEY)
    others = [k.decode(errors="replace") for k in (table.schema.metadata or {}) if k.startswith(b"balenas.")]
    if raw is None and others:  # another converter's table (e.g. NB101's `balenas.nb101`)
        raise BenchmarkFileError(f"{path}: holds a {others[0].removeprefix('balenas.')!r} table (metadata "
                                 f"{others[0]!r}), not a {FORMAT!r} table")
    if raw is None:
        raise BenchmarkFileError(f"{path}: Parquet file without '{META_KEY.decode()}' metadata; convert the source "
                                 f"with `python -m search_spaces.benchmarks convert SRC {path.name}`")
    try:
        meta = json.loads(raw)
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise BenchmarkFileError(f"{path}: table format {meta.get('format')!r} v{meta.get('version')!r}, "
                                     f"expected {FORMAT!r} v{VERSION}")
        key = meta["key"]
        metric_meta = [(m["column"], (str(m["dataset"]), str(m["split"]), int(m["epochs"]))) for m in meta["metrics"]]
        extra_names = [str(name) for name in meta.get("extras", [])]
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        if isinstance(err, BenchmarkFileError):
            raise
        raise BenchmarkFileError(f"{path}: malformed '{META_KEY.decode()}' metadata "
                                 f"({type(err).__name__}: {err})") from None
    names = set(table.column_names)
    missing = [c for c in (key, *(c for c, _ in metric_meta), *extra_names) if c not in names]
    if missing:
        raise BenchmarkFileError(f"{path}: missing column(s) {', '.join(map(repr, missing))} that its metadata "
                                 f"lists (the file was changed after conversion; convert the source again)")
    if not metric_meta:
        raise BenchmarkFileError(f"{path}: the table holds no accuracy column")
    not_numeric = [c for c, _ in metric_meta if not _numeric(table.schema.field(c).type)]
    not_numeric += [c for c in extra_names if not _numeric(table.schema.field(c).type)]
    if not_numeric:
        raise BenchmarkFileError(f"{path}: column(s) {', '.join(map(repr, not_numeric))} are not numeric")
    keys = table.column(key).to_pylist()
    if any(not isinstance(k, str) for k in keys):
        raise BenchmarkFileError(f"{path}: key column {key!r} holds non-string or missing architectures")
    metrics = {m: table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c, m in metric_meta}
    extras = {name: table.column(name).to_numpy(zero_copy_only=False).astype(np.float64) for name in extra_names}
    return meta, keys, metrics, extras


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_null(t)
