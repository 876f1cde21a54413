"""Accuracy against cost for searches under a budget: the report's "Accuracy and cost" section and the pure
functions it is built from.

    pareto_front(costs, accuracies)                        # indices of the non-dominated points (min cost, max acc)
    hypervolume(costs, accuracies, ref_cost, ref_acc)      # exact 2-D area they dominate up to a reference point
    optimum_under_budget(costs, accuracies, budget)        # index of the best accuracy with cost <= budget
    section(tables, out_dir, benchmark, md_table)          # the report's section: Markdown lines, plots, tables

Where a sweep searched under a `cost:` budget, its `samples` and `selections` rows carry `budget_metric`,
`budget_source` ("device:<name>", "lut:<path>", "parts:<metric>"), `budget`, `budget_cost` (the row's architecture's
true cost in the budget's unit) and `within_budget`. The section groups them by (space, searched data set, budget
source) and shows, per group:

1. a plot of accuracy against cost: the sampled architectures (light points), the chosen ones (a marker per
   selection rule, a colour per method), the budgets (vertical lines) and, where the benchmark table can be costed
   (all its architectures through `search_spaces.cost_model.true_costs`), the table's Pareto front as a step line;
2. per budget, a table per method and rule of the chosen architecture's accuracy and cost (mean ± std over the
   trials) and how many trials met the budget, beside the table's optimum under the budget (the best accuracy
   among all its architectures whose true cost is at most the budget) and its unconstrained optimum;
3. with trials at two or more budgets: per method and rule the front the search found (the non-dominated subset
   of its chosen architectures over all budgets) and the table's front, with the hypervolume of each against one
   reference point (cost: the largest budget; accuracy: the lowest of the table) and their ratio.

Accuracy is the ground truth the run's benchmark names for the searched data set (`analysis.frames.test_column`,
the column the other plots show), looked up in the report's benchmark table; without one it is the proxy score
of the rules (labelled so), and there is no front or optimum of the table. Analysis knows no space, data set,
benchmark, device or method by name: the space (`search_spaces.space.get_space`), its benchmark
(`benchmark_name`) and the cost functions answer.

matplotlib and torch are imported only when the section is built (`import analysis` stays light).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.frames import (
    _known_space,
    attach_ground_truth,
    column_title,
    config_labels,
    fill_run_columns,
    open_benchmark_table,
    test_column,
)
from analysis.load import RunTables
from analysis.plots import _slug
from search_spaces.pareto import hypervolume, optimum_under_budget, pareto_front

#: the columns a searched-under-a-budget row carries (trainables.proxy_stage)
BUDGET_COLUMNS = ("budget_metric", "budget_source", "budget", "budget_cost", "within_budget")
#: the unit of a budget metric's costs (as search_spaces.cost_model.UNITS: ms, millions)
UNITS = {"latency": "ms", "params": "M params", "flops": "M multiply-adds"}
#: benchmark tables with more architectures than this are not costed (no table front or optimum)
MAX_TABLE_ARCHITECTURES = 50_000
PARETO_PREFIX = "pareto:"
REPORT_TITLE = "Accuracy and cost"
BUDGETS_CSV, FRONTS_CSV = "tradeoff_budgets.csv", "tradeoff_fronts.csv"
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


# ---- pure functions ----------------------------------------------------------------------------------------
def parse_budget_source(source: str) -> dict[str, str]:
    """A `budget_source` value as the keywords of `search_spaces.cost_model.true_costs`: 'device:pixel3' ->
    {metric: latency, device: pixel3}, 'lut:/x/t.parquet' -> {metric: latency, lut: /x/t.parquet}, 'parts:params'
    -> {metric: params}. A ValueError for anything else."""
    kind, sep, value = str(source).partition(":")
    if sep and value:
        if kind == "device":
            return {"metric": "latency", "device": value}
        if kind == "lut":
            return {"metric": "latency", "lut": value}
        if kind == "parts":
            return {"metric": value}
    raise ValueError(f"budget_source {source!r}: expected 'device:<name>', 'lut:<path>' or 'parts:<metric>'")


def source_label(source: str) -> str:
    """How a budget source reads in titles: 'latency on pixel3', 'latency from LUT t.parquet', 'params'."""
    try:
        parsed = parse_budget_source(source)
    except ValueError:
        return str(source)
    if "device" in parsed:
        return f"latency on {parsed['device']}"
    if "lut" in parsed:
        return f"latency from LUT {Path(parsed['lut']).name}"
    return parsed["metric"]


def unit_of(metric: str | None) -> str:
    return UNITS.get(str(metric), "")


# ---- the benchmark's architectures, costed -----------------------------------------------------------------
@dataclass
class TableFront:
    """Every architecture of a benchmark table with its accuracy (`column`) and true cost under one budget
    source; `front`: indices of its Pareto front (increasing cost); `complete`: the table holds the whole space
    (then the front is the space's true front)."""

    archs: list[str]
    costs: np.ndarray
    accuracies: np.ndarray
    column: str
    front: np.ndarray
    complete: bool
    source: str

    def optimum(self, budget: float | None = None) -> dict[str, Any] | None:
        """{arch, accuracy, cost} of the best architecture with cost <= `budget` (None: of all)."""
        if budget is None:
            ok = np.isfinite(self.accuracies)
            if not ok.any():
                return None
            i = int(np.flatnonzero(ok)[np.nanargmax(self.accuracies[ok])])
        else:
            i = optimum_under_budget(self.costs, self.accuracies, budget)
            if i is None:
                return None
        return {"arch": self.archs[i], "accuracy": float(self.accuracies[i]), "cost": float(self.costs[i])}

    @property
    def label(self) -> str:
        n = f"{len(self.archs):,}"
        return (f"true front ({n} architectures)" if self.complete
                else f"front of the table's {n} architectures (not the whole space)")


def _metric_of(bench, column: str) -> tuple[str, str]:
    """The (data set, split) of a bench_* column at the benchmark's default training budget."""
    from search_spaces.benchmarks.base import bench_column

    epochs = bench.budget()
    for d, s, e in bench.available():
        if e == epochs and bench_column(d, s) == column:
            return d, s
    raise ValueError(f"the benchmark table has no {column} at {epochs} epochs")


@lru_cache(maxsize=16)
def table_front(bench, space: str, dataset: str, source: str, column: str) -> TableFront:
    """All architectures of `bench` (a search_spaces.benchmarks Benchmark) costed by the budget `source`
    (`search_spaces.cost_model.true_costs` at the space's proxy size on `dataset`), with their `column` accuracy
    and Pareto front; cached per process. A ValueError says why it cannot be built."""
    from search_spaces.cost_model import true_costs

    if len(bench) > MAX_TABLE_ARCHITECTURES:
        raise ValueError(f"the benchmark table holds {len(bench):,} architectures (more than "
                         f"{MAX_TABLE_ARCHITECTURES:,} are not costed)")
    accuracies = np.asarray(bench.column(*_metric_of(bench, column)), dtype=np.float64)
    archs = bench.architectures()
    costs = true_costs(space, archs, **parse_budget_source(source), dataset=dataset)
    if not np.isfinite(costs).any():
        raise ValueError(f"{source_label(source)} has no figure for the table's architectures on {dataset}")
    sp = _known_space(space)
    complete = sp is not None and sp.count() == len(bench)  # None for a space that cannot be enumerated
    return TableFront(archs, costs, accuracies, column, pareto_front(costs, accuracies), complete, bench.source)


# ---- the section -------------------------------------------------------------------------------------------
@dataclass
class TradeoffSection:
    """What `section` made: report.md's lines (none where no row has a budget), the plots (analysis.plots.Plot),
    the per-budget rows (`budgets`), the hypervolume rows (`fronts`) and notes on what was left out."""

    lines: list[str] = field(default_factory=list)
    plots: list = field(default_factory=list)
    budgets: pd.DataFrame = field(default_factory=pd.DataFrame)
    fronts: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)

    @property
    def markdown(self) -> str:
        return "\n".join(self.lines)

    @property
    def paths(self) -> list[Path]:
        return [p for plot in self.plots for p in plot.paths]


def has_budgets(frame: pd.DataFrame) -> bool:
    """Whether a samples or selections frame has rows searched under a budget (a `budget_source` value)."""
    return "budget_source" in frame.columns and frame["budget_source"].notna().any()


def _rule_order(rules) -> list[str]:
    return sorted(dict.fromkeys(map(str, rules)), key=lambda r: (r != "argmax", not r.startswith("proxy:"),
                                                                 not r.startswith("rank:"), r))


def _trial_keys(frame: pd.DataFrame) -> list[str]:
    return [k for k in ("run", "trial_id") if k in frame.columns]


def _budget_rows(frame: pd.DataFrame, trials: pd.DataFrame, specs, others: Sequence[pd.DataFrame] = ()
                 ) -> pd.DataFrame:
    """The rows of `frame` searched under a budget, with space and data set filled in. A row without budget
    columns of a trial that has them elsewhere (a rule that found no architecture within the budget has no
    architecture to cost) takes its trial's budget, no cost, and counts as not within it."""
    keys = _trial_keys(frame)
    known = [f[keys + ["budget_metric", "budget_source", "budget"]] for f in (frame, *others)
             if has_budgets(f) and keys and set(keys + ["budget_metric", "budget"]) <= set(f.columns)]
    missing = frame["budget_source"].isna().any() if "budget_source" in frame.columns else len(frame) > 0
    if known and missing:
        per_trial = pd.concat(known, ignore_index=True).dropna(subset=["budget_source"]).drop_duplicates(keys)
        filled = frame[keys].merge(per_trial, on=keys, how="left")
        frame = frame.assign(**{c: (frame[c] if c in frame.columns else pd.Series(None, index=frame.index,
                                                                                  dtype="object"))
                                .where(lambda s: s.notna(), filled[c].to_numpy())
                                for c in ("budget_metric", "budget_source", "budget")})
    if not has_budgets(frame):
        return frame.iloc[0:0]
    out = fill_run_columns(frame[frame["budget_source"].notna()], trials, specs)
    for col in ("space", "dataset", "budget_metric"):
        if col not in out.columns:
            out = out.assign(**{col: None})
    out = out.assign(budget=pd.to_numeric(out["budget"], errors="coerce") if "budget" in out.columns else np.nan,
                     budget_cost=pd.to_numeric(out["budget_cost"], errors="coerce") if "budget_cost" in out.columns
                     else np.nan)
    met = out["budget_cost"] <= out["budget"]
    if "within_budget" in out.columns:
        met = out["within_budget"].astype("boolean").fillna(met)
    return out.assign(within_budget=met.astype(bool))


def _proxy_name(chosen: pd.DataFrame, samples: pd.DataFrame) -> str | None:
    """The proxy whose score stands for accuracy without ground truth: that of the first proxy or pareto rule
    whose column the rows hold, else the first proxy column of the samples."""
    from analysis.plots import proxy_columns

    for rule in _rule_order(chosen["rule"].dropna()) if "rule" in chosen.columns else []:
        kind, _, name = rule.partition(":")
        if kind in ("proxy", "pareto") and any(name in f.columns for f in (samples, chosen)):
            return name
    names = [c for c in proxy_columns(samples) if not str(c).startswith("cost_") and c not in BUDGET_COLUMNS]
    return names[0] if names else None


def _accuracy(samples: pd.DataFrame, chosen: pd.DataFrame, space, dataset) -> tuple[str | None, str | None]:
    """(column, kind): the ground-truth column the benchmark names ('truth'), else a proxy score ('proxy')."""
    both = pd.concat([samples, chosen], ignore_index=True, sort=False)
    col = test_column(both, dataset, space)
    if col is not None:
        return col, "truth"
    name = _proxy_name(chosen, samples)
    return (name, "proxy") if name is not None else (None, None)


def _with_y(frame: pd.DataFrame, col: str, scores: pd.Series | None) -> pd.Series:
    y = pd.to_numeric(frame[col], errors="coerce") if col in frame.columns else pd.Series(np.nan, index=frame.index)
    if scores is not None and "arch" in frame.columns:  # a score depends on the architecture alone
        y = y.fillna(frame["arch"].map(scores))
    if f"{col}_error" in frame.columns:
        y = y.where(frame[f"{col}_error"].isna())
    return y.astype(float)


def _fmt(x: float, digits: int = 4) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.{digits}g}"


def _mean_std(x: pd.Series, acc: bool) -> str:
    x = x.dropna()
    if not len(x):
        return "–"
    mean, std = float(x.mean()), float(x.std()) if len(x) > 1 else float("nan")
    m = f"{mean:.2f}" if acc else _fmt(mean)
    if not np.isfinite(std):
        return m
    return f"{m} ± {std:.2f}" if acc else f"{m} ± {std:.2g}"


def _per_trial_pareto(rows: pd.DataFrame, budget: float) -> pd.DataFrame:
    """A pareto rule's rows (several per trial) as one per trial: its most accurate member within the budget
    (the best a user picking from the front could take), `members` its front's size, `met` whether one fits."""
    out = []
    for _, trial in rows.groupby(_trial_keys(rows) or ["method"], sort=False, dropna=False):
        fits = trial[trial["within_budget"] & trial["_y"].notna()]
        pick = fits.loc[fits["_y"].idxmax()] if len(fits) else None
        out.append({"_y": pick["_y"] if pick is not None else np.nan,
                    "budget_cost": pick["budget_cost"] if pick is not None else np.nan,
                    "within_budget": bool(trial["within_budget"].any()), "members": int(trial["arch"].notna().sum()),
                    "note": next((n for n in trial.get("note", pd.Series(dtype=object)).dropna()), None)})
    return pd.DataFrame(out)


def _budget_table(chosen: pd.DataFrame, budget: float, table: TableFront | None, acc_kind: str) -> pd.DataFrame:
    """The rows of one budget's table: per method (label) and rule, accuracy and cost over the trials."""
    part = chosen[chosen["budget"] == budget]
    best = table.optimum(budget) if table is not None else None
    free = table.optimum() if table is not None else None
    rows = []
    for label in sorted(part["_label"].dropna().unique()):
        mine = part[part["_label"] == label]
        for rule in _rule_order(mine["rule"].dropna()):
            sub = mine[mine["rule"] == rule]
            pareto = rule.startswith(PARETO_PREFIX)
            per = _per_trial_pareto(sub, budget) if pareto else sub.assign(members=np.nan)
            acc, cost = per["_y"].astype(float), per["budget_cost"].astype(float)
            notes = per["note"].dropna().astype(str) if "note" in per.columns else pd.Series(dtype=object)
            rows.append({
                "method": label, "rule": rule + (" (best member within the budget)" if pareto else ""),
                "trials": len(per), "accuracy_mean": acc.mean(), "accuracy_std": acc.std(),
                "accuracy_n": int(acc.notna().sum()), "accuracy": _mean_std(acc, acc_kind == "truth"),
                "cost_mean": cost.mean(), "cost_std": cost.std(), "cost": _mean_std(cost, False),
                "met": int(per["within_budget"].sum()), "members": per["members"].mean() if pareto else np.nan,
                "optimum_accuracy": best["accuracy"] if best else np.nan,
                "optimum_cost": best["cost"] if best else np.nan, "optimum_arch": best["arch"] if best else None,
                "gap": acc.mean() - best["accuracy"] if best else np.nan,
                "free_accuracy": free["accuracy"] if free else np.nan, "free_cost": free["cost"] if free else np.nan,
                "free_arch": free["arch"] if free else None,
                "notes": "; ".join(f"{n} ({k})" for n, k in notes.value_counts().items()) or None})
    return pd.DataFrame(rows)


def _front_rows(chosen: pd.DataFrame, table: TableFront | None, ref_cost: float, ref_acc: float) -> pd.DataFrame:
    """Per method and rule: the non-dominated subset of the chosen architectures over all budgets, and its
    hypervolume against (ref_cost, ref_acc) beside the table's."""
    true_hv = hypervolume(table.costs, table.accuracies, ref_cost, ref_acc) if table is not None else np.nan
    rows = []
    for label in sorted(chosen["_label"].dropna().unique()):
        mine = chosen[chosen["_label"] == label]
        for rule in _rule_order(mine["rule"].dropna()):
            sub = mine[(mine["rule"] == rule) & mine["_y"].notna() & mine["budget_cost"].notna()]
            front = pareto_front(sub["budget_cost"], sub["_y"])
            hv = hypervolume(sub["budget_cost"], sub["_y"], ref_cost, ref_acc)
            rows.append({"method": label, "rule": rule, "budgets": int(mine.loc[mine["rule"] == rule,
                                                                                 "budget"].nunique()),
                         "points": len(sub), "front_points": len(front), "hypervolume": hv,
                         "true_hypervolume": true_hv, "ratio": hv / true_hv if true_hv and np.isfinite(true_hv)
                         else np.nan,
                         "front": "; ".join(f"({c:.4g}, {a:.2f})" for c, a in
                                            zip(sub["budget_cost"].to_numpy()[front], sub["_y"].to_numpy()[front]))})
    if table is not None:
        rows.append({"method": table.label, "rule": "", "budgets": np.nan, "points": len(table.archs),
                     "front_points": len(table.front), "hypervolume": true_hv, "true_hypervolume": true_hv,
                     "ratio": 1.0, "front": ""})
    return pd.DataFrame(rows)


def _labelled(samples: pd.DataFrame, chosen: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both frames with `_label`: method plus the hyper-parameters that vary (`config_labels`), one label per
    trial whichever frame its rows are in."""
    keys = _trial_keys(chosen) if _trial_keys(chosen) == _trial_keys(samples) else []
    if not keys:
        return (samples.assign(_label=config_labels(samples, with_dataset=False) if len(samples) else []),
                chosen.assign(_label=config_labels(chosen, with_dataset=False) if len(chosen) else []))
    cols = list(dict.fromkeys(["method", *(k for f in (chosen, samples) for k in f.columns
                                           if str(k).startswith("hp_"))]))
    parts = [f[keys + [k for k in cols if k in f.columns]] for f in (chosen, samples) if len(f)]
    trials = pd.concat(parts, ignore_index=True, sort=False).drop_duplicates(keys) if parts else None
    if trials is None or trials.empty:
        return samples.assign(_label=[]), chosen.assign(_label=[])
    label = pd.Series(config_labels(trials, with_dataset=False).to_numpy(),
                      index=pd.MultiIndex.from_frame(trials[keys].astype(str)))

    def of(frame: pd.DataFrame) -> pd.DataFrame:
        found = label.reindex(pd.MultiIndex.from_frame(frame[keys].astype(str))).to_numpy() if len(frame) else []
        return frame.assign(_label=found)

    return of(samples), of(chosen)


def _plot(samples: pd.DataFrame, chosen: pd.DataFrame, table: TableFront | None, budgets: list[float],
          fronts: bool, *, title: str, xlabel: str, ylabel: str, path: Path):
    """The group's figure: accuracy against cost (samples, chosen per rule, budgets, the table's front) and, with
    `fronts`, a second panel of the found fronts against the table's; returns (path, the numbers drawn)."""
    from analysis.plots import _save, method_colors, plt

    labels = sorted(set(chosen["_label"].dropna()) | set(samples["_label"].dropna()))
    colors = method_colors(labels)
    rules = _rule_order(chosen["rule"].dropna()) if "rule" in chosen.columns else []
    markers = {r: _MARKERS[i % len(_MARKERS)] for i, r in enumerate(rules)}
    n = 2 if fronts else 1
    fig, axes = plt.subplots(1, n, figsize=(7.2 * n, 4.6), squeeze=False, constrained_layout=True)
    drawn = []
    ax = axes[0][0]
    for label, part in samples.groupby("_label", sort=True):
        ok = part["_y"].notna() & part["budget_cost"].notna()
        ax.scatter(part.loc[ok, "budget_cost"], part.loc[ok, "_y"], s=9, alpha=0.25, color=colors[label],
                   edgecolors="none", label=f"{label}: sampled ({int(ok.sum())})")
        drawn.append(pd.DataFrame({"kind": "sample", "method": label, "rule": None,
                                   "cost": part.loc[ok, "budget_cost"].to_numpy(float),
                                   "accuracy": part.loc[ok, "_y"].to_numpy(float)}))
    for (label, rule), part in chosen.groupby(["_label", "rule"], sort=True):
        ok = part["_y"].notna() & part["budget_cost"].notna()
        ax.scatter(part.loc[ok, "budget_cost"], part.loc[ok, "_y"], s=38, marker=markers[rule], color=colors[label],
                   edgecolors="black", linewidths=0.6, label=f"{label}: {rule} ({int(ok.sum())})", zorder=3)
        drawn.append(pd.DataFrame({"kind": "chosen", "method": label, "rule": rule,
                                   "cost": part.loc[ok, "budget_cost"].to_numpy(float),
                                   "accuracy": part.loc[ok, "_y"].to_numpy(float)}))
    if table is not None:
        xs, ys = table.costs[table.front], table.accuracies[table.front]
        for a in axes[0]:
            a.step(np.r_[xs, xs[-1]], np.r_[ys, ys[-1]], where="post", color="black", lw=1.2, label=table.label,
                   zorder=2)
        drawn.append(pd.DataFrame({"kind": "table_front", "method": table.label, "rule": None, "cost": xs,
                                   "accuracy": ys}))
    for b in budgets:
        for a in axes[0]:
            a.axvline(b, color="grey", ls="--", lw=0.9, zorder=1)
        ax.annotate(f"budget {b:g}", (b, 1.0), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                    ha="right", va="top", color="grey")
    drawn.append(pd.DataFrame({"kind": "budget", "method": None, "rule": None, "cost": budgets,
                               "accuracy": np.nan}))
    ax.set_title("architectures: sampled (light) and chosen (one marker per rule)", fontsize=9)
    if fronts:
        ax2 = axes[0][1]
        for (label, rule), part in chosen.groupby(["_label", "rule"], sort=True):
            ok = part[part["_y"].notna() & part["budget_cost"].notna()]
            front = pareto_front(ok["budget_cost"], ok["_y"])
            if not len(front):
                continue
            xs, ys = ok["budget_cost"].to_numpy(float)[front], ok["_y"].to_numpy(float)[front]
            ax2.step(xs, ys, where="post", color=colors[label], marker=markers[rule], ms=5, lw=1.2,
                     label=f"{label}: {rule} ({len(front)})")
            drawn.append(pd.DataFrame({"kind": "found_front", "method": label, "rule": rule, "cost": xs,
                                       "accuracy": ys}))
        ax2.set_title("fronts found over the budgets (non-dominated chosen architectures)", fontsize=9)
    for a in axes[0]:
        a.set_xlabel(xlabel)
        a.set_ylabel(ylabel, fontsize=9)
        a.grid(alpha=0.3)
        a.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=11)
    return _save(fig, path), pd.concat(drawn, ignore_index=True)


def section(tables: RunTables, out_dir: str | Path, benchmark: str | Path | None = None,
            md_table: Callable[[pd.DataFrame], str] | None = None,
            selections: pd.DataFrame | None = None) -> TradeoffSection:
    """The report's "Accuracy and cost" section for the rows searched under a budget: Markdown lines, plots
    (PNG files in `out_dir`), the per-budget and front rows (also written as tradeoff_budgets.csv and
    tradeoff_fronts.csv). Empty (no lines, nothing written) where no samples or selections row has a budget.

    `benchmark`: the report's ground-truth table (a file; read by the benchmark of the run's space); `md_table`
    renders a DataFrame as Markdown; `selections`: the report's selections (`analysis.tables.selections_frame`:
    finished trials, ground truth attached), computed here when not given."""
    from analysis import tables as tables_mod
    from analysis.plots import Plot

    out = TradeoffSection()
    if not (has_budgets(tables.samples) or has_budgets(tables.selections)):
        return out
    md_table = md_table or tables_mod.md_table
    if selections is None:
        selections = tables_mod.selections_frame(tables, benchmark)[0]
    wanted = ("space", "dataset", "arch", "rule", "note", *BUDGET_COLUMNS)
    chosen, samples = (frame.assign(**{c: None for c in wanted if c not in frame.columns}) for frame in (
        _budget_rows(selections, tables.trials, tables.specs, others=[tables.samples]),
        _budget_rows(tables.samples, tables.trials, tables.specs)))
    out_dir = Path(out_dir)
    keys = ["space", "dataset", "budget_source"]
    groups = pd.concat([f[keys].astype("object").where(f[keys].notna(), None) for f in (chosen, samples)
                        if len(f)], ignore_index=True).drop_duplicates()
    benches: dict[Any, Any] = {}
    budget_frames, front_frames = [], []
    lines = [f"## {REPORT_TITLE}", "",
             "Searches under a cost budget (`cost:` in the spec). Cost: each architecture's true cost in the "
             "budget's unit (`budget_cost`: the budget source's own figure, i.e. the device table, the measured "
             "lookup table or the exact params/FLOPs, not the additive model the search optimised). Accuracy: the "
             "ground truth "
             "the run's benchmark names for the searched data set, else a proxy score (so labelled). Mean ± std "
             "over the trials (sample std); *met*: trials whose chosen architecture is within the budget. The "
             "optimum under a budget is the best accuracy among all of the benchmark table's architectures whose "
             "true cost is at most the budget. `pareto:<proxy>` rules choose every sample no other beats in both "
             "score and cost; their rows show each trial's most accurate member within the budget.", ""]
    several = groups["space"].nunique(dropna=False) > 1
    for g, (space, dataset, source) in enumerate(groups.itertuples(index=False, name=None)):
        def pick(frame, space=space, dataset=dataset, source=source):
            if frame.empty:
                return frame
            keep = frame["budget_source"].eq(source)
            for col, value in (("space", space), ("dataset", dataset)):
                keep &= frame[col].isna() if value is None else frame[col].eq(value)
            return frame[keep]

        s, c = pick(samples), pick(chosen)
        metric = next(iter(pd.concat([s["budget_metric"], c["budget_metric"]]).dropna()), None)
        if metric is None:
            try:
                metric = parse_budget_source(source)["metric"]
            except ValueError:
                metric = None
        unit = unit_of(metric)
        notes = []
        need = c["arch"].notna() & c["budget_cost"].isna()
        if need.any():  # e.g. the argmax rule derived from the trials table: cost it from the budget's source
            from search_spaces.cost_model import true_costs

            try:
                cost = true_costs(str(space), c.loc[need, "arch"], **parse_budget_source(source), dataset=str(dataset))
            except (ValueError, FileNotFoundError, KeyError) as err:
                notes.append(f"{int(need.sum())} chosen architecture(s) without budget_cost, not costed: {err}")
            else:
                c = c.copy()
                c.loc[need, "budget_cost"] = cost
                c.loc[need, "within_budget"] = cost <= c.loc[need, "budget"].to_numpy(float)
        where = (f"{space} on {dataset}" if several else f"searched on {dataset}") if dataset else (space or "")
        head = f"{source_label(source)}, {where}".strip(", ")
        lines += [f"### {head}", ""]
        bench = None
        if benchmark is not None:
            if space not in benches:
                try:
                    benches[space] = open_benchmark_table(benchmark, space)
                except (ValueError, FileNotFoundError) as err:
                    benches[space] = None
                    notes.append(f"benchmark table not opened: {err}")
            bench = benches[space]
            if bench is not None:  # the proxy stage writes samples without ground truth
                s, c = attach_ground_truth(s, bench, "arch"), attach_ground_truth(c, bench, "arch")
        col, kind = _accuracy(s, c, space, dataset)
        if col is None:
            lines += ["_No ground truth and no proxy score in the rows: nothing to show._", ""]
            continue
        table = None
        if kind == "truth" and bench is None:
            notes.append("no benchmark table given (--benchmark) or found from the spec: no optimum or front of "
                         "the table")
        elif kind == "truth":
            try:
                table = table_front(bench, str(space), str(dataset), str(source), col)
            except (ValueError, KeyError, FileNotFoundError) as err:
                notes.append(f"the benchmark table's architectures are not costed: {err}")
        scores = None
        if kind == "proxy" and col in s.columns and "arch" in s.columns:
            ok = s[[col, "arch"]].dropna()
            scores = ok.drop_duplicates("arch").set_index("arch")[col]
        s, c = _labelled(s, c)
        s, c = s.assign(_y=_with_y(s, col, None)), c.assign(_y=_with_y(c, col, scores))
        if "rule" not in c.columns:
            c = c.assign(rule=None)
        budgets = sorted(float(b) for b in pd.concat([s["budget"], c["budget"]]).dropna().unique())
        ylabel = (f"{column_title(space, col)} accuracy (%)\n[{col}]" if kind == "truth"
                  else f"{col} score (proxy: no ground truth)")
        acc_head = "Accuracy (%)" if kind == "truth" else f"{col} score (proxy)"
        xlabel = f"{source_label(source)} ({unit})" if unit else source_label(source)
        name = "tradeoff_" + "_".join(_slug(v) for v in (space, dataset, source_label(source)) if v) + ".png"
        if any(name in [p.name for p in plot.paths] for plot in out.plots):
            name = name.replace(".png", f"_{g}.png")
        plot = Plot(f"tradeoff_{g}", f"Accuracy and cost: {head}")
        path, drawn = _plot(s, c, table, budgets, len(budgets) > 1,
                            title=f"Accuracy and cost: {head}", xlabel=xlabel, ylabel=ylabel, path=out_dir / name)
        plot.paths.append(path)
        plot.data[path.name] = drawn
        out.plots.append(plot)
        lines += [f"![{plot.title}]({path.name})", ""]
        if table is not None:
            lines += [f"Black step line: the {table.label} of {table.source} ({col}, costed by "
                      "`search_spaces.cost_model.true_costs`). Dashed lines: the budgets.", ""]

        for b in budgets:
            rows = _budget_table(c, b, table, kind)
            if rows.empty:
                continue
            rows = rows.assign(space=space, dataset=dataset, budget_source=source, budget_metric=metric, budget=b,
                               accuracy_column=col, accuracy_kind=kind)
            budget_frames.append(rows)
            shown = pd.DataFrame({"Method": rows["method"], "Rule": rows["rule"], "Trials": rows["trials"],
                                  acc_head: rows["accuracy"], f"Cost ({unit})": rows["cost"],
                                  "Met budget": [f"{m}/{t}" for m, t in zip(rows["met"], rows["trials"])]})
            if table is not None:
                shown["Optimum under budget (%)"] = [f"{v:.2f}" if np.isfinite(v) else "–"
                                                     for v in rows["optimum_accuracy"]]
                shown["Gap (points)"] = [f"{v:+.2f}" if np.isfinite(v) else "–" for v in rows["gap"]]
                shown["Optimum, no budget (%)"] = [f"{v:.2f}" for v in rows["free_accuracy"]]
            lines += [f"#### Budget: {source_label(source)} ≤ {b:g} {unit}".rstrip(), "", md_table(shown)]
            if table is not None:
                best, free = table.optimum(b), table.optimum()
                lines.append("Optimum under the budget: " + (f"`{best['arch']}` ({best['accuracy']:.2f}%, "
                                                               f"{_fmt(best['cost'])} {unit})" if best else "none")
                              + f"; unconstrained optimum: `{free['arch']}` ({free['accuracy']:.2f}%, "
                              f"{_fmt(free['cost'])} {unit}); over the {len(table.archs):,} architectures of "
                              f"{table.source}.")
                lines.append("")
            for rec in rows[rows["notes"].notna()].itertuples():
                lines.append(f"- {rec.method}, {rec.rule}: {rec.notes}")
            if rows["notes"].notna().any():
                lines.append("")

        if len(budgets) > 1:
            ref_cost = max(budgets)
            values = table.accuracies if table is not None else pd.concat([s["_y"], c["_y"]]).to_numpy(float)
            ref_acc = float(np.nanmin(values)) if np.isfinite(values).any() else float("nan")
            fr = _front_rows(c, table, ref_cost, ref_acc)
            fr = fr.assign(space=space, dataset=dataset, budget_source=source, ref_cost=ref_cost, ref_accuracy=ref_acc)
            front_frames.append(fr)
            what = "the table" if table is not None else "the plotted architectures"
            y_name = "accuracy" if kind == "truth" else f"{col} score"
            shown = pd.DataFrame({"Method": fr["method"], "Rule": fr["rule"], "Points": fr["points"],
                                  "Front points": fr["front_points"],
                                  "Hypervolume": [_fmt(v) for v in fr["hypervolume"]]})
            if table is not None:
                shown["Ratio to the table's"] = [f"{v:.3f}" if np.isfinite(v) else "–" for v in fr["ratio"]]
            shown[f"Front (cost, {y_name})"] = fr["front"]
            lines += ["#### Fronts over the budgets", "",
                      f"Per method and rule, the non-dominated subset of its chosen architectures over the "
                      f"{len(budgets)} budgets, and the 2-D hypervolume ({'%' if kind == 'truth' else 'score'} x "
                      f"{unit}) it dominates up to the reference point (cost {ref_cost:g} {unit}: the largest "
                      f"budget; {y_name} {ref_acc:.2f}: the lowest of {what})"
                      + ("; ratio: found / the table's." if table is not None else "; no table front to compare "
                         "with."), "", md_table(shown)]
        if notes:
            lines += [f"- {n}" for n in notes] + [""]
            out.notes += notes

    out.budgets = pd.concat(budget_frames, ignore_index=True) if budget_frames else pd.DataFrame()
    out.fronts = pd.concat(front_frames, ignore_index=True) if front_frames else pd.DataFrame()
    files = []
    if len(out.budgets):
        out.budgets.to_csv(out_dir / BUDGETS_CSV, index=False)
        files.append(f"[{BUDGETS_CSV}]({BUDGETS_CSV})")
    if len(out.fronts):
        out.fronts.to_csv(out_dir / FRONTS_CSV, index=False)
        files.append(f"[{FRONTS_CSV}]({FRONTS_CSV})")
    if files:
        lines += ["Files: " + ", ".join(files), ""]
    out.lines = lines
    return out
