"""MeCo and ZiCo against closed forms and independent numpy computations of their definitions (issue 24)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from search_spaces.nb201 import network
from trainables import proxies
from trainables.proxies import meco, zico
from trainables.proxies.base import ProxyFailure


def _images(n=4, channels=3, size=6, seed=0):
    return torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


# ----- MeCo -------------------------------------------------------------------------------------------------
class _Copies(nn.Module):
    """Repeats a one-channel feature map into `k` identical channels."""

    def __init__(self, k=3):
        super().__init__()
        self.k = k

    def forward(self, x):
        return x.repeat(1, self.k, 1, 1)


def test_meco_of_copied_channels_is_zero():
    # correlation matrix of 3 identical channels = all ones, rank 1: eigenvalues 3, 0, 0
    feats = _images(1, 1)[0].reshape(1, -1).repeat(3, 1)
    assert meco.layer_value(feats) == pytest.approx(0.0, abs=1e-12)
    torch.testing.assert_close(meco.correlation(feats), torch.ones(3, 3, dtype=torch.float64))
    net = nn.Sequential(_Copies(3))  # two hooked modules (the Sequential and _Copies), both 0
    assert proxies.score(net, _images(2, 1), torch.tensor([0, 1]), ["meco"])["meco"] == pytest.approx(0, abs=1e-12)


def test_meco_of_two_channels_is_one_minus_their_correlation():
    feats = torch.randn(2, 50, generator=torch.Generator().manual_seed(3))
    r = np.corrcoef(feats.numpy().astype(np.float64))[0, 1]
    assert meco.layer_value(feats) == pytest.approx(1 - abs(r), abs=1e-12)  # eigenvalues of [[1,r],[r,1]]: 1 +- r


def test_meco_matches_numpy_on_a_hand_built_network():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, kernel_size=1, bias=False)
    net = nn.Sequential(conv, nn.ReLU())
    x = _images(3, 3, 5)
    score = proxies.score(net, x, torch.zeros(3, dtype=torch.long), ["meco"])["meco"]

    w = conv.weight.detach().double().numpy().reshape(4, 3)
    pre = w @ x[0].double().numpy().reshape(3, -1)  # first image only, [channels, positions]
    post = np.maximum(pre, 0)

    def lam(f):
        return np.linalg.eigvalsh(np.corrcoef(f))[0]

    # hooked: the conv (pre), the ReLU (post) and the Sequential itself (post again)
    assert score == pytest.approx(lam(pre) + 2 * lam(post), rel=1e-5)  # float32 conv vs float64 numpy


def test_meco_constant_channel_gives_zero_like_the_authors():
    feats = torch.randn(3, 20, generator=torch.Generator().manual_seed(1))
    feats[1] = 2.0  # constant channel: NaN correlations set to 0 -> a zero row and column
    corr = meco.correlation(feats)
    assert corr[1].abs().sum() == 0 and corr[:, 1].abs().sum() == 0
    assert meco.layer_value(feats) == pytest.approx(0.0, abs=1e-12)


def test_meco_sees_only_the_first_image():
    torch.manual_seed(0)
    net = network("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
                  num_classes=10, C=4, N=1)
    x, y = _images(4, 3, 8), torch.arange(4)
    full = proxies.score(net, x, y, ["meco"])["meco"]
    assert proxies.score(net, x[:2], y[:2], ["meco"])["meco"] == full
    other = proxies.score(net, x.flip(0), y, ["meco"])["meco"]
    assert other != full and math.isfinite(other)


def test_meco_without_spatial_features_or_with_nan_is_an_explicit_error():
    flat = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 10))
    value = proxies.score(flat, _images(), torch.zeros(4, dtype=torch.long), ["meco"])["meco"]
    assert proxies.is_error(value) and "no module gives a feature map" in value.reason

    class NaNConv(nn.Conv2d):
        def forward(self, x):
            return super().forward(x) * float("nan")

    value = proxies.score(nn.Sequential(NaNConv(3, 4, 1)), _images(), torch.zeros(4, dtype=torch.long), ["meco"])
    assert proxies.is_error(value["meco"]) and "non-finite feature map" in value["meco"].reason


# ----- ZiCo -------------------------------------------------------------------------------------------------
def _ce_weight_grad(w, b, x, y):
    """d mean-cross-entropy / dW of logits = x W^T + b, in numpy: (softmax - onehot)^T x / n."""
    logits = x @ w.T + b
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    return p.T @ x / len(y)


def test_zico_equals_the_hand_computation_for_a_linear_model_with_two_batches():
    torch.manual_seed(0)
    lin = nn.Linear(5, 3)
    net = nn.Sequential(nn.Flatten(), lin)
    x = torch.randn(8, 5, 1, 1, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([0, 1, 2, 0, 2, 2, 1, 0])
    score = proxies.score(net, x, y, ["zico"])["zico"]

    w, b = lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()
    xs, ys = x.double().numpy().reshape(8, 5), y.numpy()
    g1, g2 = _ce_weight_grad(w, b, xs[:4], ys[:4]), _ce_weight_grad(w, b, xs[4:], ys[4:])
    # two samples: mean|g| = (|g1| + |g2|) / 2, population std = |g1 - g2| / 2
    expected = math.log(np.sum((np.abs(g1) + np.abs(g2)) / np.abs(g1 - g2)))
    assert score == pytest.approx(expected, rel=1e-6)


def test_zico_layer_value_drops_zero_std_entries_and_uses_natural_log():
    grads = torch.tensor([[1.0, 2.0, -1.0], [3.0, 2.0, 1.0]])  # entry 1 identical: std 0, dropped
    # entry 0: mean|g| 2, std 1 -> 2; entry 2: mean|g| 1, std 1 -> 1
    assert zico.layer_value(grads) == pytest.approx(math.log(3.0))
    assert zico.layer_value(torch.tensor([[1.0, -2.0], [1.0, -2.0]])) is None  # all identical: adds nothing


def test_zico_with_identical_gradients_in_both_mini_batches_is_refused():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    half, labels = _images(2), torch.tensor([3, 7])
    x, y = torch.cat([half, half]), torch.cat([labels, labels])  # both mini-batches the same: zero std everywhere
    value = proxies.score(net, x, y, ["zico"])["zico"]
    assert proxies.is_error(value) and "zero standard deviation" in value.reason
    other = proxies.score(net, torch.cat([half, _images(2, seed=5)]), y, ["zico"])["zico"]
    assert not proxies.is_error(other) and math.isfinite(other)


@pytest.mark.parametrize("n", [1, 7])
def test_zico_refuses_a_batch_that_cannot_be_split(n):
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 10))
    value = proxies.score(net, _images(n), torch.zeros(n, dtype=torch.long), ["zico"])["zico"]
    assert proxies.is_error(value) and "2 equal mini-batches" in value.reason
    with pytest.raises(ProxyFailure):
        zico.split(_images(n), torch.zeros(n, dtype=torch.long))


def test_zico_uses_per_mini_batch_gradients_not_accumulated_ones():
    torch.manual_seed(0)
    lin = nn.Linear(4, 2)
    x = torch.randn(4, 4, 1, 1, generator=torch.Generator().manual_seed(4))
    y = torch.tensor([0, 1, 1, 0])
    grads = []
    for xb, yb in zico.split(x, y):
        lin.zero_grad()
        nn.functional.cross_entropy(lin(xb.flatten(1)), yb).backward()
        grads.append(lin.weight.grad.flatten().clone())
    expected = zico.layer_value(torch.stack(grads))
    assert proxies.score(nn.Sequential(nn.Flatten(), lin), x, y, ["zico"])["zico"] == pytest.approx(expected)


def test_zico_nan_network_is_an_explicit_error():
    class NaNHead(nn.Linear):
        def forward(self, x):
            return super().forward(x) * float("nan")

    value = proxies.score(nn.Sequential(nn.Flatten(), NaNHead(3 * 6 * 6, 10)), _images(),
                          torch.zeros(4, dtype=torch.long), ["zico"])["zico"]
    assert proxies.is_error(value) and "non-finite" in value.reason
