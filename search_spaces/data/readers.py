"""Readers for the raw data set files: CIFAR-10, CIFAR-100 and NB201's ImageNet16-120 pickle batches.

Each reader returns uint8 images [N, 3, H, W] and int64 labels (0-based) as numpy arrays, in file order, so
index-based split files (NB201's cifar-split.txt etc.) address the same images as in the reference code.
Formats:
- CIFAR-10 (`cifar-10-batches-py`): data_batch_1..5 and test_batch, dicts with `data` (N x 3072 uint8,
  channel-major 3x32x32) and `labels`; https://www.cs.toronto.edu/~kriz/cifar.html
- CIFAR-100 (`cifar-100-python`): `train` and `test` with `data` and `fine_labels` (100 classes).
- ImageNet16 (Chrabaszcz et al. 2017, as used by NAS-Bench-201): train_data_batch_1..10 and val_data with
  `data` (N x 768 uint8, 3x16x16) and 1-based `labels` 1..1000; ImageNet16-120 keeps labels <= 120 and shifts
  them to 0-based (xautodl/datasets/DownsampledImageNet.py, D-X-Y/AutoDL-Projects).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from search_spaces.data.safe_pickle import PickleFileError, load_batch_dict

log = logging.getLogger(__name__)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
IMAGENET16_SOURCE = ("NAS-Bench-201's ImageNet16 pickle batches (downsampled 16x16 ImageNet, Chrabaszcz et al. 2017; "
                     "NB201's data folder https://drive.google.com/drive/folders/1T3UIyZXUhMmIuJLOBMIYKAsJknAtrrO4 "
                     "or https://image-net.org/download-images)")
# NB201's split files (cifar-split.txt, cifar100-test-split.txt, imagenet-16-120-test-split.txt) live in the same
# Google Drive folder and in D-X-Y/AutoDL-Projects configs/nas-benchmark/.
NB201_SPLITS_SOURCE = "https://drive.google.com/drive/folders/1T3UIyZXUhMmIuJLOBMIYKAsJknAtrrO4"

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR100_FOLDER = "cifar-100-python"
IMAGENET16_FOLDER = "ImageNet16"

# md5 of the official CIFAR batches (as published with the tarballs; torchvision checks the same values).
# A 50,000-image training set with these files is in the official order that NB201's split files index.
CIFAR10_OFFICIAL_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
CIFAR100_OFFICIAL_MD5 = {"train": "16019d7e3df5f24257cddd939b257f8d", "test": "f0ef6b0ae62326f3e7ffdfab6717acfc"}
# xautodl's DownsampledImageNet.py
IMAGENET16_OFFICIAL_MD5 = {"val_data": "3410e3017fdaefba8d5073aaa65e4bd6"}


def find_folder(root: Path | str, folder: str, marker: str, how_to_get: str) -> Path:
    """`root/folder` or `root` itself when it already holds `marker`; FileNotFoundError says how to get it."""
    root = Path(root).expanduser()
    for candidate in (root / folder, root):
        if (candidate / marker).is_file():
            return candidate
    raise FileNotFoundError(
        f"no '{folder}' data found: looked for {root / folder / marker} and {root / marker}. "
        f"Obtain it from {how_to_get} and pass the folder that contains '{folder}' as the data root.")


def numbered_files(folder: Path, prefix: str) -> list[Path]:
    """Files named `<prefix><k>` in `folder`, ordered by k (so batch 10 follows batch 9)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.match(p.name)) and p.is_file()]
    return [p for _, p in sorted(found)]


def _images_labels(path: Path, label_key: str, side: int) -> tuple[np.ndarray, np.ndarray]:
    record = load_batch_dict(path, ("data", label_key))
    data = np.asarray(record["data"])
    labels = np.asarray(record[label_key], dtype=np.int64).reshape(-1)
    width = 3 * side * side
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != width:
        raise PickleFileError(f"{path}: 'data' must be uint8 N x {width}, got {data.dtype} {data.shape}")
    if len(labels) != len(data):
        raise PickleFileError(f"{path}: {len(data)} images but {len(labels)} labels under {label_key!r}")
    return data.reshape(-1, 3, side, side), labels


def _concat(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _check_labels(labels: np.ndarray, num_classes: int, where: Path) -> np.ndarray:
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise PickleFileError(f"{where}: labels must lie in 0..{num_classes - 1}, "
                              f"found {labels.min()}..{labels.max()}")
    return labels


def cifar10_folder(root: Path | str) -> Path:
    return find_folder(root, CIFAR10_FOLDER, "test_batch", f"the official tarball {CIFAR10_URL}")


def _cifar10_train_files(folder: Path) -> list[Path]:
    files = numbered_files(folder, "data_batch_")
    if not files:
        raise FileNotFoundError(f"no data_batch_* files in {folder}; get the official tarball {CIFAR10_URL}")
    return files


def read_cifar10(root: Path | str, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 training images (every data_batch_* present, in order) or the test_batch."""
    folder = cifar10_folder(root)
    if not train:
        x, y = _images_labels(folder / "test_batch", "labels", 32)
        return x, _check_labels(y, 10, folder / "test_batch")
    files = _cifar10_train_files(folder)
    level = logging.INFO if len(files) == 5 else logging.WARNING
    log.log(level, "CIFAR-10: found %d of 5 training batches in %s (%s)", len(files), folder,
            ", ".join(p.name for p in files))
    x, y = _concat([_images_labels(p, "labels", 32) for p in files])
    return x, _check_labels(y, 10, folder)


def cifar100_folder(root: Path | str) -> Path:
    return find_folder(root, CIFAR100_FOLDER, "test", f"the official tarball {CIFAR100_URL}")


def imagenet16_folder(root: Path | str) -> Path:
    return find_folder(root, IMAGENET16_FOLDER, "val_data", IMAGENET16_SOURCE)


def _cifar100_file(folder: Path, train: bool) -> Path:
    path = folder / ("train" if train else "test")
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-100 file missing: {path}; get the official tarball {CIFAR100_URL}")
    return path


def read_cifar100(root: Path | str, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-100 `train` or `test` with the 100 fine labels."""
    path = _cifar100_file(cifar100_folder(root), train)
    x, y = _images_labels(path, "fine_labels", 32)
    return x, _check_labels(y, 100, path)


def _imagenet16_train_files(folder: Path) -> list[Path]:
    files = numbered_files(folder, "train_data_batch_")
    if not files:
        raise FileNotFoundError(f"no train_data_batch_* files in {folder}; get {IMAGENET16_SOURCE}")
    return files


def read_imagenet16(root: Path | str, train: bool, num_classes: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """ImageNet16 restricted to classes 1..num_classes (labels shifted to 0..num_classes-1).

    Training images come from every train_data_batch_* present (the official set has 10), filtered batch
    by batch so that the 1.28M-image full set never sits in memory at once.
    """
    if not 1 <= num_classes <= 1000:
        raise ValueError(f"ImageNet16 num_classes must be in 1..1000, got {num_classes}")
    folder = imagenet16_folder(root)
    files = _imagenet16_train_files(folder) if train else [folder / "val_data"]
    if train:
        level = logging.INFO if len(files) == 10 else logging.WARNING
        log.log(level, "ImageNet16: found %d of 10 training batches in %s", len(files), folder)
    parts = []
    for path in files:
        x, y = _images_labels(path, "labels", 16)
        if len(y) and (y.min() < 1 or y.max() > 1000):
            raise PickleFileError(f"{path}: ImageNet16 labels must be 1-based in 1..1000, "
                                  f"found {y.min()}..{y.max()}")
        keep = y <= num_classes
        parts.append((x[keep], y[keep] - 1))
    return _concat(parts)


# ----- the files each data set reads (checked before Ray by `datasets.prepare_dataset`) -------------------------
def cifar10_files(root: Path | str) -> list[Path]:
    """Every file `read_cifar10` reads: the data_batch_* present, in order, then test_batch."""
    folder = cifar10_folder(root)
    return [*_cifar10_train_files(folder), folder / "test_batch"]


def cifar100_files(root: Path | str) -> list[Path]:
    """The two files `read_cifar100` reads: train and test."""
    folder = cifar100_folder(root)
    return [_cifar100_file(folder, True), _cifar100_file(folder, False)]


def imagenet16_files(root: Path | str) -> list[Path]:
    """Every file `read_imagenet16` reads: the train_data_batch_* present, in order, then val_data."""
    folder = imagenet16_folder(root)
    return [*_imagenet16_train_files(folder), folder / "val_data"]
