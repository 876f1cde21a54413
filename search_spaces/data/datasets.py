"""`load_split`: an NB201 data set split as a DeviceDataset on the requested device.

Data sets (NB201's names) and their splits:

| split          | cifar10                               | cifar100, ImageNet16-120                      |
|----------------|---------------------------------------|-----------------------------------------------|
| `train`        | all training images                   | all training images                           |
| `test`         | the official test set                 | the official test set (ImageNet16: val_data)  |
| `search-train` | NB201 "train" half of the training set| = `train` (NB201 searches on the whole set)   |
| `search-valid` | NB201 "valid" half of the training set| = `x-valid`                                   |
| `x-valid`      | -                                     | NB201 "xvalid" half of the test set           |
| `x-test`       | -                                     | NB201 "xtest" half of the test set            |

`search-*` follow xautodl's `get_nas_search_loaders` (D-X-Y/AutoDL-Projects), which is how the benchmark's
own search baselines (and BaLeNAS on NB201) draw their weight/architecture batches; `x-valid`/`x-test` are the
sets behind the benchmark's 'x-valid'/'x-test' accuracies. The halves come from NB201's split file
(`split_file`: cifar-split.txt, cifar100-test-split.txt or imagenet-16-120-test-split.txt) when it is given
and the data are the official files (checked by md5, because the indices address the official image order);
otherwise from `seeded_halves` (torch.randperm with seed 0, first half / second half), with a log line.
Mean/std are xautodl's published values (get_dataset_with_transform.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from search_spaces.data import readers
from search_spaces.data.device import DeviceDataset
from search_spaces.data.splits import official_files, read_split_file, seeded_halves

log = logging.getLogger(__name__)

DATA_ROOT_ENV = "BALENAS_DATA_ROOT"


@dataclass(frozen=True)
class DatasetSpec:
    """What differs between data sets: files, classes, normalisation, and how the halves are cut."""

    name: str
    num_classes: int
    image_size: int
    crop_padding: int  # NB201 pads by 4 for 32x32 CIFAR, by 2 for 16x16 ImageNet16
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    read: Callable[[Path, bool], tuple[np.ndarray, np.ndarray]]  # (root, train) -> images, labels
    locate: Callable[[Path], Path]  # root -> the folder holding the files
    halved: str  # which official set NB201 halves: "train" or "test"
    split_keys: tuple[str, str]  # keys of the two halves in NB201's split file
    official_count: int  # images in the halved set when the files are the official ones
    official_md5: dict[str, str]  # files (in the located folder) whose md5 proves the official order
    splits: dict[str, tuple[str, int | None]] = field(default_factory=dict)  # name -> (set, half or None)


def _scaled(values) -> tuple[float, float, float]:
    return tuple(v / 255.0 for v in values)


_TEST_HALF_SPLITS = {"train": ("train", None), "test": ("test", None), "x-valid": ("test", 0),
                     "x-test": ("test", 1), "search-train": ("train", None), "search-valid": ("test", 0)}

DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        "cifar10", 10, 32, 4, _scaled([125.3, 123.0, 113.9]), _scaled([63.0, 62.1, 66.7]),
        readers.read_cifar10, readers.cifar10_folder, "train", ("train", "valid"), 50_000,
        {k: v for k, v in readers.CIFAR10_OFFICIAL_MD5.items() if k.startswith("data_batch")},
        {"train": ("train", None), "test": ("test", None), "search-train": ("train", 0),
         "search-valid": ("train", 1)}),
    "cifar100": DatasetSpec(
        "cifar100", 100, 32, 4, _scaled([129.3, 124.1, 112.4]), _scaled([68.2, 65.4, 70.4]),
        readers.read_cifar100, readers.cifar100_folder, "test", ("xvalid", "xtest"), 10_000,
        {"test": readers.CIFAR100_OFFICIAL_MD5["test"]}, _TEST_HALF_SPLITS),
    "ImageNet16-120": DatasetSpec(
        "ImageNet16-120", 120, 16, 2, _scaled([122.68, 116.66, 104.01]), _scaled([63.22, 61.26, 65.09]),
        partial(readers.read_imagenet16, num_classes=120), readers.imagenet16_folder, "test",
        ("xvalid", "xtest"), 6_000, dict(readers.IMAGENET16_OFFICIAL_MD5), _TEST_HALF_SPLITS),
}


def dataset_spec(dataset: str) -> DatasetSpec:
    """The spec of an NB201 data set name; a ValueError lists the valid names."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[dataset]


def default_cache() -> Path:
    """The per-user data cache: $XDG_CACHE_HOME/balenas/data, else ~/.cache/balenas/data."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "balenas" / "data"


def resolve_data_root(root: Path | str | None) -> Path:
    """The data root to use: `root` when given, else $BALENAS_DATA_ROOT, else the per-user cache (logged)."""
    if root is not None and str(root) != "":
        path, source = Path(root).expanduser(), "given"
    elif os.environ.get(DATA_ROOT_ENV):
        path, source = Path(os.environ[DATA_ROOT_ENV]).expanduser(), f"${DATA_ROOT_ENV}"
    else:
        path, source = default_cache(), "per-user cache; set $BALENAS_DATA_ROOT to use an existing copy"
    log.info("data root: %s (%s)", path, source)
    return path


IMAGENET16_STEPS = ("ImageNet16-120 has no official direct download. To place it by hand: get NAS-Bench-201's "
                    "'ImageNet16' folder (train_data_batch_1..10 and val_data) from " + readers.IMAGENET16_SOURCE +
                    ", and put it at {root}/ImageNet16; or point data_root / $BALENAS_DATA_ROOT at the folder "
                    "that holds 'ImageNet16'.")


def prepare_dataset(dataset: str, root: Path | str | None, *, download: bool = True, progress: bool = True) -> Path:
    """The resolved data root holding `dataset`, downloading it first where it is missing and `download` allows.

    Raises FileNotFoundError (data missing, download off or impossible) or download.DownloadError (no network,
    HTTP error, checksum mismatch); both name the expected path and how to place the files by hand.
    """
    from search_spaces.data import download as downloads

    spec = dataset_spec(dataset)
    root = resolve_data_root(root)
    try:
        spec.locate(root)
        return root
    except FileNotFoundError as err:
        missing = err
    archive = downloads.SOURCES.get(dataset)
    if archive is None:
        raise FileNotFoundError(f"{missing} {IMAGENET16_STEPS.format(root=root)}" if dataset == "ImageNet16-120"
                                else str(missing))
    if not download:
        raise FileNotFoundError(f"{archive.name} not found under {root} (looked for {root / archive.folder}) and "
                                f"downloading is off (download: false / --no-download). "
                                f"{downloads.manual_steps(archive, root)}")
    downloads.fetch(dataset, root, progress=progress)
    return root


def _halves(spec: DatasetSpec, folder: Path, n: int, split_file: Path | str | None) -> tuple[np.ndarray, ...]:
    """NB201's two halves of the `spec.halved` set (n images): from the split file when it applies."""
    reason = "no split file given"
    if split_file is not None:
        if n != spec.official_count:
            reason = (f"split file {split_file} not applied: the {spec.halved} set has {n} images, "
                      f"the official one {spec.official_count}")
        else:
            ok, why = official_files(folder, spec.official_md5)
            if ok:
                return read_split_file(split_file, spec.split_keys, n)
            reason = f"split file {split_file} not applied: {why}"
    log.log(logging.INFO if split_file is None else logging.WARNING,
            "%s: %s; using seeded halves of the %d-image %s set (torch.randperm, seed 0, first/second half)",
            spec.name, reason, n, spec.halved)
    return seeded_halves(n)


def load_splits(dataset: str, root: Path | str | None, splits: Iterable[str], *, subset: int | None = None,
                subset_seed: int | None = None, device: torch.device | str = "cpu",
                split_file: Path | str | None = None, download: bool = True) -> dict[str, DeviceDataset]:
    """Several splits of one data set, reading each raw file once (see the module docstring for names).

    `subset` keeps the first `subset` examples of every split (subset_seed None) or a random `subset` drawn
    with `subset_seed`; `root` is the folder holding e.g. `cifar-10-batches-py`, or that folder itself (None:
    $BALENAS_DATA_ROOT, else the per-user cache); CIFAR-10/100 missing there are downloaded unless `download`
    is False (see `prepare_dataset`).
    """
    spec = dataset_spec(dataset)
    splits = list(splits)
    for name in splits:
        if name not in spec.splits:
            raise ValueError(f"unknown split {name!r} for {dataset}; expected one of {', '.join(spec.splits)}")
    root = prepare_dataset(dataset, root, download=download)
    if split_file is not None and not Path(split_file).expanduser().is_file():
        raise FileNotFoundError(f"split file not found: {split_file} (NB201's split files: "
                                f"{readers.NB201_SPLITS_SOURCE})")
    raw: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    halves = None
    out = {}
    for name in splits:
        source, half = spec.splits[name]
        if source not in raw:
            x, y = spec.read(root, source == "train")
            raw[source] = (torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y))
        x, y = raw[source]
        if half is not None:
            if halves is None:
                halves = _halves(spec, spec.locate(root), len(y), split_file)
            index = torch.from_numpy(halves[half])
            x, y = x[index], y[index]
        data = DeviceDataset(x.to(device), y.to(device), spec.mean, spec.std, spec.num_classes,
                             f"{dataset}/{name}", spec.crop_padding)
        out[name] = data.subset(subset, subset_seed)
    return out


def load_split(dataset: str, root: Path | str | None, split: str, *, subset: int | None = None,
               subset_seed: int | None = None, device: torch.device | str = "cpu",
               split_file: Path | str | None = None, download: bool = True) -> DeviceDataset:
    """One split of an NB201 data set ('cifar10', 'cifar100', 'ImageNet16-120') on `device`.

    Splits: 'train', 'test', 'search-train', 'search-valid' and, for cifar100 / ImageNet16-120, 'x-valid' and
    'x-test' (the table in this module's docstring says what each holds). Raises ValueError for an unknown
    data set or split (listing the valid ones) and FileNotFoundError naming the missing path and where to get
    the data.
    """
    return load_splits(dataset, root, [split], subset=subset, subset_seed=subset_seed, device=device,
                       split_file=split_file, download=download)[split]
