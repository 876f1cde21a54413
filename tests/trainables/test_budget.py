"""A budget on the architecture's cost in the search loop (trainables/search/budget.py): settings checked before a
run starts, both modes, the dual variable's dual ascent and its bit-exact resume, the epoch columns."""

from __future__ import annotations

import math

import pytest
import torch

from search_spaces.cost_model import cost_model
from trainables.search.budget import CostConstraint
from trainables.search.loop import SearchRun
from trainables.sweep.spec import SpecError, validate_spec

ARCH_UNIFORM = {"edges": torch.full((6, 5), 0.2)}


@pytest.fixture
def config(tiny_cifar10):
    return dict(data_root=str(tiny_cifar10), C=4, N=1, batch_size=16, epochs=3, steps_per_epoch=2, device="cpu",
                seed=0, method="darts-v1", method_params={"arch_lr": 0.1})


@pytest.mark.parametrize("cost, message", [
    ({"metric": "latency", "budget": 5.0}, "exactly one of `device`"),
    ({"metric": "params", "budget": 0.0}, "budget"),
    ({"metric": "params", "budget": 1.0, "device": "pixel3"}, "apply to metric 'latency'"),
    ({"metric": "latency", "budget": 5.0, "lut": "/nowhere/lut.parquet"}, "/nowhere/lut.parquet"),
    ({"metric": "params", "budget": 1.0, "mode": "barrier"}, "penalty"),
])
def test_bad_cost_settings_fail_before_the_run_naming_the_key(cost, message):
    with pytest.raises(ValueError, match=message):
        CostConstraint(**cost)


def test_a_sweep_spec_checks_its_cost_before_ray(tmp_path):
    spec = {"name": "budget", "space": "nb201", "methods": {"darts-v1": {}},
            "cost": {"metric": "latency", "device": "pixel9", "budget": 10.0}}
    with pytest.raises(SpecError, match="cost.device.*'pixel9'"):
        validate_spec(spec, base_dir=tmp_path)
    spec["cost"] = {"metric": "latency", "device": "pixel3", "budget": 10.0}
    trial = validate_spec(spec, base_dir=tmp_path).trials()[0]
    assert trial.search["cost"] == spec["cost"]


@pytest.mark.parametrize("mode", ["penalty", "lagrangian"])
def test_both_modes_lower_the_expected_cost_and_record_it(config, mode):
    budget = 0.5 * float(cost_model("nb201", "params").expected(ARCH_UNIFORM))
    run = SearchRun({**config, "cost": {"metric": "params", "budget": budget, "mode": mode, "weight": 5.0,
                                        "dual_lr": 2.0}})
    free = SearchRun(config)
    rows, free_rows = [run.run_epoch() for _ in range(3)], [free.run_epoch() for _ in range(3)]
    assert rows[-1]["cost_expected"] < free_rows[-1].get("cost_expected", math.inf)
    assert rows[-1]["cost_expected"] < rows[0]["cost_expected"]
    assert "cost_expected" not in free_rows[-1]  # no budget: no budget columns
    for row in rows:
        assert row["cost_budget"] == pytest.approx(budget)
        assert row["cost_argmax"] == pytest.approx(row["cost_params_M"], rel=1e-5)  # exact params of the argmax
    if mode == "penalty":
        assert {r["cost_dual"] for r in rows} == {5.0}
    else:  # raised while the budget is exceeded
        assert rows[0]["cost_dual"] > 5.0 and rows[-1]["cost_expected"] > budget or rows[-1]["cost_dual"] >= 0


def test_lagrangian_resume_is_bit_exact(config, tmp_path):
    cost = {"metric": "params", "budget": 0.1, "mode": "lagrangian", "weight": 0.5, "dual_lr": 1.0}
    full = SearchRun({**config, "cost": cost})
    rows = [full.run_epoch() for _ in range(2)]
    first = SearchRun({**config, "cost": cost})
    head = first.run_epoch()
    path = first.save(tmp_path / "search.pt")
    resumed = SearchRun.from_checkpoint(path)
    tail = resumed.run_epoch()
    strip = [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in (head, tail)]
    assert strip == [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in rows]
    assert rows[1]["cost_dual"] != rows[0]["cost_dual"]  # the dual moved and came back from the checkpoint
