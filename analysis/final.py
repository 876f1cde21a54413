"""The "Final training" section of a report: what the chosen architectures reach when trained from scratch.

Reads the `final` table of every run folder given to the report that has one (a training run of
`platform/train.py`) and writes:
- per (space, data set, protocol): test error (%) mean ± std (sample std, ddof=1) per method and selection rule,
  over every training of every architecture that rule chose (an architecture chosen by several search trials
  counts once per choosing trial, as a paper averages over its search seeds), beside the space's published
  trainings on that data set (`SearchSpace.trained_reference`, each row with its source);
- for spaces with a ground-truth table (NB201): per architecture, our trained accuracy (mean over seeds) beside
  the table's at the protocol's epoch budget (`bench_*` columns written by the training driver).

`final_section(run_dirs) -> list[str]` gives the Markdown lines; `final_frame(run_dirs)` the rows behind them.
An unreadable `final` file is a `trainables.runs.store.CorruptTableError` naming it; given a `skipped` list,
both leave such files out and append them there (the report lists them).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from search_spaces.space import get_space
from trainables.runs import store

FINAL = "final"
OK_STATUS = "TERMINATED"

def final_frame(run_dirs: Mapping[str, str | os.PathLike] | Iterable[str | os.PathLike],
                skipped: list[store.Unreadable] | None = None) -> pd.DataFrame:
    """The `final` rows of every run folder that has them (a `run` column names the folder); unreadable files
    raise, or are left out and appended to `skipped` where it is given."""
    items = run_dirs.items() if isinstance(run_dirs, Mapping) else ((Path(p).name, p) for p in run_dirs)
    frames = []
    for name, path in items:
        try:
            frame = store.read_table(path, FINAL, skipped=skipped)
        except FileNotFoundError:
            continue
        if len(frame):
            frames.append(frame.assign(run=name))
    return pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame()


def by_choice(final: pd.DataFrame) -> pd.DataFrame:
    """One row per (training, search trial that chose its architecture): `method`, `rule` and `search_seed` from
    `selected_by` (JSON), so a result counts for every method that chose the architecture; architectures listed
    by hand get method and rule 'given'."""
    rows = []
    for rec in final.to_dict("records"):
        text = rec.get("selected_by")
        chosen = json.loads(text) if isinstance(text, str) and text else []
        for s in chosen or [{"method": "given", "rule": "given"}]:
            rows.append({**rec, "method": s.get("method"), "rule": s.get("rule"), "search_seed": s.get("search_seed")})
    return pd.DataFrame(rows)


def _mean_std(values: pd.Series) -> str:
    values = values.dropna().astype(float)
    if values.empty:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:.2f}"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f}"


def error_table(final: pd.DataFrame) -> pd.DataFrame:
    """Per (space, dataset, protocol, method, rule): trainings, architectures, test error mean ± std, params."""
    done = final[final["status"].eq(OK_STATUS)]
    if done.empty:
        return pd.DataFrame()
    rows = by_choice(done)
    keys = ["space", "dataset", "protocol", "method", "rule"]
    out = []
    for key, group in rows.groupby(keys, dropna=False, sort=True):
        out.append({**dict(zip(keys, key)), "trainings": len(group), "architectures": group["arch"].nunique(),
                    "test error %": _mean_std(group["test_error"]),
                    "params (M)": f"{group['params'].astype(float).mean() / 1e6:.2f}"})
    return pd.DataFrame(out)


def published_rows(space: str, dataset: str) -> pd.DataFrame:
    """The space's published trainings for a data set (`SearchSpace.trained_reference`), rendered: method,
    test error % (± std where given), where the search ran, source."""
    rows = get_space(space).trained_reference(dataset)
    return pd.DataFrame({"method": rows["method"],
                         "test error %": [f"{m:.2f}" + (f" ± {s:.2f}" if pd.notna(s) else "")
                                          for m, s in zip(rows["test_error"], rows["test_error_std"])],
                         "searched on": rows["search_dataset"].fillna("not stated"),
                         "source": [f"{src}, {where}" for src, where in zip(rows["source"], rows["where"])]})


def benchmark_table(final: pd.DataFrame) -> pd.DataFrame:
    """Per architecture with ground truth: our accuracy (mean over seeds) beside the table's, per evaluated set."""
    bench_cols = [c for c in ("bench_test_acc", "bench_valid_acc") if c in final.columns]
    done = final[final["status"].eq(OK_STATUS)]
    if done.empty or not bench_cols or done[bench_cols].isna().all().all():
        return pd.DataFrame()
    out = []
    keys = ["space", "dataset", "protocol", "arch"]
    for key, group in done.groupby(keys, sort=True):
        row = {**dict(zip(keys, key)), "seeds": len(group),
               "our epochs": int(group["epochs_done"].max()) if "epochs_done" in group else None,
               "bench epochs": group["bench_epochs"].iloc[0]}
        for role in ("valid", "test"):
            ours, theirs = f"{role}_acc", f"bench_{role}_acc"
            if ours in group and theirs in group and group[theirs].notna().any():
                row[f"our {role} acc"] = _mean_std(group[ours])
                row[f"table {role} acc"] = f"{group[theirs].astype(float).iloc[0]:.2f}"
                row[f"{role} diff"] = f"{group[ours].astype(float).mean() - group[theirs].astype(float).iloc[0]:+.2f}"
        out.append(row)
    return pd.DataFrame(out)


def final_section(run_dirs, md_table, skipped: list[store.Unreadable] | None = None) -> list[str]:
    """The report's "Final training" lines (empty when no run folder has a readable `final` table).

    `md_table` renders a DataFrame as Markdown (the report's own helper); `skipped` as in `final_frame`."""
    final = final_frame(run_dirs, skipped=skipped)
    if final.empty:
        return []
    lines = ["## Final training", "",
             "Architectures trained from scratch (`platform/train.py`). Test error (%) mean ± std (ddof=1) over "
             "every training of every architecture a method's selection rule chose; `given`: listed by hand.", ""]
    failed = final[~final["status"].eq(OK_STATUS)]
    if len(failed):
        cols = [c for c in ("run", "trial_label", "arch", "seed", "status", "epochs_done", "error") if c in failed]
        lines += [f"**{len(failed)} training(s) did not finish** and are left out:", "", md_table(failed[cols])]
    errors = error_table(final)
    for (space, dataset, protocol), group in (errors.groupby(["space", "dataset", "protocol"], sort=True)
                                              if len(errors) else []):
        lines += [f"### {space} · {dataset} · {protocol}", "",
                  md_table(group.drop(columns=["space", "dataset", "protocol"]))]
        published = published_rows(str(space), str(dataset))
        if len(published):
            lines += ["Published (same protocol, the authors' own trainings):", "", md_table(published)]
    bench = benchmark_table(final)
    if len(bench):
        lines += ["### Trained vs the benchmark table", "",
                  "Our accuracy (%) against the ground-truth table's for the same architecture, at the epoch "
                  "budget of the protocol's preset (a shortened run is still set against that schedule).", "",
                  md_table(bench)]
    return lines
