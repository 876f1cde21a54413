"""Published results as rows of a results table, for the spaces whose literature reports benchmark accuracies,
and published test errors of architectures trained from scratch (`trained_rows`), for the final-training report.

A published-results CSV has one source per row: `method`, `source`, `where`, optionally `search_dataset` and
`selection`, and for every `ReportColumn` of the benchmark a `<key>` column (mean) and optionally `<key>_std`.
The rows come out in the long format of `analysis.tables` (ROW_COLUMNS), kind 'published'.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from search_spaces.benchmarks.base import ReportColumn

#: the long row format of every results table (one row per table row and column).
ROW_COLUMNS = ["kind", "label", "source", "group", "split", "metric", "n", "mean", "std"]
#: selections that need no note next to a published row.
_PLAIN_SELECTIONS = ("argmax", "best per column")


def published_rows(path: str | Path, columns: Sequence[ReportColumn]):
    """The CSV at `path` as long rows over `columns`; FileNotFoundError / ValueError name the file."""
    import math

    import pandas as pd  # lazily: spaces are built without pandas

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"published results file not found: {path}")
    table = pd.read_csv(path)
    needed = {"method", "source", "where"} | {c.key for c in columns}
    missing = needed - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    out = []
    for rec in table.to_dict("records"):
        selection = rec.get("selection")
        label = f"{rec['method']} (published)"
        source = f"{rec['source']}, {rec['where']}"
        if isinstance(rec.get("search_dataset"), str):
            source += f"; searched on {rec['search_dataset']}"
        if isinstance(selection, str) and selection not in _PLAIN_SELECTIONS:
            source += f"; selection: {selection}"
        for col in columns:
            mean, std = rec.get(col.key), rec.get(f"{col.key}_std")
            out.append({"kind": "published", "label": label, "source": source, "group": col.group,
                        "split": col.split, "metric": col.key, "n": math.nan,
                        "mean": float(mean) if pd.notna(mean) else math.nan,
                        "std": float(std) if pd.notna(std) else math.nan})
    return pd.DataFrame(out, columns=ROW_COLUMNS)


#: a published-trainings CSV: one row per (data set, method), test error in %, where it is printed.
TRAINED_COLUMNS = ["dataset", "method", "test_error", "test_error_std", "search_dataset", "source", "where"]


def trained_rows(path: str | Path, dataset: str):
    """The rows of the published-trainings CSV at `path` for `dataset` (exact name), TRAINED_COLUMNS in order;
    FileNotFoundError / ValueError name the file."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"published trainings file not found: {path}")
    table = pd.read_csv(path)
    missing = set(TRAINED_COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    bad = table[~pd.to_numeric(table["test_error"], errors="coerce").between(0, 100)]
    if len(bad):
        raise ValueError(f"{path}: test_error must be a percentage in [0, 100], row(s) {bad.index.tolist()}")
    return table.loc[table["dataset"] == dataset, TRAINED_COLUMNS].reset_index(drop=True)
