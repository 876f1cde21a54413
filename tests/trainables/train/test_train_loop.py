"""The final-training loop: it learns, resumes bit-exactly, stops on a non-finite loss, and drives the auxiliary
head and drop path only in training."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_tiny_cifar10
from torch import nn

from search_spaces import space as space_registry
from search_spaces.data.device import DeviceDataset
from trainables.train import NonFiniteLoss, TrainRun, run_training

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
TINY = {"size": {"C": 4, "N": 1}, "batch_size": 16, "eval_batch_size": 32}


def separable(n: int, classes: int, seed: int) -> DeviceDataset:
    """Images whose class is their colour (plus noise): a linear probe separates them perfectly."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    palette = torch.tensor([[230, 20, 20], [20, 230, 20], [20, 20, 230], [230, 230, 20]])[:classes]
    base = palette[labels].view(n, 3, 1, 1).float()
    images = (base + torch.randint(-20, 21, (n, 3, 16, 16), generator=g)).clamp(0, 255).to(torch.uint8)
    return DeviceDataset(images, labels, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), classes, "separable", 2)


def tiny_config(**overrides) -> dict:
    return {"arch": ARCH, "protocol": "nb201-12", "dataset": "cifar10", "device": "cpu",
            "overrides": {**TINY, **overrides}}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_loop_learns_a_separable_data_set():
    splits = {"train": separable(128, 4, 0), "test": separable(64, 4, 1)}
    rows = run_training(tiny_config(epochs=5, lr=0.05, batch_size=32), splits=splits)
    assert rows[-1]["test_acc"] >= 97.0 and rows[-1]["train_acc"] > rows[0]["train_acc"]
    assert rows[-1]["test_error"] == pytest.approx(100 - rows[-1]["test_acc"])
    assert [r["epoch"] for r in rows] == list(range(1, 6))


def test_resume_from_a_checkpoint_is_bit_exact(tmp_path):
    root = make_tiny_cifar10(tmp_path / "data")
    config = {**tiny_config(epochs=3, steps_per_epoch=2, cutout=8, eval_size=32), "data_root": str(root),
              "dataset": "cifar10-valid"}
    unbroken = TrainRun(config)
    for _ in range(3):
        unbroken.run_epoch()
    first = TrainRun(config)
    first.run_epoch()
    first.save(tmp_path / "ck.pt")
    torch.manual_seed(1234)  # a resumed process starts from other global RNG state
    resumed = TrainRun.from_checkpoint(tmp_path / "ck.pt")
    assert resumed.epoch == 1
    rows = [resumed.run_epoch() for _ in range(2)]
    for (name, a), b in zip(unbroken.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert rows[-1]["test_loss"] == unbroken.last_eval["test_loss"]
    assert resumed.optimizer.param_groups[0]["lr"] == unbroken.optimizer.param_groups[0]["lr"]


def test_iteration_cosine_reaches_zero_and_exponential_decays_per_epoch():
    splits = {"train": separable(32, 2, 0), "test": separable(8, 2, 1)}
    run = TrainRun(tiny_config(epochs=2, lr=0.1, batch_size=8), splits=splits)
    lrs = []
    for _ in range(2):
        lrs.append(run.run_epoch()["lr"])
    assert run.steps_per_epoch == 4 and lrs[0] == 0.1
    assert lrs[1] == pytest.approx(0.1 * (1 + math.cos(math.pi * 4 / 8)) / 2)  # per iteration, xautodl style
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    exp = TrainRun(tiny_config(epochs=3, lr=0.1, schedule="exponential", gamma=0.5, lr_step="epoch"),
                   splits=splits)
    assert [exp.run_epoch()["lr"] for _ in range(3)] == pytest.approx([0.1, 0.05, 0.025])


def test_a_nan_loss_stops_with_the_epoch_named():
    splits = {"train": separable(32, 2, 0), "test": separable(16, 2, 1)}
    run = TrainRun(tiny_config(epochs=3), splits=splits)
    run.run_epoch()
    run.model.register_forward_hook(lambda m, a, out: out * float("nan"))
    with pytest.raises(NonFiniteLoss, match="epoch 2 of 3"):
        run.run_epoch()


def test_bad_configs_name_the_value():
    with pytest.raises(ValueError, match=r"arch '\|bogus~0\|' does not parse in space 'nb201'"):
        TrainRun({**tiny_config(), "arch": "|bogus~0|"})
    with pytest.raises(ValueError, match="dataset 'svhn'"):
        TrainRun({**tiny_config(), "dataset": "svhn"})
    with pytest.raises(ValueError, match="protocol.size.layers: space 'nb201' takes no size key 'layers'"):
        TrainRun({**tiny_config(), "overrides": {"size": {"layers": 20}}},
                 splits={"train": separable(8, 2, 0), "test": separable(8, 2, 1)})


# ----- auxiliary head and drop path, on a network that has both ------------------------------------------------
class ToyNet(nn.Module):
    """Logits from a pooled 1x1 conv; in training with `auxiliary` also zero aux logits; records each forward's
    mode and drop path probability (the contract of BRIEF item 5)."""

    def __init__(self, num_classes: int, C: int = 4, auxiliary: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, C, 1)
        self.head = nn.Linear(C, num_classes)
        self.auxiliary = auxiliary
        self.num_classes = num_classes
        self.drop_path_prob = 0.0
        self.calls: list[tuple[bool, float]] = []

    def forward(self, x):
        self.calls.append((self.training, self.drop_path_prob))
        logits = self.head(self.conv(x).mean(dim=(2, 3)))
        if self.training and self.auxiliary:
            return logits, torch.zeros(x.shape[0], self.num_classes)
        return logits


class ToySpace(space_registry.SearchSpace):
    name = "toy-aux"
    arch_shapes = {}
    option_names = {}
    proxy_size = {"C": 4}
    network_extras = ("auxiliary",)

    def supernet(self, num_classes, **size):
        raise NotImplementedError

    def discretize(self, probs):
        raise NotImplementedError

    def network(self, arch, num_classes=10, **size):
        auxiliary = size.pop("auxiliary", False)
        return ToyNet(num_classes, self.sizes("proxy", size)["C"], auxiliary)

    def canonical(self, arch):
        if arch != "toy":
            raise ValueError(f"unknown toy architecture {arch!r}")
        return arch


@pytest.fixture
def toy_space(monkeypatch):
    monkeypatch.setitem(space_registry._SPACES, "toy-aux", (f"{__name__}:ToySpace", {}))
    import sys

    monkeypatch.setitem(sys.modules, __name__, sys.modules[__name__])


def toy_config(**overrides) -> dict:
    return {"arch": "toy", "protocol": "darts-cifar", "space": "toy-aux", "dataset": "cifar10", "device": "cpu",
            "overrides": {"size": {"C": 4}, "epochs": 4, "batch_size": 16, "cutout": 4, **overrides}}


def test_aux_loss_and_drop_path_only_in_training(toy_space):
    splits = {"train": separable(32, 2, 0), "test": separable(16, 2, 1)}
    with_aux = TrainRun(toy_config(size={"C": 4}), splits=splits)
    without = TrainRun(toy_config(auxiliary_weight=0.0), splits=splits)
    for epoch in range(4):
        a, b = with_aux.run_epoch(), without.run_epoch()
        # the aux logits are zeros without parameters: same weights, loss larger by exactly 0.4 * log(2)
        assert a["train_loss"] - b["train_loss"] == pytest.approx(0.4 * math.log(2), rel=1e-5)
        assert a["drop_path_prob"] == pytest.approx(0.2 * epoch / 4)
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-6)
    calls = with_aux.model.calls[1:]  # the first call measured FLOPs (eval mode)
    train = [p for training, p in calls if training]
    assert sorted(set(train)) == pytest.approx([0.0, 0.05, 0.1, 0.15])
    assert all(not training for training, _ in with_aux.model.calls[:1])
    n_eval = sum(1 for training, _ in calls if not training)
    assert n_eval == 4  # one eval forward (16 images, batch 96) per epoch, all in eval mode


def test_a_network_without_drop_path_or_aux_rejects_them():
    splits = {"train": separable(8, 2, 0), "test": separable(8, 2, 1)}
    with pytest.raises(ValueError, match="auxiliary=True: space 'nb201'"):
        TrainRun(tiny_config(auxiliary=True), splits=splits)
    with pytest.raises(ValueError, match="drop_path_prob=0.2: space 'nb201'"):
        TrainRun(tiny_config(drop_path_prob=0.2), splits=splits)


@pytest.mark.parametrize("steps", [2, 6])
def test_one_host_sync_per_epoch_whatever_the_steps(steps):
    from trainables.runs.host_sync import count_host_syncs

    splits = {"train": separable(64, 2, 0), "test": separable(16, 2, 1)}
    run = TrainRun(tiny_config(epochs=3, batch_size=8, steps_per_epoch=steps, cutout=4, eval_every=2,
                               grad_clip=5.0, label_smoothing=0.1), splits=splits)
    with count_host_syncs() as training_only:
        run.run_epoch()  # epoch 1: no evaluation (eval_every=2)
    with count_host_syncs() as with_eval:
        run.run_epoch()  # epoch 2: evaluation too
    assert sum(training_only.values()) == 1, dict(training_only)
    assert sum(with_eval.values()) == 2, dict(with_eval)
