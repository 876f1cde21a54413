"""Paper-style result tables: per selection rule, method x data set, mean ± std over seeds of the chosen
architectures' ground-truth accuracies, next to the benchmark optimum and published results.

The columns belong to the run's benchmark (`Benchmark.report_columns` of the space's `benchmark_name`, e.g.
NB201's Table 5 of Dong & Yang, ICLR 2020; NB101's valid and test; the NB301 sample's CIFAR-10 validation
accuracy); without a benchmark (or without a known space) they are the bench_* columns the data hold. The
run's space and data set come from its rows (`space`, `dataset`), else from its spec; analysis has no default
space. Published rows come from the space (`SearchSpace.reference_rows`), none where none are published.

The canonical form is a long frame (one row per table row and column: kind, label, source, group, split,
metric, n, mean, std) — `paper_rows`; `to_markdown`, `to_latex` and CSV render it. std is the sample standard
deviation over seeds (pandas' default, ddof=1); it is empty where only one seed ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.frames import (
    _known_space,
    attach_ground_truth,
    bench_columns,
    config_key_value,
    config_keys,
    config_label,
    fill_run_columns,
    hp_columns,
    open_benchmark_table,
    run_value,
    split_bench_column,
)
from analysis.load import RunTables
from search_spaces.benchmarks.base import ReportColumn
from search_spaces.benchmarks.published import ROW_COLUMNS, published_rows

ARGMAX = "argmax"
OK_STATUS = "TERMINATED"


# ---- the space and its columns ----------------------------------------------------------------------------
def run_space(frame: pd.DataFrame) -> str | None:
    """The search space of a frame's rows (its `space` column; `fill_run_columns` fills it from the trials and
    the spec), or None where the rows do not say."""
    return run_value(frame, "space")


def run_dataset(frame: pd.DataFrame) -> str | None:
    """The searched data set of a frame's rows (its `dataset` column), if any."""
    return run_value(frame, "dataset")


def report_columns(space: str | None, data: pd.DataFrame | None = None) -> tuple[ReportColumn, ...]:
    """The table's columns: the space's benchmark's `report_columns`, unless `data` holds bench_* columns and
    none of them (or the space is unknown or has no benchmark); then one column per bench_* column of `data`
    (group = its data set token)."""
    from search_spaces.benchmarks.registry import benchmark_class

    sp = _known_space(space)
    name = sp.benchmark_name if sp is not None else None
    own = benchmark_class(name).report_columns if name else ()
    present = bench_columns(data) if data is not None else []
    if own and (not present or any(b in present for c in own for b in c.bench)):
        return tuple(own)
    out = []
    for col in present:
        dataset, split = split_bench_column(col)
        out.append(ReportColumn(dataset, split, col.removeprefix("bench_"), (col,)))
    return tuple(out)


# ---- the selections ---------------------------------------------------------------------------------------
def selections_frame(tables: RunTables, benchmark: str | Path | None = None) -> tuple[pd.DataFrame, list[str]]:
    """All selections (one row per trial and rule) with trial columns joined in, plus notes.

    The argmax rule comes from the `selections` table where it has one, else from the trials' final genotype
    and its bench columns. Rows of trials that did not finish (status other than TERMINATED) are dropped.
    With `benchmark` (a ground-truth table file), bench_* columns the rows lack are looked up by `arch`.
    """
    notes: list[str] = []
    trials = tables.trials
    sel = tables.selections.copy()
    has_argmax = "rule" in sel.columns and sel["rule"].eq(ARGMAX).any()
    genotype = next((c for c in ("final_genotype", "genotype") if c in trials.columns), None)
    if not has_argmax and len(trials) and genotype:
        derived = trials[trials[genotype].notna()].copy()
        derived["rule"] = ARGMAX
        derived["arch"] = derived[genotype]
        notes.append(f"argmax rule derived from the trials table's final genotypes ({len(derived)} trial(s))")
        sel = pd.concat([sel, derived], ignore_index=True, sort=False) if len(sel) else derived.reset_index(drop=True)
    if sel.empty:
        return sel, notes
    sel = fill_run_columns(sel, trials, tables.specs)
    keys = [k for k in ("run", "trial_id") if k in sel.columns and k in trials.columns]
    if keys and len(trials):
        extra = [c for c in ["status", "dataset", "space", *hp_columns(trials)] if c in trials.columns]
        missing = [c for c in extra if c not in sel.columns]
        if missing:
            sel = sel.merge(trials[keys + missing].drop_duplicates(keys), on=keys, how="left")
        else:  # fill gaps only
            merged = sel[keys].merge(trials[keys + extra].drop_duplicates(keys), on=keys, how="left")
            for c in extra:
                sel[c] = sel[c].where(sel[c].notna(), merged[c].to_numpy())
    if "status" in sel.columns:
        bad = sel["status"].notna() & sel["status"].ne(OK_STATUS)
        if bad.any():
            n_trials = sel.loc[bad, "trial_id"].nunique() if "trial_id" in sel.columns else int(bad.sum())
            notes.append(f"{int(bad.sum())} selection row(s) of {n_trials} unfinished or failed trial(s) left out")
            sel = sel[~bad]
    if benchmark is not None and len(sel):
        before = set(sel.columns)
        sel = attach_ground_truth(sel, open_benchmark_table(benchmark, run_space(sel)))
        added = sorted(set(sel.columns) - before)
        if added:
            notes.append(f"ground truth of the selected architectures looked up in {Path(benchmark).name}: "
                         f"{', '.join(added)}")
    return sel.reset_index(drop=True), notes


def rules(sel: pd.DataFrame) -> list[str]:
    """Selection rules present, argmax first, then proxies, then rank combinations (each sorted). `pareto:` rules
    (several architectures per trial: a front, not a choice) are left to the report's accuracy-and-cost section."""
    if "rule" not in sel.columns:
        return []
    found = sorted(str(r) for r in sel["rule"].dropna().unique() if not str(r).startswith("pareto:"))
    return sorted(found, key=lambda r: (r != ARGMAX, not r.startswith("proxy:"), r))


# ---- run rows ---------------------------------------------------------------------------------------------
def summarize(sel: pd.DataFrame, rule: str = ARGMAX, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """mean, std (ddof=1) and n over seeds of every bench column (or of `metrics`; one the rows lack has
    n = 0), per row of the table (method, and where they vary, search data set and hyper-parameters).
    Columns: rule, label, <keys>, metric, n, mean, std."""
    cols = ["rule", "label", "metric", "n", "mean", "std"]
    if sel.empty or "rule" not in sel.columns:
        return pd.DataFrame(columns=cols)
    part = sel[sel["rule"] == rule]
    metrics = bench_columns(part) if metrics is None else list(metrics)
    if part.empty or not metrics:
        return pd.DataFrame(columns=cols)
    keys = config_keys(part)
    grouped = part.groupby([part[k].map(config_key_value) for k in keys], dropna=False, sort=True)
    out = []
    for values, group in grouped:
        values = values if isinstance(values, tuple) else (values,)
        label = config_label(keys, values)
        for m in metrics:
            x = group[m].astype(float) if m in group.columns else pd.Series(np.nan, index=group.index)
            out.append({"rule": rule, "label": label, **dict(zip(keys, values)), "metric": m,
                        "n": int(x.notna().sum()), "mean": x.mean(), "std": x.std()})
    return pd.DataFrame(out)


def run_rows(sel: pd.DataFrame, rule: str = ARGMAX, columns: Sequence[ReportColumn] | None = None) -> pd.DataFrame:
    """The table rows of this run for one rule, in the long row format (kind 'run'), over `columns`
    (default: `report_columns` of the run's space and data)."""
    columns = report_columns(run_space(sel), sel) if columns is None else columns
    wanted = list(dict.fromkeys([*bench_columns(sel), *(b for c in columns for b in c.bench)]))
    summary = summarize(sel, rule, wanted)  # a row per label even where no architecture has ground truth
    out = []
    for label in dict.fromkeys(summary["label"]) if len(summary) else []:
        mine = summary[summary["label"] == label].set_index("metric")
        for col in columns:
            metric = next((b for b in col.bench if b in mine.index and mine.at[b, "n"] > 0), None)
            rec = mine.loc[metric] if metric else None
            out.append({"kind": "run", "label": label, "source": "this sweep", "group": col.group,
                        "split": col.split, "metric": metric, "n": int(rec["n"]) if metric else 0,
                        "mean": float(rec["mean"]) if metric else np.nan,
                        "std": float(rec["std"]) if metric else np.nan})
    return pd.DataFrame(out, columns=ROW_COLUMNS)


# ---- reference rows ---------------------------------------------------------------------------------------
def benchmark_optimum(path: str | Path, space: str | None = None, epochs: int | None = None,
                      columns: Sequence[ReportColumn] | None = None) -> pd.DataFrame:
    """The best accuracy of the whole benchmark table in every column (each column on its own, as the
    NAS-Bench-201 paper's 'optimal' row), at `epochs` (default: the benchmark's default budget), in the long
    row format (kind 'benchmark'). `space` names the benchmark (its `benchmark_name`); without it only a
    packaged table is known."""
    from search_spaces.benchmarks.base import bench_column

    bench = open_benchmark_table(path, space)
    epochs = bench.budget(epochs)
    by_name = {bench_column(d, s): (d, s, e) for d, s, e in bench.available() if e == epochs}
    out = []
    for col in report_columns(space) if columns is None else columns:
        metric = next((b for b in col.bench if b in by_name), None)
        best = float(np.nanmax(bench.column(*by_name[metric]))) if metric else np.nan
        out.append({"kind": "benchmark", "label": "optimum (benchmark table)",
                    "source": f"{bench.source}, {len(bench)} architectures, {epochs} epochs", "group": col.group,
                    "split": col.split, "metric": metric, "n": len(bench) if metric else 0, "mean": best,
                    "std": np.nan})
    return pd.DataFrame(out, columns=ROW_COLUMNS)


def reference_rows(space: str | None, dataset: str | None, columns: Sequence[ReportColumn],
                   published: bool | str | Path = True) -> pd.DataFrame:
    """Published rows: the space's own (`SearchSpace.reference_rows`; none for an unknown space) with
    `published=True`, those of a CSV file (search_spaces.benchmarks.published) given as a path, none with
    False."""
    if published is False:
        return pd.DataFrame(columns=ROW_COLUMNS)
    if published is True:
        sp = _known_space(space)
        return sp.reference_rows(dataset or "") if sp is not None else pd.DataFrame(columns=ROW_COLUMNS)
    return published_rows(published, columns)


def paper_rows(tables_or_sel: RunTables | pd.DataFrame, rule: str = ARGMAX, benchmark: str | Path | None = None,
               published: bool | str | Path = True, space: str | None = None) -> pd.DataFrame:
    """This sweep's rows for `rule`, then the benchmark optimum (when `benchmark` names a table file), then
    the published rows (the space's own, or the given CSV file; False for none). `space` defaults to the
    run's own (its `space` column)."""
    sel = selections_frame(tables_or_sel, benchmark)[0] if isinstance(tables_or_sel, RunTables) else tables_or_sel
    space = space or run_space(sel)
    columns = report_columns(space, sel)
    parts = [run_rows(sel, rule, columns)]
    if benchmark is not None:
        parts.append(benchmark_optimum(benchmark, space=space, columns=columns))
    parts.append(reference_rows(space, run_dataset(sel), columns, published))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=ROW_COLUMNS)
    return pd.concat(parts, ignore_index=True)


# ---- rendering --------------------------------------------------------------------------------------------
def _cell(mean: float, std: float, latex: bool = False) -> str:
    if mean is None or pd.isna(mean):
        return "–" if not latex else "--"
    if std is None or pd.isna(std):
        return f"{mean:.2f}" if not latex else f"${mean:.2f}$"
    return f"{mean:.2f} ± {std:.2f}" if not latex else f"${mean:.2f}\\pm{std:.2f}$"


def _rows_in_order(rows: pd.DataFrame) -> list[tuple[str, str, str, pd.DataFrame]]:
    out = []
    for label in dict.fromkeys(rows["label"]):
        part = rows[rows["label"] == label]
        out.append((label, part["kind"].iloc[0], part["source"].iloc[0], part))
    return out


def table_columns(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """The (group, split) columns of long rows, in order of first appearance."""
    if rows.empty:
        return []
    return list(dict.fromkeys(zip(rows["group"], rows["split"])))


def layout(rows: pd.DataFrame) -> pd.DataFrame:
    """The paper layout as strings: index = row label, columns (group, split) plus ('', 'seeds'/'source')."""
    data, index = [], []
    cols = [ReportColumn(g, s, "", ()) for g, s in table_columns(rows)]
    columns = pd.MultiIndex.from_tuples([(c.group, c.split) for c in cols] + [("", "seeds"), ("", "source")])
    for label, kind, source, part in _rows_in_order(rows):
        cells = []
        for col in cols:
            hit = part[(part["group"] == col.group) & (part["split"] == col.split)]
            cells.append(_cell(hit["mean"].iloc[0], hit["std"].iloc[0]) if len(hit) else "–")
        seeds = int(part["n"].max()) if kind == "run" and part["n"].notna().any() else ""
        cells += [str(seeds), source]
        data.append(cells)
        index.append(label)
    return pd.DataFrame(data, index=pd.Index(index, name="method"), columns=columns)


def md_table(frame: pd.DataFrame) -> str:
    """A small DataFrame as a Markdown table (no tabulate dependency)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for rec in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v) for v in rec) + " |")
    return "\n".join(lines) + "\n"


def _md_cell(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    return str(v).replace("|", "\\|").replace("\n", " ")


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def to_markdown(rows: pd.DataFrame, title: str | None = None) -> str:
    """A Markdown table (one header row 'CIFAR-10 valid', ...) followed by the sources of its rows."""
    table = layout(rows)
    cols = table_columns(rows)
    header = ["Method"] + [f"{g} {s}" for g, s in cols] + ["Seeds"]
    lines = [f"**{title}**", ""] if title else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
    for label, rec in table.iterrows():
        cells = [_md_escape(label)] + [rec[c] for c in cols] + [rec[("", "seeds")]]
        lines.append("| " + " | ".join(cells) + " |")
    sources = [(label, rec[("", "source")]) for label, rec in table.iterrows() if rec[("", "source")] != "this sweep"]
    if sources:
        lines.append("")
        lines += [f"- {_md_escape(label)}: {_md_escape(src)}" for label, src in sources]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "←": r"$\leftarrow$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def to_latex(rows: pd.DataFrame, caption: str | None = None, label: str | None = None) -> str:
    """A booktabs LaTeX table with the paper's two-level header; sources go into the table notes."""
    table = layout(rows)
    kinds = {lab: kind for lab, kind, _, _ in _rows_in_order(rows)} if len(rows) else {}
    cols = table_columns(rows)
    n_cols = len(cols)
    lines = [r"\begin{table}[t]", r"\centering", r"\small"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\begin{tabular}{l" + "c" * n_cols + "}")
    lines.append(r"\toprule")
    head, rules_ = ["Method"], []
    col = 2
    for group in dict.fromkeys(g for g, _ in cols):
        width = sum(1 for g, _ in cols if g == group)
        head.append(rf"\multicolumn{{{width}}}{{c}}{{{latex_escape(group)}}}")
        rules_.append(rf"\cmidrule(lr){{{col}-{col + width - 1}}}")
        col += width
    lines.append(" & ".join(head) + r" \\")
    lines.append(" ".join(rules_))
    lines.append(" & ".join([""] + [split for _, split in cols]) + r" \\")
    lines.append(r"\midrule")
    previous = None
    notes = []
    for lab, rec in table.iterrows():
        kind = kinds.get(lab)
        if previous is not None and kind != previous:
            lines.append(r"\midrule")
        previous = kind
        cells = [latex_escape(lab)]
        for group, split in cols:
            hit = rows[(rows["label"] == lab) & (rows["group"] == group) & (rows["split"] == split)]
            cells.append(_cell(hit["mean"].iloc[0], hit["std"].iloc[0], latex=True) if len(hit) else "--")
        lines.append(" & ".join(cells) + r" \\")
        if rec[("", "source")] != "this sweep":
            notes.append(f"{latex_escape(lab)}: {latex_escape(rec[('', 'source')])}")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if notes:
        lines.append(r"\par\smallskip\footnotesize " + r"; ".join(notes) + ".")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def rule_title(rule: str) -> str:
    if rule == ARGMAX:
        return "argmax of the learned distribution"
    if rule.startswith("proxy:"):
        return f"best of the sampled architectures by proxy {rule[6:]}"
    if rule.startswith("rank:"):
        return f"best of the sampled architectures by the rank sum of {rule[5:].replace('+', ' + ')}"
    return rule


def _slug(rule: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in rule)


def write_paper_tables(tables: RunTables, out_dir: str | Path, benchmark: str | Path | None = None,
                       published: bool | str | Path = True) -> dict[str, dict[str, Path]]:
    """For every selection rule: table_<rule>.md / .tex / .csv in `out_dir`; returns {rule: {fmt: path}}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sel, _ = selections_frame(tables, benchmark)
    if not rules(sel):
        return {}
    space = run_space(sel)
    columns = report_columns(space, sel)
    reference = [benchmark_optimum(benchmark, space=space, columns=columns)] if benchmark is not None else []
    reference.append(reference_rows(space, run_dataset(sel), columns, published))
    written: dict[str, dict[str, Path]] = {}
    for rule in rules(sel):
        parts = [p for p in (run_rows(sel, rule, columns), *reference) if len(p)]
        rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=ROW_COLUMNS)
        title = f"Selection rule {rule}: {rule_title(rule)}"
        stem = out_dir / f"table_{_slug(rule)}"
        paths = {"md": stem.with_suffix(".md"), "tex": stem.with_suffix(".tex"), "csv": stem.with_suffix(".csv")}
        paths["md"].write_text(to_markdown(rows, title))
        paths["tex"].write_text(to_latex(rows, caption=title, label=f"tab:{_slug(rule)}"))
        rows.assign(rule=rule).to_csv(paths["csv"], index=False)
        written[rule] = paths
    return written
