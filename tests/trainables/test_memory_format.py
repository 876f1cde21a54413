"""The memory-layout rule (trainables/runs/memory_format.py, issue 21 item 4): channels_last "auto" keeps NCHW on
networks with strided 1x1 convolutions of under 8 input channels, whose channels_last backward crashes or hangs
in torch's CPU oneDNN (AVX2) kernel; and whether the installed torch has that bug at all."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from search_spaces.data.device import DeviceDataset
from search_spaces.space import get_space
from trainables.runs.memory_format import (
    MIN_SAFE_CHANNELS,
    ChannelsLastWarning,
    probe_minimal_case,
    resolve_channels_last,
    unsafe_channels_last_convs,
)
from trainables.search.loop import SearchRun


def tiny_splits(n: int = 8) -> dict[str, DeviceDataset]:
    g = torch.Generator().manual_seed(0)
    return {name: DeviceDataset(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                                torch.randint(0, 10, (n,), generator=g), (0.5,) * 3, (0.25,) * 3, 10, name)
            for name in ("search-train", "search-valid")}


@pytest.mark.parametrize("threads, isa", [(1, None), (2, None), (1, "AVX2")])
def test_minimal_case_on_this_torch(threads, isa, record_property):
    """Conv2d(6, 1, 1, stride=2) backward in channels_last, in a subprocess with a timeout: passes where this
    torch build runs it on this CPU, skips with the outcome (crash, wrong gradient or hang) where it is affected.
    isa="AVX2" caps oneDNN at AVX2 (ONEDNN_MAX_CPU_ISA), as on the CPUs of issue 21: it passes once torch's
    oneDNN is fixed, and then `MIN_SAFE_CHANNELS`' rule may go."""
    outcome = probe_minimal_case(threads, timeout_s=60, isa=isa)
    record_property("minimal_case", outcome)
    if outcome != "ok":
        pytest.skip(f"torch {torch.__version__} is affected on this CPU (oneDNN ISA {isa or 'native'}, {threads} "
                    f"thread(s)): {outcome}; channels_last 'auto' keeps NCHW on such networks")


def darts_supernet(**size) -> nn.Module:
    space = get_space("darts")
    return space.supernet(num_classes=10, **{**space.search_size, **size})


def test_the_rule_on_single_convolutions():
    def unsafe(*args, **kwargs) -> bool:
        return bool(unsafe_channels_last_convs(nn.Sequential(nn.Conv2d(*args, **kwargs))))

    assert unsafe(6, 1, 1, stride=2)  # the minimal case
    assert unsafe(MIN_SAFE_CHANNELS - 1, 16, 1, stride=2) and unsafe(2, 2, 1, stride=(1, 2))
    assert not unsafe(MIN_SAFE_CHANNELS, 1, 1, stride=2)  # out channels do not matter
    assert not unsafe(2, 1, 1, stride=1)  # stride 1: torch's matrix product, not oneDNN's kernel
    assert not unsafe(2, 1, 3, stride=2, padding=1)  # a 3x3 kernel is another oneDNN kernel
    assert unsafe(16, 16, 1, stride=2, groups=4)  # 4 input channels per group


def test_auto_keeps_nchw_for_the_darts_supernet_at_C2():
    model = darts_supernet(C=2, layers=3)
    bad = unsafe_channels_last_convs(model)
    assert bad and all("kernel_size=(1, 1), stride=(2, 2)" in b for b in bad)
    assert any("Conv2d(4, 2, kernel_size=(1, 1), stride=(2, 2)" in b for b in bad)  # FactorizedReduce's halves
    assert resolve_channels_last("auto", model, "cpu", preferred=True) is False
    assert resolve_channels_last("auto", model, "cuda", preferred=True) is True  # the bug is the CPU's
    run = SearchRun({"method": "darts-v1", "space": "darts", "C": 2, "layers": 3, "batch_size": 4, "epochs": 1,
                     "device": "cpu"}, splits=tiny_splits())
    assert run.channels_last is False and run.cfg.channels_last == "auto"
    assert all(p.is_contiguous() for p in run.model.parameters())


def test_auto_keeps_channels_last_for_normal_size_networks():
    for model in (darts_supernet(C=16, layers=8), get_space("nb201").supernet(num_classes=10, C=16, N=5)):
        assert unsafe_channels_last_convs(model) == []
        assert resolve_channels_last("auto", model, "cpu", preferred=True) is True
    run = SearchRun({"method": "darts-v1", "space": "nb201", "C": 4, "N": 1, "batch_size": 4, "epochs": 1,
                     "device": "cpu"}, splits=tiny_splits())  # small, but without strided 1x1 convolutions
    assert run.channels_last is True
    assert any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
               for p in run.model.parameters())


def test_explicit_channels_last_on_such_a_network_warns_and_is_kept():
    model = darts_supernet(C=2, layers=3)
    with pytest.warns(ChannelsLastWarning, match=r"strided 1x1 convolution with fewer than 8 input channels.*"
                                                 r"Conv2d\(4, 2, kernel_size=\(1, 1\), stride=\(2, 2\)"):
        assert resolve_channels_last(True, model, "cpu") is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_channels_last(False, model, "cpu") is False
        assert resolve_channels_last(True, model, "cuda") is True
        assert resolve_channels_last(True, darts_supernet(C=16, layers=8), "cpu") is True


def test_the_training_loop_warns_on_explicit_channels_last_for_such_a_network():
    from search_spaces.darts.published import DARTS_V2
    from trainables.train import TrainRun

    # a skip_connect from the reduction cell's input is a FactorizedReduce: Conv2d(4, 2, 1, stride=2) at C=2
    strided_skip = str(DARTS_V2).replace("reduce=[('max_pool_3x3', 0)", "reduce=[('skip_connect', 0)")
    assert strided_skip != str(DARTS_V2)
    splits = {name: DeviceDataset(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8), torch.arange(2),
                                  (0.5,) * 3, (0.25,) * 3, 10, name) for name in ("train", "test")}
    config = {"protocol": "darts-cifar", "dataset": "cifar10", "device": "cpu", "channels_last": True,
              "overrides": {"size": {"C": 2, "layers": 3}, "epochs": 1, "batch_size": 2}}
    with pytest.warns(ChannelsLastWarning, match=r"Conv2d\(4, 2, kernel_size=\(1, 1\), stride=\(2, 2\)"):
        run = TrainRun({**config, "arch": strided_skip}, splits=splits)
    assert any(p.dim() == 4 and not p.is_contiguous() for p in run.model.parameters())  # still channels_last
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChannelsLastWarning)
        TrainRun({**config, "arch": str(DARTS_V2)}, splits=splits)  # its strided 1x1 convolutions take 8 channels
