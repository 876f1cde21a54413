import json

import numpy as np
import pandas as pd
import pytest
import torch

from search_spaces.nb201 import OPS, NB201SuperNet, all_architectures, network, to_string
from search_spaces.space import get_space


def _params_m(net) -> float:
    return sum(p.numel() for p in net.parameters()) / 1e6


def test_best_architecture_parameter_count_matches_published(shared_data):
    """The benchmark's best CIFAR-10 test architecture (NB201 index 6111), against its table row."""
    table = pd.read_csv(shared_data / "nb201" / "nb201_merged.csv")
    best = table.loc[table["cifar10_test_acc_200ep"].idxmax()]
    assert best["index"] == 6111
    assert _params_m(network(best["arch_str"])) == pytest.approx(best["params_M_cifar10"], abs=1e-6)


@pytest.mark.heavy
def test_parameter_counts_match_benchmark_table(shared_data):
    """Every 8th architecture (1,954 nets) against the NB201 table's params_M_cifar10, to 1e-6 M.

    The shared table carries a known quirk: 204 of its 15,625 rows (1.3%) differ from the network by exactly
    a third of some ops' parameters (it averages three records, one of which belongs to another cell).
    NAS-Bench-Suite-Zero's independently published `params` agree with our count on every such row they
    cover; so a mismatch passes only if it is of that one-third form and, where NASLib has the row, ours
    equals NASLib's.
    """
    table = pd.read_csv(shared_data / "nb201" / "nb201_merged.csv").set_index("arch_str")["params_M_cifar10"]
    naslib = _naslib_params(shared_data)
    archs = all_architectures()[::8]
    mismatched = 0
    for arch in archs:
        ours = _params_m(network(arch))
        if abs(ours - table[arch]) <= 1e-6:
            continue
        mismatched += 1
        thirds = (ours - table[arch]) * 3e6
        assert abs(thirds - round(thirds)) < 0.01, (arch, ours, table[arch])
        if arch in naslib:
            assert ours == pytest.approx(naslib[arch], abs=1e-6)
    assert mismatched / len(archs) < 0.02


def _naslib_params(shared_data) -> dict[str, float]:
    raw = json.loads((shared_data / "zero_cost" / "zc_nasbench201_small.json").read_text())
    naslib_to_ours = {0: 1, 1: 0, 2: 3, 3: 2, 4: 4}  # NASLib op index -> index into OPS
    out = {}
    for key, rec in raw["nasbench201"]["cifar10"].items():
        t = [int(v) for v in key.strip("()").split(",")]
        # NASLib edge order (0->1, 0->2, 0->3, 1->2, 1->3, 2->3) -> ours (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2)
        out[to_string([naslib_to_ours[t[i]] for i in (0, 1, 3, 2, 4, 5)])] = rec["params"]
    return out


def test_naslib_params_agree_with_ours_on_sample(shared_data):
    naslib = _naslib_params(shared_data)
    for arch in list(naslib)[:40]:
        assert _params_m(network(arch)) == pytest.approx(naslib[arch], abs=1e-6)


def test_derived_network_forward_shapes():
    net = network(all_architectures()[1234], num_classes=100, C=4, N=1)
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 100)
    net16 = network(all_architectures()[99], num_classes=120, C=4, N=1)
    assert net16(torch.randn(2, 3, 16, 16)).shape == (2, 120)


def test_all_none_cell_outputs_zero_and_runs():
    arch = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    net = network(arch, C=4, N=1)
    assert torch.isfinite(net(torch.randn(2, 3, 32, 32))).all()


def _supernet_inputs(seed=0):
    torch.manual_seed(seed)
    net = NB201SuperNet(C=4, N=1, num_classes=10)
    x = torch.randn(3, 3, 32, 32)
    return net, x


def test_supernet_skips_inactive_ops_exactly():
    net, x = _supernet_inputs()
    ops = (3, 2, 1, 4, 0, 3)
    w = torch.nn.functional.one_hot(torch.tensor(ops), len(OPS)).float()
    full = net(x, {"edges": w})
    active = {"edges": [[o] for o in ops]}
    sparse = net(x, {"edges": w}, active)
    assert torch.equal(full, sparse)


def test_supernet_counts_calls_only_for_active_ops():
    net, x = _supernet_inputs()
    calls = {}
    for cell_idx, cell in enumerate(net.cells):
        if not hasattr(cell, "edges"):
            continue
        for e, edge in enumerate(cell.edges):
            for k, op in enumerate(edge):
                op.register_forward_hook(lambda m, i, o, key=(cell_idx, e, k): calls.__setitem__(key, 1))
    w = torch.full((6, 5), 0.2)
    net(x, {"edges": w}, {"edges": [[3]] * 6})
    assert {k for (_, _, k) in calls} == {3}
    calls.clear()
    net(x, {"edges": w})
    assert {k for (_, _, k) in calls} == {1, 2, 3, 4}  # `none` is never computed: it adds exactly zero


def test_supernet_holds_no_architecture_parameters_and_passes_gradients():
    net, x = _supernet_inputs()
    assert all(p.shape != (6, 5) for p in net.parameters())
    alpha = torch.zeros(6, 5, requires_grad=True)
    net(x, {"edges": alpha.softmax(-1)}).sum().backward()
    assert alpha.grad is not None and alpha.grad.abs().sum() > 0


def test_space_discretize_and_one_hot_round_trip():
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    for arch in rng.choice(all_architectures(), 20):
        assert space.discretize(space.one_hot(arch)) == arch
    with pytest.raises(ValueError, match="unknown search space"):
        get_space("nb999")
