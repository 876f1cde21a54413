"""Plots of a sweep (matplotlib, Agg backend, PNG). Each function returns a `Plot`: the files written, or why
it was skipped (its data is absent), so the report can say so instead of failing; `Plot.data` holds the
numbers each file shows (per file name), so a caller or test can read what was drawn.

- op_probabilities: per method (and varying hyper-parameters), one figure whatever the space: per group of the
  space's `arch_shapes` (NB201 one group of 6 edges x 5 ops, DARTS normal + reduce of 14 x 8, NB-1shot1 its op
  and input groups) one row of three panels: a heatmap of the final probabilities (rows x options, the
  space's `row_names` and `option_names`), each option's mean probability over the group's rows per epoch,
  and each row's most likely option per epoch (colour = option, shared with the middle panel's legend);
  mean over seeds;
- accuracy_vs_epoch: ground-truth accuracy of the most likely architecture per epoch, mean ± std band;
- posterior_std: BaLeNAS' mean posterior standard deviation per epoch (`posterior_std_mean`);
- proxy_vs_accuracy: proxy score against true accuracy of the sampled architectures, Spearman in the titles;
- search_cost: wall time per search epoch per method.

Which ground-truth column the accuracy and proxy plots show is the run's benchmark's rule
(`analysis.frames.test_column`: `Benchmark.test_column` of the space's `benchmark_name`, e.g. the NB301
sample's CIFAR-10 validation accuracy for a DARTS sweep); one figure per (space, searched data set) of the rows.
The run's space and data set come from the rows, else the trials table, else the spec.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from analysis.frames import (  # noqa: E402
    _known_space,
    attach_ground_truth,
    column_title,
    config_labels,
    fill_run_columns,
    op_probabilities,
    open_benchmark_table,
    run_value,
    tables_space,
    test_column,
)
from analysis.load import RunTables  # noqa: E402

DPI = 120
#: final-probability heatmaps of at most this many cells get the probability printed in every cell
ANNOTATE_MAX_CELLS = 160
#: columns of `samples` that are never proxy scores
SAMPLE_RESERVED = {"run", "trial_id", "trial_label", "method", "seed", "sample", "sample_idx", "arch", "epoch",
                   "dataset", "space", "status", "epochs_done", "budget", "budget_cost", "within_budget"}


@dataclass
class Plot:
    """What one plot function did: `paths` written (may be several, e.g. one per method) or `skipped` why;
    `data`: file name -> the numbers that file shows (a DataFrame)."""

    name: str
    title: str
    paths: list[Path] = field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    data: dict[str, pd.DataFrame] = field(default_factory=dict)


def method_colors(methods: Sequence[str]) -> dict[str, tuple]:
    """A fixed colour per method (sorted names -> tab10), the same in every plot of a report."""
    cmap = plt.get_cmap("tab10")
    return {m: cmap(i % 10) for i, m in enumerate(sorted(set(map(str, methods))))}


def option_colors(names: Sequence[str]) -> dict[str, tuple]:
    """A colour per option name, in the given order (tab10, tab20 beyond ten names)."""
    names = list(dict.fromkeys(map(str, names)))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def _save(fig, path: Path, tight: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def _with_run_columns(frame: pd.DataFrame, tables: RunTables) -> pd.DataFrame:
    """`frame` with `space` and `dataset` from its rows, else the trials table, else the spec."""
    return fill_run_columns(frame, tables.trials, tables.specs)


def finished_epochs(tables: RunTables) -> tuple[pd.DataFrame, list[str]]:
    """The epochs of trials that finished (status TERMINATED; all epochs where the trials table has no status),
    with a `config` column (method plus the hyper-parameters that vary), and a note on what was left out."""
    ep, trials = _with_run_columns(tables.epochs, tables), tables.trials
    if "run" not in ep.columns:
        ep = ep.assign(run="")
    notes = []
    keys = [k for k in ("run", "trial_id") if k in ep.columns and k in trials.columns]
    if len(ep) and len(trials) and "status" in trials.columns and keys:
        bad = trials.loc[trials["status"].ne("TERMINATED"), keys].drop_duplicates()
        if len(bad):
            drop = ep[keys].merge(bad.assign(_bad=True), on=keys, how="left")["_bad"].fillna(False).to_numpy(bool)
            notes.append(f"{len(bad)} unfinished trial(s) left out ({int(drop.sum())} epoch rows)")
            ep = ep[~drop]
    ep = ep.assign(config=config_labels(ep, with_dataset=False)) if len(ep) else ep.assign(config=[])
    return ep, notes


def _epoch_axis(ax) -> None:
    ax.set_xlabel("search epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _band(ax, frame: pd.DataFrame, x: str, y: str, color, label: str) -> pd.DataFrame:
    """mean ± std over seeds (rows sharing x) as a line and a shaded band; returns the statistics drawn."""
    stats = frame.groupby(x)[y].agg(["mean", "std", "count"]).sort_index()
    xs, mean, std = stats.index.to_numpy(float), stats["mean"].to_numpy(), stats["std"].fillna(0).to_numpy()
    n = int(frame["trial_id"].nunique()) if "trial_id" in frame.columns else int(stats["count"].max())
    ax.plot(xs, mean, color=color, label=f"{label} (n={n})", lw=1.6, marker="o" if len(xs) <= 12 else None, ms=3)
    ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.2, lw=0)
    return stats.reset_index()


def _space_dataset_keys(frame: pd.DataFrame) -> list[tuple[str | None, str | None]]:
    """The (space, searched data set) pairs of a frame's rows, in order; (None, None) where it says neither."""
    cols = [c for c in ("space", "dataset") if c in frame.columns]
    if not cols or frame.empty:
        return [(None, None)]
    pairs = frame[cols].astype("object").where(frame[cols].notna(), None).drop_duplicates()
    return [(rec.get("space"), rec.get("dataset")) for rec in pairs.to_dict("records")]


def _rows_of(frame: pd.DataFrame, space, dataset) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    for col, value in (("space", space), ("dataset", dataset)):
        if col in frame.columns:
            keep &= frame[col].isna() if value is None else frame[col].eq(value)
    return frame[keep]


def _where(space, dataset, several_spaces: bool) -> str:
    """' (searched on cifar10)', with the space where a report holds several."""
    parts = ([f"space {space}"] if several_spaces and space is not None else []) + (
        [f"searched on {dataset}"] if dataset is not None else [])
    return f" ({', '.join(parts)})" if parts else ""


def _slug(text: str) -> str:
    """A file-name-safe form of a label: runs of other characters become one '_' ('a (x=0.1)' -> 'a_x_0_1')."""
    return re.sub(r"[^A-Za-z0-9-]+", "_", str(text)).strip("_") or "x"


# ---- op probabilities --------------------------------------------------------------------------------------
@dataclass
class GroupProbabilities:
    """One group's probabilities of one configuration, mean over its trials: `per_epoch[e, r, o]` at
    `epochs[e]`, `final[r, o]` (each trial's last epoch), with the row and option labels."""

    group: str
    rows: list[str]
    options: list[str]
    epochs: np.ndarray
    per_epoch: np.ndarray
    final: np.ndarray
    final_epoch: int


def group_probabilities(long: pd.DataFrame, space: str | None = None) -> list[GroupProbabilities]:
    """The groups of an `op_probabilities` frame (one configuration), in the space's `arch_shapes` order where
    the space is known, else in order of appearance; mean over trials."""
    if long.empty:
        return []
    sp = _known_space(space)
    present = list(dict.fromkeys(long["group"]))
    order = [g for g in (sp.arch_shapes if sp is not None else ()) if g in present]
    order += [g for g in present if g not in order]
    trial = ["run", "trial_id"] if "run" in long.columns else ["trial_id"]
    out = []
    for group in order:
        part = long[long["group"] == group]
        n_rows, n_opts = int(part["row"].max()) + 1, int(part["option"].max()) + 1
        rows = part.drop_duplicates("row").set_index("row")["row_label"].reindex(range(n_rows))
        opts = part.drop_duplicates("option").set_index("option")["op"].reindex(range(n_opts))
        epochs = np.sort(part["epoch"].unique())
        mean = part.groupby(["epoch", "row", "option"])["prob"].mean()
        full = pd.MultiIndex.from_product([epochs, range(n_rows), range(n_opts)], names=["epoch", "row", "option"])
        per_epoch = mean.reindex(full).to_numpy(float).reshape(len(epochs), n_rows, n_opts)
        last = part[part["epoch"] == part.groupby(trial, dropna=False)["epoch"].transform("max")]
        final = last.groupby(["row", "option"])["prob"].mean().reindex(
            pd.MultiIndex.from_product([range(n_rows), range(n_opts)])).to_numpy(float).reshape(n_rows, n_opts)
        out.append(GroupProbabilities(
            group, [str(r) if pd.notna(r) else f"{group}[{i}]" for i, r in enumerate(rows)],
            [str(o) if pd.notna(o) else f"op{i}" for i, o in enumerate(opts)], epochs, per_epoch, final,
            int(last["epoch"].max())))
    return out


def op_probability_figure(groups: Sequence[GroupProbabilities], title: str):
    """The figure of `op_probability_heatmaps` for one configuration: one row of panels per group (final
    probabilities | mean probability of each option over the rows, per epoch | most likely option of each row,
    per epoch), a colour bar per heatmap and one legend per group for the option colours."""
    colors = option_colors([o for g in groups for o in g.options])
    max_opts = max(len(g.options) for g in groups)
    heights = [max(0.3 * len(g.rows) + 1.5, 2.1) for g in groups]
    width_a = 0.5 * max_opts + 1.6
    fig = plt.figure(figsize=(width_a + 10.5, sum(heights) + 0.8), layout="constrained")
    fig.get_layout_engine().set(h_pad=0.08, hspace=0.06, wspace=0.04)
    grid = fig.add_gridspec(len(groups), 3, width_ratios=[width_a, 4.4, 6.1], height_ratios=heights)
    for i, g in enumerate(groups):
        ax_final, ax_mass, ax_top = (fig.add_subplot(grid[i, j]) for j in range(3))
        n_rows, n_opts = g.final.shape
        image = ax_final.imshow(g.final, aspect="auto", vmin=0.0, vmax=1.0, cmap="viridis",
                                interpolation="nearest")
        if n_rows * n_opts <= ANNOTATE_MAX_CELLS:  # colours alone hide small gaps: print the values
            size = 7 if n_rows * n_opts <= 60 else 6
            for (r, o), value in np.ndenumerate(g.final):
                if np.isfinite(value):
                    ax_final.text(o, r, f"{value:.2f}", ha="center", va="center", fontsize=size,
                                  color="black" if value > 0.6 else "white")
        ax_final.set_xticks(range(n_opts))
        ax_final.set_xticklabels(g.options, rotation=40, ha="right", rotation_mode="anchor", fontsize=8)
        ax_final.set_yticks(range(n_rows))
        ax_final.set_yticklabels(g.rows, fontsize=8)
        ax_final.set_title(f"{g.group}: final probabilities (epoch {g.final_epoch})", fontsize=9)
        fig.colorbar(image, ax=ax_final, fraction=0.08, pad=0.02)

        mass = np.nanmean(g.per_epoch, axis=1)  # epochs x options: each option's mean over the rows
        for o, name in enumerate(g.options):
            ax_mass.plot(g.epochs, mass[:, o], color=colors[name], lw=1.5)
        top = np.nanmax(mass) if np.isfinite(mass).any() else 1.0
        ax_mass.set_ylim(0, min(1.0, max(0.05, 1.12 * top)))
        _epoch_axis(ax_mass)
        if n_rows > 1:
            ax_mass.set_ylabel("mean probability", fontsize=8)
            ax_mass.set_title(f"{g.group}: mean probability of each option over its {n_rows} rows", fontsize=9)
        else:
            ax_mass.set_ylabel("probability", fontsize=8)
            ax_mass.set_title(f"{g.group}: probability of each option", fontsize=9)

        valid = np.isfinite(g.per_epoch).any(axis=2)
        best = np.where(valid, np.nanargmax(np.where(np.isfinite(g.per_epoch), g.per_epoch, -1.0), axis=2), -1)
        palette = np.array([colors[name][:3] for name in g.options] + [(1.0, 1.0, 1.0)])
        step = np.diff(g.epochs).min() if len(g.epochs) > 1 else 1
        ax_top.imshow(palette[best.T], aspect="auto", interpolation="nearest",
                      extent=(g.epochs[0] - step / 2, g.epochs[-1] + step / 2, n_rows - 0.5, -0.5))
        ax_top.set_yticks(range(n_rows))
        ax_top.set_yticklabels(g.rows, fontsize=8)
        ax_top.set_xlabel("search epoch")
        ax_top.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_top.set_title(f"{g.group}: most likely option of each row per epoch", fontsize=9)
        handles = [Line2D([], [], color=colors[name], lw=6, label=name) for name in g.options]
        ax_top.legend(handles=handles, fontsize=8, title="option", title_fontsize=8, loc="upper left",
                      bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
    fig.suptitle(title, fontsize=11)
    return fig


def op_probability_heatmaps(tables: RunTables, out_dir: Path) -> Plot:
    plot = Plot("op_probs", "Architecture probabilities: final values and their course over the search "
                            "(mean over seeds)")
    ep, plot.notes = finished_epochs(tables)
    long = op_probabilities(ep)
    if long.empty:
        plot.skipped = "no op_probs in the epochs table"
        return plot
    configs = ep.drop_duplicates(["run", "trial_id"]).set_index(["run", "trial_id"])["config"]
    long["config"] = configs.reindex(pd.MultiIndex.from_frame(long[["run", "trial_id"]])).to_numpy()
    for config, part in long.groupby("config", sort=True):
        groups = group_probabilities(part, run_value(part, "space"))
        n_trials = len(part[["run", "trial_id"]].drop_duplicates())
        fig = op_probability_figure(groups, f"{config}: architecture probabilities (mean over {n_trials} trial(s), "
                                            f"{len(groups[0].epochs)} epochs)")
        path = _save(fig, out_dir / f"op_probs_{_slug(config)}.png", tight=False)  # the layout engine fits it
        plot.paths.append(path)
        plot.data[path.name] = pd.concat(
            [pd.DataFrame(g.final, index=pd.Index(g.rows, name="row"), columns=g.options).stack().rename("prob")
             .reset_index().rename(columns={"level_1": "option"}).assign(group=g.group) for g in groups],
            ignore_index=True)
    return plot


# ---- accuracy of the most likely architecture ----------------------------------------------------------------
def accuracy_vs_epoch(tables: RunTables, out_dir: Path) -> Plot:
    plot = Plot("accuracy", "Ground-truth accuracy of the most likely architecture per epoch")
    ep, plot.notes = finished_epochs(tables)
    if ep.empty or "epoch" not in ep.columns:
        plot.skipped = "no epochs table"
        return plot
    if "dataset" not in ep.columns:
        plot.skipped = "the epochs table has no dataset column (which test accuracy to show is unknown)"
        return plot
    keys = _space_dataset_keys(ep)
    several = len({s for s, _ in keys}) > 1
    panels = [(s, d, test_column(_rows_of(ep, s, d), d, s)) for s, d in keys]
    panels = [(s, d, c) for s, d, c in panels if c]
    if not panels:
        plot.skipped = ("no ground-truth accuracy (the bench_* column the run's benchmark names) in the epochs "
                        "table")
        return plot
    colors = method_colors(ep["config"].dropna())
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 3.8), squeeze=False, constrained_layout=True)
    data = []
    for ax, (space, dataset, col) in zip(axes[0], panels):
        part = _rows_of(ep, space, dataset)
        part = part[part[col].notna()]
        for config, sub in part.groupby("config", sort=True):
            stats = _band(ax, sub, "epoch", col, colors[config], str(config))
            data.append(stats.assign(config=config, space=space, dataset=dataset, column=col))
        _epoch_axis(ax)
        ax.set_ylabel(f"{column_title(space, col)} accuracy (%)\n[{col}]")
        ax.set_title(_where(space, dataset, several).strip(" ()") or "ground truth", fontsize=10)
        ax.legend(fontsize=8, title="method (trials)", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle("Ground-truth accuracy of the most likely architecture (mean ± std over seeds)", fontsize=11)
    path = _save(fig, out_dir / "accuracy_vs_epoch.png")
    plot.paths.append(path)
    plot.data[path.name] = pd.concat(data, ignore_index=True)
    return plot


# ---- BaLeNAS posterior std ---------------------------------------------------------------------------------
def posterior_std(tables: RunTables, out_dir: Path, column: str = "posterior_std_mean") -> Plot:
    plot = Plot("posterior_std", "Posterior standard deviation of the architecture parameters (BaLeNAS)")
    ep, plot.notes = finished_epochs(tables)
    if column not in ep.columns or ep[column].notna().sum() == 0:
        plot.skipped = f"no {column} in the epochs table (no BaLeNAS trial)"
        return plot
    part = ep[ep[column].notna()]
    colors = method_colors(ep["config"].dropna())
    fig, ax = plt.subplots(figsize=(7.5, 3.8), constrained_layout=True)
    for config, sub in part.groupby("config", sort=True):
        _band(ax, sub, "epoch", column, colors[config], str(config))
    _epoch_axis(ax)
    ax.set_ylabel("mean posterior std of α")
    ax.set_title("Posterior std of the architecture weights\n(mean over α entries; band: ± std over seeds)",
                 fontsize=10)
    ax.legend(fontsize=8, title="method (trials)", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    plot.paths.append(_save(fig, out_dir / "posterior_std.png"))
    return plot


# ---- proxies -----------------------------------------------------------------------------------------------
def proxy_columns(samples: pd.DataFrame) -> list[str]:
    """Proxy score columns: numeric columns that are not identifiers, ground truth or hyper-parameters."""
    return [c for c in samples.columns if c not in SAMPLE_RESERVED and not str(c).startswith(("bench_", "hp_"))
            and not str(c).endswith("_error") and pd.api.types.is_numeric_dtype(samples[c])]


def proxy_vs_accuracy(tables: RunTables, out_dir: Path) -> Plot:
    plot = Plot("proxies", "Training-free proxy score against ground-truth accuracy of sampled architectures")
    samples = _with_run_columns(tables.samples, tables)
    if samples.empty:
        plot.skipped = "no samples table (the sweep ran no proxy stage)"
        return plot
    proxies = proxy_columns(samples)
    keys = _space_dataset_keys(samples)
    several = len({s for s, _ in keys}) > 1
    truth = {(s, d): test_column(_rows_of(samples, s, d), d, s) for s, d in keys}
    if not proxies:
        plot.skipped = "the samples table has no proxy score columns"
        return plot
    if not any(truth.values()):
        plot.skipped = ("the samples table has no ground-truth accuracy (the bench_* column the run's benchmark "
                        "names)")
        return plot
    colors = method_colors(samples["method"].dropna())
    varying = [i for i in (0, 1) if len({k[i] for k in truth if truth[k]}) > 1]
    for (space, dataset), acc_col in truth.items():
        if not acc_col:
            continue
        data = _rows_of(samples, space, dataset)
        ncols = min(3, len(proxies))
        nrows = math.ceil(len(proxies) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.7 * nrows), squeeze=False,
                                 constrained_layout=True)
        shown = []
        for ax, proxy in zip(axes.flat, proxies):
            ok = data[proxy].notna() & data[acc_col].notna() & np.isfinite(data[proxy].astype(float))
            if f"{proxy}_error" in data.columns:
                ok &= data[f"{proxy}_error"].isna()
            sub = data[ok]
            failed = int((~ok).sum())
            if len(sub) < 2:
                ax.text(0.5, 0.5, f"{len(sub)} scored architecture(s)", ha="center", va="center",
                        transform=ax.transAxes)
                ax.set_title(proxy)
                plot.notes.append(f"{proxy}: fewer than 2 scored architectures")
                continue
            shown.append(pd.DataFrame({"proxy": proxy, "method": sub["method"].to_numpy(),
                                       "arch": sub["arch"].to_numpy() if "arch" in sub.columns else None,
                                       "score": sub[proxy].astype(float).to_numpy(),
                                       "accuracy": sub[acc_col].astype(float).to_numpy(), "column": acc_col}))
            rho = spearmanr(sub[proxy].astype(float), sub[acc_col].astype(float)).statistic
            x = sub[proxy].astype(float)
            symlog = x.abs().max() > 0 and (x.abs().max() / max(x.abs()[x != 0].min(), 1e-300)) > 1e4
            for method, part in sub.groupby("method", sort=True):
                ax.scatter(part[proxy].astype(float), part[acc_col], s=10, alpha=0.6, color=colors[method],
                           label=f"{method} ({len(part)})", edgecolors="none")
            if symlog:
                ax.set_xscale("symlog")
            ax.set_xlabel(f"{proxy} score" + (" (symlog scale)" if symlog else ""))
            ax.set_ylabel(f"{column_title(space, acc_col)} accuracy (%)\n[{acc_col}]", fontsize=9)
            extra = f", {failed} unscored" if failed else ""
            ax.set_title(f"{proxy}: Spearman ρ = {rho:.3f} (n = {len(sub)}{extra})", fontsize=10)
            plot.notes.append(f"{proxy}{_where(space, dataset, several)}: Spearman ρ = {rho:.4f} over {len(sub)} "
                              f"architectures" + (f" ({failed} unscored or without ground truth)" if failed else ""))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, title="method (archs)", title_fontsize=7)
        for ax in list(axes.flat)[len(proxies):]:
            ax.set_visible(False)
        fig.suptitle(f"Proxy score vs. ground-truth accuracy of sampled architectures"
                     f"{_where(space, dataset, several)}", fontsize=11)
        suffix = "_".join(_slug((space, dataset)[i]) for i in varying)
        path = _save(fig, out_dir / (f"proxy_vs_accuracy_{suffix}.png" if suffix else "proxy_vs_accuracy.png"))
        plot.paths.append(path)
        if shown:
            plot.data[path.name] = pd.concat(shown, ignore_index=True)
    return plot


# ---- search cost -------------------------------------------------------------------------------------------
def search_cost(tables: RunTables, out_dir: Path) -> Plot:
    plot = Plot("search_cost", "Search cost: wall time per search epoch")
    ep, plot.notes = finished_epochs(tables)
    if "epoch_time_s" not in ep.columns or ep["epoch_time_s"].notna().sum() == 0:
        plot.skipped = "no epoch_time_s in the epochs table"
        return plot
    part = ep[ep["epoch_time_s"].notna()]
    per_trial = part.groupby(["method", "trial_id"])["epoch_time_s"].agg(["mean", "sum"]).reset_index()
    stats = per_trial.groupby("method").agg(mean=("mean", "mean"), std=("mean", "std"), n=("mean", "size"),
                                            total=("sum", "mean")).sort_index()
    colors = method_colors(ep["method"].dropna())
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(stats) + 2), 3.8), constrained_layout=True)
    xs = np.arange(len(stats))
    ax.bar(xs, stats["mean"], yerr=stats["std"].fillna(0), capsize=4,
           color=[colors[m] for m in stats.index], alpha=0.85)
    for x, (_, rec) in zip(xs, stats.iterrows()):
        top = rec["mean"] + (0 if pd.isna(rec["std"]) else rec["std"])
        ax.annotate(f"{rec['mean']:.3g} s/epoch\ntotal {_duration(rec['total'])}", (x, top),
                    textcoords="offset points", xytext=(0, 5), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{m}\n(n={int(n)})" for m, n in zip(stats.index, stats["n"])], fontsize=8)
    ax.set_ylabel("wall time per search epoch (s)")
    ax.set_ylim(0, float((stats["mean"] + stats["std"].fillna(0)).max()) * 1.35 or 1)
    ax.set_title("Search cost: mean wall time per epoch\n(error bar: std over trials; total: mean search time "
                 "per trial)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    plot.paths.append(_save(fig, out_dir / "search_cost.png"))
    return plot


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


PLOTS = (op_probability_heatmaps, accuracy_vs_epoch, posterior_std, proxy_vs_accuracy, search_cost)


def all_plots(tables: RunTables, out_dir: str | Path, benchmark: str | Path | None = None) -> list[Plot]:
    """Every plot of the report, in report order (skipped ones say why).

    With `benchmark` (a ground-truth table file, read by the benchmark of the run's space), the ground truth
    that the epochs (by genotype) and the samples (by arch) lack is looked up there first, e.g. for a sweep
    whose spec named no benchmark, or for the samples, which the proxy stage writes without ground truth.
    """
    out_dir = Path(out_dir)
    tables = replace(tables, epochs=_with_run_columns(tables.epochs, tables),
                     samples=_with_run_columns(tables.samples, tables))
    notes = []
    if benchmark is not None:
        try:
            bench = open_benchmark_table(benchmark, tables_space(tables))
        except ValueError as err:
            notes.append(f"ground truth not looked up: {err}")
        else:
            tables = replace(tables, epochs=attach_ground_truth(tables.epochs, bench, "genotype"),
                             samples=attach_ground_truth(tables.samples, bench, "arch"))
    made = [fn(tables, out_dir) for fn in PLOTS]
    for plot in made:
        if plot.name in ("accuracy", "proxies"):  # the plots that show ground truth
            plot.notes += notes
    return made
