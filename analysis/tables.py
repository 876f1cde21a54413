"""Paper-style result tables: per selection rule, method x data set, mean ± std over seeds of the chosen
architectures' ground-truth accuracies, next to the benchmark optimum and published results.

Layout follows NAS-Bench-201 (Dong & Yang, ICLR 2020, Table 5): rows = methods, column groups CIFAR-10,
CIFAR-100, ImageNet16-120, each with valid and test. As in that table, CIFAR-10 "valid" is the cifar10-valid
model (trained on 25k images) on the held-out 25k, and CIFAR-10 "test" the model trained on all 50k on the test
set; CIFAR-100 / ImageNet16-120 valid and test are the two halves of their test sets.

The canonical form is a long frame (one row per table row and column: kind, label, source, group, split,
metric, n, mean, std) — `paper_rows`; `to_markdown`, `to_latex` and CSV render it. std is the sample standard
deviation over seeds (pandas' default, ddof=1); it is empty where only one seed ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.frames import (
    attach_ground_truth,
    bench_columns,
    config_key_value,
    config_keys,
    config_label,
    hp_columns,
    open_benchmark_table,
)
from analysis.load import RunTables

PUBLISHED_CSV = Path(__file__).with_name("published.csv")
ARGMAX = "argmax"
OK_STATUS = "TERMINATED"
ROW_COLUMNS = ["kind", "label", "source", "group", "split", "metric", "n", "mean", "std"]


@dataclass(frozen=True)
class PaperColumn:
    """One column of the paper's table: its group and split, its key in published.csv, and the bench columns
    that hold it (the first one present in the data is used)."""

    group: str
    split: str
    key: str
    bench: tuple[str, ...]


PAPER_COLUMNS: tuple[PaperColumn, ...] = (
    PaperColumn("CIFAR-10", "valid", "cifar10_valid", ("bench_cifar10_valid_valid",)),
    PaperColumn("CIFAR-10", "test", "cifar10_test", ("bench_cifar10_test", "bench_cifar10_valid_test")),
    PaperColumn("CIFAR-100", "valid", "cifar100_valid", ("bench_cifar100_valid",)),
    PaperColumn("CIFAR-100", "test", "cifar100_test", ("bench_cifar100_test",)),
    PaperColumn("ImageNet16-120", "valid", "imagenet16_120_valid", ("bench_imagenet16_120_valid",)),
    PaperColumn("ImageNet16-120", "test", "imagenet16_120_test", ("bench_imagenet16_120_test",)),
)
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(c.group for c in PAPER_COLUMNS))


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
        space = str(sel["space"].dropna().iloc[0]) if "space" in sel.columns and sel["space"].notna().any() \
            else "nb201"
        before = set(sel.columns)
        sel = attach_ground_truth(sel, open_benchmark_table(benchmark, space))
        added = sorted(set(sel.columns) - before)
        if added:
            notes.append(f"ground truth of the selected architectures looked up in {Path(benchmark).name}: "
                         f"{', '.join(added)}")
    return sel.reset_index(drop=True), notes


def rules(sel: pd.DataFrame) -> list[str]:
    """Selection rules present, argmax first, then proxies, then rank combinations (each sorted)."""
    if "rule" not in sel.columns:
        return []
    found = sorted(str(r) for r in sel["rule"].dropna().unique())
    return sorted(found, key=lambda r: (r != ARGMAX, not r.startswith("proxy:"), r))


# ---- run rows ---------------------------------------------------------------------------------------------
def summarize(sel: pd.DataFrame, rule: str = ARGMAX) -> pd.DataFrame:
    """mean, std (ddof=1) and n over seeds of every bench column, per row of the table (method, and where
    they vary, search data set and hyper-parameters). Columns: rule, label, <keys>, metric, n, mean, std."""
    cols = ["rule", "label", "metric", "n", "mean", "std"]
    if sel.empty or "rule" not in sel.columns:
        return pd.DataFrame(columns=cols)
    part = sel[sel["rule"] == rule]
    metrics = bench_columns(part)
    if part.empty or not metrics:
        return pd.DataFrame(columns=cols)
    keys = config_keys(part)
    grouped = part.groupby([part[k].map(config_key_value) for k in keys], dropna=False, sort=True)
    out = []
    for values, group in grouped:
        values = values if isinstance(values, tuple) else (values,)
        label = config_label(keys, values)
        for m in metrics:
            x = group[m].astype(float)
            out.append({"rule": rule, "label": label, **dict(zip(keys, values)), "metric": m,
                        "n": int(x.notna().sum()), "mean": x.mean(), "std": x.std()})
    return pd.DataFrame(out)


def run_rows(sel: pd.DataFrame, rule: str = ARGMAX) -> pd.DataFrame:
    """The table rows of this run for one rule, in the long row format (kind 'run')."""
    summary = summarize(sel, rule)
    out = []
    for label in dict.fromkeys(summary["label"]) if len(summary) else []:
        mine = summary[summary["label"] == label].set_index("metric")
        for col in PAPER_COLUMNS:
            metric = next((b for b in col.bench if b in mine.index and mine.at[b, "n"] > 0), None)
            rec = mine.loc[metric] if metric else None
            out.append({"kind": "run", "label": label, "source": "this sweep", "group": col.group,
                        "split": col.split, "metric": metric, "n": int(rec["n"]) if metric else 0,
                        "mean": float(rec["mean"]) if metric else np.nan,
                        "std": float(rec["std"]) if metric else np.nan})
    return pd.DataFrame(out, columns=ROW_COLUMNS)


# ---- reference rows ---------------------------------------------------------------------------------------
def benchmark_optimum(path: str | Path, space: str = "nb201", epochs: int = 200) -> pd.DataFrame:
    """The best accuracy of the whole benchmark table in every paper column (each column on its own, as the
    NAS-Bench-201 paper's 'optimal' row), in the long row format (kind 'benchmark')."""
    from search_spaces.benchmarks.base import bench_column

    bench = open_benchmark_table(path, space)
    by_name = {bench_column(d, s): (d, s, e) for d, s, e in bench.available() if e == epochs}
    out = []
    for col in PAPER_COLUMNS:
        metric = next((b for b in col.bench if b in by_name), None)
        best = float(np.nanmax(bench.column(*by_name[metric]))) if metric else np.nan
        out.append({"kind": "benchmark", "label": "optimum (benchmark table)",
                    "source": f"{bench.source}, {len(bench)} architectures, {epochs} epochs", "group": col.group,
                    "split": col.split, "metric": metric, "n": len(bench) if metric else 0, "mean": best,
                    "std": np.nan})
    return pd.DataFrame(out, columns=ROW_COLUMNS)


def published_rows(path: str | Path = PUBLISHED_CSV) -> pd.DataFrame:
    """Published results (analysis/published.csv: one source per row) in the long row format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"published results file not found: {path}")
    table = pd.read_csv(path)
    needed = {"method", "source", "where"} | {c.key for c in PAPER_COLUMNS}
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
        if isinstance(selection, str) and selection not in (ARGMAX, "best per column"):
            source += f"; selection: {selection}"
        for col in PAPER_COLUMNS:
            mean = rec.get(col.key)
            std = rec.get(f"{col.key}_std")
            out.append({"kind": "published", "label": label, "source": source, "group": col.group,
                        "split": col.split, "metric": col.key, "n": np.nan,
                        "mean": float(mean) if pd.notna(mean) else np.nan,
                        "std": float(std) if pd.notna(std) else np.nan})
    return pd.DataFrame(out, columns=ROW_COLUMNS)


def paper_rows(tables_or_sel: RunTables | pd.DataFrame, rule: str = ARGMAX, benchmark: str | Path | None = None,
               published: bool | str | Path = True, space: str = "nb201") -> pd.DataFrame:
    """This sweep's rows for `rule`, then the benchmark optimum (when `benchmark` names a table file), then
    the published rows (analysis/published.csv, or the given file; False for none)."""
    sel = selections_frame(tables_or_sel, benchmark)[0] if isinstance(tables_or_sel, RunTables) else tables_or_sel
    parts = [run_rows(sel, rule)]
    if benchmark is not None:
        parts.append(benchmark_optimum(benchmark, space=space))
    if published is not False:
        parts.append(published_rows(PUBLISHED_CSV if published is True else published))
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


def layout(rows: pd.DataFrame) -> pd.DataFrame:
    """The paper layout as strings: index = row label, columns (group, split) plus ('', 'seeds'/'source')."""
    data, index = [], []
    columns = pd.MultiIndex.from_tuples([(c.group, c.split) for c in PAPER_COLUMNS] + [("", "seeds"),
                                                                                     ("", "source")])
    for label, kind, source, part in _rows_in_order(rows):
        cells = []
        for col in PAPER_COLUMNS:
            hit = part[(part["group"] == col.group) & (part["split"] == col.split)]
            cells.append(_cell(hit["mean"].iloc[0], hit["std"].iloc[0]) if len(hit) else "–")
        seeds = int(part["n"].max()) if kind == "run" and part["n"].notna().any() else ""
        cells += [str(seeds), source]
        data.append(cells)
        index.append(label)
    return pd.DataFrame(data, index=pd.Index(index, name="method"), columns=columns)


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def to_markdown(rows: pd.DataFrame, title: str | None = None) -> str:
    """A Markdown table (one header row 'CIFAR-10 valid', ...) followed by the sources of its rows."""
    table = layout(rows)
    header = ["Method"] + [f"{c.group} {c.split}" for c in PAPER_COLUMNS] + ["Seeds"]
    lines = [f"**{title}**", ""] if title else []
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
    for label, rec in table.iterrows():
        cells = [_md_escape(label)] + [rec[(c.group, c.split)] for c in PAPER_COLUMNS] + [rec[("", "seeds")]]
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
    n_cols = len(PAPER_COLUMNS)
    lines = [r"\begin{table}[t]", r"\centering", r"\small"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\begin{tabular}{l" + "c" * n_cols + "}")
    lines.append(r"\toprule")
    head, rules_ = ["Method"], []
    col = 2
    for group in GROUPS:
        width = sum(1 for c in PAPER_COLUMNS if c.group == group)
        head.append(rf"\multicolumn{{{width}}}{{c}}{{{latex_escape(group)}}}")
        rules_.append(rf"\cmidrule(lr){{{col}-{col + width - 1}}}")
        col += width
    lines.append(" & ".join(head) + r" \\")
    lines.append(" ".join(rules_))
    lines.append(" & ".join([""] + [c.split for c in PAPER_COLUMNS]) + r" \\")
    lines.append(r"\midrule")
    previous = None
    notes = []
    for lab, rec in table.iterrows():
        kind = kinds.get(lab)
        if previous is not None and kind != previous:
            lines.append(r"\midrule")
        previous = kind
        cells = [latex_escape(lab)]
        for c in PAPER_COLUMNS:
            hit = rows[(rows["label"] == lab) & (rows["group"] == c.group) & (rows["split"] == c.split)]
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
    space = str(sel["space"].dropna().iloc[0]) if "space" in sel.columns and sel["space"].notna().any() else "nb201"
    reference = paper_rows(sel.iloc[0:0], benchmark=benchmark, published=published, space=space)
    written: dict[str, dict[str, Path]] = {}
    for rule in rules(sel):
        rows = pd.concat([run_rows(sel, rule), reference], ignore_index=True)
        title = f"Selection rule {rule}: {rule_title(rule)}"
        stem = out_dir / f"table_{_slug(rule)}"
        paths = {"md": stem.with_suffix(".md"), "tex": stem.with_suffix(".tex"), "csv": stem.with_suffix(".csv")}
        paths["md"].write_text(to_markdown(rows, title))
        paths["tex"].write_text(to_latex(rows, caption=title, label=f"tab:{_slug(rule)}"))
        rows.assign(rule=rule).to_csv(paths["csv"], index=False)
        written[rule] = paths
    return written
