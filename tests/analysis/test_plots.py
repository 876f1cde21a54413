"""Plots: every file is written and is a non-empty PNG; absent data skips a plot with a reason."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from _frames import make_frames, make_run, write_run
from scipy.stats import spearmanr

from analysis import load
from analysis import plots as P

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    run_dir, frames = make_run(tmp_path_factory.mktemp("runs") / "sweep", balenas_lambdas=(0.1, 0.5))
    return load(run_dir), frames


def _is_png(path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


def test_every_plot_is_written(tables, tmp_path):
    t, _ = tables
    made = P.all_plots(t, tmp_path)
    assert [p.name for p in made] == ["op_probs", "accuracy", "posterior_std", "proxies", "search_cost"]
    for plot in made:
        assert plot.skipped is None, plot
        assert plot.paths and all(_is_png(p) for p in plot.paths), plot
    heatmaps = {p.name for p in made[0].paths}
    assert heatmaps == {"op_probs_balenas_lambda_0_1.png", "op_probs_balenas_lambda_0_5.png", "op_probs_darts.png"}


def test_unfinished_trials_are_left_out_of_the_curves(tables):
    t, frames = tables
    ep, notes = P.finished_epochs(t)
    failed = frames["trials"].loc[frames["trials"]["status"] == "ERROR", "trial_id"]
    assert not ep["trial_id"].isin(failed).any()
    assert notes == ["1 unfinished trial(s) left out (1 epoch rows)"]
    assert set(ep["config"]) == {"balenas (lambda=0.1)", "balenas (lambda=0.5)", "darts"}


def test_proxy_spearman_matches_scipy(tables, tmp_path):
    t, frames = tables
    plot = P.proxy_vs_accuracy(t, tmp_path)
    s = frames["samples"]
    for proxy in ("naswot", "synflow"):
        ok = s[proxy].notna() & s[f"{proxy}_error"].isna()
        want = spearmanr(s.loc[ok, proxy], s.loc[ok, "bench_cifar10_test"]).statistic
        note = next(n for n in plot.notes if n.startswith(proxy))
        got = float(re.search(r"ρ = (-?[0-9.]+)", note).group(1))
        assert got == pytest.approx(want, abs=5e-5)
        assert f"over {int(ok.sum())} architectures" in note
    assert P.proxy_columns(t.samples) == ["naswot", "synflow"]


def test_absent_data_skips_cleanly(tmp_path):
    frames = make_frames(methods=("darts",), proxies=False, failed=None, seed=7)
    for col in ("op_probs", "epoch_time_s"):
        frames["epochs"] = frames["epochs"].drop(columns=col)
    frames["epochs"] = frames["epochs"].drop(columns=[c for c in frames["epochs"] if c.startswith("bench_")])
    t = load(write_run(tmp_path / "bare", frames))
    made = {p.name: p for p in P.all_plots(t, tmp_path / "out")}
    assert "op_probs" in made["op_probs"].skipped
    assert "bench_" in made["accuracy"].skipped
    assert "posterior_std_mean" in made["posterior_std"].skipped
    assert "samples" in made["proxies"].skipped
    assert "epoch_time_s" in made["search_cost"].skipped
    assert all(not p.paths for p in made.values())
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_method_colors_are_stable():
    a = P.method_colors(["darts", "balenas"])
    b = P.method_colors(["balenas", "darts", "darts"])
    assert a == b and a["balenas"] != a["darts"]


def test_ground_truth_for_plots_comes_from_the_benchmark_when_missing(tmp_path, shared_data):
    frames = make_frames(seed=14, methods=("darts",))
    for name in ("epochs", "samples"):
        frames[name] = frames[name].drop(columns=[c for c in frames[name] if c.startswith("bench_")])
    t = load(write_run(tmp_path / "no_gt", frames))
    made = {p.name: p for p in P.all_plots(t, tmp_path / "without")}
    assert made["proxies"].skipped and made["accuracy"].skipped
    made = {p.name: p for p in P.all_plots(t, tmp_path / "with", benchmark=shared_data / "nb201" / "nb201_merged.csv")}
    assert made["proxies"].skipped is None and made["accuracy"].skipped is None
    truth = pd.read_csv(shared_data / "nb201" / "nb201_merged.csv").set_index("arch_str")["cifar10_test_acc_200ep"]
    s = frames["samples"]
    ok = s["naswot"].notna()
    want = spearmanr(s.loc[ok, "naswot"], truth.loc[s.loc[ok, "arch"]].to_numpy()).statistic
    got = float(re.search(r"ρ = (-?[0-9.]+)", made["proxies"].notes[0]).group(1))
    assert got == pytest.approx(want, abs=5e-5)
