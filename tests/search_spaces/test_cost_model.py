"""Additive cost models (`search_spaces.cost_model`): the expected cost of a distribution against enumerated
expectations, exactness against the networks' own counts, the measured tables and the fitted device tables."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from search_spaces import cost_model as cm
from search_spaces.costs import build_network, count_macs, count_params
from search_spaces.latency_lut import random_architectures
from search_spaces.space import available_spaces, get_space


@pytest.mark.parametrize("space_name", available_spaces())
def test_expected_selection_returns_an_architecture_unchanged(space_name):
    space = get_space(space_name)
    for arch in random_architectures(space, 5, seed=2):
        hot = space.one_hot(arch)
        selected = space.expected_selection(hot)
        for group, value in hot.items():
            torch.testing.assert_close(selected[group], value, msg=f"{space_name} {group}")


@pytest.fixture
def nb201_params():
    return cm.cost_model("nb201", "params")


def test_params_and_flops_models_are_the_networks_own_counts():
    space = get_space("nb201")
    params, flops = cm.cost_model("nb201", "params"), cm.cost_model("nb201", "flops")
    assert params.r2 == pytest.approx(1.0) and params.n_fitted == 300
    for arch in random_architectures(space, 4, seed=5):
        net, size = build_network(space, arch, None, "cifar10")
        assert params.of(arch) == pytest.approx(count_params(net) / 1e6, abs=1e-5)
        assert flops.of(arch) == pytest.approx(count_macs(net, torch.zeros(1, 3, size, size)) / 1e6, rel=1e-5)


def test_expected_cost_equals_the_enumerated_expectation(nb201_params):
    """NB201 probabilities are one categorical per edge: E[cost] over all 15,625 cells, each weighted by its
    probability, equals the model's expected cost of the probabilities (and is differentiable)."""
    space = get_space("nb201")
    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    probs = logits.softmax(-1).requires_grad_(True)
    expected = nb201_params.expected({"edges": probs})
    p = probs.detach().numpy()
    total = 0.0
    for ops in itertools.product(range(5), repeat=6):
        weight = float(np.prod([p[e, o] for e, o in enumerate(ops)]))
        total += weight * nb201_params.of(space.canonical("|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(
            *[space.option_names["edges"][o] for o in ops])))
    assert float(expected) == pytest.approx(total, rel=1e-5)
    expected.backward()
    assert probs.grad is not None and float(probs.grad.abs().sum()) > 0


def test_one_hot_equals_the_fitted_device_table():
    """For a whole-architecture table (pixel3) the model of a cell is the least-squares additive fit
    (search_spaces.nb201.latency_fit, the same fit in another parametrisation), here both on the same 300 cells."""
    from search_spaces.nb201 import latency_table
    from search_spaces.nb201.latency_fit import fit_arrays, op_matrix

    space = get_space("nb201")
    model = cm.cost_model("nb201", "latency", device="pixel3")
    archs = random_architectures(space, 300, seed=0)
    table = latency_table()
    reference = fit_arrays(op_matrix(archs), [table.latency(a, "pixel3") for a in archs], "pixel3")
    for arch in random_architectures(space, 5, seed=3):
        assert model.of(arch) == pytest.approx(reference.predict(arch), rel=1e-4, abs=1e-4)
        assert model.exact(arch) == table.latency(arch, "pixel3")


def test_darts_models_are_exact_on_genotypes(tmp_path):
    """DARTS cells cost the sum of their kept ops: params and a measured table are additive (R^2 = 1), so a
    genotype's one-hot cost is exactly its network's count and the table's prediction."""
    from search_spaces.latency_lut import measure_parts

    space = get_space("darts")
    params = cm.cost_model("darts", "params")
    assert params.r2 == pytest.approx(1.0, abs=1e-9)
    for arch in random_architectures(space, 3, seed=4):
        net, _ = build_network(space, arch, None, "cifar10")
        assert params.of(arch) == pytest.approx(count_params(net) / 1e6, abs=1e-5)
    ticks = iter(range(10**9))
    table = measure_parts("darts", None, warmup=0, repeats=1, clock=lambda: float(next(ticks)) * 1e-3,
                          progress=False)
    path = table.write(tmp_path / "lut.parquet")
    lut = cm.cost_model("darts", "latency", lut=str(path))
    for arch in random_architectures(space, 3, seed=6):
        assert lut.of(arch) == pytest.approx(table.predict(arch), rel=1e-5)


def test_darts_expected_cost_is_differentiable_and_between_extremes():
    params = cm.cost_model("darts", "params")
    alpha = {g: torch.zeros(14, 8, requires_grad=True) for g in ("normal", "reduce")}
    expected = params.expected({g: a.softmax(-1) for g, a in alpha.items()})
    expected.backward()
    assert all(float(a.grad.abs().sum()) > 0 for a in alpha.values())
    costs = [params.of(a) for a in random_architectures(get_space("darts"), 30, seed=1)]
    assert min(costs) <= float(expected) <= max(costs) * 1.5


@pytest.mark.parametrize("cost, message", [
    ({"metric": "latency"}, "exactly one of `device`"),
    ({"metric": "params", "device": "pixel3"}, "apply to metric 'latency'"),
    ({"metric": "watts"}, "must be one of"),
])
def test_bad_cost_settings_are_named(cost, message):
    with pytest.raises(ValueError, match=message):
        cm.cost_model("nb201", **cost)


def test_unknown_device_is_named():
    with pytest.raises(ValueError, match="cost.device.*'pixel9'.*pixel3"):
        cm.cost_model("nb201", "latency", device="pixel9")
