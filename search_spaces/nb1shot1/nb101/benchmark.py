"""NAS-Bench-101 ground truth (Ying et al., ICML 2019) without TensorFlow: converter, table and queries.

`convert(src.tfrecord, out.parquet)` streams the official `nasbench_only108.tfrecord` or
`nasbench_full.tfrecord` (CRC-checked) into a compact Parquet table with one row per (module hash, epochs):
mean and standard deviation (numpy, ddof=0) over the repeats (3 in the official files) of the final and
halfway train/validation/test accuracy and training time, plus the pruned matrix, ops and parameter count.
`NB101Benchmark.open(table)` loads it in seconds; `query(matrix, ops, epochs=108)` returns the NB101 API's
fields averaged over repeats (accuracies as fractions, as in NB101), `record(arch)` the platform's
`bench_nb101_{train,valid,test}` in percent for a module hash or a NAS-Bench-1Shot1 architecture string.

    balenas benchmark convert nasbench_full.tfrecord nb101.parquet --benchmark nb101
    balenas benchmark query --benchmark nb101 --table nb101.parquet --matrix 0111... --ops input,...,output
"""

from __future__ import annotations

import json
import os
import re
import time
from array import array
from collections.abc import Callable
from pathlib import Path

import numpy as np

from search_spaces.benchmarks.base import (
    Benchmark,
    BenchmarkFileError,
    BenchmarkQueryError,
    ReportColumn,
    UnknownArchitectureError,
    bench_column,
)
from search_spaces.benchmarks.table_io import stored_benchmark
from search_spaces.nb1shot1.nb101.graph import canonical_spec, spec_hash
from search_spaces.nb1shot1.nb101.records import EVAL_FIELDS, decode_record
from search_spaces.nb1shot1.nb101.tfrecord import RecordError, iter_records

DATASET = "nb101"  # record keys: bench_column("nb101", split) -> bench_nb101_valid, ...
TABLE_FORMAT = "balenas-nb101-table"
TABLE_VERSION = 1
META_KEY = b"balenas.nb101"
OFFICIAL_FILE_HELP = (
    "The official files are nasbench_only108.tfrecord (108 epochs) and nasbench_full.tfrecord (4/12/36/108 "
    "epochs) from https://github.com/google-research/nasbench (storage.googleapis.com/nasbench/); convert one "
    "once with `balenas benchmark convert nasbench_full.tfrecord nb101.parquet --benchmark nb101`.")
_STAGES = ("final", "halfway")
_SPLIT_FIELD = {"train": "train_accuracy", "valid": "validation_accuracy", "test": "test_accuracy"}
_HASH_RE = re.compile(r"^[0-9a-f]{32}$")


def stat_column(stage: str, field: str, stat: str) -> str:
    """Table column name, e.g. ('final', 'validation_accuracy', 'mean') -> 'final_validation_accuracy_mean'."""
    return f"{stage}_{field}_{stat}"


# ----- conversion ------------------------------------------------------------------------------------
class _Accumulator:
    """Per-record values in compact arrays; hashes interned to ids (5M records, 423k cells)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.fixed: list[tuple[str, str, int]] = []  # id -> (adjacency, ops, params)
        # typed arrays: 8 bytes per value instead of a 32-byte Python float + list slot
        self.cell = array("q")
        self.epochs = array("q")
        self.values = {(s, f): array("d") for s in _STAGES for f in EVAL_FIELDS}

    def add(self, rec) -> None:
        cid = self.ids.get(rec.module_hash)
        if cid is None:
            cid = self.ids[rec.module_hash] = len(self.fixed)
            self.fixed.append((rec.adjacency, rec.operations, rec.trainable_parameters))
        self.cell.append(cid)
        self.epochs.append(rec.epochs)
        for f in EVAL_FIELDS:
            self.values["final", f].append(rec.final[f])
            self.values["halfway", f].append(rec.halfway[f])

    def table(self, source: str):
        """One row per (hash, epochs): counts, means and stds (ddof=0) via a sort + reduceat."""
        import pyarrow as pa

        if not self.cell:
            raise ValueError(f"{source}: no records")
        cell = np.frombuffer(self.cell, dtype=np.int64)
        epochs = np.frombuffer(self.epochs, dtype=np.int64)
        if epochs.min() < 0 or epochs.max() >= 1024:
            raise ValueError(f"{source}: epochs outside 0..1023 ({epochs.min()}..{epochs.max()})")
        key = cell * 1024 + epochs
        order = np.argsort(key, kind="stable")
        key = key[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        counts = np.diff(np.r_[starts, len(key)])
        g_cell, g_epochs = key[starts] // 1024, key[starts] % 1024
        group = np.repeat(np.arange(len(starts)), counts)  # group of each sorted record
        hashes = np.empty(len(self.fixed), dtype=object)
        for h, i in self.ids.items():
            hashes[i] = h
        adjacency = [self.fixed[c][0] for c in g_cell]
        columns = {
            "cell": pa.array(g_cell, pa.int32()),  # dense cell index: readers group rows without hashing strings
            "module_hash": pa.array(hashes[g_cell].tolist(), pa.string()),
            "epochs": pa.array(g_epochs, pa.int16()),
            "num_repeats": pa.array(counts, pa.int16()),
            "num_vertices": pa.array([int(len(a) ** 0.5) for a in adjacency], pa.int8()),
            "matrix": pa.array(adjacency, pa.string()),
            "ops": pa.array([self.fixed[c][1] for c in g_cell], pa.string()),
            "trainable_parameters": pa.array([self.fixed[c][2] for c in g_cell], pa.int64()),
        }
        for (stage, field), vals in self.values.items():
            v = np.frombuffer(vals, dtype=np.float64)[order]
            mean = np.add.reduceat(v, starts) / counts
            var = np.add.reduceat((v - mean[group]) ** 2, starts) / counts  # two-pass: no cancellation
            columns[stat_column(stage, field, "mean")] = pa.array(mean)
            columns[stat_column(stage, field, "std")] = pa.array(np.sqrt(var))
        return pa.table(columns)


def convert(src: Path | str, out: Path | str, progress: Callable[[str], None] | None = None,
            verify_crc: bool = True, check_hashes: bool = False) -> dict:
    """Convert an official NB101 .tfrecord into the compact Parquet table; returns a summary dict.

    `check_hashes` recomputes each distinct cell's module hash from its matrix and ops (well under 1 ms per
    cell) and fails on the first mismatch. The output is written atomically (temporary file + rename).
    """
    import pyarrow.parquet as pq

    src, out = Path(src), Path(out)
    if not src.is_file():
        raise FileNotFoundError(f"NB101 record file not found: {src}. {OFFICIAL_FILE_HELP}")
    total_bytes = max(src.stat().st_size, 1)
    acc = _Accumulator()
    start = last = time.perf_counter()
    n = 0
    for offset, data in iter_records(src, verify=verify_crc):
        try:
            rec = decode_record(data)
        except ValueError as err:
            raise RecordError(src, offset, str(err)) from None
        if check_hashes and rec.module_hash not in acc.ids:
            got = spec_hash(rec.matrix(), rec.operations.split(","))
            if got != rec.module_hash:
                raise RecordError(src, offset, f"stored hash {rec.module_hash} != computed {got}")
        acc.add(rec)
        n += 1
        now = time.perf_counter()
        if progress is not None and now - last >= 2.0:
            last = now
            progress(f"{n:,} records ({100.0 * offset / total_bytes:.1f}% of {src.name}), "
                     f"{len(acc.ids):,} cells, {n / (now - start):,.0f} records/s")
    read_s = time.perf_counter() - start
    table = acc.table(str(src))
    meta = {"format": TABLE_FORMAT, "version": TABLE_VERSION, "source": src.name, "records": n,
            "std": "numpy ddof=0 over repeats", "accuracy_units": "fraction"}
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=1 << 17)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    summary = {"records": n, "cells": len(acc.ids), "rows": table.num_rows,
               "epochs": sorted({int(e) for e in table.column("epochs").to_pylist()}),
               "read_s": read_s, "total_s": time.perf_counter() - start, "out": str(out)}
    if progress is not None:
        progress(f"wrote {out}: {summary['rows']:,} rows ({summary['cells']:,} cells x epochs "
                 f"{summary['epochs']}) from {n:,} records in {summary['total_s']:.1f} s")
    return summary


# ----- the benchmark ---------------------------------------------------------------------------------
class NB101Benchmark(Benchmark):
    """NB101 ground truth keyed by module hash. Metrics ('nb101', split, epochs) are in percent (platform
    convention, `record`); `query(matrix, ops, epochs)` answers in NB101's own units (fractions, seconds)."""

    name = "nb101"
    record_extras = ("params_M",)
    default_epochs = 108  # NB101's full budget (the table may also hold 4, 12, 36)
    report_columns = (ReportColumn("NAS-Bench-101", "valid", "nb101_valid", ("bench_nb101_valid",)),
                      ReportColumn("NAS-Bench-101", "test", "nb101_test", ("bench_nb101_test",)))

    @classmethod
    def test_column(cls, dataset: str) -> str:
        """NB101 has one data set (CIFAR-10): its test accuracy, whatever the search's data set is called."""
        return bench_column(DATASET, "test")

    def __init__(self, keys, metrics, extras, per_epoch: dict[int, dict[str, np.ndarray]],
                 matrices: tuple[list[str], np.ndarray], ops: tuple[list[str], np.ndarray], source: str = ""):
        """`matrices` and `ops` are (distinct strings, per-cell index into them)."""
        super().__init__(keys, metrics, extras, source=source)
        self._per_epoch = per_epoch
        self._matrices, self._ops = matrices, ops

    #: the columns `open` and `query` read
    REQUIRED_COLUMNS = ("cell", "module_hash", "epochs", "num_repeats", "matrix", "ops", "trainable_parameters",
                        *(stat_column(stage, field, stat) for stage in _STAGES for field in EVAL_FIELDS
                          for stat in ("mean", "std")))

    @classmethod
    def _parquet(cls, path: Path | str):
        """The table's `pq.ParquetFile` and metadata after checking the file's format, metadata and columns
        (its footer only); FileNotFoundError / BenchmarkFileError naming the file."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"NB101 table not found: {path}. {OFFICIAL_FILE_HELP}")
        if path.suffix.lower() == ".tfrecord":
            raise BenchmarkFileError(f"{path} is a record file; convert it first. {OFFICIAL_FILE_HELP}")
        try:
            pfile = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise BenchmarkFileError(f"{path}: not a readable Parquet NB101 table ({err})") from None
        metadata = pfile.schema_arrow.metadata or {}
        raw = metadata.get(META_KEY)
        try:
            meta = json.loads(raw) if raw else {}
        except ValueError:
            meta = {}
        if meta.get("format") != TABLE_FORMAT or meta.get("version") != TABLE_VERSION:
            other = stored_benchmark(path)
            what = (f"holds the {other!r} benchmark table, not an NB101 table" if other else
                    f"not an NB101 table written by this converter (format {meta.get('format')!r} "
                    f"v{meta.get('version')!r})")
            raise BenchmarkFileError(f"{path}: {what}. {OFFICIAL_FILE_HELP}")
        missing = [c for c in cls.REQUIRED_COLUMNS if c not in pfile.schema_arrow.names]
        if missing:
            raise BenchmarkFileError(f"{path}: missing column(s) {', '.join(map(repr, missing))} of an NB101 table "
                                     f"(convert the record file again). {OFFICIAL_FILE_HELP}")
        if pfile.metadata.num_rows == 0:
            raise BenchmarkFileError(f"{path}: the NB101 table holds no rows")
        return pfile, meta

    @classmethod
    def check(cls, path: Path | str) -> None:
        """The format, metadata and columns of the table (its footer only: a full table is large to load)."""
        cls._parquet(path)

    @classmethod
    def open(cls, path: Path | str) -> NB101Benchmark:
        import pyarrow as pa

        pfile, meta = cls._parquet(path)
        path = Path(path).expanduser()
        try:
            return cls._read(pfile, meta, path)
        except (pa.ArrowInvalid, OSError, ValueError) as err:  # a truncated column chunk, a bad value
            if isinstance(err, BenchmarkFileError):
                raise
            raise BenchmarkFileError(f"{path}: unreadable NB101 table ({type(err).__name__}: {err})") from None

    @classmethod
    def _read(cls, pfile, meta: dict, path: Path) -> NB101Benchmark:
        import pyarrow as pa

        # Column by column, row group by row group: the peak memory is the result plus one column chunk.
        # matrix and ops are read dictionary-encoded (far fewer distinct values than cells) and kept so.
        def column(name: str, dictionary: bool = False):
            chunks = [pfile.read_row_group(g, columns=[name]).column(0)
                      for g in range(pfile.metadata.num_row_groups)]
            col = pa.chunked_array([c for ch in chunks for c in ch.chunks], type=chunks[0].type)
            return col.dictionary_encode() if dictionary and not pa.types.is_dictionary(col.type) else col

        value_cols = [c for c in pfile.schema_arrow.names if c.endswith(("_mean", "_std"))] + ["num_repeats"]
        codes = column("cell").to_numpy().astype(np.int64)
        cells, first = np.unique(codes, return_index=True)
        if len(cells) and (cells[0] != 0 or cells[-1] != len(cells) - 1):
            raise BenchmarkFileError(f"{path}: column 'cell' is not a dense 0..n-1 index")
        n = len(cells)
        epochs = column("epochs").to_numpy()
        groups = {int(e): np.flatnonzero(epochs == e) for e in np.unique(epochs)}
        per_epoch: dict[int, dict[str, np.ndarray]] = {e: {} for e in groups}
        for c in value_cols:
            values = column(c).to_numpy()
            for e, idx in groups.items():
                col = np.full(n, np.nan)
                col[codes[idx]] = values[idx]
                per_epoch[e][c] = col
        metrics = {(DATASET, split, e): 100.0 * cols[stat_column("final", field, "mean")]
                   for e, cols in per_epoch.items() for split, field in _SPLIT_FIELD.items()}
        params = column("trainable_parameters").to_numpy().astype(np.float64)[first]
        extras = {"trainable_parameters": params, "params_M": params / 1e6}
        hashes = column("module_hash").take(first).to_pylist()
        specs = {}
        for name in ("matrix", "ops"):
            col = column(name, dictionary=True).take(first).combine_chunks()
            specs[name] = (col.dictionary.to_pylist(), col.indices.to_numpy().astype(np.int32))
        return cls(hashes, metrics, extras, per_epoch, matrices=specs["matrix"], ops=specs["ops"],
                   source=f"{path.name} (from {meta.get('source', '?')})")

    # ---- keys ---------------------------------------------------------------------------------------
    def canonical_key(self, arch: str) -> str:
        """A module hash, or a NAS-Bench-1Shot1 architecture string (converted to its NB101 cell)."""
        if not isinstance(arch, str):
            raise ValueError(f"an NB101 key is a module hash or an nb1shot1 architecture string, got {arch!r}")
        if _HASH_RE.match(arch):
            return arch
        from search_spaces.nb1shot1.encoding import arch_to_spec  # lazily: the space imports torch

        matrix, ops = arch_to_spec(arch)
        return spec_hash(matrix, ops)

    def epochs(self) -> list[int]:
        return sorted(self._per_epoch)

    # ---- queries ------------------------------------------------------------------------------------
    def query(self, matrix, ops, epochs=108, legacy_epochs: int | None = None):
        """NB101 metrics of a cell, averaged over repeats (InvalidSpecError if outside NB101's space,
        UnknownArchitectureError if valid but absent, BenchmarkQueryError for an unknown budget).

        Called with a string key instead of a matrix, it is the generic `Benchmark.query(arch, dataset,
        split, epochs) -> float` (percent), e.g. `query(module_hash, "nb101", "valid", 108)`, so that code
        written for any benchmark (the `balenas benchmark query` command) works here too.
        """
        if isinstance(matrix, str):
            return super().query(matrix, ops, split=epochs, epochs=108 if legacy_epochs is None else legacy_epochs)
        cols = self._per_epoch.get(int(epochs))
        if cols is None:
            raise BenchmarkQueryError(f"nb101 has no results at epochs={epochs!r}; available: {self.epochs()}")
        pruned, pruned_ops, h = canonical_spec(matrix, ops)
        row = self._row.get(h)
        if row is None or np.isnan(cols["num_repeats"][row]):
            raise UnknownArchitectureError(f"cell {h} (pruned ops {pruned_ops}) has no {epochs}-epoch result in "
                                           f"the NB101 table ({len(self)} cells, {self.source})")
        out = {"module_hash": h, "epochs": int(epochs), "module_adjacency": pruned, "module_operations": pruned_ops,
               "trainable_parameters": int(self._extras["trainable_parameters"][row]),
               "num_repeats": int(cols["num_repeats"][row])}
        for prefix, stage in (("", "final"), ("halfway_", "halfway")):
            for split, field in (*_SPLIT_FIELD.items(), ("time", "training_time")):
                name = f"{prefix}training_time" if split == "time" else f"{prefix}{split}_accuracy"
                out[name] = float(cols[stat_column(stage, field, "mean")][row])
                out[f"{name}_std"] = float(cols[stat_column(stage, field, "std")][row])
        return out

    def record(self, arch: str, epochs: int | None = None) -> dict[str, float]:
        """bench_nb101_{train,valid,test} (percent) and params_M of a module hash or nb1shot1 string, after
        `epochs` (default 108, NB101's full budget)."""
        return super().record(arch, epochs=epochs)

    def spec(self, module_hash: str) -> tuple[np.ndarray, list[str]]:
        """The stored (pruned matrix, ops) of a module hash."""
        row = self.row(module_hash)
        matrix = self._matrices[0][self._matrices[1][row]]
        v = int(len(matrix) ** 0.5)
        m = np.array([int(c) for c in matrix], dtype=np.int8).reshape(v, v)
        return m, self._ops[0][self._ops[1][row]].split(",")
