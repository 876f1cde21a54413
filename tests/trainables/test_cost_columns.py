"""Cost columns (`search_spaces.costs.cost_columns`) wherever an architecture is recorded: the proxy stage's `samples`
and `selections` tables and final training's `final` rows."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from search_spaces.costs import cost_columns
from search_spaces.costs import known_devices as known_cost_devices
from search_spaces.data.device import DeviceDataset
from search_spaces.nb201 import latency
from trainables.proxy_stage.config import ProxyStage
from trainables.proxy_stage.driver import run_proxy_stage
from trainables.proxy_stage.selection import cost_devices
from trainables.train.driver import final_row
from trainables.train.loop import TrainRun

ALL_NB201 = tuple(d.name for d in latency.DEVICES)
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def _stage(space="nb201", proxies=None, **kw) -> ProxyStage:
    return ProxyStage.build(space=space, dataset="cifar10", data_root=kw.pop("data_root", None), download=True,
                            benchmark=None, proxies=proxies, **kw)


def _same_costs(row: dict, expected: dict) -> None:
    got = {k: row[k] for k in row if str(k).startswith("cost_") and not pd.isna(row[k])}
    assert set(got) == set(expected)
    for k, v in expected.items():
        assert math.isclose(float(got[k]), v, rel_tol=1e-9), k


# ----- the setting -------------------------------------------------------------------------------------------------
def test_default_devices_are_the_latency_sources():
    assert known_cost_devices("nb201") == ALL_NB201 and cost_devices("nb201") == ALL_NB201
    assert known_cost_devices("darts") == () and cost_devices("darts") == ()
    assert cost_devices("nb201", ["pixel3", "pixel3", "fpga"]) == ("pixel3", "fpga")
    assert _stage(proxies={"cost_devices": ["pixel3"]}).proxies.cost_devices == ["pixel3"]
    assert _stage(proxies={"C": 4}).size == {"C": 4, "N": 5}  # cost_devices is no size key


@pytest.mark.parametrize("space, devices, message", [
    ("nb201", ["pixel3", "nope"], r"proxies\.cost_devices: unknown latency device\(s\) 'nope'; .* knows .*pixel3"),
    ("darts", ["pixel3"], r"proxies\.cost_devices: .*'pixel3'; space 'darts' has no latency source"),
])
def test_an_unknown_device_is_refused_before_ray(space, devices, message):
    import ray

    assert not ray.is_initialized()
    with pytest.raises(ValueError, match=message):
        _stage(space, {"cost_devices": devices})


# ----- the proxy stage -----------------------------------------------------------------------------------------------
def _checkpoint(path, seed: int):
    from search_spaces.space import get_space
    from trainables.methods import make_distribution

    dist = make_distribution("balenas", get_space("nb201"), {}, num_valid=16, seed=seed)
    torch.save({"config": {"space": "nb201", "method_params": {}, "seed": seed}, "method": "balenas",
                "num_valid": 16, "distribution": dist.state_dict()}, path)
    return dist


@pytest.mark.slow
def test_proxy_stage_rows_carry_cost_columns(local_ray, tmp_path, tiny_cifar10):
    from trainables.runs import store

    _checkpoint(tmp_path / "t0.pt", seed=0)
    trials = pd.DataFrame({"trial_id": ["t0"], "method": ["balenas"], "seed": [0], "status": ["TERMINATED"],
                           "checkpoint_path": [str(tmp_path / "t0.pt")]})
    for size, devices in (({"C": 4, "N": 1}, None), ({"C": 16, "N": 5}, None), ({"C": 16, "N": 5}, ["pixel3"])):
        section = {"samples": 3, "names": ["params"], "batch_size": 4, "archs_per_task": 2, **size,
                   **({} if devices is None else {"cost_devices": devices})}
        stage = _stage(proxies=section, data_root=str(tiny_cifar10))
        run_dir = tmp_path / f"run_{size['C']}_{devices}"
        run_proxy_stage(run_dir, stage, trials, progress=False)
        samples = store.read_table(run_dir, "samples")
        selections = store.read_table(run_dir, "selections")
        assert len(samples) == 3 and set(selections.rule) == {"argmax", "proxy:params"}
        # the argmax is usually not among the 3 samples: its costs come from the driver, the same numbers
        for row in [*samples.to_dict("records"), *selections.to_dict("records")]:
            expected = cost_columns("nb201", row["arch"], size, "cifar10", cost_devices("nb201", devices))
            _same_costs(row, expected)
            assert math.isclose(row["cost_params_M"] * 1e6, row["params"]) if "params" in row else True
        latency_cols = {c for c in samples.columns if c.startswith("cost_latency_")}
        if size == {"C": 16, "N": 5}:  # the benchmark's own network: the packaged table applies
            wanted = ALL_NB201 if devices is None else tuple(devices)
            assert latency_cols == {f"cost_latency_{d}_ms" for d in wanted}
            assert {c for c in selections.columns if c.startswith("cost_latency_")} == latency_cols
        else:
            assert not latency_cols and not any(c.startswith("cost_latency_") for c in selections.columns)


# ----- final training ------------------------------------------------------------------------------------------------
def _images(n: int, seed: int) -> DeviceDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g).to(torch.uint8)
    return DeviceDataset(images, torch.arange(n) % 10, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 10, "random", 2)


def _fake_trial(run: TrainRun, arch: str, size: dict, *, with_info: bool = True) -> SimpleNamespace:
    train = {"arch": arch, "protocol": "nb201-12", "dataset": "cifar10", "space": "nb201", "device": "cpu",
             "overrides": {"size": size}}
    trial = {"label": "arch00/seed=0", "arch": arch, "seed": 0, "selected_by": [], "benchmark": None, "train": train}
    last = {"space": "nb201", "info_total_epochs": 1}
    if with_info:
        last.update({f"info_{k}": v for k, v in run.description().items()})
    return SimpleNamespace(config={"trial": trial}, last_result=last, status="TERMINATED",
                           run_metadata=SimpleNamespace(num_failures=0), checkpoint=None, path="/trial",
                           get_error=lambda: None)


@pytest.mark.parametrize("size", [{"C": 16, "N": 5}, {"C": 4, "N": 1}])
def test_final_rows_carry_cost_columns(size, one_torch_thread):
    run = TrainRun({"arch": ARCH, "protocol": "nb201-12", "dataset": "cifar10", "device": "cpu",
                    "overrides": {"size": size, "batch_size": 4}},
                   splits={"train": _images(8, 0), "test": _images(8, 1)})
    expected = cost_columns("nb201", ARCH, size, "cifar10", ALL_NB201)
    assert bool(any(k.startswith("cost_latency_") for k in expected)) == (size == {"C": 16, "N": 5})
    history = pd.DataFrame([{"epoch": 1, "train_loss": 2.0, "train_acc": 10.0, "test_acc": 10.0,
                             "epoch_time_s": 1.0}])
    row = final_row(_fake_trial(run, ARCH, size), history)
    _same_costs(row, expected)
    assert row["params"] == run.params and math.isclose(row["cost_params_M"], run.params / 1e6)
    assert "flops" in row  # the older columns stay
    # a trial whose results lack them (failed before its first result, an older run): computed on the driver
    _same_costs(final_row(_fake_trial(run, ARCH, size, with_info=False), history), expected)
