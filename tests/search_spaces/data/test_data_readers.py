"""Readers of the official pickle layouts, the restricted unpickler, and missing-data errors."""

from __future__ import annotations

import logging
import os
import pickle
import re

import numpy as np
import pytest
from conftest import make_tiny_cifar10
from tiny_data_formats import index_of, make_tiny_cifar100, make_tiny_imagenet16, write_batch

from search_spaces.data import PickleFileError, load_pickle, load_split
from search_spaces.data.readers import read_cifar10, read_cifar100, read_imagenet16


def _batch_labels(path) -> list[int]:
    with open(path, "rb") as f:
        return pickle.load(f)["labels"]


def test_cifar10_reads_every_batch_in_order_and_logs_count(tmp_path, caplog):
    root = make_tiny_cifar10(tmp_path, n_train_per_batch=16, n_test=8, batches=3)
    folder = root / "cifar-10-batches-py"
    with caplog.at_level(logging.WARNING, logger="search_spaces.data.readers"):
        x, y = read_cifar10(root, train=True)
    assert "found 3 of 5 training batches" in caplog.text
    assert x.shape == (48, 3, 32, 32) and x.dtype == np.uint8 and y.dtype == np.int64
    expected = sum((_batch_labels(folder / f"data_batch_{k}") for k in (1, 2, 3)), [])
    assert y.tolist() == expected
    with open(folder / "data_batch_2", "rb") as f:
        raw = pickle.load(f)["data"]
    np.testing.assert_array_equal(x[16:32].reshape(16, -1), raw)  # channel-major layout kept
    xt, yt = read_cifar10(folder, train=False)  # the folder itself also works as root
    assert xt.shape == (8, 3, 32, 32) and yt.tolist() == _batch_labels(folder / "test_batch")


def test_batch_ten_follows_batch_nine(tmp_path):
    from search_spaces.data.readers import numbered_files

    for k in (10, 2, 1, 9):
        (tmp_path / f"data_batch_{k}").write_bytes(b"")
    (tmp_path / "data_batch_x").write_bytes(b"")
    assert [p.name for p in numbered_files(tmp_path, "data_batch_")] == [
        "data_batch_1", "data_batch_2", "data_batch_9", "data_batch_10"]


def test_python2_style_bytes_keys_are_read(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    for name in ("data_batch_1", "test_batch"):
        write_batch(folder / name, {b"data": data, b"labels": [3, 7], b"batch_label": b"x"})
    x, y = read_cifar10(tmp_path, train=True)
    assert y.tolist() == [3, 7] and x.reshape(2, -1).tolist() == data.tolist()


def test_cifar100_uses_fine_labels(tmp_path):
    root = make_tiny_cifar100(tmp_path)
    with open(root / "cifar-100-python" / "test", "rb") as f:
        raw = pickle.load(f)
    x, y = read_cifar100(root, train=False)
    assert x.shape == (40, 3, 32, 32)
    assert y.tolist() == raw["fine_labels"]
    data = load_split("cifar100", root, "train")
    assert data.num_classes == 100 and len(data) == 60
    assert data.mean == pytest.approx([129.3 / 255, 124.1 / 255, 112.4 / 255])


def test_imagenet16_120_keeps_classes_up_to_120_shifted_to_zero_based(tmp_path):
    root, written = make_tiny_imagenet16(tmp_path)
    x, y = read_imagenet16(root, train=True, num_classes=120)
    train_labels = np.concatenate([written[f"train_data_batch_{k}"] for k in (1, 2, 3)])
    keep = train_labels <= 120
    assert y.tolist() == (train_labels[keep] - 1).tolist()
    assert index_of(x).tolist() == np.flatnonzero(keep).tolist()  # images stay with their labels, in order
    assert x.shape[1:] == (3, 16, 16)
    assert y.min() >= 0 and y.max() <= 119
    test = load_split("ImageNet16-120", root, "test")
    assert len(test) == int((written["val_data"] <= 120).sum()) and test.num_classes == 120
    assert test.images.shape[2:] == (16, 16)


def test_imagenet16_rejects_zero_based_labels(tmp_path):
    root, _ = make_tiny_imagenet16(tmp_path, batches=1)
    path = root / "ImageNet16" / "val_data"
    write_batch(path, {"data": np.zeros((2, 768), np.uint8), "labels": [0, 5]})
    with pytest.raises(PickleFileError, match="val_data.*1-based"):
        read_imagenet16(root, train=False)


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_code_execution(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "pwned"
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({"data": _RunsShell(marker), "labels": [1]}, f)
    write_batch(folder / "test_batch", {"data": np.zeros((1, 3072), np.uint8), "labels": [0]})
    with pytest.raises(PickleFileError, match=r"data_batch_1.*refusing to load global (posix|os|nt)\.system"):
        load_split("cifar10", tmp_path, "train")
    assert not marker.exists()


def test_corrupt_pickle_error_names_the_file(tmp_path):
    root = make_tiny_cifar10(tmp_path, n_train_per_batch=4, n_test=4, batches=1)
    path = root / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(PickleFileError, match=re.escape(str(path)) + ".*corrupt"):
        load_split("cifar10", root, "test")
    write_batch(path, [1, 2, 3])
    with pytest.raises(PickleFileError, match="expected a pickled dict"):
        load_split("cifar10", root, "test")


def test_wrong_shape_is_reported(tmp_path):
    root = make_tiny_cifar10(tmp_path, n_train_per_batch=4, n_test=4, batches=1)
    path = root / "cifar-10-batches-py" / "test_batch"
    write_batch(path, {"data": np.zeros((2, 768), np.uint8), "labels": [0, 1]})
    with pytest.raises(PickleFileError, match="uint8 N x 3072"):
        load_split("cifar10", root, "test")


@pytest.mark.parametrize("dataset, folder, hint", [
    ("cifar10", "cifar-10-batches-py", "cifar-10-python.tar.gz"),
    ("cifar100", "cifar-100-python", "cifar-100-python.tar.gz"),
    ("ImageNet16-120", "ImageNet16", "ImageNet16"),
])
def test_missing_data_names_path_and_source(tmp_path, dataset, folder, hint):
    """Downloading off (air-gapped) or impossible (ImageNet16-120): the path and the manual steps."""
    with pytest.raises(FileNotFoundError) as info:
        load_split(dataset, tmp_path / "nowhere", "train", download=False)
    assert str(tmp_path / "nowhere" / folder) in str(info.value) and hint in str(info.value)
    assert "by hand" in str(info.value)
    assert not (tmp_path / "nowhere").exists()


def test_missing_training_batches(tmp_path):
    root = make_tiny_cifar10(tmp_path, n_train_per_batch=4, n_test=4, batches=1)
    (root / "cifar-10-batches-py" / "data_batch_1").unlink()
    with pytest.raises(FileNotFoundError, match="no data_batch_"):
        load_split("cifar10", root, "train")
    assert len(load_split("cifar10", root, "test")) == 4


def test_load_pickle_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pkl"):
        load_pickle(tmp_path / "nothing.pkl")


def test_crop_padding_follows_nb201_per_data_set(tmp_path):
    """NB201 pads 32x32 CIFAR by 4 and 16x16 ImageNet16 by 2 before the random crop."""
    make_tiny_imagenet16(tmp_path)
    make_tiny_cifar10(tmp_path)
    assert load_split("ImageNet16-120", tmp_path, "train").crop_padding == 2
    cifar = load_split("cifar10", tmp_path, "train")
    assert cifar.crop_padding == 4
    assert cifar.take([0, 1]).crop_padding == 4 and cifar.subset(3, seed=1).crop_padding == 4
