"""Every protocol preset runs end to end with tiny overrides (2 epochs, 2 steps, small network) on its space's
real evaluation network, checkpoints and resumes, and keeps its aux head and drop path out of evaluation."""

from __future__ import annotations

import pytest
import torch

from search_spaces.data.device import DeviceDataset
from trainables.train import PRESETS, TrainRun

#: a small network and a valid architecture per space (a new space adds one line here)
TINY = {
    "nb201": ({"C": 4, "N": 1},
              "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"),
    "darts": ({"C": 4, "layers": 3}, None),  # DARTS_V2, read from the space's published genotypes below
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def noise(n: int, side: int, classes: int, seed: int) -> DeviceDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, side, side), generator=g, dtype=torch.uint8)
    return DeviceDataset(images, torch.arange(n) % classes, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), classes, "noise")


def tiny_size_and_arch(space: str) -> tuple[dict, str]:
    assert space in TINY, f"add a tiny size and architecture for space {space!r} to TINY"
    size, arch = TINY[space]
    if arch is None:
        arch = str(pytest.importorskip("search_spaces.darts.published").DARTS_V2)
    return size, arch


def tiny_run(name: str) -> tuple[TrainRun, dict]:
    preset = PRESETS[name]
    size, arch = tiny_size_and_arch(preset.space)
    side = 224 if preset.network.get("imagenet") else 32  # ImageNet: the aux head needs its 14x14 map (>= 7x7)
    splits = {"train": noise(8, side, 5, 0), "test": noise(4, side, 5, 1)}
    config = {"arch": arch, "protocol": name, "device": "cpu",
              "dataset": next(iter(preset.splits), "cifar10"),
              "overrides": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 4, "size": size}}
    return TrainRun(config, splits=splits), splits


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_trains_two_tiny_epochs_and_resumes(name, tmp_path):
    run, splits = tiny_run(name)
    p = run.protocol
    rows = [run.run_epoch()]
    run.save(tmp_path / "ck.pt")
    rows.append(run.run_epoch())
    assert [r["epoch"] for r in rows] == [1, 2] and all(r["steps"] == 2 for r in rows)
    assert all(0 <= r["test_acc"] <= 100 and r["train_loss"] > 0 for r in rows)
    assert rows[1]["drop_path_prob"] == pytest.approx(p.drop_path_prob * 1 / 2)
    resumed = TrainRun.from_checkpoint(tmp_path / "ck.pt", splits=splits)
    again = resumed.run_epoch()
    assert again["train_loss"] == rows[1]["train_loss"] and again["test_loss"] == rows[1]["test_loss"]
    for a, b in zip(run.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(n for n, p in PRESETS.items() if p.auxiliary or p.drop_path_prob))
def test_aux_head_and_drop_path_are_off_in_evaluation(name):
    run, splits = tiny_run(name)
    model = run.model
    model.drop_path_prob = 0.5
    x, _ = splits["test"].batch(torch.arange(4))
    model.train()
    out = model(x)
    assert isinstance(out, tuple) and len(out) == 2  # training: (logits, aux_logits)
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
    assert isinstance(a, torch.Tensor) and torch.equal(a, b)  # eval: plain logits, no random drop path
    first = run.evaluate()
    assert run.evaluate() == first and model.training  # evaluate() is deterministic and restores train mode


@pytest.mark.parametrize("name, params", [
    ("nb201", 802_426),  # NB201's params_M 0.802426 for this architecture (CIFAR-10 head)
    ("darts-cifar", 3_349_342),  # DARTS_V2 at C=36, 20 cells without the aux head: quark0/darts README "3.349MB"
])
def test_full_size_networks_have_the_published_parameter_counts(name, params):
    _, arch = tiny_size_and_arch(PRESETS[name].space)
    run = TrainRun({"arch": arch, "protocol": name, "device": "cpu", "dataset": "cifar10"},
                   splits={"train": noise(2, 32, 10, 0), "test": noise(2, 32, 10, 1)})
    assert run.params == params
