"""Small pandas helpers on the sweep tables: ground-truth columns, hyper-parameter columns, op probabilities.

Ground-truth columns are named `bench_<dataset>_<split>` (search_spaces.benchmarks.base.bench_column: data set
lower-cased with '-' -> '_', e.g. bench_cifar10_valid_valid, bench_imagenet16_120_test).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from search_spaces.space import DEFAULT_SPACE

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


def test_column(df: pd.DataFrame, dataset: str) -> str | None:
    """The ground-truth test-accuracy column for a search data set, if the frame has one.

    CIFAR-10 prefers the model trained on all 50k images (bench_cifar10_test, as in the NB201 paper's table),
    then the 25k-trained model's test accuracy (bench_cifar10_valid_test).
    """
    token = dataset_token(dataset)
    for name in (f"{BENCH_PREFIX}{token}_test", f"{BENCH_PREFIX}{token}_valid_test"):
        if name in df.columns and df[name].notna().any():
            return name
    return None


@lru_cache(maxsize=4)
def _open_cached(space: str, path: str, mtime: float):
    from search_spaces.benchmarks.registry import open_benchmark
    from search_spaces.space import get_space

    name = get_space(space).benchmark_name
    if name is None:
        raise ValueError(f"search space {space!r} has no ground-truth benchmark to open {path} with")
    return open_benchmark(name, path)


def open_benchmark_table(path: str | Path, space: str = DEFAULT_SPACE):
    """The ground-truth table of a search space (search_spaces.benchmarks), cached per file and mtime; a
    packaged table's name (`nb201`) stands for its file."""
    from search_spaces.benchmarks.registry import is_builtin_reference, table_path

    path = table_path(str(path)) if is_builtin_reference(path) else Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"benchmark table not found: {path}")
    return _open_cached(str(space), str(path.resolve()), path.stat().st_mtime)


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
