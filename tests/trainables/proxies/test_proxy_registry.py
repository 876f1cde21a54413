"""The proxy registry: names, determinism, isolation (deep copy), explicit failures, the row layout."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from torch import nn

from search_spaces.nb201 import network
from trainables import proxies

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
EMPTY = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ALL = ["naswot", "synflow", "snip", "grad_norm", "jacob_cov", "fisher", "grasp", "params", "flops", "meco", "zico",
       "swap", "zen"]


def tiny(arch: str = ARCH) -> nn.Module:
    torch.manual_seed(0)
    return network(arch, num_classes=10, C=4, N=1)


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 10, (8,), generator=g)


def test_names_lists_every_proxy():
    assert proxies.names() == ALL


def test_unknown_name_is_one_clear_error(batch):
    with pytest.raises(ValueError, match="'nope'.*available: naswot"):
        proxies.score(tiny(), *batch, ["naswot", "nope"])


def test_bad_batch_shapes_rejected(batch):
    x, y = batch
    with pytest.raises(ValueError, match="inputs must be"):
        proxies.score(tiny(), x[0], y, ["params"])


def test_every_proxy_runs_on_a_tiny_network_and_is_deterministic(batch):
    first = proxies.score(tiny(), *batch)
    second = proxies.score(tiny(), *batch)
    assert list(first) == ALL
    for name in ALL:
        assert not proxies.is_error(first[name]), (name, first[name])
        assert math.isfinite(first[name]), name
        assert first[name] == second[name], name


def test_scoring_leaves_the_network_untouched(batch):
    net = tiny()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.eval()
    proxies.score(net, *batch)
    assert not net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in net.parameters())


def test_network_without_paths_gives_explicit_errors(batch):
    scores = proxies.score(tiny(EMPTY), *batch, ["naswot", "jacob_cov", "params"])
    assert proxies.is_error(scores["jacob_cov"]) and "does not depend on the input" in scores["jacob_cov"].reason
    assert proxies.is_error(scores["naswot"]) and "singular" in scores["naswot"].reason
    assert not proxies.is_error(scores["params"])


class _NaNNet(nn.Module):
    """A network whose output is NaN: every loss-based proxy must say so, not return a silent NaN."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        h = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return self.fc(h) * float("nan")


@pytest.mark.parametrize("name", ["snip", "grad_norm", "fisher", "grasp", "synflow", "jacob_cov", "naswot"])
def test_nan_network_gives_an_error_value(batch, name):
    value = proxies.score(_NaNNet(), *batch, [name])[name]
    assert isinstance(value, float) and math.isnan(value)
    assert proxies.is_error(value), f"{name} returned a silent NaN"
    assert value.reason


def test_to_row_and_pickling_keep_the_reason():
    err = proxies.ProxyError("kernel is singular")
    assert pickle.loads(pickle.dumps(err)).reason == "kernel is singular"
    row = proxies.to_row({"naswot": err, "params": 3.0})
    assert row == {"naswot": None, "naswot_error": "kernel is singular", "params": 3.0, "params_error": None}
