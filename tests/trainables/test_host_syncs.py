"""No host synchronisation in the search step, checked on the CPU for every registered method and space.

`count_host_syncs` counts the Python-level ways a tensor value reaches the host from the project's own code
(`.item()`, `.tolist()`, `bool()`, `float()`, ...). A method that needs one by design declares it in its class
(`host_syncs_per_step`, e.g. GDAS); every other registered method (and any new one) must do its step with
none. The CUDA check (benchmarks/gpu_check.py) also catches syncs inside torch's C++ under
`torch.cuda.set_sync_debug_mode`.
"""

from __future__ import annotations

import pytest
import torch

from search_spaces.data.device import DeviceDataset
from search_spaces.space import available_spaces, get_space
from trainables.methods import available_methods, get_method, make_distribution
from trainables.runs.host_sync import count_host_syncs
from trainables.search.loop import SearchRun


def tiny_splits(n: int = 16, num_classes: int = 10) -> dict[str, DeviceDataset]:
    g = torch.Generator().manual_seed(0)
    return {name: DeviceDataset(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                                torch.randint(0, num_classes, (n,), generator=g), (0.5,) * 3, (0.25,) * 3,
                                num_classes, name)
            for name in ("search-train", "search-valid")}


#: the smallest sizes of the size keys we know (DARTS needs >= 3 layers); other keys keep the space's defaults
TINY_SIZE = {"C": 2, "N": 1, "layers": 3}


def tiny_run(method: str, space: str = "nb201", **extra) -> SearchRun:
    size = {k: TINY_SIZE.get(k, v) for k, v in get_space(space).search_size.items()}
    return SearchRun({"method": method, "space": space, "batch_size": 4, "epochs": 5, "device": "cpu", **size,
                      **extra}, splits=tiny_splits())


def syncs_per_iteration(run: SearchRun) -> tuple[float, dict]:
    """Syncs counted over `2 * interval` steps (after one warm-up step), per step."""
    interval = max(int(run.distribution.update_interval), 1)
    index = torch.arange(run.cfg.batch_size)
    run.step(index, index, 0.025, interval)  # warm-up: optimizers create their state lazily
    steps = 2 * interval
    with count_host_syncs() as calls:
        for _ in range(steps):
            run.step(index, index, 0.025, interval)
    return sum(calls.values()) / steps, dict(calls)


def test_probe_sees_syncs_in_project_code_only():
    data = tiny_splits()["search-train"]
    with count_host_syncs() as calls:
        data.per_channel_stats()  # two .tolist() calls in search_spaces/data/device.py
        torch.ones(2).sum().item()  # from a test file: not project code
    assert sum(calls.values()) == 2
    assert {(name, path) for name, path, _ in calls} == {("tolist", "search_spaces/data/device.py")}
    dist = make_distribution("drnas", tiny_run("darts-v1").space, {}, num_valid=16)
    with count_host_syncs() as calls:
        dist.extra_metrics()  # float(tensor) in trainables/methods
        if torch.ones(()):  # bool() from here: not counted
            pass
    assert [name for name, _, _ in calls] == ["__float__"]
    assert torch.Tensor.item is not None and float(torch.ones(())) == 1.0  # patches are removed afterwards


@pytest.mark.parametrize("method", available_methods())
def test_search_step_does_not_sync(method):
    per_step, calls = syncs_per_iteration(tiny_run(method))
    assert per_step == get_method(method).host_syncs_per_step, calls


def _one_space_per_class() -> list[str]:
    """Spaces other than nb201, one per implementing class (nb1shot1-1/2/3 share their code)."""
    seen: dict[type, str] = {}
    for name in available_spaces():
        seen.setdefault(type(get_space(name)), name)
    return [name for name in seen.values() if name != "nb201"]


@pytest.mark.parametrize("space", _one_space_per_class())
def test_search_step_does_not_sync_in_other_spaces(space):
    per_step, calls = syncs_per_iteration(tiny_run("darts-v1", space))
    assert per_step == 0, calls


def test_channels_last_and_bf16_step_does_not_sync():
    per_step, calls = syncs_per_iteration(tiny_run("balenas", channels_last=True, amp=True))
    assert per_step == 0, calls
