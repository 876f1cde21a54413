"""SWAP and Zen-score against cases whose value is known by construction or by an independent hand computation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from search_spaces.nb201 import network
from trainables import proxies
from trainables.proxies import swap, zen
from trainables.proxies.registry import score_one

EMPTY = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def _one_hidden_relu(units: int, spatial: int = 1) -> nn.Module:
    """1x1 identity conv -> ReLU -> GAP -> Linear: unit (channel c, position p) fires on sample s iff x[s, c, p] > 0."""
    conv = nn.Conv2d(units, units, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(units).reshape(units, units, 1, 1))
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(units, 2))


def _inputs_with_patterns(columns: list[list[int]], spatial: int = 1) -> torch.Tensor:
    """Samples x units of +-1 whose unit v has the firing pattern columns[v] (1 = fires), every pixel alike."""
    signs = torch.tensor(columns, dtype=torch.float32).t() * 2 - 1  # [S, V]
    return signs[:, :, None, None].expand(-1, -1, spatial, spatial).contiguous()


def test_swap_counts_distinct_patterns_per_unit_over_the_samples():
    # 5 samples, 8 units with 3 distinct unit patterns; the 5 per-sample codes (NASWOT's view) are all distinct,
    # so a count of rows instead of columns would give 5.
    a, b, c = [1, 0, 1, 0, 1], [0, 1, 1, 0, 0], [1, 1, 0, 1, 0]
    columns = [a, b, c, a, b, a, c, b]
    x = _inputs_with_patterns(columns)
    assert len({tuple(row) for row in zip(*columns)}) == 5
    assert swap.sample_wise_patterns(_one_hidden_relu(8), x) == 3
    # positions of a 3x3 map are further units with the same patterns: still 3
    assert swap.sample_wise_patterns(_one_hidden_relu(8), _inputs_with_patterns(columns, spatial=3)) == 3


def test_swap_keeps_every_sample_beyond_one_64_bit_word():
    # 70 samples; the two patterns differ only in sample 66, the third only in sample 0
    base = [1 if s % 3 else 0 for s in range(70)]
    late = list(base)
    late[66] = 1 - late[66]
    early = list(base)
    early[0] = 1 - early[0]
    x = _inputs_with_patterns([base, late, early, base])
    assert swap.sample_wise_patterns(_one_hidden_relu(4), x) == 3


def test_swap_score_is_the_mean_count_over_gaussian_redraws(monkeypatch):
    monkeypatch.setattr(swap, "REPEATS", 3)
    torch.manual_seed(0)
    net = network(ARCH, C=4, N=1)
    x = torch.randn(12, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.zeros(12, dtype=torch.long)
    value = score_one("swap", net, x, y, seed=5)
    torch.manual_seed(5)
    work = net.train()
    counts = []
    for _ in range(3):
        zen.gaussian_init(work)
        counts.append(swap.sample_wise_patterns(work, x))
    assert value == pytest.approx(sum(counts) / 3)
    assert len(set(counts)) > 1  # the redraws matter, so the mean is not a single draw


def test_swap_refuses_a_network_without_relu_on_a_feature_map():
    x, y = torch.randn(4, 3, 6, 6), torch.zeros(4, dtype=torch.long)
    no_relu = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                            nn.Linear(4, 2))
    mlp_relu = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 8), nn.ReLU(), nn.Linear(8, 2))  # ReLU on 2-D only
    for net in (no_relu, mlp_relu):
        value = proxies.score(net, x, y, ["swap"])["swap"]
        assert proxies.is_error(value) and "no ReLU" in value.reason


def test_zen_of_a_linear_network_is_the_closed_form():
    """No BN, no nonlinearity: F(x) - F(x + a e) = -a W e, so Zen = log(a * mean_n sum |W e_n|)."""
    net = nn.Sequential(nn.Conv2d(3, 5, 1, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 2))
    x, y = torch.zeros(4, 3, 2, 2), torch.zeros(4, dtype=torch.long)
    value = score_one("zen", net, x, y, seed=7)
    torch.manual_seed(7)
    w = torch.randn(5, 3)  # gaussian_init's first draw: the conv weight (then the Linear's)
    torch.randn(2, 5)
    torch.randn(4, 3, 2, 2)  # x
    e = torch.randn(4, 3, 2, 2)
    we = torch.einsum("oc,nchw->nohw", w, e)
    expected = math.log(zen.ALPHA * float(we.abs().sum(dim=(1, 2, 3)).mean()))
    assert value == pytest.approx(expected, rel=1e-5)


def test_zen_with_batchnorm_equals_a_hand_computation():
    """Conv -> BN (train mode) -> GAP -> Linear, with the BN's own momentum and stale running statistics, which Zen
    must replace by a fresh start with momentum 0.1 (the authors' freshly built networks)."""
    bn = nn.BatchNorm2d(4, momentum=0.7)
    bn.running_var.fill_(123.0)
    net = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), bn, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    n, shape = 6, (6, 3, 3, 3)
    value = score_one("zen", net, torch.zeros(shape), torch.zeros(n, dtype=torch.long), seed=11)

    torch.manual_seed(11)
    w = torch.randn(4, 3)
    torch.randn(2, 4)
    x, e = torch.randn(shape), torch.randn(shape)

    def bn_train(z):  # per channel: batch mean, biased variance for normalising, unbiased for running_var
        mean = z.mean(dim=(0, 2, 3), keepdim=True)
        var = z.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        return (z - mean) / torch.sqrt(var + bn.eps), z.var(dim=(0, 2, 3), unbiased=True)

    f1, v1 = bn_train(torch.einsum("oc,nchw->nohw", w, x))
    f2, v2 = bn_train(torch.einsum("oc,nchw->nohw", w, x + 0.01 * e))
    running_var = 0.9 * (0.9 * 1.0 + 0.1 * v1) + 0.1 * v2
    expected = math.log(float((f1 - f2).abs().sum(dim=(1, 2, 3)).mean())) + 0.5 * math.log(float(running_var.mean()))
    assert value == pytest.approx(expected, rel=1e-4)


def test_zen_is_deterministic_for_a_seed_and_uses_gaussian_inputs_only():
    torch.manual_seed(0)
    net = network(ARCH, C=4, N=1)
    x, y = torch.randn(4, 3, 8, 8), torch.zeros(4, dtype=torch.long)
    a, b = score_one("zen", net, x, y, seed=3), score_one("zen", net, x, y, seed=3)
    assert a == b and math.isfinite(a)
    assert score_one("zen", net, x, y, seed=4) != a
    assert score_one("zen", net, torch.randn(4, 3, 8, 8), y, seed=3) == a  # the data only give the shape


def test_zen_reads_the_nb201_map_after_the_last_bn_relu():
    torch.manual_seed(0)
    net = network(ARCH, C=4, N=1).train()
    seen = []
    handle = net.lastact.register_forward_hook(lambda m, a, out: seen.append(out.clone()))
    fmap = zen.pre_gap_features(net, torch.randn(3, 3, 8, 8))
    handle.remove()
    torch.testing.assert_close(fmap, seen[0])


def test_zen_refuses_a_head_that_is_not_global_pooling_and_a_constant_map():
    x, y = torch.randn(4, 3, 4, 4), torch.zeros(4, dtype=torch.long)
    flat_head = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 2))
    value = proxies.score(flat_head, x, y, ["zen"])["zen"]
    assert proxies.is_error(value) and "not the global average" in value.reason
    value = proxies.score(network(EMPTY, C=4, N=1), x, y, ["zen"])["zen"]
    assert proxies.is_error(value) and "does not change" in value.reason


def test_regularised_swap_is_the_papers_gaussian_factor_of_the_parameter_count_in_thousands():
    class WithAux(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(100, 20)  # 2,020 parameters: Theta = 2.02 (thousands)
            self.auxiliary_head = nn.Linear(50, 10)  # excluded, as in the authors' count_parameters

    assert swap.regularised(1000.0, WithAux(), mu=2.0, sigma=0.5) == pytest.approx(1000.0 * math.exp(-0.02**2 / 0.5))
    assert swap.regularised(1000.0, WithAux(), mu=2.02, sigma=0.5) == pytest.approx(1000.0)
