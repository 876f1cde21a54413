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

from search_spaces.benchmarks.base import Benchmark, Metric, table_column

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


def read_table(path: Path | str) -> tuple[dict, list[str], dict[Metric, np.ndarray], dict[str, np.ndarray]]:
    """(metadata, keys, metrics, extras) of a table written by `write_table`; ValueError names the file."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"{path}: not a readable Parquet benchmark table ({err})") from err
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise ValueError(f"{path}: Parquet file without '{META_KEY.decode()}' metadata; convert the source "
                         f"with `python -m search_spaces.benchmarks convert SRC {path.name}`")
    meta = json.loads(raw)
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{path}: table format {meta.get('format')!r} v{meta.get('version')!r}, "
                         f"expected {FORMAT!r} v{VERSION}")
    keys = table.column(meta["key"]).to_pylist()
    metrics = {(m["dataset"], m["split"], int(m["epochs"])): table.column(m["column"]).to_numpy()
               for m in meta["metrics"]}
    extras = {name: table.column(name).to_numpy() for name in meta["extras"]}
    return meta, keys, metrics, extras
