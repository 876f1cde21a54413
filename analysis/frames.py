"""Small pandas helpers on the sweep tables: the run's space, data set and benchmark, ground-truth columns,
hyper-parameter columns, op probabilities.

Ground-truth columns are named `bench_<dataset>_<split>` (search_spaces.benchmarks.base.bench_column: data set
lower-cased with '-' -> '_'). Which of them a plot shows is the run's benchmark's rule
(`Benchmark.test_column(dataset)`, found through the space's `benchmark_name`), never a preference of analysis:
analysis knows no space, data set or benchmark by name. A frame's space and data set come from its own `space` /
`dataset` columns, else from the trials table, else from the run's spec (`fill_run_columns`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

BENCH_PREFIX = "bench_"
HP_PREFIX = "hp_"


def dataset_token(dataset: str) -> str:
    """A data set name as it appears inside bench column names ('ImageNet16-120' -> 'imagenet16_120')."""
    return str(dataset).lower().replace("-", "_")


def bench_columns(df: pd.DataFrame) -> list[str]:
    """The ground-truth accuracy columns of a frame (numeric bench_* columns), in frame order."""
    return [c for c in df.columns if str(c).startswith(BENCH_PREFIX) and pd.api.types.is_numeric_dtype(df[c])]


def split_bench_column(name: str) -> tuple[str, str]:
    """'bench_cifar10_valid_valid' -> ('cifar10_valid', 'valid'): the data set token and the split."""
    if not name.startswith(BENCH_PREFIX) or "_" not in name[len(BENCH_PREFIX):]:
        raise ValueError(f"{name!r} is not a bench_<dataset>_<split> column")
    dataset, _, split = name[len(BENCH_PREFIX):].rpartition("_")
    return dataset, split


def run_value(frame: pd.DataFrame, column: str) -> str | None:
    """The first value of `column` in a frame's rows (e.g. its `space` or `dataset`), or None."""
    if column in frame.columns and frame[column].notna().any():
        return str(frame[column].dropna().iloc[0])
    return None


def fill_run_columns(frame: pd.DataFrame, trials: pd.DataFrame | None = None,
                     specs: Mapping[str, dict] | None = None, columns: Sequence[str] = ("space", "dataset"),
                     ) -> pd.DataFrame:
    """`frame` with its `columns` (default: space and dataset) filled where missing: from the trials table
    (joined on run and trial_id), then from the run's spec (`specs`: run name -> spec dict, joined on `run`;
    without a `run` column, the one value all specs agree on). Rows of real sweeps carry both; older or
    hand-made tables may not."""
    out = frame
    keys = [k for k in ("run", "trial_id") if k in frame.columns and trials is not None and k in trials.columns]
    for col in columns:
        if len(out) == 0:
            break
        have = out[col] if col in out.columns else pd.Series(None, index=out.index, dtype="object")
        if have.notna().all():
            continue
        if keys and col in trials.columns and trials[col].notna().any():
            joined = out[keys].merge(trials[keys + [col]].drop_duplicates(keys), on=keys, how="left")[col]
            have = have.where(have.notna(), joined.to_numpy())
        if specs and have.isna().any():
            by_run = {str(run): spec.get(col) for run, spec in specs.items() if isinstance(spec, dict)}
            if "run" in out.columns:
                from_spec = out["run"].astype(str).map(by_run)
            else:
                values = {v for v in by_run.values() if v is not None}
                from_spec = pd.Series(values.pop() if len(values) == 1 else None, index=out.index, dtype="object")
            have = have.where(have.notna(), from_spec)
        if have.notna().any():
            out = out.assign(**{col: have.astype("object")})
    return out


def tables_space(tables) -> str | None:
    """The search space of a run set (`analysis.load.RunTables`): the first its trials, epochs, selections or
    samples name, else the first its specs name; None where nothing says."""
    for frame in (tables.trials, tables.epochs, tables.selections, tables.samples):
        found = run_value(frame, "space")
        if found is not None:
            return found
    return next((str(spec["space"]) for spec in tables.specs.values() if isinstance(spec, dict) and spec.get("space")),
                None)


def benchmark_class_of(space: str | None):
    """The ground-truth benchmark class of a space (`SearchSpace.benchmark_name` in
    search_spaces.benchmarks.registry), or None for an unknown space or one without a benchmark."""
    from search_spaces.benchmarks.registry import benchmark_class

    sp = _known_space(space)
    name = sp.benchmark_name if sp is not None else None
    return benchmark_class(name) if name else None


def test_column(df: pd.DataFrame, dataset: str | None, space: str | None = None) -> str | None:
    """The ground-truth column a plot of a run shows for its search on `dataset`, if the frame has values in it.

    The run's benchmark decides (`Benchmark.test_column(dataset)`, e.g. the NB301 sample's is its CIFAR-10
    validation accuracy); where the frame lacks that column, the other record keys of the benchmark's report
    column that holds it, in the benchmark's order (`ReportColumn.bench`). A space without a benchmark (or an
    unknown one) gets the generic rule of `Benchmark.test_column`.
    """
    from search_spaces.benchmarks.base import Benchmark

    cls = benchmark_class_of(space) or Benchmark
    try:
        wanted = cls.test_column(str(dataset) if dataset is not None else "")
    except ValueError:  # the rule needs the data set, and it is unknown
        return None
    candidates = [wanted]
    for col in cls.report_columns:
        if wanted in col.bench:
            candidates += [b for b in col.bench if b not in candidates]
    for name in candidates:
        if name in df.columns and pd.api.types.is_numeric_dtype(df[name]) and df[name].notna().any():
            return name
    return None


def column_title(space: str | None, column: str) -> str:
    """How the run's benchmark names a ground-truth column in its results table ('<group> <split>' of the
    `report_columns` entry holding it, e.g. 'NAS-Bench-301 valid'), else the column's own name."""
    cls = benchmark_class_of(space)
    for col in cls.report_columns if cls is not None else ():
        if column in col.bench:
            return f"{col.group} {col.split}"
    return column


@lru_cache(maxsize=4)
def _open_cached(name: str, path: str, mtime: float):
    from search_spaces.benchmarks.registry import open_benchmark

    return open_benchmark(name, path)


def _packaged_benchmark(path: Path) -> str | None:
    """The benchmark whose packaged table `path` is, if any."""
    from search_spaces.benchmarks.registry import BUILTIN_TABLES, builtin_table

    for name in BUILTIN_TABLES:
        table = builtin_table(name)
        if table is not None and table.is_file() and table.resolve() == path.resolve():
            return name
    return None


def open_benchmark_table(path: str | Path, space: str | None = None):
    """The ground-truth table of a search space (its `benchmark_name`, search_spaces.benchmarks), cached per file
    and mtime; a packaged table's name (`nb201`) stands for its file. Without a known space, only a packaged
    table (by name or path) says which benchmark reads it."""
    from search_spaces.benchmarks.registry import is_builtin_reference, table_path

    named = str(path) if is_builtin_reference(path) else None
    path = table_path(named) if named else Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"benchmark table not found: {path}")
    sp = _known_space(space)
    if sp is not None:
        name = sp.benchmark_name
        if name is None:
            raise ValueError(f"search space {space!r} has no ground-truth benchmark to open {path} with")
    else:
        name = named or _packaged_benchmark(path)
        if name is None:
            raise ValueError(f"which benchmark reads {path} is unknown: the run's rows and spec name no known search "
                             "space (the space's `benchmark_name` decides)")
    return _open_cached(name, str(path.resolve()), path.stat().st_mtime)


def attach_ground_truth(df: pd.DataFrame, bench, arch_column: str = "arch", epochs: int | None = None) -> pd.DataFrame:
    """`df` plus the bench_* columns of `arch_column` it does not have yet, looked up in `bench`
    (a search_spaces.benchmarks Benchmark) at `epochs` (default: the benchmark's own default budget).
    Architectures the table lacks get NaN."""
    if df.empty or arch_column not in df.columns:
        return df
    records = {}
    for arch in df[arch_column].dropna().unique():
        records[arch] = bench.record(arch, epochs) if arch in bench else {}
    found = pd.DataFrame.from_dict(records, orient="index")
    new = [c for c in found.columns if str(c).startswith(BENCH_PREFIX) and c not in df.columns]
    if not new:
        return df
    return df.assign(**{c: df[arch_column].map(found[c]).astype(float) for c in new})


def hp_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if str(c).startswith(HP_PREFIX)]


def varying_columns(df: pd.DataFrame, columns: Sequence[str], within: str | None = "method") -> list[str]:
    """Those of `columns` that take more than one value (NaN counts as a value) inside some `within` group."""
    out = []
    for c in columns:
        if c not in df.columns:
            continue
        values = df[c].map(_hashable)
        if within and within in df.columns:
            varies = values.groupby(df[within], dropna=False).nunique(dropna=False).gt(1).any()
        else:
            varies = values.nunique(dropna=False) > 1
        if varies:
            out.append(c)
    return out


def config_keys(df: pd.DataFrame, with_dataset: bool = True) -> list[str]:
    """The columns that tell a sweep's configurations apart: method, the hyper-parameters that vary within a
    method, and the search data set where a frame holds several."""
    keys = ["method"]
    if with_dataset and "dataset" in df.columns and df["dataset"].nunique(dropna=True) > 1:
        keys = ["dataset", "method"]
    return keys + varying_columns(df, hp_columns(df))


def config_label(keys: Sequence[str], values: Sequence) -> str:
    """'balenas (lambda=0.1) [searched on cifar100]' from config_keys and one row's values."""
    parts = dict(zip(keys, values))
    label = str(parts.pop("method"))
    extras = [f"{k[len(HP_PREFIX):]}={_fmt_value(v)}" for k, v in parts.items()
              if k.startswith(HP_PREFIX) and not _isnan(v)]
    if extras:
        label += f" ({', '.join(extras)})"
    if "dataset" in parts:
        label += f" [searched on {parts['dataset']}]"
    return label


def config_labels(df: pd.DataFrame, with_dataset: bool = True) -> pd.Series:
    """config_label of every row of `df` (index aligned)."""
    keys = config_keys(df, with_dataset)
    if df.empty:
        return pd.Series([], index=df.index, dtype="object")
    return pd.Series([config_label(keys, vals) for vals in df[keys].itertuples(index=False, name=None)],
                     index=df.index, dtype="object")


def _isnan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _fmt_value(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def config_key_value(v):
    """A value usable as a groupby key (lists/dicts as JSON text)."""
    return _hashable(v)


def _hashable(value):
    if isinstance(value, (list, dict, np.ndarray)):
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value, sort_keys=True)
    return value


def _known_space(space: str | None):
    from search_spaces.space import available_spaces, get_space

    return get_space(str(space)) if space and str(space) in available_spaces() else None


def option_names(space: str | None, group: str, n: int) -> list[str]:
    """Names of a group's options from the space (`option_names`), or 'op0'.. when the space is unknown."""
    sp = _known_space(space)
    names = list(sp.option_names.get(group, ())) if sp is not None else []
    return names if len(names) == n else [f"op{i}" for i in range(n)]


def choice_labels(space: str | None, group: str, n: int) -> list[str]:
    """Labels of a group's rows from the space (`row_names`), or 'group[i]' when the space is unknown."""
    sp = _known_space(space)
    labels = sp.row_names(group) if sp is not None and group in sp.arch_shapes else []
    return list(labels) if len(labels) == n else [f"{group}[{i}]" for i in range(n)]


def op_probabilities(epochs: pd.DataFrame) -> pd.DataFrame:
    """The `op_probs` JSON of every epoch row as a long frame.

    Columns: run, trial_id, method, seed, epoch, space, group, row, row_label, option, op, prob. Rows whose
    op_probs is missing or not valid JSON are skipped.
    """
    cols = ["run", "trial_id", "method", "seed", "epoch", "space", "group", "row", "row_label", "option", "op",
            "prob"]
    if "op_probs" not in epochs.columns or epochs.empty:
        return pd.DataFrame(columns=cols)
    records = []
    names_cache: dict[tuple, tuple[list[str], list[str]]] = {}
    for rec in epochs.itertuples(index=False):
        raw = getattr(rec, "op_probs", None)
        if not isinstance(raw, str) or not raw:
            continue
        try:
            groups = json.loads(raw)
        except json.JSONDecodeError:
            continue
        space = getattr(rec, "space", None)
        for group, matrix in groups.items():
            arr = np.asarray(matrix, dtype=float)
            if arr.ndim != 2:
                continue
            key = (space, group, arr.shape)
            if key not in names_cache:
                names_cache[key] = (choice_labels(space, group, arr.shape[0]),
                                    option_names(space, group, arr.shape[1]))
            rows, ops = names_cache[key]
            for r in range(arr.shape[0]):
                for o in range(arr.shape[1]):
                    records.append((getattr(rec, "run", None), rec.trial_id, rec.method, rec.seed, rec.epoch, space,
                                    group, r, rows[r], o, ops[o], arr[r, o]))
    return pd.DataFrame.from_records(records, columns=cols)
