"""Load one or more sweep run directories into pandas: `load(run_dir_or_glob, *more, filters=None)`.

A run directory holds `spec.yaml` and the Parquet tables the sweep writes (`trainables.runs.store` layout:
`<run_dir>/<table>/trial_id=<id>/*.parquet`). Tables are read through pyarrow datasets (union schema over all
files, filters pushed down, hidden/temporary files skipped, the `trial_id` partition key restored as a string
column). Several run directories, or a glob, load as one set with a `run` column; a
missing table becomes an empty frame with the table's core columns and a note in `RunTables.notes`.

An unreadable Parquet file (not Parquet, truncated, damaged, or a column whose type the table's other files do
not share) is one `CorruptTableError` (a ValueError; `.path`, `.reason`, `.files`) naming the file and why;
`load(..., skip_corrupt=True)` leaves such files out instead, warns (`SkippedFileWarning`) naming each, and lists
them in `RunTables.skipped`.
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import yaml

from trainables.runs import store
from trainables.runs.fsfolder import Folder, is_uri, location
from trainables.runs.store import CorruptTableError, Unreadable

__all__ = ["CORE_COLUMNS", "TABLES", "CorruptTableError", "RunTables", "SkippedFileWarning", "Unreadable", "load",
           "read_table", "resolve_runs"]

TABLES: tuple[str, ...] = ("epochs", "trials", "samples", "selections")
SPEC_FILE = "spec.yaml"
#: Columns every table has, so that an empty (missing) table still answers `df["method"]` and groupbys.
CORE_COLUMNS: dict[str, tuple[str, ...]] = {
    "epochs": ("trial_id", "method", "seed", "epoch", "genotype", "epoch_time_s", "dataset", "space"),
    "trials": ("trial_id", "method", "seed", "status", "error", "final_genotype", "epochs_done", "dataset",
               "space"),
    "samples": ("trial_id", "method", "seed", "sample_idx", "arch"),
    "selections": ("trial_id", "method", "seed", "rule", "arch"),
}
_KEYS = (*TABLES, "spec")
#: partition keys that are identifiers (kept as strings even when they look numeric)
STRING_KEYS = frozenset({"trial_id", "run"})
_FILTER_OPS = {"==", "=", "!=", "<", "<=", ">", ">=", "in", "not in"}


class SkippedFileWarning(UserWarning):
    """`load(..., skip_corrupt=True)` left an unreadable file out (the message names it and says why)."""


@dataclass
class RunTables:
    """The tables of one sweep (or several, with a `run` column), as attributes and as keys.

    `spec` is the run's validated spec (a dict) for one run, or {run name: spec} for several; `specs` is always
    {run name: spec}. `runs` maps run names to their folders; `notes` says what was missing or read unfiltered;
    `skipped` the unreadable files left out (`load(..., skip_corrupt=True)`), each with its path and reason.
    """

    epochs: pd.DataFrame
    trials: pd.DataFrame
    samples: pd.DataFrame
    selections: pd.DataFrame
    spec: dict
    specs: dict[str, dict] = field(default_factory=dict)
    runs: dict[str, Path | Folder] = field(default_factory=dict)  # Path where the folder is on a local disk
    notes: list[str] = field(default_factory=list)
    skipped: list[Unreadable] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        if key not in _KEYS:
            raise KeyError(f"{key!r}: a run has {', '.join(_KEYS)}")
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in _KEYS

    def __iter__(self) -> Iterator[str]:
        return iter(_KEYS)

    def keys(self) -> tuple[str, ...]:
        return _KEYS

    def items(self) -> list[tuple[str, Any]]:
        return [(k, self[k]) for k in _KEYS]


def _has_magic(text: str) -> bool:
    return glob.has_magic(text)


def resolve_runs(paths: Iterable[str | os.PathLike | Folder]) -> list[Folder]:
    """Run directories from paths, globs, pyarrow filesystem URIs (s3://, gs://, file://) and `Folder`s, in the
    given order (globs sorted), without duplicates."""
    out: list[Folder] = []
    for item in paths:
        if isinstance(item, Folder) or is_uri(item):
            folder = location(item)
            if not folder.is_dir():
                raise FileNotFoundError(f"run directory not found: {folder}")
            if not _is_run_dir(folder):
                raise FileNotFoundError(f"{folder} is not a run directory: it has no {SPEC_FILE} and none of the "
                                        f"table folders {', '.join(TABLES)}")
            if folder not in out:
                out.append(folder)
            continue
        text = os.fspath(item)
        if _has_magic(text):
            matches = [Path(p) for p in sorted(glob.glob(os.path.expanduser(text))) if Path(p).is_dir()]
            if not matches:
                raise FileNotFoundError(f"no run directory matches {text!r}")
            candidates = [p for p in matches if _is_run_dir(location(p))]
            if not candidates:
                raise FileNotFoundError(f"{text!r} matches {len(matches)} folder(s) but none is a run directory "
                                        f"(one with {SPEC_FILE} or a table folder {', '.join(TABLES)})")
        else:
            path = Path(text).expanduser()
            if not path.is_dir():
                raise FileNotFoundError(f"run directory not found: {path}")
            if not _is_run_dir(location(path)):
                raise FileNotFoundError(f"{path} is not a run directory: it has no {SPEC_FILE} and none of the "
                                        f"table folders {', '.join(TABLES)}")
            candidates = [path]
        for p in candidates:
            if location(p) not in out:
                out.append(location(p))
    if not out:
        raise FileNotFoundError("no run directory given")
    return out


def _is_run_dir(path: Folder) -> bool:
    return (path / SPEC_FILE).is_file() or any((path / t).is_dir() for t in TABLES)


def _run_names(paths: list[Folder]) -> list[str]:
    """Folder names, or whole paths where two runs share a folder name."""
    names = [p.name or str(p) for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]


def _normalise_filters(filters: Any) -> tuple[Any, set[str] | None]:
    """(pyarrow expression or None, referenced columns or None when unknown) from a filter spec.

    Accepted: a dict {column: value or list of values}; a list of (column, op, value) tuples (AND); a list of
    such lists (OR of ANDs, as in pandas.read_parquet); or a pyarrow compute Expression.
    """
    if filters is None:
        return None, set()
    if isinstance(filters, pc.Expression):
        return filters, None
    if isinstance(filters, Mapping):
        if not filters:
            return None, set()
        triples = []
        for col, value in filters.items():
            if isinstance(value, (list, tuple, set, frozenset)):
                triples.append((str(col), "in", list(value)))
            else:
                triples.append((str(col), "==", value))
        filters = triples
    if not isinstance(filters, list) or not filters:
        raise ValueError(f"filters must be a dict, a non-empty list of (column, op, value) tuples, a list of such "
                         f"lists, or a pyarrow Expression; got {filters!r}")
    groups = filters if isinstance(filters[0], list) else [filters]
    columns: set[str] = set()
    for group in groups:
        if not isinstance(group, list) or not group:
            raise ValueError(f"filter group must be a non-empty list of (column, op, value) tuples, got {group!r}")
        for term in group:
            if not isinstance(term, tuple) or len(term) != 3:
                raise ValueError(f"filter term must be a (column, op, value) tuple, got {term!r}")
            col, op, _ = term
            if op not in _FILTER_OPS:
                raise ValueError(f"unknown filter operator {op!r} in {term!r}; use one of {sorted(_FILTER_OPS)}")
            columns.add(str(col))
    return pq.filters_to_expression(groups), columns


def _table_files(folder: Folder) -> list[Folder]:
    """The table's Parquet files, skipping hidden/temporary ones ('.' or '_' prefix anywhere below `folder`)."""
    return [f for f in folder.files() if f.path.endswith(".parquet")
            and not any(part.startswith((".", "_")) for part in folder.relative_parts(f))]


def _partition_keys(folder: Folder, files: list[Folder]) -> list[str]:
    keys: list[str] = []
    for f in files:
        for part in folder.relative_parts(f)[:-1]:
            if "=" in part:
                key = part.split("=", 1)[0]
                if key not in keys:
                    keys.append(key)
    return keys


def _restore_dtype(values: pd.Series, key: str) -> pd.Series:
    """Hive partition values come back as strings; trial ids stay strings, numeric keys become numbers."""
    if key in STRING_KEYS:
        return values.astype("object")
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.notna().sum():
        if (numeric.dropna() % 1 == 0).all():
            return numeric.astype("Int64") if numeric.isna().any() else numeric.astype("int64")
        return numeric
    return values.astype("object")


def read_table(folder: str | os.PathLike | Folder, filters: Any = None,
               skipped: list[Unreadable] | None = None) -> pd.DataFrame:
    """One hive-partitioned table folder as pandas, through a pyarrow dataset over the union of the files'
    schemas (a column that only some trials have is kept; all-null columns widen to the other files' type).

    `filters`: as `load`'s. Partition keys (e.g. trial_id) are columns again, first, with their dtype restored.
    An unreadable file is a CorruptTableError naming it; given a `skipped` list, such files are left out and
    appended to it.
    """
    folder = location(folder)
    expr, _ = _normalise_filters(filters)
    files = _table_files(folder)
    if not files:
        return pd.DataFrame()
    schemas, bad = store.scan_files(files)
    store.settle(bad, skipped)
    if not schemas:
        return pd.DataFrame()
    files = [f for f, _ in schemas]
    try:
        schema = pa.unify_schemas([s for _, s in schemas], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise ValueError(f"{folder}: the Parquet files do not share compatible columns ({err})") from None
    keys = [k for k in _partition_keys(folder, files) if k not in schema.names]
    part_schema = pa.schema([(k, pa.string()) for k in keys])
    partitioning = ds.partitioning(part_schema, flavor="hive") if keys else None
    table, bad = store.read_files(folder, files, pa.unify_schemas([schema, part_schema]), partitioning,
                                  filter=expr)
    store.settle(bad, skipped)
    frame = table.to_pandas()
    for k in keys:
        frame[k] = _restore_dtype(frame[k], k)
    return frame[keys + [c for c in frame.columns if c not in keys]]


def _table_columns(folder: Folder) -> set[str]:
    """Column names of a stored table (file metadata only): the union over its readable files plus partition
    keys (an unreadable file is for `read_table` to report)."""
    files = _table_files(folder)
    names: set[str] = set(_partition_keys(folder, files))
    for _, schema in store.scan_files(files)[0]:
        names.update(schema.names)
    return names


def _empty(table: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in CORE_COLUMNS[table]})


def _read_one(run_dir: Folder, table: str, expr: Any, columns: set[str] | None, notes: list[str],
              skipped: list[Unreadable] | None) -> pd.DataFrame:
    folder = run_dir / table
    if not folder.is_dir():
        notes.append(f"{run_dir.name}: no {table!r} table ({folder} is missing)")
        return _empty(table)
    if expr is not None and columns is not None:
        missing = columns - _table_columns(folder)
        if missing:
            notes.append(f"{run_dir.name}: table {table!r} has no column(s) {sorted(missing)}; read unfiltered")
            expr = None
    before = len(skipped) if skipped is not None else 0
    frame = read_table(folder, expr, skipped=skipped)
    left_out = len(skipped) - before if skipped is not None else 0
    if frame.empty and len(frame.columns) == 0:
        notes.append(f"{run_dir.name}: table {table!r} has no readable Parquet files" if left_out
                     else f"{run_dir.name}: table {table!r} has no Parquet files")
        return _empty(table)
    return frame


def _read_spec(run_dir: Folder, notes: list[str]) -> dict:
    path = run_dir / SPEC_FILE
    if not path.is_file():
        notes.append(f"{run_dir.name}: no {SPEC_FILE}")
        return {}
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from err
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: a spec must be a mapping, got {type(spec).__name__}")
    return spec


def load(run_dir_or_glob: str | os.PathLike | Folder, *more: str | os.PathLike | Folder,
         filters: Any = None, skip_corrupt: bool = False) -> RunTables:
    """The tables of one or more run directories (paths, globs, pyarrow filesystem URIs or `Folder`s) as one
    `RunTables`.

    `filters` (dict, list of tuples, list of lists, or pyarrow Expression) is pushed down to every table that
    has the filtered columns; a table without them is read unfiltered and a note says so. Every frame gets a
    `run` column (the run folder's name).

    An unreadable Parquet file is a CorruptTableError naming it; with `skip_corrupt=True` such files are left
    out instead, each with a `SkippedFileWarning` naming it and why, and listed in `RunTables.skipped`.
    """
    runs = resolve_runs([run_dir_or_glob, *more])
    names = _run_names(runs)
    expr, columns = _normalise_filters(filters)
    notes: list[str] = []
    skipped: list[Unreadable] | None = [] if skip_corrupt else None
    parts: dict[str, list[pd.DataFrame]] = {t: [] for t in TABLES}
    specs: dict[str, dict] = {}
    for name, run_dir in zip(names, runs):
        specs[name] = _read_spec(run_dir, notes)
        for table in TABLES:
            frame = _read_one(run_dir, table, expr, columns, notes, skipped)
            frame.insert(0, "run", pd.Series([name] * len(frame), index=frame.index, dtype="object"))
            parts[table].append(frame)
    frames = {t: _concat(parts[t]) for t in TABLES}
    spec = specs[names[0]] if len(names) == 1 else dict(specs)
    runs_by_name = {n: r.local_path() or r for n, r in zip(names, runs)}
    for item in skipped or []:
        warnings.warn(f"skipped unreadable Parquet file {item.path}: {item.reason}", SkippedFileWarning,
                      stacklevel=2)
    return RunTables(**frames, spec=spec, specs=specs, runs=runs_by_name, notes=notes, skipped=skipped or [])


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    non_empty = [f for f in frames if len(f)]
    if not non_empty:
        cols: list[str] = []
        for f in frames:
            cols += [c for c in f.columns if c not in cols]
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    if len(non_empty) == 1:
        return non_empty[0].reset_index(drop=True)
    return pd.concat(non_empty, ignore_index=True, sort=False)
