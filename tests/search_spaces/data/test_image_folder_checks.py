"""Image folders before Ray (class folders listed: none empty, `val/` holding exactly train's classes) and during
training (an unreadable image skipped, replaced, counted and logged once; an error past the tolerated fraction;
batches still fixed by the seed)."""

from __future__ import annotations

import logging
import time

import pytest
import torch
from conftest import make_tiny_imagenet
from PIL import Image

from search_spaces.data import (
    DataCheckError,
    ImageFolderDataset,
    ImageReadError,
    TooManyUnreadableImages,
    load_split,
    load_splits,
    prepare_dataset,
)
from search_spaces.data.image_folder import MAX_UNREADABLE_FRACTION, class_folders_without_images

#: the pre-Ray folder check of a tiny tree must finish well within this
TINY_CHECK_S = 1.0


def timed_prepare(root):
    start = time.perf_counter()
    try:
        return prepare_dataset("imagenet", root), time.perf_counter() - start
    except (FileNotFoundError, ValueError) as err:
        return err, time.perf_counter() - start


def empty(folder) -> None:
    for f in folder.iterdir():
        f.unlink()


def spoil(path) -> None:
    path.write_bytes(b"\xff\xd8\xff\xe0 truncated: not really a JPEG")


# ----- before Ray: class folders ----------------------------------------------------------------------------------
@pytest.mark.parametrize("split", ["train", "val"])
def test_an_empty_class_folder_is_refused_before_ray_naming_it(tmp_path, split):
    root = make_tiny_imagenet(tmp_path)
    empty(root / split / "n02")
    (root / split / "n02" / "notes.txt").write_text("no image here")
    err, seconds = timed_prepare(root)
    assert isinstance(err, FileNotFoundError), err
    assert f"class folder {root / split / 'n02'} holds no images" in str(err)
    assert "ILSVRC2012_img_val.tar" in str(err)  # the manual steps
    assert seconds < TINY_CHECK_S


def test_every_empty_class_folder_is_named(tmp_path):
    root = make_tiny_imagenet(tmp_path)
    for folder in (root / "train" / "n01", root / "train" / "n03", root / "val" / "n02"):
        empty(folder)
    err, _ = timed_prepare(root)
    assert isinstance(err, FileNotFoundError) and "3 class folders hold no images" in str(err)
    for folder in (root / "train" / "n01", root / "train" / "n03", root / "val" / "n02"):
        assert str(folder) in str(err)


def test_images_in_subfolders_of_a_class_count(tmp_path):
    root = make_tiny_imagenet(tmp_path)
    sub = root / "train" / "n02" / "more"
    sub.mkdir()
    for f in sorted((root / "train" / "n02").glob("*.JPEG")):
        f.rename(sub / f.name)
    assert class_folders_without_images(root / "train", ["n01", "n02", "n03"]) == []
    assert prepare_dataset("imagenet", root) == root
    assert len(load_split("imagenet", root, "train")) == 12


@pytest.mark.parametrize("change, expected", [
    ("extra", "missing none; unexpected n04"),
    ("missing", "missing n03; unexpected none"),
    ("renamed", "missing n03; unexpected n04"),
])
def test_val_must_hold_the_same_classes_as_train_checked_before_ray(tmp_path, change, expected):
    root = make_tiny_imagenet(tmp_path)
    if change == "extra":
        (root / "val" / "n04").mkdir()
        Image.new("RGB", (8, 8)).save(root / "val" / "n04" / "x.JPEG")
    elif change == "missing":
        empty(root / "val" / "n03")
        (root / "val" / "n03").rmdir()
    else:
        (root / "val" / "n03").rename(root / "val" / "n04")
    err, seconds = timed_prepare(root)
    # a DataCheckError is a ValueError naming the folder: the commands turn it into one error line (exit 2)
    assert isinstance(err, DataCheckError) and isinstance(err, ValueError), err
    assert f"the class folders of {root / 'val'} differ from the training split's: {expected}" in str(err)
    assert seconds < TINY_CHECK_S
    with pytest.raises(DataCheckError, match=expected):  # the trial's load says the same
        load_splits("imagenet", root, ["train", "test"])


# ----- during training: unreadable images -------------------------------------------------------------------------
def dataset_with_bad(root, bad: tuple[str, ...] = ("n02/n02_1.JPEG",), **kwargs) -> ImageFolderDataset:
    for name in bad:
        spoil(root / "train" / name)
    return ImageFolderDataset.from_folder(root / "train", image_size=32, **kwargs)


def row_of(data: ImageFolderDataset, name: str) -> int:
    return [data.path(i).relative_to(data.root).as_posix() for i in range(len(data))].index(name)


@pytest.mark.parametrize("augment", [False, True])
def test_an_unreadable_image_is_replaced_by_the_next_file_and_counted(tiny_imagenet, augment, caplog):
    data = dataset_with_bad(tiny_imagenet, max_unreadable_fraction=0.2)  # 12 images: 2 tolerated
    bad = row_of(data, "n02/n02_1.JPEG")
    index = torch.tensor([0, bad, 9, 3])
    with caplog.at_level(logging.WARNING, logger="search_spaces.data.image_folder"):
        x, y = data.batch(index, augment=augment, generator=torch.Generator().manual_seed(3))
        data.batch(index, augment=augment, generator=torch.Generator().manual_seed(3))
    assert x.shape == (4, 3, 32, 32) and torch.isfinite(x).all()
    # the slot reads the next file (with the slot's own random draws) and takes its label
    same = torch.tensor([0, bad + 1, 9, 3])
    x_ref, y_ref = data.batch(same, augment=augment, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, x_ref) and torch.equal(y, y_ref) and torch.equal(y, data.labels[same])
    assert data.unreadable_images == 2 and data.images_read == 2 * 5 + 4
    assert data.unreadable_paths == [str(tiny_imagenet / "train" / "n02" / "n02_1.JPEG")]
    logged = [r for r in caplog.records if "unreadable image" in r.getMessage()]
    assert len(logged) == 1 and "n02_1.JPEG" in logged[0].getMessage()  # once per file


def test_a_fixed_seed_fixes_batches_with_unreadable_images(tmp_path):
    runs = []
    for copy in ("a", "b"):
        data = dataset_with_bad(make_tiny_imagenet(tmp_path / copy), ("n01/n01_2.JPEG", "n03/n03_0.JPEG"),
                                max_unreadable_fraction=0.25, workers=3)
        g = torch.Generator().manual_seed(7)
        batches = []
        for _ in range(3):  # three epochs of 3 batches of 4
            order = data.permutation(g)
            batches += [data.batch(order[i:i + 4], augment=True, generator=g) for i in range(0, 12, 4)]
        runs.append((batches, data.unreadable_images, data.images_read))
    (first, bad_a, read_a), (second, bad_b, read_b) = runs
    assert (bad_a, read_a) == (bad_b, read_b) == (6, 36 + 6)
    for (xa, ya), (xb, yb) in zip(first, second):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_more_unreadable_images_than_the_fraction_tolerates_is_an_error(tiny_imagenet):
    assert MAX_UNREADABLE_FRACTION == 0.001
    data = dataset_with_bad(tiny_imagenet, ("n02/n02_1.JPEG", "n03/n03_2.JPEG"), max_unreadable_fraction=0.1)
    first, second = row_of(data, "n02/n02_1.JPEG"), row_of(data, "n03/n03_2.JPEG")
    data.batch(torch.tensor([first, 0]))  # 1 of 12 tolerated (0.1 x max(images read, 12 images) = 1.2)
    with pytest.raises(TooManyUnreadableImages) as err:
        data.batch(torch.tensor([second, 0]))
    message = str(err.value)
    assert isinstance(err.value, ImageReadError)
    assert "2 of the 6 images read are unreadable (33.333%)" in message
    assert "max_unreadable_fraction=0.1 (10.00%) of max(images read, the data set's 12 images)" in message
    assert f"cannot read image {tiny_imagenet / 'train' / 'n02' / 'n02_1.JPEG'}" in message
    assert str(tiny_imagenet / "train" / "n03" / "n03_2.JPEG") in message

    default = load_split("imagenet", tiny_imagenet, "train")  # 0.1% of 12 images: the first one stops
    assert default.max_unreadable_fraction == MAX_UNREADABLE_FRACTION
    with pytest.raises(TooManyUnreadableImages, match="1 of the 2 images read are unreadable"):
        default.batch(torch.tensor([first]))


def test_the_fraction_is_judged_over_the_images_read_once_past_the_data_set_size(tiny_imagenet):
    data = dataset_with_bad(tiny_imagenet, max_unreadable_fraction=0.1)  # tolerates 1.2 in the first 12 reads
    bad = row_of(data, "n02/n02_1.JPEG")
    others = [r for r in range(12) if r != bad]
    data.batch(torch.tensor([bad]))
    data.batch(torch.tensor(others))
    assert (data.unreadable_images, data.images_read) == (1, 13)  # 1.3 tolerated: a second failure would stop
    data.batch(torch.tensor(others * 2))  # 35 read: 3.5 tolerated
    data.batch(torch.tensor([bad, bad, bad]))  # 4 of 41 read: 4 <= 4.1 tolerated
    assert (data.unreadable_images, data.images_read) == (4, 41)
    with pytest.raises(TooManyUnreadableImages, match="5 of the 43 images read"):
        data.batch(torch.tensor([bad]))  # 5 > 0.1 x 43


def test_a_slot_without_any_readable_replacement_is_an_error(tmp_path):
    root = make_tiny_imagenet(tmp_path, classes=("n01",), train_per_class=3, val_per_class=1)
    data = dataset_with_bad(root, ("n01/n01_0.JPEG", "n01/n01_1.JPEG", "n01/n01_2.JPEG"), max_unreadable_fraction=0.9)
    with pytest.raises(TooManyUnreadableImages, match="no readable image among row 1 and the 2 after it"):
        data.batch(torch.tensor([1]))


def test_derived_data_sets_count_their_own_reads(tiny_imagenet):
    data = dataset_with_bad(tiny_imagenet, max_unreadable_fraction=0.5)
    bad = row_of(data, "n02/n02_1.JPEG")
    data.batch(torch.tensor([bad]))
    part = data.take([bad, 0])
    assert (part.unreadable_images, part.images_read, part.unreadable_paths) == (0, 0, [])
    assert part.max_unreadable_fraction == 0.5
    part.batch(torch.tensor([0]))
    assert (part.unreadable_images, data.unreadable_images) == (1, 1)
    with pytest.raises(ValueError, match=r"max_unreadable_fraction must be in \[0, 1\)"):
        ImageFolderDataset.from_folder(tiny_imagenet / "train", max_unreadable_fraction=1.0)


@pytest.mark.usefixtures("one_torch_thread")
def test_the_epoch_row_counts_the_unreadable_images(tiny_imagenet):
    from trainables.train import TrainRun

    train = dataset_with_bad(tiny_imagenet, max_unreadable_fraction=0.2)
    test = ImageFolderDataset.from_folder(tiny_imagenet / "val", classes=train.classes, image_size=32)
    config = {"arch": "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
              "protocol": "nb201-12", "dataset": "cifar10", "device": "cpu",
              "overrides": {"size": {"C": 4, "N": 1}, "batch_size": 4, "eval_batch_size": 6, "epochs": 2}}
    run = TrainRun(config, splits={"train": train, "test": test})
    rows = [run.run_epoch() for _ in range(2)]
    assert [r["unreadable_images"] for r in rows] == [1, 1]  # each epoch reads the bad file once
    assert rows[0]["steps"] == 3 and all(0 <= r["test_acc"] <= 100 for r in rows)
