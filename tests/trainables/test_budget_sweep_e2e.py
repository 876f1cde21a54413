"""A sweep over a grid of cost budgets end to end (issue 23): spec -> one trial per (method, budget) -> the proxy
stage chooses within each trial's budget -> the report's accuracy-and-cost section. The packaged NB201 tables give
the true costs (HW-NAS-Bench's Pixel 3 latencies) and accuracies, so every number checked here comes from them."""

from __future__ import annotations

import pytest

from analysis import load
from analysis.report import build_report
from search_spaces.nb201 import latency_table
from trainables.sweep.driver import run_sweep
from trainables.sweep.spec import validate_spec

BUDGETS = (5.0, 12.0)


@pytest.mark.slow
def test_a_budget_grid_sweep_selects_within_each_budget_and_reports_the_trade_off(local_ray, tmp_path, tiny_cifar10):
    spec = validate_spec({
        "name": "budgets", "space": "nb201", "dataset": "cifar10", "data_root": str(tiny_cifar10),
        "methods": {"darts-v1": {"arch_lr": 0.05}, "unas": {}}, "seeds": [0],
        "cost": {"metric": "latency", "device": "pixel3", "budget": list(BUDGETS), "weight": 20.0},
        "search": {"epochs": 1, "batch_size": 8, "C": 2, "N": 1, "steps_per_epoch": 2},
        "proxies": {"samples": 6, "names": ["params", "naswot"], "batch_size": 8, "C": 4, "N": 1},
        "resources": {"cpu": 1, "gpu": 0}})
    result = run_sweep(spec, storage=tmp_path / "runs", verbose=0)
    trials = result.trials
    assert len(trials) == 4 and set(trials["status"]) == {"TERMINATED"}
    assert sorted(trials["cost_budget"]) == sorted(BUDGETS * 2)
    assert all("latency:pixel3<=" in label for label in trials["trial_label"])

    tables = load(result.run_dir)
    pixel3 = latency_table().column("pixel3")
    samples = tables.samples
    assert set(samples["budget_source"]) == {"device:pixel3"}
    for arch, cost, budget, within in zip(samples["arch"], samples["budget_cost"], samples["budget"],
                                          samples["within_budget"]):
        assert cost == pytest.approx(float(pixel3[arch]), rel=1e-6)  # the packaged table's own figure
        assert bool(within) == (cost <= budget)
    chosen = tables.selections
    single = chosen[~chosen["rule"].str.startswith("pareto:")]
    picked = single[single["arch"].notna()]
    assert (picked["budget_cost"] <= picked["budget"]).all()  # every choice meets its trial's budget
    unpicked = single[single["arch"].isna()]
    assert unpicked.empty or unpicked["note"].notna().all()  # a rule without a choice says why
    assert chosen["rule"].str.startswith("pareto:").any()

    report = build_report(tables, tmp_path / "report")
    text = report.path.read_text()
    assert "## Accuracy and cost" in text and "Optimum under budget" in text and "Hypervolume" in text
    assert any(p.name.startswith("tradeoff_") and p.suffix == ".png" for p in (tmp_path / "report").iterdir())
