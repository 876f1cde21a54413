"""search_spaces.costs: multiply-adds against closed forms, NB201 parameters against the packaged table, every
space's costs finite and positive, and the latency hook (no column without a source)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from search_spaces import costs
from search_spaces.space import available_spaces, get_space

# small sizes that keep each space's network quick to build and run on the CPU
SMALL = {"nb201": {"C": 8, "N": 1}, "darts": {"C": 8, "layers": 3}}
SMALL_DEFAULT = {"C": 8, "N": 1}  # nb1shot1-*


def some_arch(space) -> str:
    """A seeded, non-trivial architecture of any space: the discretisation of random probabilities."""
    g = torch.Generator().manual_seed(0)
    probs = {k: torch.rand(shape, generator=g).softmax(-1) for k, shape in space.arch_shapes.items()}
    return space.discretize(probs)


def test_macs_of_a_plain_conv_network_equal_the_closed_form():
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(16, 10))
    assert costs.count_macs(net, torch.zeros(1, 3, 32, 32)) == 3 * 16 * 9 * 32 * 32 + 16 * 10
    strided = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, groups=1), nn.Conv2d(8, 8, 3, groups=8))
    # 16x16 after the stride, then a depthwise 3x3 without padding: 14x14 positions, 9 MACs each per channel
    assert costs.count_macs(strided, torch.zeros(1, 3, 32, 32)) == 3 * 8 * 9 * 16 * 16 + 8 * 9 * 14 * 14


def test_params_leave_out_the_auxiliary_head():
    net = nn.Module()
    net.body = nn.Linear(4, 3)
    net.auxiliary_head = nn.Linear(4, 3)
    assert costs.count_params(net) == 15


NB201_ARCHS = [
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
]


def nb201_closed_form_macs(arch: str, C: int = 16, N: int = 5, size: int = 32, classes: int = 10) -> int:
    """NB201's CIFAR network by hand: stem 3x3, N cells per stage (3x3 / 1x1 convs per edge; none, skip and
    pooling cost no MACs), two ResNet reductions (3x3 stride 2, 3x3, 1x1 shortcut after 2x2 pooling), a linear
    head."""
    edges = [op.split("~")[0] for node in arch.strip("|").split("|+|") for op in node.split("|")]
    per_edge = {"nor_conv_3x3": 9, "nor_conv_1x1": 1}
    total = 3 * C * 9 * size * size
    for stage in range(3):
        c, hw = C * 2 ** stage, (size // 2 ** stage) ** 2
        total += N * sum(per_edge.get(op, 0) * c * c * hw for op in edges)
        if stage < 2:
            c_out, hw_out = 2 * c, (size // 2 ** (stage + 1)) ** 2
            total += (c * c_out * 9 + c_out * c_out * 9 + c * c_out) * hw_out
    return total + 4 * C * classes


@pytest.mark.parametrize("arch", NB201_ARCHS)
def test_nb201_params_and_macs_match_the_table_and_the_closed_form(arch):
    from search_spaces.benchmarks import open_benchmark

    bench = open_benchmark("nb201")  # the packaged table; its extras hold params_M but no FLOPs
    table_params = dict(zip(bench.architectures(), bench.extra("params_M")))
    c = costs.costs("nb201", arch, dataset="cifar10")
    assert c["params_M"] == pytest.approx(float(table_params[arch]), abs=1e-6)
    assert c["flops_M"] == pytest.approx(nb201_closed_form_macs(arch) / 1e6, abs=1e-9)
    assert c["latency_ms"] == {} or all(v > 0 for v in c["latency_ms"].values())


def test_nb201_extremes_are_the_published_range():
    """NB201 (Dong & Yang 2020) CIFAR-10 networks span 7.78M (no conv in the cell) to 220.1M MACs (all 3x3)."""
    low = costs.costs("nb201", NB201_ARCHS[0])["flops_M"]
    high = costs.costs("nb201", NB201_ARCHS[1])["flops_M"]
    assert round(low, 2) == 7.78 and round(high, 1) == 220.1


def test_resolution_and_classes_follow_the_dataset():
    arch = NB201_ARCHS[1]
    c10 = costs.costs("nb201", arch, {"C": 8, "N": 1}, "cifar10")
    imnet16 = costs.costs("nb201", arch, {"C": 8, "N": 1}, "ImageNet16-120")
    head = lambda classes: 4 * 8 * classes  # noqa: E731
    assert imnet16["flops_M"] * 1e6 - head(120) == pytest.approx((c10["flops_M"] * 1e6 - head(10)) / 4)
    assert imnet16["params_M"] * 1e6 - c10["params_M"] * 1e6 == pytest.approx(110 * (4 * 8 + 1))


@pytest.mark.parametrize("name", available_spaces())
def test_every_space_gives_finite_positive_costs(name):
    space = get_space(name)
    size = SMALL.get(name, SMALL_DEFAULT)
    cols = costs.cost_columns(space, some_arch(space), size, "cifar10")
    assert set(cols) == {"cost_params_M", "cost_flops_M"}
    assert all(math.isfinite(v) and v > 0 for v in cols.values())


def test_bad_size_key_names_the_field():
    with pytest.raises(ValueError, match=r"size\.layers"):
        costs.costs("nb201", NB201_ARCHS[0], {"layers": 3})


def test_latency_comes_from_a_registered_source_and_is_absent_without_one(monkeypatch):
    monkeypatch.setitem(costs.LATENCY_SOURCES, "nb201", "search_spaces.no_such_latency_module:latency_ms")
    assert costs.latency_source(get_space("nb201")) is None
    size = {"C": 8, "N": 1}
    assert "cost_latency_gpu_ms" not in costs.cost_columns("nb201", NB201_ARCHS[0], size, devices=["gpu"])

    seen = []

    def source(arch, device, *, dataset, size):
        seen.append((arch, device, dataset, size))
        return {"edge gpu": 1.5}.get(device)

    monkeypatch.setitem(costs.LATENCY_SOURCES, "nb201", source)
    cols = costs.cost_columns("nb201", NB201_ARCHS[0], size, devices=["edge gpu", "tpu"])
    assert cols["cost_latency_edge_gpu_ms"] == 1.5 and "cost_latency_tpu_ms" not in cols
    assert seen[0][0] == NB201_ARCHS[0] and seen[0][2:] == ("cifar10", {"C": 8, "N": 1})


def test_a_latency_source_without_dataset_or_size_keywords_is_called_with_what_it_takes(monkeypatch):
    monkeypatch.setitem(costs.LATENCY_SOURCES, "nb201", lambda arch, device: 2.0 if device == "cpu" else None)
    cols = costs.cost_columns("nb201", NB201_ARCHS[0], {"C": 8, "N": 1}, devices=["cpu", "gpu"])
    assert cols["cost_latency_cpu_ms"] == 2.0 and "cost_latency_gpu_ms" not in cols


def test_nb201_latency_from_the_packaged_table_only_at_the_benchmark_size():
    pytest.importorskip("search_spaces.nb201.latency")
    from search_spaces.nb201 import latency

    if not latency.LATENCY_FILE.is_file():
        pytest.skip("the NB201 latency table is not packaged here")
    arch = NB201_ARCHS[2]
    cols = costs.cost_columns("nb201", arch, {"C": 16, "N": 5}, "cifar10", devices=["pixel3", "no-such-device"])
    assert cols["cost_latency_pixel3_ms"] == pytest.approx(latency.latency_table().latency(arch, "pixel3"))
    assert cols["cost_latency_pixel3_ms"] > 0 and "cost_latency_no_such_device_ms" not in cols
    small = costs.cost_columns("nb201", arch, {"C": 8, "N": 1}, "cifar10", devices=["pixel3"])
    assert "cost_latency_pixel3_ms" not in small
