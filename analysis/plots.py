"""Plots of a sweep (matplotlib, Agg backend, PNG). Each function returns a `Plot`: the files written, or why
it was skipped (its data is absent), so the report can say so instead of failing.

- op_probabilities: per method, one heatmap per edge (epochs x ops), mean over seeds;
- accuracy_vs_epoch: ground-truth test accuracy of the most likely architecture per epoch, mean ± std band;
- posterior_std: BaLeNAS' mean posterior standard deviation per epoch (`posterior_std_mean`);
- proxy_vs_accuracy: proxy score against true accuracy of the sampled architectures, Spearman in the titles;
- search_cost: wall time per search epoch per method.
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
from matplotlib.ticker import MaxNLocator  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from analysis.frames import (  # noqa: E402
    attach_ground_truth,
    config_labels,
    dataset_token,
    op_probabilities,
    open_benchmark_table,
    test_column,
)
from analysis.load import RunTables  # noqa: E402
from search_spaces.space import DEFAULT_SPACE  # noqa: E402

DPI = 120
#: heatmaps of at most this many epochs get the probability printed in every cell
ANNOTATE_MAX_EPOCHS = 10
#: columns of `samples` that are never proxy scores
SAMPLE_RESERVED = {"run", "trial_id", "trial_label", "method", "seed", "sample", "sample_idx", "arch", "epoch",
                   "dataset", "space", "status", "epochs_done"}
DATASET_TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet16_120": "ImageNet16-120"}


@dataclass
class Plot:
    """What one plot function did: `paths` written (may be several, e.g. one per method) or `skipped` why."""

    name: str
    title: str
    paths: list[Path] = field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)


def method_colors(methods: Sequence[str]) -> dict[str, tuple]:
    """A fixed colour per method (sorted names -> tab10), the same in every plot of a report."""
    cmap = plt.get_cmap("tab10")
    return {m: cmap(i % 10) for i, m in enumerate(sorted(set(map(str, methods))))}


def _save(fig, path: Path, tight: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def _dataset_title(dataset) -> str:
    return DATASET_TITLES.get(dataset_token(dataset), str(dataset))


def finished_epochs(tables: RunTables) -> tuple[pd.DataFrame, list[str]]:
    """The epochs of trials that finished (status TERMINATED; all epochs where the trials table has no status),
    with a `config` column (method plus the hyper-parameters that vary), and a note on what was left out."""
    ep, trials = tables.epochs, tables.trials
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


def _band(ax, frame: pd.DataFrame, x: str, y: str, color, label: str) -> None:
    """mean ± std over seeds (rows sharing x) as a line and a shaded band."""
    stats = frame.groupby(x)[y].agg(["mean", "std", "count"]).sort_index()
    xs, mean, std = stats.index.to_numpy(float), stats["mean"].to_numpy(), stats["std"].fillna(0).to_numpy()
    n = int(frame["trial_id"].nunique()) if "trial_id" in frame.columns else int(stats["count"].max())
    ax.plot(xs, mean, color=color, label=f"{label} (n={n})", lw=1.6, marker="o" if len(xs) <= 12 else None, ms=3)
    ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.2, lw=0)


# ---- op probabilities --------------------------------------------------------------------------------------
def op_probability_heatmaps(tables: RunTables, out_dir: Path) -> Plot:
    plot = Plot("op_probs", "Operation probabilities per edge over the search (mean over seeds)")
    ep, plot.notes = finished_epochs(tables)
    long = op_probabilities(ep)
    if long.empty:
        plot.skipped = "no op_probs in the epochs table"
        return plot
    configs = ep.drop_duplicates(["run", "trial_id"]).set_index(["run", "trial_id"])["config"]
    long["config"] = configs.reindex(pd.MultiIndex.from_frame(long[["run", "trial_id"]])).to_numpy()
    for config, part in long.groupby("config", sort=True):
        mean = part.groupby(["group", "row", "row_label", "option", "op", "epoch"])["prob"].mean()
        n_seeds = part["trial_id"].nunique()
        panels = sorted(part.groupby(["group", "row", "row_label"]).groups)
        ncols = min(3, len(panels))
        nrows = math.ceil(len(panels) / ncols)
        epochs = np.sort(part["epoch"].unique())
        # a fixed layout: constrained/tight layout of many image panels is slow on a busy CPU
        height = 2.5 * nrows + 1.55  # inches: 0.7 title, 0.85 tick labels below the last row
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols + 1.2, height), squeeze=False, sharey=True)
        fig.subplots_adjust(left=0.07, right=0.86, top=1 - 0.7 / height, bottom=0.85 / height, wspace=0.08,
                            hspace=0.62)
        image = None
        for ax, (group, row, row_label) in zip(axes.flat, panels):
            sub = mean.loc[(group, row, row_label)]
            ops = list(dict.fromkeys(sub.index.get_level_values("op")))
            grid = sub.unstack("epoch").reindex(columns=epochs).to_numpy().T  # epochs x options
            image = ax.imshow(grid, aspect="auto", vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest",
                              extent=(-0.5, len(ops) - 0.5, epochs[-1] + 0.5, epochs[0] - 0.5))
            if len(epochs) <= ANNOTATE_MAX_EPOCHS:  # few rows: print the values, colours alone hide small gaps
                for (i, j), value in np.ndenumerate(grid):
                    if np.isfinite(value):
                        ax.text(j, epochs[i], f"{value:.2f}", ha="center", va="center", fontsize=7,
                                color="black" if value > 0.6 else "white")
            ax.set_xticks(range(len(ops)))
            ax.set_xticklabels(ops, rotation=45, ha="right", fontsize=8)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"edge {row_label}" if group == "edges" else f"{group} {row_label}", fontsize=9)
        for ax in axes[:, 0]:
            ax.set_ylabel("search epoch")
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        fig.colorbar(image, cax=fig.add_axes((0.89, 0.2, 0.018, 0.6)), label="operation probability")
        edges = "; edge i←j: node j feeds node i" if any(g == "edges" for g, _, _ in panels) else ""
        fig.suptitle(f"{config}: operation probabilities per edge (mean over {n_seeds} trial(s)){edges}",
                     fontsize=10)
        plot.paths.append(_save(fig, out_dir / f"op_probs_{_slug(config)}.png", tight=False))
    return plot


def where_note(dataset) -> str:
    return f" (searched on {_dataset_title(dataset)})" if dataset is not None else ""


def _slug(text: str) -> str:
    """A file-name-safe form of a label: runs of other characters become one '_' ('a (x=0.1)' -> 'a_x_0_1')."""
    return re.sub(r"[^A-Za-z0-9-]+", "_", str(text)).strip("_") or "x"


# ---- accuracy of the most likely architecture ----------------------------------------------------------------
def accuracy_vs_epoch(tables: RunTables, out_dir: Path) -> Plot:
    plot = Plot("accuracy", "Ground-truth test accuracy of the most likely architecture per epoch")
    ep, plot.notes = finished_epochs(tables)
    if ep.empty or "epoch" not in ep.columns:
        plot.skipped = "no epochs table"
        return plot
    if "dataset" not in ep.columns:
        plot.skipped = "the epochs table has no dataset column (which test accuracy to show is unknown)"
        return plot
    datasets = list(ep["dataset"].dropna().unique())
    panels = [(d, test_column(ep[ep["dataset"] == d], d)) for d in datasets]
    panels = [(d, c) for d, c in panels if c]
    if not panels:
        plot.skipped = "no ground-truth test accuracy (bench_<dataset>_test) in the epochs table"
        return plot
    colors = method_colors(ep["config"].dropna())
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 3.8), squeeze=False, constrained_layout=True)
    for ax, (dataset, col) in zip(axes[0], panels):
        part = ep[(ep["dataset"] == dataset) & ep[col].notna()]
        for config, sub in part.groupby("config", sort=True):
            _band(ax, sub, "epoch", col, colors[config], str(config))
        _epoch_axis(ax)
        ax.set_ylabel(f"test accuracy (%) [{col}]")
        ax.set_title(f"searched on {_dataset_title(dataset)}", fontsize=10)
        ax.legend(fontsize=8, title="method (trials)", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle("Ground-truth accuracy of the most likely architecture (mean ± std over seeds)", fontsize=11)
    plot.paths.append(_save(fig, out_dir / "accuracy_vs_epoch.png"))
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


def _samples_with_dataset(tables: RunTables) -> pd.DataFrame:
    samples = tables.samples
    if "dataset" in samples.columns or tables.trials.empty or "dataset" not in tables.trials.columns:
        return samples
    keys = [k for k in ("run", "trial_id") if k in samples.columns and k in tables.trials.columns]
    return samples.merge(tables.trials[keys + ["dataset"]].drop_duplicates(keys), on=keys, how="left")


def proxy_vs_accuracy(tables: RunTables, out_dir: Path) -> Plot:
    plot = Plot("proxies", "Training-free proxy score against ground-truth accuracy of sampled architectures")
    samples = _samples_with_dataset(tables)
    if samples.empty:
        plot.skipped = "no samples table (the sweep ran no proxy stage)"
        return plot
    proxies = proxy_columns(samples)
    datasets = list(samples["dataset"].dropna().unique()) if "dataset" in samples.columns else []
    if not datasets:  # no data set known: use any test column
        datasets = [None]
    truth = {d: (test_column(samples if d is None else samples[samples["dataset"] == d], d or "cifar10")) for d in
             datasets}
    if not proxies:
        plot.skipped = "the samples table has no proxy score columns"
        return plot
    if not any(truth.values()):
        plot.skipped = "the samples table has no ground-truth test accuracy (bench_<dataset>_test)"
        return plot
    colors = method_colors(samples["method"].dropna())
    for dataset, acc_col in truth.items():
        if not acc_col:
            continue
        data = samples if dataset is None else samples[samples["dataset"] == dataset]
        ncols = min(3, len(proxies))
        nrows = math.ceil(len(proxies) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.7 * nrows), squeeze=False,
                                 constrained_layout=True)
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
            rho = spearmanr(sub[proxy].astype(float), sub[acc_col].astype(float)).statistic
            x = sub[proxy].astype(float)
            symlog = x.abs().max() > 0 and (x.abs().max() / max(x.abs()[x != 0].min(), 1e-300)) > 1e4
            for method, part in sub.groupby("method", sort=True):
                ax.scatter(part[proxy].astype(float), part[acc_col], s=10, alpha=0.6, color=colors[method],
                           label=f"{method} ({len(part)})", edgecolors="none")
            if symlog:
                ax.set_xscale("symlog")
            ax.set_xlabel(f"{proxy} score" + (" (symlog scale)" if symlog else ""))
            ax.set_ylabel(f"test accuracy (%) [{acc_col}]")
            extra = f", {failed} unscored" if failed else ""
            ax.set_title(f"{proxy}: Spearman ρ = {rho:.3f} (n = {len(sub)}{extra})", fontsize=10)
            plot.notes.append(f"{proxy}{where_note(dataset)}: Spearman ρ = {rho:.4f} over {len(sub)} architectures"
                              + (f" ({failed} unscored or without ground truth)" if failed else ""))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, title="method (archs)", title_fontsize=7)
        for ax in list(axes.flat)[len(proxies):]:
            ax.set_visible(False)
        where = f" (searched on {_dataset_title(dataset)})" if dataset is not None else ""
        fig.suptitle(f"Proxy score vs. ground-truth accuracy of sampled architectures{where}", fontsize=11)
        name = "proxy_vs_accuracy.png" if len(truth) == 1 else f"proxy_vs_accuracy_{_slug(dataset)}.png"
        plot.paths.append(_save(fig, out_dir / name))
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

    With `benchmark` (a ground-truth table file), the ground truth that the epochs (by genotype) and the
    samples (by arch) lack is looked up there first, e.g. for a sweep whose spec named no benchmark.
    """
    out_dir = Path(out_dir)
    if benchmark is not None:
        space = _first(tables.trials, "space") or _first(tables.epochs, "space") or DEFAULT_SPACE
        bench = open_benchmark_table(benchmark, space)
        tables = replace(tables, epochs=attach_ground_truth(tables.epochs, bench, "genotype"),
                         samples=attach_ground_truth(tables.samples, bench, "arch"))
    return [fn(tables, out_dir) for fn in PLOTS]


def _first(frame: pd.DataFrame, column: str) -> str | None:
    if column in frame.columns and frame[column].notna().any():
        return str(frame[column].dropna().iloc[0])
    return None
