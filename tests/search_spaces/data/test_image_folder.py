"""The image-folder reader (ILSVRC-2012 layout): labels, shapes, determinism, DARTS's ImageNet transforms checked
by hand, and one clear error per bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import make_tiny_imagenet
from PIL import Image

from search_spaces.data import FOLDER_DATASETS, ImageFolderDataset, ImageReadError, load_split, load_splits
from search_spaces.data import prepare_dataset as prepare
from search_spaces.data.image_folder import (
    DRAWS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    color_jitter,
    jitter_ops,
    resized_crop_box,
    shift_hue,
)
from trainables.runs.host_sync import count_host_syncs

MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def normalised(pixels: np.ndarray) -> torch.Tensor:
    """[n, H, W, 3] uint8 -> what `batch` returns: ToTensor + Normalize with ImageNet's statistics."""
    return (torch.from_numpy(np.array(pixels)).permute(0, 3, 1, 2).float() / 255.0 - MEAN) / STD


def one_image(tmp_path, pixels: np.ndarray, name: str = "img.png", **kwargs) -> ImageFolderDataset:
    """A one-class folder holding one lossless image."""
    folder = tmp_path / "one" / "cls"
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(folder / name)
    return ImageFolderDataset.from_folder(tmp_path / "one", **kwargs)


@pytest.fixture
def splits(tiny_imagenet):
    return load_splits("imagenet", tiny_imagenet, ["train", "test"])


# ----- layout, labels, shapes -----------------------------------------------------------------------------------
def test_labels_follow_sorted_class_folders_and_every_image_is_listed(tmp_path):
    root = make_tiny_imagenet(tmp_path, classes=("n09", "n01", "n05"), train_per_class=3, val_per_class=2)
    (root / "train" / "n05" / "notes.txt").write_text("not an image")  # other files are ignored
    (root / "train" / ".cache").mkdir()  # hidden folders are not classes
    Image.new("RGB", (8, 8)).save(root / "train" / "n09" / "extra.jpg")  # .jpg, .png, .JPEG in any case
    Image.new("RGB", (8, 8)).save(root / "train" / "n09" / "extra2.PNG", format="png")
    s = load_splits("imagenet", root, ["train", "test"])
    train, test = s["train"], s["test"]
    assert train.classes == test.classes == ("n01", "n05", "n09") and train.num_classes == 3
    assert (len(train), len(test)) == (3 * 3 + 2, 3 * 2)
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2] and test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    names = [train.path(i).relative_to(root / "train").as_posix() for i in range(len(train))]
    assert names[:3] == ["n01/n01_0.JPEG", "n01/n01_1.JPEG", "n01/n01_2.JPEG"]
    assert names[6:] == ["n09/extra.jpg", "n09/extra2.PNG", "n09/n09_0.JPEG", "n09/n09_1.JPEG", "n09/n09_2.JPEG"]
    assert (train.name, test.name) == ("imagenet/train", "imagenet/test")
    assert load_split("imagenet", root, "test").labels.tolist() == test.labels.tolist()


@pytest.mark.parametrize("size", [224, 64])
def test_batches_are_normalised_float_images_with_int64_labels(tiny_imagenet, size):
    kwargs = {} if size == 224 else {"image_size": size}
    data = ImageFolderDataset.from_folder(tiny_imagenet / "train", **kwargs)
    assert data.eval_resize == round(size * 256 / 224)
    index = torch.tensor([0, 5, 11, 3])
    g = torch.Generator().manual_seed(0)
    for augment in (False, True):
        x, y = data.batch(index, augment=augment, generator=g)
        assert x.shape == (4, 3, size, size) and x.dtype == torch.float32 and x.is_contiguous()
        assert y.dtype == torch.int64 and torch.equal(y, data.labels[index])
        assert torch.isfinite(x).all() and x.min() >= ((0 - MEAN) / STD).min() - 1e-5
        assert x.max() <= ((1 - MEAN) / STD).max() + 1e-5
    xc, _ = data.batch(index, channels_last=True)
    assert xc.is_contiguous(memory_format=torch.channels_last) and torch.equal(xc, data.batch(index)[0])


def test_take_subset_and_to_keep_files_and_labels_together(splits):
    train = splits["train"]
    first = train.subset(5)
    assert len(first) == 5 and first.name == "imagenet/train[:5]" and first.labels.tolist() == [0, 0, 0, 0, 1]
    drawn = train.subset(5, seed=3)
    assert drawn.labels.tolist() == train.subset(5, seed=3).labels.tolist() and len(drawn) == 5
    picked = train.take(torch.tensor([11, 0]))
    assert picked.path(0) == train.path(11) and picked.labels.tolist() == [2, 0]
    assert torch.equal(picked.batch(torch.arange(2))[0], train.batch(torch.tensor([11, 0]))[0])
    moved = train.to("cpu")
    assert moved.device == torch.device("cpu") and len(moved) == len(train)
    assert sorted(train.permutation(torch.Generator().manual_seed(0)).tolist()) == list(range(12))


# ----- randomness -----------------------------------------------------------------------------------------------
def test_a_fixed_seed_gives_identical_batches_and_another_seed_others(splits):
    train = splits["train"]
    index = torch.arange(12)

    def draw(seed: int, workers: int | None = None) -> torch.Tensor:
        data = train if workers is None else ImageFolderDataset(
            train.root, train.files, train.labels, train.classes, name=train.name, workers=workers)
        return data.batch(index, augment=True, generator=torch.Generator().manual_seed(seed), cutout=16)[0]

    a, b, c = draw(5), draw(5), draw(6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(draw(5, workers=1), draw(5, workers=3))  # threads change nothing but the speed
    g = torch.Generator().manual_seed(5)
    assert not torch.equal(train.batch(index, augment=True, generator=g)[0],
                           train.batch(index, augment=True, generator=g)[0])  # the generator advances


def test_one_host_sync_per_batch(splits):
    train, g = splits["train"], torch.Generator().manual_seed(0)
    order = train.permutation(g)
    for augment in (True, False):
        with count_host_syncs() as calls:
            train.batch(order[:6], augment=augment, generator=g)
        assert sum(calls.values()) == 1, dict(calls)


# ----- the transforms by hand -----------------------------------------------------------------------------------
def test_eval_transform_is_a_centre_crop_when_the_shorter_side_is_already_256(tmp_path):
    pixels = np.zeros((256, 448, 3), dtype=np.uint8)
    pixels[:, :224] = (255, 0, 0)  # left half red, right half blue
    pixels[:, 224:] = (0, 0, 255)
    x, _ = one_image(tmp_path, pixels).batch(torch.tensor([0]))
    # no resize (256 is the shorter side); the crop starts at column round((448 - 224) / 2) = 112
    expected = np.zeros((1, 224, 224, 3), dtype=np.uint8)
    expected[:, :, :112] = (255, 0, 0)
    expected[:, :, 112:] = (0, 0, 255)
    torch.testing.assert_close(x, normalised(expected), rtol=0, atol=1e-5)


@pytest.mark.parametrize("width, height, resized, corner", [
    (300, 200, (384, 256), (80, 16)),  # landscape: height -> 256, width int(256 * 300 / 200) = 384
    (200, 300, (256, 384), (16, 80)),  # portrait
    (333, 250, (340, 256), (58, 16)),  # int(256 * 333 / 250) = int(340.99) = 340: truncated, as torchvision
    (40, 60, (256, 384), (16, 80)),    # smaller than the crop: upsampled
])
def test_eval_transform_resizes_the_shorter_side_then_centre_crops(tmp_path, width, height, resized, corner):
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    x, _ = one_image(tmp_path, pixels).batch(torch.tensor([0]))
    left, top = corner
    by_hand = np.asarray(Image.fromarray(pixels).resize(resized, Image.Resampling.BILINEAR))
    torch.testing.assert_close(x, normalised(by_hand[None, top:top + 224, left:left + 224]), rtol=0, atol=1e-5)


def test_random_resized_crop_by_hand():
    # all uniforms 0.5 on 500x375: area 0.54 * 187,500 = 101,250, ratio exp(0) = 1 -> 318 x 318, centred
    assert resized_crop_box(500, 375, [0.5] * 40) == (int(0.5 * 183), int(0.5 * 58), 318, 318)
    # nothing fits a 1000x10 strip: centre crop with the ratio clamped to 4/3 (w = round(10 * 4 / 3) = 13)
    assert resized_crop_box(1000, 10, [0.3] * 40) == ((1000 - 13) // 2, 0, 13, 10)
    assert resized_crop_box(10, 1000, [0.3] * 40) == (0, (1000 - 13) // 2, 10, 13)  # w / (3/4) = 13.3
    assert resized_crop_box(100, 90, [0.999] * 40) == (0, 0, 100, 90)  # ratio 1.11 inside the range: whole image


@pytest.mark.parametrize("width, height", [(500, 375), (300, 200), (375, 500), (40, 60)])
def test_random_resized_crop_stays_within_its_area_and_ratio_bounds(width, height):
    rng = np.random.default_rng(1)
    fractions, log_ratios = [], []
    for u in rng.random((3000, 40)):
        left, top, w, h = resized_crop_box(width, height, u)
        assert 0 < w <= width and 0 < h <= height and 0 <= left <= width - w and 0 <= top <= height - h
        tol = 1.0 / min(w, h)  # w and h are rounded to integers
        assert 0.08 * (1 - 2 * tol) <= w * h / (width * height) <= 1.0
        assert 0.75 * (1 - tol) <= w / h <= 4 / 3 * (1 + tol)
        fractions.append(w * h / (width * height))
        log_ratios.append(math.log(w / h))
    if width >= 300:  # the scale and ratio ranges are covered (a 3:2 image holds at most a 4:3 crop of 89%)
        assert min(fractions) < 0.1 and max(fractions) > 0.85
        assert min(log_ratios) < -0.25 and max(log_ratios) > 0.25


def test_colour_jitter_of_zero_ranges_is_the_identity(tmp_path, splits):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8))
    u = np.random.default_rng(1).random(8)
    assert jitter_ops(u, (0, 0, 0, 0)) == []
    assert np.array_equal(np.asarray(color_jitter(image, jitter_ops(u, (0, 0, 0, 0)))), np.asarray(image))
    identity = [("brightness", 1.0), ("contrast", 1.0), ("saturation", 1.0)]
    assert np.array_equal(np.asarray(color_jitter(image, identity)), np.asarray(image))
    # the whole augmentation without jitter = RandomResizedCrop + flip by hand, from the same draws
    train = splits["train"]
    plain = ImageFolderDataset(train.root, train.files, train.labels, train.classes, jitter=(0, 0, 0, 0))
    index = torch.arange(len(plain))
    x, _ = plain.batch(index, augment=True, generator=torch.Generator().manual_seed(3))
    draws = torch.randint(0, 1 << 24, (len(plain), DRAWS), generator=torch.Generator().manual_seed(3)).numpy()
    by_hand = []
    for k, u in enumerate(draws / (1 << 24)):
        img = Image.open(plain.path(k)).convert("RGB")
        left, top, w, h = resized_crop_box(img.width, img.height, u[:40])
        img = img.crop((left, top, left + w, top + h)).resize((224, 224), Image.Resampling.BILINEAR)
        by_hand.append(np.asarray(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if u[40] < 0.5 else img))
    torch.testing.assert_close(x, normalised(np.stack(by_hand)), rtol=0, atol=1e-5)


def test_colour_jitter_ranges_order_and_effects():
    u = np.array([0.9, 0.1, 0.5, 0.3, 0.0, 0.9999, 0.5, 0.0])
    ops = jitter_ops(u, (0.4, 0.4, 0.4, 0.2))
    assert [name for name, _ in ops] == ["contrast", "hue", "saturation", "brightness"]  # argsort of u[:4]
    factors = dict(ops)
    assert factors["brightness"] == pytest.approx(0.6) and factors["contrast"] == pytest.approx(1.4, abs=1e-4)
    assert factors["saturation"] == pytest.approx(1.0) and factors["hue"] == pytest.approx(-0.2)
    grey = Image.new("RGB", (4, 4), (100, 150, 200))
    assert np.asarray(color_jitter(grey, [("brightness", 0.5)]))[0, 0].tolist() == [50, 75, 100]
    assert np.asarray(color_jitter(grey, [("saturation", 0.0)])).std(axis=2).max() < 1  # grey
    red = Image.new("RGB", (4, 4), (255, 0, 0))
    assert np.asarray(shift_hue(red, 1 / 3))[0, 0].tolist() == [0, 255, 0]  # a third of the hue circle: green


# ----- bad input ------------------------------------------------------------------------------------------------
def test_missing_data_root_or_split_folder_gives_the_manual_steps(tmp_path, tiny_imagenet):
    with pytest.raises(FileNotFoundError) as err:
        load_splits("imagenet", tmp_path / "nowhere", ["train"])
    assert str(tmp_path / "nowhere") in str(err.value) and "ILSVRC2012_img_train.tar" in str(err.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no train/ or val/ folder") as err:
        prepare("imagenet", empty)
    assert "image-net.org" in str(err.value) and "valprep.sh" in str(err.value)
    (tiny_imagenet / "val").rename(tmp_path / "val_elsewhere")
    with pytest.raises(FileNotFoundError) as err:
        load_splits("imagenet", tiny_imagenet, ["train", "test"])
    assert f"no val/ folder at {tiny_imagenet / 'val'}" in str(err.value)


def test_data_root_may_hold_the_imagenet_folder(tmp_path):
    make_tiny_imagenet(tmp_path / "data" / "imagenet")
    assert prepare("imagenet", tmp_path / "data") == tmp_path / "data"
    assert len(load_split("imagenet", tmp_path / "data", "train")) == 12


def test_class_folder_problems_name_the_folder(tmp_path):
    root = make_tiny_imagenet(tmp_path / "a")
    for wnid in ("n01", "n02", "n03"):  # val as the tar ships it: 50,000 loose JPEGs, no class folders
        for f in (root / "val" / wnid).iterdir():
            f.rename(root / "val" / f.name)
        (root / "val" / wnid).rmdir()
    with pytest.raises(FileNotFoundError) as err:
        prepare("imagenet", root)
    assert f"{root / 'val'} holds 6 image file(s) but no class folders" in str(err.value)
    assert "sort val's 50,000 JPEGs" in str(err.value)

    root = make_tiny_imagenet(tmp_path / "b")
    for f in (root / "train" / "n02").iterdir():
        f.unlink()
    with pytest.raises(FileNotFoundError, match=f"class folder {root / 'train' / 'n02'} holds no images"):
        load_splits("imagenet", root, ["train"])

    root = make_tiny_imagenet(tmp_path / "c")
    (root / "val" / "n03").rename(root / "val" / "n04")
    with pytest.raises(ValueError, match="differ from the training split's: missing n03; unexpected n04"):
        prepare("imagenet", root)

    empty_train = make_tiny_imagenet(tmp_path / "d")
    for wnid in ("n01", "n02", "n03"):
        for f in (empty_train / "train" / wnid).iterdir():
            f.unlink()
        (empty_train / "train" / wnid).rmdir()
    with pytest.raises(FileNotFoundError, match="holds no class folders"):
        load_splits("imagenet", empty_train, ["train"])


def test_an_unreadable_image_names_its_file(tiny_imagenet):
    """At the default max_unreadable_fraction (0.1%) one bad file of 12 is too many: the batch names it
    (test_image_folder_checks.py covers skipping below the fraction)."""
    bad = tiny_imagenet / "train" / "n02" / "n02_1.JPEG"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    train = load_split("imagenet", tiny_imagenet, "train")
    row = [train.path(i) for i in range(len(train))].index(bad)
    train.batch(torch.tensor([0, 1]))  # other images still read
    for augment in (False, True):
        with pytest.raises(ImageReadError, match=f"cannot read image {bad}"):
            train.batch(torch.tensor([0, row]), augment=augment, generator=torch.Generator().manual_seed(0))


def test_bad_arguments_are_clear(tiny_imagenet):
    with pytest.raises(ValueError, match="unknown split 'search-train' for imagenet; expected one of train, test"):
        load_splits("imagenet", tiny_imagenet, ["search-train"])
    with pytest.raises(ValueError, match="split_file applies to NB201's data sets"):
        load_splits("imagenet", tiny_imagenet, ["train"], split_file="cifar-split.txt")
    train = load_split("imagenet", tiny_imagenet, "train")
    with pytest.raises(ValueError, match="needs a torch.Generator"):
        train.batch(torch.arange(2), cutout=16)
    with pytest.raises(ValueError, match="eval_resize >= image_size"):
        ImageFolderDataset(train.root, train.files, train.labels, train.classes, image_size=224, eval_resize=200)
    with pytest.raises(ValueError, match="hue <= 0.5"):
        ImageFolderDataset(train.root, train.files, train.labels, train.classes, jitter=(0.4, 0.4, 0.4, 0.6))
    assert set(FOLDER_DATASETS["imagenet"].folders.items()) == {("train", "train"), ("test", "val")}
