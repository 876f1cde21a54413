"""Protocol presets: the reference hyper-parameters, overrides, and one clear error per bad input."""

from __future__ import annotations

import pytest

from trainables.train.protocol import PRESETS, resolve_protocol


def test_darts_cifar_is_quark0_train_py_with_auxiliary_and_cutout():
    p = PRESETS["darts-cifar"]
    assert (p.size, p.batch_size, p.epochs) == ({"C": 36, "layers": 20}, 96, 600)
    assert (p.lr, p.momentum, p.weight_decay, p.schedule, p.lr_min, p.grad_clip) == (0.025, 0.9, 3e-4, "cosine",
                                                                                       0.0, 5.0)
    assert (p.cutout, p.auxiliary, p.auxiliary_weight, p.drop_path_prob) == (16, True, 0.4, 0.2)
    assert p.splits["cifar10"].train == "train" and p.splits["cifar10"].eval == {"test": "test"}
    assert not p.nesterov and p.label_smoothing == 0


def test_darts_imagenet_is_train_imagenet_py():
    p = PRESETS["darts-imagenet"]
    assert (p.size, p.epochs, p.batch_size, p.network) == ({"C": 48, "layers": 14}, 250, 128, {"imagenet": True})
    assert (p.lr, p.schedule, p.gamma, p.weight_decay, p.label_smoothing, p.auxiliary_weight) == (
        0.1, "exponential", 0.97, 3e-5, 0.1, 0.4)
    # ILSVRC-2012's train/ folder, tested on its 50,000 validation images (val/), as DARTS reports
    assert set(p.splits) == {"imagenet"} and p.splits["imagenet"].train == "train"
    assert p.splits["imagenet"].eval == {"test": "test"}


@pytest.mark.parametrize("name, epochs", [("nb201", 200), ("nb201-12", 12)])
def test_nb201_presets_are_the_benchmark_schedules(name, epochs):
    p = PRESETS[name]
    assert p.epochs == epochs and p.size == {"C": 16, "N": 5} and p.batch_size == 256
    assert (p.lr, p.momentum, p.nesterov, p.weight_decay, p.lr_min, p.lr_step) == (0.1, 0.9, True, 5e-4, 0.0,
                                                                                     "iteration")
    assert p.grad_clip is None and p.cutout == 0 and not p.auxiliary
    assert set(p.splits) == {"cifar10-valid", "cifar10", "cifar100", "ImageNet16-120"}
    assert p.splits["cifar10-valid"].train == "search-train"  # NB201's 25k "train" half
    assert p.splits["cifar100"].eval == {"valid": "x-valid", "test": "x-test"}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_cites_a_source(name):
    assert len(PRESETS[name].source) > 40


def test_overrides_change_fields_and_replace_size():
    p = resolve_protocol("darts-cifar", {"epochs": 2, "size": {"C": 8, "layers": 5}})
    assert p.epochs == 2 and p.size == {"C": 8, "layers": 5} and p.lr == 0.025
    assert resolve_protocol("darts-cifar", {"size": {"C": 8}}).size == {"C": 8}


@pytest.mark.parametrize("preset, overrides, needle", [
    ("darts-cfar", {}, "unknown protocol 'darts-cfar'"),
    ("nb201", {"epochz": 3}, "unknown protocol field(s) 'epochz'"),
    ("nb201", {"epochs": 0}, "epochs=0"),
    ("nb201", {"schedule": "step"}, "schedule='step'"),
    ("nb201", {"lr_min": 1.0}, "lr_min (1.0) must not exceed lr"),
])
def test_bad_protocols_name_the_value(preset, overrides, needle):
    with pytest.raises(ValueError) as err:
        resolve_protocol(preset, overrides)
    assert needle in str(err.value)
