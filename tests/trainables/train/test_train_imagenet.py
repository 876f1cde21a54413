"""darts-imagenet end to end on a tiny folder in ILSVRC-2012's layout: TrainRun reads it through data_root,
trains, evaluates on val/, resumes bit-exactly; the spec's path check names what is missing."""

from __future__ import annotations

import math

import pytest
import torch

from search_spaces.data import ImageFolderDataset
from trainables.train import TrainRun
from trainables.train.spec import check_train_paths, validate_train_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def darts_v2() -> str:
    return str(pytest.importorskip("search_spaces.darts.published").DARTS_V2)


def tiny_config(arch: str, data_root, **overrides) -> dict:
    """darts-imagenet at 224 px (its aux head needs the 7x7 map of a 224 input), 2 images a step, C=4, 3 cells."""
    return {"arch": arch, "protocol": "darts-imagenet", "dataset": "imagenet", "data_root": str(data_root),
            "device": "cpu", "overrides": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "eval_batch_size": 4,
                                           "size": {"C": 4, "layers": 3}, **overrides}}


def test_darts_imagenet_trains_and_tests_on_an_image_folder(tiny_imagenet, darts_v2, tmp_path):
    run = TrainRun(tiny_config(darts_v2, tiny_imagenet))
    assert isinstance(run.train_data, ImageFolderDataset) and run.num_classes == 3
    assert (len(run.train_data), len(run.eval_data["test"])) == (12, 6)  # train/ and val/
    assert run.eval_data["test"].root == tiny_imagenet / "val"
    first = run.run_epoch()
    run.save(tmp_path / "ck.pt")
    second = run.run_epoch()
    for row in (first, second):
        assert row["steps"] == 2 and 0 <= row["test_acc"] <= 100
        assert all(math.isfinite(row[k]) for k in ("train_loss", "test_loss", "test_error", "train_acc"))
    assert second["lr"] == pytest.approx(0.1 * 0.97)  # StepLR(1, 0.97)
    resumed = TrainRun.from_checkpoint(tmp_path / "ck.pt")
    again = resumed.run_epoch()
    assert again["train_loss"] == second["train_loss"] and again["test_loss"] == second["test_loss"]
    for a, b in zip(run.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_train_spec_checks_the_imagenet_folders(tiny_imagenet, darts_v2, tmp_path):
    data = {"name": "in1k", "protocol": "darts-imagenet", "dataset": "imagenet", "architectures": [darts_v2],
            "data_root": str(tiny_imagenet)}
    check_train_paths(validate_train_spec(data))
    spec = validate_train_spec({**data, "data_root": str(tmp_path / "nowhere")})
    with pytest.raises(FileNotFoundError) as err:
        check_train_paths(spec)
    assert f"data_root ({tmp_path / 'nowhere'})" in str(err.value)
    assert "ILSVRC2012_img_val.tar" in str(err.value) and "val/" in str(err.value)
    with pytest.raises(ValueError, match="dataset 'cifar10': protocol 'darts-imagenet' trains on imagenet"):
        validate_train_spec({**data, "dataset": "cifar10"})
