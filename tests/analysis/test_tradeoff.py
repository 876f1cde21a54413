"""Accuracy against cost (analysis.tradeoff, search_spaces.cost_model.true_costs): the Pareto front, the
hypervolume and the optimum under a budget against brute force and closed forms, the true NB201 front against the
packaged tables queried directly, and the report's "Accuracy and cost" section of hand-built runs."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest
from _frames import make_frames, make_run, write_run

from analysis import load
from analysis.report import build_report
from analysis.tradeoff import (
    hypervolume,
    optimum_under_budget,
    pareto_front,
    parse_budget_source,
    section,
)

DEVICE = "pixel3"
ACC = "bench_cifar10_test"  # NB201's test column for a search on CIFAR-10 (Benchmark.test_column)


# ---- brute force ---------------------------------------------------------------------------------------------
def brute_front(c, a) -> set[int]:
    """Indices no other point dominates (cost down, accuracy up), by comparing every pair."""
    ok = [i for i in range(len(c)) if np.isfinite(c[i]) and np.isfinite(a[i])]
    return {i for i in ok if not any(c[j] <= c[i] and a[j] >= a[i] and (c[j] < c[i] or a[j] > a[i]) for j in ok)}


def union_area(c, a, ref_c, ref_a) -> float:
    """The area of the union of the rectangles [c_i, ref_c] x [ref_a, a_i] by inclusion-exclusion: a subset's
    rectangles intersect in [max c, ref_c] x [ref_a, min a]."""
    total = 0.0
    n = len(c)
    for k in range(1, n + 1):
        for subset in itertools.combinations(range(n), k):
            w = ref_c - max(c[i] for i in subset)
            h = min(a[i] for i in subset) - ref_a
            total += (-1) ** (k + 1) * max(w, 0.0) * max(h, 0.0)
    return total


def staircase_area(c, a, ref_c, ref_a) -> float:
    """The same area as an integral over cost of the best accuracy at most that cost (a cumulative maximum of the
    points sorted by cost; no front computed)."""
    frame = pd.DataFrame({"c": c, "a": a}).dropna()
    frame = frame[(frame["c"] < ref_c) & (frame["a"] > ref_a)].sort_values("c")
    if frame.empty:
        return 0.0
    best = frame["a"].cummax().to_numpy()
    edges = np.r_[frame["c"].to_numpy(), ref_c]
    return float(np.sum(np.diff(edges) * (best - ref_a)))


# ---- the pure functions --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_pareto_front_is_the_brute_force_front_ties_included(seed):
    rng = np.random.default_rng(seed)
    n = 40
    c = rng.integers(0, 8, n).astype(float)  # few values: many ties in cost, accuracy and both
    a = rng.integers(0, 8, n).astype(float)
    c[rng.integers(0, n, 3)] = np.nan
    front = pareto_front(c, a)
    assert set(front.tolist()) == brute_front(c, a)
    assert np.all(np.diff(c[front]) >= 0)  # in increasing cost
    assert np.all(np.diff(a[front]) >= 0)


def test_pareto_front_small_cases():
    assert pareto_front([], []).tolist() == []
    assert pareto_front([1.0], [5.0]).tolist() == [0]
    assert pareto_front([1, 1, 2], [5, 5, 6]).tolist() == [0, 1, 2]  # identical points: both stay
    assert pareto_front([1, 1, 2], [5, 4, 5]).tolist() == [0]  # same cost, lower accuracy; dearer, same accuracy
    assert pareto_front([3, 2, 1], [3, 2, 1]).tolist() == [2, 1, 0]
    with pytest.raises(ValueError):
        pareto_front([1, 2], [1])


@pytest.mark.parametrize("seed", range(6))
def test_hypervolume_is_the_area_of_the_union_of_rectangles(seed):
    rng = np.random.default_rng(100 + seed)
    n = 8
    c, a = rng.uniform(0, 10, n), rng.uniform(50, 95, n)
    if seed % 2:  # ties in cost and accuracy
        c[1], a[2] = c[0], a[0]
    ref_c, ref_a = 9.0, 55.0  # some points beyond the reference: they add nothing
    expected = union_area(c, a, ref_c, ref_a)
    assert hypervolume(c, a, ref_c, ref_a) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert hypervolume(c, a, ref_c, ref_a) == pytest.approx(staircase_area(c, a, ref_c, ref_a), rel=1e-12)
    # on a fine grid: the share of cells whose centre some point dominates
    xs = np.linspace(0, ref_c, 901)[:-1] + ref_c / 1800
    ys = np.linspace(ref_a, 95, 801)[:-1] + (95 - ref_a) / 1600
    gx, gy = np.meshgrid(xs, ys)
    covered = np.zeros_like(gx, dtype=bool)
    for ci, ai in zip(c, a):
        covered |= (gx >= ci) & (gy <= ai)
    grid = covered.mean() * ref_c * (95 - ref_a)
    assert hypervolume(c, a, ref_c, ref_a) == pytest.approx(grid, rel=0.01)


def test_hypervolume_closed_forms():
    assert hypervolume([2.0], [80.0], 10.0, 50.0) == pytest.approx(8 * 30)  # one point: its rectangle
    assert hypervolume([], [], 10.0, 50.0) == 0.0
    assert hypervolume([12.0, 2.0], [99.0, 40.0], 10.0, 50.0) == 0.0  # beyond the reference in cost, accuracy
    base = hypervolume([2.0, 5.0], [80.0, 90.0], 10.0, 50.0)
    assert base == pytest.approx(3 * 30 + 5 * 40)
    assert hypervolume([2.0, 5.0, 6.0, 2.0], [80.0, 90.0, 85.0, 80.0], 10.0, 50.0) == pytest.approx(base)  # dominated


@pytest.mark.parametrize("seed", range(4))
def test_optimum_under_budget_is_the_best_affordable_point(seed):
    rng = np.random.default_rng(200 + seed)
    c, a = rng.integers(0, 10, 50).astype(float), rng.integers(0, 10, 50).astype(float)
    for budget in (-1.0, 0.0, 3.5, 9.0):
        i = optimum_under_budget(c, a, budget)
        fits = [j for j in range(50) if c[j] <= budget]
        if not fits:
            assert i is None
            continue
        best = max(a[j] for j in fits)
        cheapest = min(c[j] for j in fits if a[j] == best)
        assert i == min(j for j in fits if a[j] == best and c[j] == cheapest)


def test_budget_sources_parse():
    assert parse_budget_source("device:pixel3") == {"metric": "latency", "device": "pixel3"}
    assert parse_budget_source("lut:/x/t.parquet") == {"metric": "latency", "lut": "/x/t.parquet"}
    assert parse_budget_source("parts:flops") == {"metric": "flops"}
    with pytest.raises(ValueError):
        parse_budget_source("pixel3")


# ---- true costs and the true NB201 front ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def nb201():
    """(architectures, pixel3 latency from the packaged device table, CIFAR-10 test accuracy from the packaged
    benchmark), aligned, read with plain pandas."""
    from search_spaces.benchmarks.registry import open_benchmark
    from search_spaces.nb201 import latency_table

    bench = open_benchmark("nb201").to_frame()[["arch", "bench_cifar10_test_200ep"]]
    lat = latency_table().frame[["arch", f"latency_{DEVICE}_ms"]]
    both = bench.merge(lat, on="arch", how="inner", validate="one_to_one")
    assert len(both) == 15625
    return both


def test_true_costs_are_the_cost_models_exact_costs(tmp_path):
    from search_spaces.cost_model import cost_model, true_costs
    from search_spaces.latency_lut import measure_parts, random_architectures
    from search_spaces.space import get_space

    space = get_space("nb201")
    archs = random_architectures(space, 4, seed=11)
    spelled = [f" {a}  " for a in archs]  # another spelling of the same cells (canonicalised)
    for kw in ({"metric": "params"}, {"metric": "flops"}, {"metric": "latency", "device": DEVICE}):
        model = cost_model("nb201", **kw)
        got = true_costs("nb201", spelled + spelled[:1], **kw)
        assert got.tolist() == [model.exact(a) for a in archs + archs[:1]], kw
    ticks = iter(range(10**9))
    table = measure_parts("nb201", None, warmup=0, repeats=1, clock=lambda: float(next(ticks)) * 1e-3,
                          progress=False)
    table.rows["ms"] = np.random.default_rng(0).uniform(0.01, 2.0, len(table.rows))  # parts of unequal cost
    path = table.write(tmp_path / "lut.parquet")
    model = cost_model("nb201", "latency", lut=str(path))
    assert true_costs("nb201", archs, "latency", lut=str(path)).tolist() == [model.exact(a) for a in archs]
    # no figure (the device table times the benchmark's network only): NaN, as `latency_ms` leaves it out
    assert np.isnan(true_costs("nb201", archs[:1], "latency", device=DEVICE, size={"C": 8, "N": 5})).all()


def test_the_true_nb201_front_from_the_packaged_tables(nb201):
    from search_spaces.benchmarks.registry import open_benchmark
    from search_spaces.cost_model import true_costs

    bench = open_benchmark("nb201")
    archs = bench.architectures()
    acc = np.asarray(bench.column("cifar10", "test"), dtype=float)
    cost = true_costs("nb201", archs, "latency", device=DEVICE)
    direct = nb201.set_index("arch").loc[archs]
    np.testing.assert_array_equal(cost, direct[f"latency_{DEVICE}_ms"].to_numpy(np.float64))
    np.testing.assert_array_equal(acc, direct["bench_cifar10_test_200ep"].to_numpy())

    front = pareto_front(cost, acc)
    assert 5 < len(front) < 500
    fc, fa = cost[front][:, None], acc[front][:, None]
    dominated = (cost <= fc) & (acc >= fa) & ((cost < fc) | (acc > fa))  # [front, all]: does j dominate i?
    assert not dominated.any()  # no architecture dominates a front member
    rest = np.setdiff1d(np.arange(len(archs)), front)
    beaten = (fc <= cost[rest]) & (fa >= acc[rest]) & ((fc < cost[rest]) | (fa > acc[rest]))
    assert beaten.any(axis=0).all()  # and a front member dominates every other architecture

    for budget in (2.0, 8.0, 14.0):
        best = nb201[nb201[f"latency_{DEVICE}_ms"].astype(float) <= budget]["bench_cifar10_test_200ep"].max()
        i = optimum_under_budget(cost, acc, budget)
        assert acc[i] == best and cost[i] <= budget
    ref_c, ref_a = 14.0, float(np.nanmin(acc))
    assert hypervolume(cost, acc, ref_c, ref_a) == pytest.approx(staircase_area(cost, acc, ref_c, ref_a), rel=1e-12)


# ---- the report's section ------------------------------------------------------------------------------------
BUDGETS = (8.0, 14.0)


def budget_run(tmp_path, nb201, name="budget_sweep", budgets=BUDGETS, seed=5):
    """A fake sweep under pixel3 budgets (8 ms for seeds 0 and 2, 14 ms for 1 and 3) with real NB201 architectures:
    samples and selections carry the budget columns, with costs from the packaged device table; rules argmax,
    proxy:naswot (the best score within the budget) and pareto:naswot (brute force). One trial's samples all cost
    more than its budget. No bench_* columns: the ground truth comes from the packaged table (`benchmark: nb201`)."""
    frames = make_frames(methods=("balenas", "darts"), seeds=(0, 1, 2, 3), failed=None, seed=seed)
    lat = nb201.set_index("arch")[f"latency_{DEVICE}_ms"].astype(float)
    rng = np.random.default_rng(7)
    dear = nb201.loc[nb201[f"latency_{DEVICE}_ms"] > 10.0, "arch"].to_numpy()
    samples = frames["samples"].drop(columns=[c for c in frames["samples"] if c.startswith("bench_")])
    trials = frames["trials"]
    budget_of = {r.trial_id: budgets[r.seed % len(budgets)] for r in trials.itertuples()}
    starved = trials.loc[(trials["method"] == "darts") & (trials["seed"] == 2), "trial_id"].item()
    samples.loc[samples["trial_id"] == starved, "arch"] = rng.choice(dear, 12, replace=False)
    extra = {"budget_metric": "latency", "budget_source": f"device:{DEVICE}"}
    samples = samples.assign(**extra, budget=samples["trial_id"].map(budget_of),
                             budget_cost=samples["arch"].map(lat))
    samples = samples.assign(within_budget=samples["budget_cost"] <= samples["budget"],
                             **{f"cost_latency_{DEVICE}_ms": samples["budget_cost"]})
    final = trials.set_index("trial_id")["final_genotype"]
    sel = []
    for tid, part in samples.groupby("trial_id", sort=False):
        head = {"trial_id": tid, "method": part["method"].iloc[0], "seed": part["seed"].iloc[0], **extra,
                "budget": budget_of[tid]}

        def row(rule, arch, note=None, head=head):
            if arch is None:  # as the proxy stage writes it: no architecture, so no budget columns
                return {k: head[k] for k in ("trial_id", "method", "seed")} | {"rule": rule, "arch": None, "note": note}
            return {**head, "rule": rule, "arch": arch, "budget_cost": lat[arch],
                    "within_budget": bool(lat[arch] <= head["budget"]), "note": note}

        sel.append(row("argmax", final[tid]))
        fits = part[part["within_budget"]]
        sel.append(row("proxy:naswot", fits.loc[fits["naswot"].idxmax(), "arch"]) if len(fits) else
                   row("proxy:naswot", None, "no sampled architecture within the budget"))
        c, s = part["budget_cost"].to_numpy(), part["naswot"].to_numpy()
        for i in sorted(brute_front(c, s)):
            sel.append(row("pareto:naswot", part["arch"].iloc[i]))
    frames["samples"], frames["selections"] = samples, pd.DataFrame(sel)
    spec = {"name": name, "space": "nb201", "dataset": "cifar10", "benchmark": "nb201", "seeds": [0, 1, 2, 3],
            "methods": {"balenas": {}, "darts": {}}, "cost": {"metric": "latency", "device": DEVICE,
                                                              "budget": list(budgets)}}
    return write_run(tmp_path / name, frames, spec), frames


@pytest.fixture(scope="module")
def budget_report(tmp_path_factory, nb201):
    from search_spaces.benchmarks.registry import table_path

    root = tmp_path_factory.mktemp("tradeoff")
    run, frames = budget_run(root, nb201)
    report = build_report(load(run), root / "report", benchmark=table_path("nb201"))
    return report, frames


def test_the_report_has_the_section_with_plots_optima_and_hypervolumes(budget_report, nb201):
    report, frames = budget_report
    text = report.path.read_text()
    assert "## Accuracy and cost" in text and "### latency on pixel3, searched on cifar10" in text
    assert text.index("## Accuracy and cost") < text.index("## Plots")
    images = re.findall(r"!\[[^\]]*\]\((tradeoff_[^)]+)\)", text)
    assert images == ["tradeoff_nb201_cifar10_latency_on_pixel3.png"]
    assert (report.path.parent / images[0]).stat().st_size > 5000
    assert [p.name for p in report.tradeoff.paths] == images
    for b in BUDGETS:
        assert f"#### Budget: latency on pixel3 ≤ {b:g} ms" in text
        best = nb201[nb201[f"latency_{DEVICE}_ms"].astype(float) <= b]["bench_cifar10_test_200ep"].max()
        rows = report.tradeoff.budgets[report.tradeoff.budgets["budget"] == b]
        assert (rows["optimum_accuracy"] == best).all()
        assert f"| {best:.2f} |" in text  # the table's optimum-under-budget column
    assert text.count("| Optimum under budget (%) | Gap (points) | Optimum, no budget (%) |") == len(BUDGETS)
    free = nb201["bench_cifar10_test_200ep"].max()
    assert (report.tradeoff.budgets["free_accuracy"] == free).all()
    assert "#### Fronts over the budgets" in text and "Hypervolume" in text
    assert "(cost 14 ms: the largest budget; accuracy" in text
    assert "no sampled architecture within the budget (1)" in text
    assert (report.path.parent / "tradeoff_budgets.csv").is_file()
    assert (report.path.parent / "tradeoff_fronts.csv").is_file()
    plot = report.tradeoff.plots[0].data[images[0]]
    assert set(plot["kind"]) == {"sample", "chosen", "table_front", "budget", "found_front"}
    assert sorted(plot.loc[plot["kind"] == "budget", "cost"]) == list(BUDGETS)
    assert (plot["kind"] == "sample").sum() == frames["samples"]["budget_cost"].notna().sum()


def test_the_budget_table_is_the_direct_pandas_computation(budget_report, nb201):
    report, frames = budget_report
    acc = nb201.set_index("arch")["bench_cifar10_test_200ep"]
    sel = frames["selections"]
    sel = sel.assign(budget=sel["trial_id"].map(frames["samples"].groupby("trial_id")["budget"].first()))
    rows = report.tradeoff.budgets
    for (method, rule, budget), part in sel[~sel["rule"].str.startswith("pareto:")].groupby(
            ["method", "rule", "budget"]):
        got = rows[(rows["method"] == method) & (rows["rule"] == rule) & (rows["budget"] == budget)]
        assert len(got) == 1
        got = got.iloc[0]
        assert got["trials"] == len(part)
        assert got["accuracy_mean"] == pytest.approx(part["arch"].map(acc).mean())
        assert got["accuracy_std"] == pytest.approx(part["arch"].map(acc).std(), nan_ok=True)
        assert got["cost_mean"] == pytest.approx(part["budget_cost"].mean())
        assert got["met"] == int((part["budget_cost"] <= budget).sum())
    pareto = rows[rows["rule"].str.startswith("pareto:naswot")]
    assert len(pareto) == 4  # per method and budget: each trial's most accurate member within the budget
    for rec in pareto.itertuples():
        part = sel[(sel["method"] == rec.method) & (sel["rule"] == "pareto:naswot") & (sel["budget"] == rec.budget)]
        fits = part[part["budget_cost"] <= rec.budget]
        best = fits.assign(acc=fits["arch"].map(acc)).groupby("trial_id")["acc"].max()
        assert rec.accuracy_mean == pytest.approx(best.mean())
        assert rec.met == best.size


def test_found_and_true_hypervolumes(budget_report, nb201):
    report, frames = budget_report
    acc = nb201.set_index("arch")["bench_cifar10_test_200ep"]
    fronts = report.tradeoff.fronts
    ref_c, ref_a = max(BUDGETS), float(nb201["bench_cifar10_test_200ep"].min())
    assert (fronts["ref_cost"] == ref_c).all() and (fronts["ref_accuracy"] == ref_a).all()
    true_hv = staircase_area(nb201[f"latency_{DEVICE}_ms"].to_numpy(float),
                             nb201["bench_cifar10_test_200ep"].to_numpy(float), ref_c, ref_a)
    sel = frames["selections"].dropna(subset=["arch"])
    for (method, rule), part in sel.groupby(["method", "rule"]):
        got = fronts[(fronts["method"] == method) & (fronts["rule"] == rule)].iloc[0]
        c, a = part["budget_cost"].to_numpy(float), part["arch"].map(acc).to_numpy(float)
        assert got["hypervolume"] == pytest.approx(staircase_area(c, a, ref_c, ref_a), rel=1e-9)
        assert got["true_hypervolume"] == pytest.approx(true_hv, rel=1e-9)
        assert got["ratio"] == pytest.approx(got["hypervolume"] / true_hv)
        assert 0 < got["ratio"] <= 1
        assert got["front_points"] == len(brute_front(c, a))
    assert fronts["method"].str.startswith("true front (15,625 architectures)").sum() == 1


def test_several_runs_at_one_budget_each_make_one_front(tmp_path, nb201):
    """Runs given together pool their trials (told apart by run): one budget per run, fronts over both."""
    from search_spaces.benchmarks.registry import table_path

    small, _ = budget_run(tmp_path, nb201, name="run_8ms", budgets=(8.0,), seed=21)
    large, _ = budget_run(tmp_path, nb201, name="run_14ms", budgets=(14.0,), seed=22)
    tables = load(small, large)
    made = section(tables, tmp_path / "out", benchmark=table_path("nb201"))
    assert sorted(made.budgets["budget"].unique()) == [8.0, 14.0]
    assert set(made.budgets["trials"]) == {4}  # 4 seeds per method, rule and run
    argmax = made.fronts[(made.fronts["method"] == "balenas") & (made.fronts["rule"] == "argmax")].iloc[0]
    assert argmax["budgets"] == 2 and argmax["points"] == 8
    assert "over the 2 budgets" in made.markdown and len(made.paths) == 1


def test_without_ground_truth_the_proxy_score_stands_in(tmp_path, nb201):
    run, _ = budget_run(tmp_path, nb201, name="no_truth")
    made = section(load(run), tmp_path / "out", benchmark=None)
    text = made.markdown
    assert "## Accuracy and cost" in text and "naswot score (proxy)" in text
    assert "no benchmark table given" not in text  # the proxy has no table to compare with
    assert "Optimum under budget" not in text and made.paths and made.paths[0].is_file()


def test_samples_without_selections_still_plot(tmp_path, nb201):
    """No selections table: the samples are drawn, and the argmax rule the report derives from the trials table
    (`selections_frame`) takes its trials' budgets and its true cost from the budget's source."""
    import shutil

    from search_spaces.benchmarks.registry import table_path

    run, frames = budget_run(tmp_path, nb201, name="no_selections")
    shutil.rmtree(run / "selections")
    made = section(load(run), tmp_path / "out", benchmark=table_path("nb201"))
    drawn = made.plots[0].data[made.paths[0].name]
    assert (drawn["kind"] == "sample").sum() == len(frames["samples"])
    assert set(drawn.loc[drawn["kind"] == "chosen", "rule"]) == {"argmax"}
    # the argmax rule derived from the trials table (selections_frame), costed from the budget's source
    rows = made.budgets
    assert set(rows["rule"]) == {"argmax"} and "## Accuracy and cost" in made.markdown
    lat = nb201.set_index("arch")[f"latency_{DEVICE}_ms"].astype(float)
    trials = frames["trials"].assign(budget=frames["trials"]["trial_id"].map(
        frames["samples"].groupby("trial_id")["budget"].first()), cost=frames["trials"]["final_genotype"].map(lat))
    for (method, budget), part in trials.groupby(["method", "budget"]):
        got = rows[(rows["method"] == method) & (rows["budget"] == budget)].iloc[0]
        assert got["cost_mean"] == pytest.approx(part["cost"].mean())
        assert got["met"] == int((part["cost"] <= budget).sum())


def test_runs_without_budgets_have_no_section(tmp_path):
    run, _ = make_run(tmp_path / "plain", seed=3)
    report = build_report(load(run), tmp_path / "report")
    assert "Accuracy and cost" not in report.path.read_text()
    assert report.tradeoff.lines == [] and report.tradeoff.paths == []
    assert not list((tmp_path / "report").glob("tradeoff_*"))
