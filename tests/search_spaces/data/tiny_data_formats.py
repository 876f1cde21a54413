"""Writers of tiny data sets in the official pickle layouts (CIFAR-100, NB201's ImageNet16), for tests."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def write_batch(path: Path, record: dict, protocol: int = 2) -> None:
    with open(path, "wb") as f:
        pickle.dump(record, f, protocol=protocol)


def image_with_index(n: int, side: int, start: int = 0) -> np.ndarray:
    """uint8 [n, 3, side, side] whose first pixels spell the image's global index (to track order)."""
    x = np.zeros((n, 3, side, side), dtype=np.uint8)
    idx = np.arange(start, start + n)
    x[:, 0, 0, 0] = idx % 256
    x[:, 0, 0, 1] = idx // 256
    return x


def index_of(images) -> np.ndarray:
    """Inverse of `image_with_index` for uint8 images (numpy or torch)."""
    x = np.asarray(images).astype(np.int64)
    return x[:, 0, 0, 0] + 256 * x[:, 0, 0, 1]


def make_tiny_cifar100(root: Path, n_train: int = 60, n_test: int = 40, seed: int = 0) -> Path:
    """`root/cifar-100-python/{train,test,meta}` with `fine_labels` and `coarse_labels`."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, start in (("train", n_train, 0), ("test", n_test, 10_000)):
        fine = rng.integers(0, 100, size=n)
        write_batch(folder / name, {"filenames": [f"{name}_{i}.png" for i in range(n)], "batch_label": name,
                                    "fine_labels": fine.tolist(), "coarse_labels": (fine // 5).tolist(),
                                    "data": image_with_index(n, 32, start).reshape(n, -1)})
    write_batch(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)],
                                  "coarse_label_names": [f"c{i}" for i in range(20)]})
    return root


def make_tiny_imagenet16(root: Path, per_batch: int = 50, batches: int = 3, n_val: int = 80,
                         seed: int = 0) -> tuple[Path, dict[str, np.ndarray]]:
    """`root/ImageNet16/train_data_batch_<k>` and `val_data`, 1-based labels over 1..240 (half kept by -120).

    Returns the root and the labels written per file, so tests can check the class filter.
    """
    rng = np.random.default_rng(seed)
    folder = root / "ImageNet16"
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    start = 0
    names = [f"train_data_batch_{k}" for k in range(1, batches + 1)] + ["val_data"]
    for name in names:
        n = n_val if name == "val_data" else per_batch
        labels = rng.integers(1, 241, size=n)
        write_batch(folder / name, {"data": image_with_index(n, 16, start).reshape(n, -1),
                                    "labels": labels.tolist(), "mean": np.zeros(768)}, protocol=4)
        written[name] = labels
        start += n
    return root, written
