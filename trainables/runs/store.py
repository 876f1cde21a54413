"""The Parquet store of a sweep: one folder per table in the run directory, one file per key.

`run_dir` is a path, a pyarrow filesystem URI (`s3://bucket/runs/x`, `gs://...`, `file:///...`) or an
`trainables.runs.fsfolder.Folder` (any pyarrow filesystem object plus a path); every read and write goes through
`pyarrow.fs`, so object storage works where a cluster has no shared disk.

Layout: `<run_dir>/<table>/<key>=<value>/part.parquet` (hive partitioning, e.g. `epochs/trial_id=ab12_00003/`),
so `pandas.read_parquet(<run_dir>/<table>)` reads a whole table and a rewrite of one key touches one file.

Guarantees:
- atomic: every file is written to a hidden temporary name in its final folder and moved into place
  (`FileSystem.move`: a rename on disks, one object creation on object stores), so a crash mid-write leaves
  the previous complete file; readers skip hidden (`.`/`_`) files.
- keyed: `write_partition` replaces the key's whole partition, so a retried or resumed trial that writes its
  rows again replaces them instead of duplicating them.
- one schema per table: Parquet readers take a table's schema from its first file, so a column that only
  later trials have (another method's hyper-parameters or metrics) would be dropped, and a column that is all
  null in the first file would fail to cast. The writer therefore keeps `_common_metadata` (the union schema)
  and, when a write brings a new column or widens a type, conforms every existing partition to the union.
  Writers of one table must be one process at a time (the sweep driver); a file lock guards the table folder
  on local disks, a process lock elsewhere.

Readers: `read_table(run_dir, table, filters=None, columns=None, skipped=None)` (pandas, partition key as a plain
string column), `read_partition(run_dir, table, trial_id)` and `table_path(run_dir, table)`.

Unreadable files: a file that is not Parquet, is truncated, has damaged data pages or a column of a type the
table's other files do not share is one `CorruptTableError` (a ValueError) naming each such file and why
(`.path`, `.reason`, `.files`); readers given a `skipped` list leave those files out and append them there
instead. The footers are read first (one small read per file, which the union schema needs anyway); only when
the data itself then fails is each file read alone to find the damaged one. `scan_files`, `read_files` and
`settle` are these steps for other readers of table folders (`analysis.load`).
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from trainables.runs.fsfolder import Folder, location, process_lock

PART = "part.parquet"
SCHEMA_FILE = "_common_metadata"
LOCK_FILE = ".lock"
DEFAULT_KEY = "trial_id"


@dataclass(frozen=True)
class Unreadable:
    """A table file left out of a read: its path and why it could not be read."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path} ({self.reason})"


class CorruptTableError(ValueError):
    """Table files that cannot be read (not Parquet, truncated, damaged, or columns that do not fit the table).

    `.files` lists every such file found (`Unreadable`: path, reason); `.path` and `.reason` are the first's."""

    SHOWN = 5

    def __init__(self, files: Sequence[Unreadable]):
        self.files = list(files)
        self.path, self.reason = self.files[0].path, self.files[0].reason
        if len(self.files) == 1:
            text = f"unreadable Parquet file {self.files[0]}"
        else:
            shown = "; ".join(str(f) for f in self.files[:self.SHOWN])
            more = len(self.files) - self.SHOWN
            text = (f"{len(self.files)} unreadable Parquet files: {shown}"
                    + (f"; and {more} more" if more > 0 else ""))
        super().__init__(text)

    def __reduce__(self):
        return type(self), (self.files,)


def _is_damage(err: BaseException) -> bool:
    """What reading a damaged file raises: pyarrow's errors (no Parquet magic, a truncated or undecodable
    footer) and the decompressors' OSError (damaged pages). A missing file and running out of memory are not."""
    return isinstance(err, (pa.ArrowException, OSError)) and not isinstance(err, (FileNotFoundError, MemoryError))


def _reason(err: BaseException) -> str:
    """The error's first line, without pyarrow's "Could not open Parquet input source '<path>': " (the path is
    given beside it)."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return re.sub(r"^Could not open Parquet input source '.*?': ", "", line)


def settle(unreadable: Sequence[Unreadable], skipped: list[Unreadable] | None) -> None:
    """Raise `CorruptTableError` for `unreadable` files, or (with a `skipped` list) append them to it."""
    if not unreadable:
        return
    if skipped is None:
        raise CorruptTableError(unreadable)
    skipped.extend(unreadable)


def scan_files(files: Sequence[Folder]) -> tuple[list[tuple[Folder, pa.Schema]], list[Unreadable]]:
    """(file, schema) of each readable file (the schema from its footer, metadata removed), and the files that
    cannot join the table: unreadable footers, and a column whose type cannot join the type most files have for
    it (the files of the most common type are kept)."""
    schemas: list[tuple[Folder, pa.Schema]] = []
    bad: list[Unreadable] = []
    for f in files:
        try:
            schemas.append((f, pq.read_schema(f.path, filesystem=f.fs).remove_metadata()))
        except Exception as err:
            if not _is_damage(err):
                raise
            bad.append(Unreadable(str(f), _reason(err)))
    misfits = _misfits(schemas)
    bad += [Unreadable(str(f), misfits[i]) for i, (f, _) in enumerate(schemas) if i in misfits]
    return [item for i, item in enumerate(schemas) if i not in misfits], bad


def _misfits(schemas: Sequence[tuple[Folder, pa.Schema]]) -> dict[int, str]:
    """Indices of the files with a column whose type cannot be promoted to the type most files have for it."""
    types: dict[str, dict[pa.DataType, list[int]]] = {}
    for i, (_, schema) in enumerate(schemas):
        for fld in schema:
            types.setdefault(fld.name, {}).setdefault(fld.type, []).append(i)
    bad: dict[int, str] = {}
    for name, groups in types.items():
        if len(groups) < 2:
            continue
        ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))  # stable: ties keep the first file's type
        common, common_files = ordered[0]
        accepted = pa.schema([pa.field(name, common)])
        for typ, indices in ordered[1:]:
            try:
                accepted = pa.unify_schemas([accepted, pa.schema([pa.field(name, typ)])],
                                            promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                for i in indices:
                    bad.setdefault(i, f"column {name!r} is {typ} here but {common} in {len(common_files)} other "
                                      f"file(s) of the table")
    return bad


def read_files(folder: Folder, files: Sequence[Folder], schema: pa.Schema, partitioning: Any = None,
               columns: Sequence[str] | None = None, filter: Any = None) -> tuple[pa.Table, list[Unreadable]]:
    """`files` (below `folder`, all readable footers) as one Arrow table through a pyarrow dataset with `schema`.

    Where the dataset fails on damaged data, each file is read alone to find the damaged ones, which are
    returned second and left out of the table; an error no single file explains (a bad filter or column) is
    raised as it is."""
    def scan(chosen: Sequence[Folder]) -> pa.Table:
        dataset = ds.dataset([f.path for f in chosen], format="parquet", partitioning=partitioning,
                             filesystem=folder.fs, partition_base_dir=folder.path, schema=schema)
        return dataset.to_table(columns=list(columns) if columns else None, filter=filter)

    try:
        return scan(files), []
    except Exception as err:
        if not _is_damage(err):
            raise
        bad = []
        for f in files:
            try:
                pq.read_table(f.path, filesystem=f.fs, partitioning=None)
            except Exception as file_err:
                if not _is_damage(file_err):
                    raise
                bad.append(Unreadable(str(f), _reason(file_err)))
        if not bad:
            raise
    names = {u.path for u in bad}
    return scan([f for f in files if str(f) not in names]), bad


def table_path(run_dir: str | os.PathLike | Folder, table: str) -> Folder:
    if not table or "/" in table or table.startswith((".", "_")):
        raise ValueError(f"table name must be a plain folder name, got {table!r}")
    return location(run_dir) / table


def _check_key_value(key: str, value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in "/\\=") or text.startswith((".", "_")) or text != text.strip():
        raise ValueError(f"{key} value {value!r} cannot name a partition folder (no '/', '\\\\', '=', "
                         f"leading '.'/'_' or surrounding spaces)")
    return text


def partition_path(run_dir: str | os.PathLike | Folder, table: str, value: Any, key: str = DEFAULT_KEY) -> Folder:
    return table_path(run_dir, table) / f"{key}={_check_key_value(key, value)}" / PART


@contextmanager
def _locked(folder: Folder) -> Iterator[None]:
    folder.mkdir()
    with process_lock(folder):
        local = folder.local_path()
        if local is None:
            yield
            return
        with open(local / LOCK_FILE, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _atomic_write_table(table: pa.Table, path: Folder) -> None:
    path.write_atomic(lambda tmp: pq.write_table(table, tmp, filesystem=path.fs))


def _atomic_write_schema(schema: pa.Schema, path: Folder) -> None:
    path.write_atomic(lambda tmp: pq.write_metadata(schema, tmp, filesystem=path.fs))


def _to_arrow(df: pd.DataFrame) -> pa.Table:
    """A DataFrame as an Arrow table without the pandas index; object columns of mixed scalars -> error."""
    try:
        return pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise ValueError(f"cannot store these rows as Parquet: {err}") from None


def _unify(schemas: Sequence[pa.Schema]) -> pa.Schema:
    try:
        return pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise ValueError(f"rows do not fit the table's existing columns: {err}") from None


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with exactly `schema`'s columns (missing ones null) in its order and types."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            col = table.column(field.name)
            columns.append(col if col.type == field.type else col.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _partition_files(folder: Folder) -> list[Folder]:
    """`<key>=<value>/part.parquet` files directly below the table folder."""
    out = []
    for f in folder.files():
        parts = folder.relative_parts(f)
        if len(parts) == 2 and parts[1] == PART and "=" in parts[0] and not parts[0].startswith((".", "_")):
            out.append(f)
    return out


def _read_schema(path: Folder) -> pa.Schema:
    try:
        return pq.read_schema(path.path, filesystem=path.fs)
    except Exception as err:
        if not _is_damage(err):
            raise
        raise CorruptTableError([Unreadable(str(path), _reason(err))]) from err


def _read_file(path: Folder, **kwargs) -> pa.Table:
    """One whole file; a damaged one is a CorruptTableError naming it (a bad filter or column is not)."""
    try:
        return pq.read_table(path.path, filesystem=path.fs, **kwargs)
    except Exception as err:
        if not _is_damage(err):
            raise
        try:  # was it the file, or the filter / columns asked for?
            pq.read_table(path.path, filesystem=path.fs, partitioning=None)
        except Exception as file_err:
            if not _is_damage(file_err):
                raise
            raise CorruptTableError([Unreadable(str(path), _reason(file_err))]) from err
        raise


def write_partition(run_dir: str | os.PathLike | Folder, table: str, df: pd.DataFrame, trial_id: Any, *,
                    key: str = DEFAULT_KEY) -> Folder:
    """Replace the rows of `key=trial_id` in `table` with `df` (atomically); returns the file written.

    `df` may hold the key column (every value must then equal `trial_id`); it is stored in the folder name.
    """
    value = _check_key_value(key, trial_id)
    if key in df.columns:
        others = set(df[key].astype(str)) - {value}
        if others:
            raise ValueError(f"rows for {key}={value!r} also carry {key} values {sorted(others)}")
        df = df.drop(columns=[key])
    folder = table_path(run_dir, table)
    path = partition_path(run_dir, table, value, key)
    new = _to_arrow(df)
    with _locked(folder):
        schema_path = folder / SCHEMA_FILE
        old = _read_schema(schema_path).remove_metadata() if schema_path.exists() else None
        union = _unify([old, new.schema] if old is not None else [new.schema])
        if old is not None and not union.equals(old):
            for other in _partition_files(folder):  # widen every earlier partition to the new union
                if other != path:
                    _atomic_write_table(_conform(_read_file(other, partitioning=None), union), other)
        if old is None or not union.equals(old):
            _atomic_write_schema(union, schema_path)
        _atomic_write_table(_conform(new, union), path)
    return path


def write_table(run_dir: str | os.PathLike | Folder, table: str, df: pd.DataFrame) -> Folder:
    """A whole unpartitioned table (`<table>/part.parquet`), replaced atomically."""
    folder = table_path(run_dir, table)
    with _locked(folder):
        path = folder / PART
        _atomic_write_table(_to_arrow(df), path)
    return path


def partitions(run_dir: str | os.PathLike | Folder, table: str, key: str = DEFAULT_KEY) -> list[str]:
    """The key values that have a partition in `table` (sorted)."""
    folder = table_path(run_dir, table)
    prefix = f"{key}="
    names = [p.parent.name for p in _partition_files(folder)]
    return sorted(n[len(prefix):] for n in names if n.startswith(prefix))


def read_partition(run_dir: str | os.PathLike | Folder, table: str, trial_id: Any,
                   key: str = DEFAULT_KEY) -> pd.DataFrame:
    """One partition's rows (without the key column), or an empty frame when it does not exist; an unreadable
    file is a CorruptTableError naming it."""
    path = partition_path(run_dir, table, trial_id, key)
    if not path.exists():
        return pd.DataFrame()
    return _read_file(path, partitioning=None).to_pandas()


def read_table(run_dir: str | os.PathLike | Folder, table: str, filters: Any = None,
               columns: Sequence[str] | None = None, key: str = DEFAULT_KEY,
               skipped: list[Unreadable] | None = None) -> pd.DataFrame:
    """A whole table as pandas; `filters` as in `pandas.read_parquet` (list of tuples or a pyarrow expression).

    The schema is the union of all files' schemas (robust to files written before a widening finished);
    the partition key comes back as a plain string column. A missing table is a FileNotFoundError. Unreadable
    files are one CorruptTableError naming them; given a `skipped` list, they are left out and appended to it.
    """
    folder = table_path(run_dir, table)
    if not folder.is_dir():
        raise FileNotFoundError(f"no table {table!r} in {location(run_dir)} (expected the folder {folder})")
    files = _partition_files(folder)
    single = folder / PART
    wanted = list(columns) if columns else None
    if not files and single.exists():
        try:
            return _read_file(single, columns=wanted, filters=filters).to_pandas()
        except CorruptTableError as err:
            settle(err.files, skipped)
            return pd.DataFrame(columns=wanted)
    schemas, bad = scan_files(files)
    settle(bad, skipped)
    if not schemas:
        return pd.DataFrame(columns=wanted)
    files = [f for f, _ in schemas]
    schema = _unify([s for _, s in schemas])
    partitioning = ds.partitioning(pa.schema([(key, pa.string())]), flavor="hive")
    expr = pq.filters_to_expression(filters) if isinstance(filters, list) else filters
    arrow, bad = read_files(folder, files, schema.append(pa.field(key, pa.string())), partitioning, wanted, expr)
    settle(bad, skipped)
    out = arrow.to_pandas()
    if key in out.columns:  # the key first, as people look for it there
        out = out[[key] + [c for c in out.columns if c != key]]
    return out
