"""Each proxy against a closed form or an independent computation of its published definition."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.nb201 import network
from trainables import proxies
from trainables.proxies import jacob_cov, naswot


def _batch(n=8, size=8, classes=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g), torch.randint(0, classes, (n,), generator=g)


def test_params_equals_the_parameter_count():
    torch.manual_seed(0)
    net = network("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    x, y = _batch(4, 32)
    assert proxies.score(net, x, y, ["params"])["params"] == sum(p.numel() for p in net.parameters())


def test_params_matches_nb201_published_counts(shared_data):
    import pandas as pd

    table = pd.read_csv(shared_data / "nb201" / "nb201_merged.csv").sample(4, random_state=0)
    x, y = _batch(2, 32)
    for arch, params_m in zip(table.arch_str, table.params_M_cifar10):
        params = proxies.score(network(arch), x, y, ["params"])["params"]
        assert round(params / 1e6, 6) == round(params_m, 6), arch


def test_flops_of_a_known_conv_is_the_closed_form():
    conv = nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1, bias=False)
    net = nn.Sequential(conv, nn.Flatten(), nn.Linear(8 * 16 * 16, 10))
    x, y = _batch(4, 32)
    expected = 8 * 16 * 16 * (3 * 3 * 3) + 8 * 16 * 16 * 10  # C_out*H_out*W_out*C_in*k*k + in*out
    assert proxies.score(net, x, y, ["flops"])["flops"] == expected


def test_flops_counts_grouped_convs_per_group():
    net = nn.Sequential(nn.Conv2d(4, 8, kernel_size=1, groups=2, bias=False), nn.Flatten(), nn.Linear(8 * 4 * 4, 2))
    x = torch.randn(2, 4, 4, 4)
    assert proxies.score(net, x, torch.tensor([0, 1]), ["flops"])["flops"] == 8 * 16 * 2 + 128 * 2


class _ScaledReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(x * self.scale).flatten(1)


def test_naswot_hand_made_kernel():
    # codes (x > 0): a = 1100, b = 1010, c = 0111 -> agreements K = [[4,2,1],[2,4,1],[1,1,4]], det = 44
    x = torch.tensor([[1.0, 2.0, -1.0, -3.0], [1.0, -2.0, 3.0, -1.0], [-1.0, 2.0, 3.0, 1.0]]).view(3, 1, 2, 2)
    value = proxies.score(_ScaledReLU(), x, torch.zeros(3, dtype=torch.long), ["naswot"])["naswot"]
    assert math.isclose(value, math.log(44.0), rel_tol=1e-12)


def test_naswot_kernel_formula_matches_two_matmuls():
    codes = (torch.randn(6, 50, generator=torch.Generator().manual_seed(0)) > 0).float()
    direct = codes @ codes.t() + (1 - codes) @ (1 - codes).t()
    assert torch.equal(naswot.code_kernel(codes), direct.double())


def test_naswot_counts_only_relus_that_reach_the_output():
    class DeadBranch(_ScaledReLU):
        def __init__(self):
            super().__init__()
            self.dead = nn.ReLU()

        def forward(self, x):
            self.dead(-x * self.scale)  # computed, never used: the reference does not count it
            return super().forward(x)

    x = torch.tensor([[1.0, 2.0, -1.0, -3.0], [1.0, -2.0, 3.0, -1.0], [-1.0, 2.0, 3.0, 1.0]]).view(3, 1, 2, 2)
    value = proxies.score(DeadBranch(), x, torch.zeros(3, dtype=torch.long), ["naswot"])["naswot"]
    assert math.isclose(value, math.log(44.0), rel_tol=1e-12)


def test_jacob_cov_score_matches_numpy_reference():
    j = torch.randn(5, 40, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    corr = np.corrcoef(j.numpy())
    v = np.linalg.eigvalsh(corr)
    expected = -np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5))
    assert math.isclose(jacob_cov.jacobian_score(j), expected, rel_tol=1e-9)


def test_jacob_cov_of_uncorrelated_jacobians_is_minus_b():
    # orthogonal, zero-mean rows -> correlation = identity -> score = -B (log(1+k) + 1/(1+k))
    j = torch.tensor([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])
    k = 1e-5
    assert math.isclose(jacob_cov.jacobian_score(j), -2 * (math.log(1 + k) + 1 / (1 + k)), rel_tol=1e-12)


def test_synflow_of_a_linear_chain_is_depth_times_path_sum():
    # with |W| and input ones, R = 1^T |W2| |W1| 1 is degree-1 homogeneous in each layer: sum |w dR/dw| = R
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5, bias=False), nn.BatchNorm1d(5), nn.Linear(5, 3, bias=False))
    w1, w2 = net[1].weight.detach().abs().double(), net[3].weight.detach().abs().double()
    r = float((w2 @ w1 @ torch.ones(12, dtype=torch.float64)).sum())
    x, y = torch.randn(4, 3, 2, 2), torch.tensor([0, 1, 2, 0])
    assert math.isclose(proxies.score(net, x, y, ["synflow"])["synflow"], 2 * r, rel_tol=1e-12)


def _small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16, 3))


def test_snip_equals_the_mask_gradient_definition():
    net = _small_net()
    x, y = _batch(6, 4, classes=3)
    masks = [torch.ones_like(net[0].weight, requires_grad=True), torch.ones_like(net[3].weight, requires_grad=True)]
    h = F.conv2d(x, net[0].weight.detach() * masks[0], padding=1).relu().flatten(1)
    loss = F.cross_entropy(F.linear(h, net[3].weight.detach() * masks[1], net[3].bias.detach()), y)
    grads = torch.autograd.grad(loss, masks)
    expected = sum(float(g.abs().sum()) for g in grads)
    assert math.isclose(proxies.score(net, x, y, ["snip"])["snip"], expected, rel_tol=1e-5)


def test_grad_norm_is_the_sum_of_per_layer_norms():
    net = _small_net()
    x, y = _batch(6, 4, classes=3)
    loss = F.cross_entropy(net(x), y)
    g0, g1 = torch.autograd.grad(loss, [net[0].weight, net[3].weight])
    expected = float(g0.norm() + g1.norm())
    assert math.isclose(proxies.score(net, x, y, ["grad_norm"])["grad_norm"], expected, rel_tol=1e-5)


def test_grasp_matches_finite_difference_hessian_vector_product():
    net = _small_net().double()
    x, y = _batch(6, 4, classes=3)
    x = x.double()
    weights = [net[0].weight, net[3].weight]

    def grads_at(ws):
        h = F.conv2d(x, ws[0], padding=1).relu().flatten(1)
        return torch.autograd.grad(F.cross_entropy(F.linear(h, ws[1], net[3].bias), y), ws)

    base = [w.detach().clone().requires_grad_(True) for w in weights]
    g = [t.detach() for t in grads_at(base)]
    eps = 1e-5
    plus = grads_at([(w + eps * d).detach().requires_grad_(True) for w, d in zip(base, g)])
    minus = grads_at([(w - eps * d).detach().requires_grad_(True) for w, d in zip(base, g)])
    hg = [(p - m) / (2 * eps) for p, m in zip(plus, minus)]
    expected = float(sum((-w.detach() * h).sum() for w, h in zip(weights, hg)))
    assert math.isclose(proxies.score(net, x, y, ["grasp"])["grasp"], expected, rel_tol=1e-4)


def test_fisher_matches_the_channel_saliency_formula():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16, 3))
    x, y = _batch(6, 4, classes=3)
    a1 = F.conv2d(x, net[0].weight.detach(), padding=1).requires_grad_(True)
    a2 = F.linear(a1.relu().flatten(1), net[3].weight.detach(), net[3].bias.detach())
    a2.retain_grad()
    F.cross_entropy(a2, y).backward()
    f1 = 0.5 * ((a1 * a1.grad).sum(dim=(2, 3)) ** 2).mean(0)  # per conv output channel
    f2 = 0.5 * ((a2 * a2.grad) ** 2).mean(0)  # per linear output
    # each channel's value is broadcast over its weights: x (C_in * k * k) and x in_features
    expected = float(f1.detach().sum() * (3 * 3 * 3) + f2.detach().sum() * (4 * 16))
    assert math.isclose(proxies.score(net, x, y, ["fisher"])["fisher"], expected, rel_tol=1e-5)
