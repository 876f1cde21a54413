"""`load_split(s)`: a data set's splits, device-resident (NB201's sets) or read from image folders (ImageNet).

Two kinds of data set, two registries:
- `DATASETS` (cifar10, cifar100, ImageNet16-120, NB201's names): whole splits read once into a `DeviceDataset`
  on the requested device (uint8; augmentation on the device). Searches, proxies and final training use them.
- `FOLDER_DATASETS` (imagenet: ILSVRC-2012 in the standard `train/<wnid>/*.JPEG`, `val/<wnid>/*.JPEG` layout):
  each split an `ImageFolderDataset` (search_spaces/data/image_folder.py) holding file names, decoding and
  augmenting each batch on the host. Final training only (`darts-imagenet`); splits `train` (the `train`
  folder) and `test` (the `val` folder: ILSVRC-2012's 50,000 validation images, what DARTS reports as test).
  Never downloaded: a missing folder is a FileNotFoundError with the manual steps (`IMAGENET_STEPS`).

NB201's data sets and their splits:

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
from search_spaces.data.image_folder import (
    EVAL_RESIZE,
    IMAGE_EXTENSIONS,
    IMAGE_SIZE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MAX_UNREADABLE_FRACTION,
    ImageFolderDataset,
    class_folders_without_images,
    find_classes,
    same_classes,
)
from search_spaces.data.safe_pickle import scan_pickle
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
    files: Callable[[Path], list[Path]] | None = None  # root -> every file `read` reads (checked before Ray)


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
         "search-valid": ("train", 1)}, readers.cifar10_files),
    "cifar100": DatasetSpec(
        "cifar100", 100, 32, 4, _scaled([129.3, 124.1, 112.4]), _scaled([68.2, 65.4, 70.4]),
        readers.read_cifar100, readers.cifar100_folder, "test", ("xvalid", "xtest"), 10_000,
        {"test": readers.CIFAR100_OFFICIAL_MD5["test"]}, _TEST_HALF_SPLITS, readers.cifar100_files),
    "ImageNet16-120": DatasetSpec(
        "ImageNet16-120", 120, 16, 2, _scaled([122.68, 116.66, 104.01]), _scaled([63.22, 61.26, 65.09]),
        partial(readers.read_imagenet16, num_classes=120), readers.imagenet16_folder, "test",
        ("xvalid", "xtest"), 6_000, dict(readers.IMAGENET16_OFFICIAL_MD5), _TEST_HALF_SPLITS,
        readers.imagenet16_files),
}


@dataclass(frozen=True)
class FolderDatasetSpec:
    """A data set read from class folders a batch at a time (search_spaces.data.image_folder).

    The data root holds the split folders itself or under `subfolder`; labels come from the class folders of
    the `train` split (each other split must have the same ones).
    """

    name: str
    folders: dict[str, str]  # split -> its folder under the data set's folder
    subfolder: str  # the data set's folder under a data root holding several data sets
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    manual_steps: str  # how to place the files by hand; {root} is the data root
    image_size: int = IMAGE_SIZE
    eval_resize: int = EVAL_RESIZE
    #: unreadable images tolerated (skipped, replaced, counted) before a batch fails: ImageFolderDataset's setting
    max_unreadable_fraction: float = MAX_UNREADABLE_FRACTION


IMAGENET_STEPS = (
    "ImageNet (ILSVRC-2012) cannot be downloaded automatically. To place it by hand: register at "
    "https://image-net.org and download ILSVRC2012_img_train.tar (~138 GB) and ILSVRC2012_img_val.tar (~6.3 GB) "
    "(https://image-net.org/challenges/LSVRC/2012/); extract the training tar and each of its 1,000 per-class tars "
    "into train/<wnid>/ (train/n01440764/n01440764_10026.JPEG, ...; 1,281,167 images), and the validation tar into "
    "val/, then sort val's 50,000 JPEGs into the same <wnid> folders (val/n01440764/ILSVRC2012_val_00000293.JPEG, "
    "...; the tar ships them unsorted: pytorch/examples imagenet/extract_ILSVRC.sh or soumith/imagenetloader.torch "
    "valprep.sh do both steps); then point data_root / $BALENAS_DATA_ROOT at the folder holding train/ and val/ "
    "(or put them at {root}/imagenet). NB201's 16x16 ImageNet16-120 is another data set (dataset "
    "ImageNet16-120 with the nb201 presets).")

FOLDER_DATASETS: dict[str, FolderDatasetSpec] = {
    "imagenet": FolderDatasetSpec("imagenet", {"train": "train", "test": "val"}, "imagenet", IMAGENET_MEAN,
                                  IMAGENET_STD, IMAGENET_STEPS),
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


def prepare_dataset(dataset: str, root: Path | str | None, *, download: bool = True, progress: bool = True,
                    check_files: bool = True) -> Path:
    """The resolved data root holding `dataset`, downloading it first where it is missing and `download` allows,
    and (`check_files`, what the commands run before Ray starts) its files checked cheaply: `check_dataset_files`.

    Raises FileNotFoundError (data missing, download off or impossible) or download.DownloadError (no network,
    HTTP error, checksum mismatch), both naming the expected path and how to place the files by hand; a
    DataCheckError (a ValueError; PickleFileError for a batch) names a file or folder that is there but unusable.
    """
    from search_spaces.data import download as downloads

    if dataset in FOLDER_DATASETS:
        root = resolve_data_root(root)
        check_folders(FOLDER_DATASETS[dataset], root, images=check_files)
        return root
    spec = dataset_spec(dataset)
    root = resolve_data_root(root)
    try:
        spec.locate(root)
    except FileNotFoundError as err:
        missing = err
    else:
        if check_files:
            check_dataset_files(dataset, root)
        return root
    archive = downloads.SOURCES.get(dataset)
    if archive is None:
        raise FileNotFoundError(f"{missing} {IMAGENET16_STEPS.format(root=root)}" if dataset == "ImageNet16-120"
                                else str(missing))
    if not download:
        raise FileNotFoundError(f"{archive.name} not found under {root} (looked for {root / archive.folder}) and "
                                f"downloading is off (download: false / --no-download). "
                                f"{downloads.manual_steps(archive, root)}")
    downloads.fetch(dataset, root, progress=progress)
    if check_files:
        check_dataset_files(dataset, root)
    return root


def check_dataset_files(dataset: str, root: Path) -> list[Path]:
    """Every file an NB201 data set's reader will read, checked without unpickling (`safe_pickle.scan_pickle`: the
    header, the stream complete within the file's size, no global beyond numpy's array reconstruction); returns
    them. FileNotFoundError for a missing one, PickleFileError naming the file and what is wrong. Cheap: a pass
    over each file's opcodes with the pixel payloads skipped (~50 ms per CIFAR batch), so the commands run it
    before Ray starts and a truncated or tampered batch is reported in seconds, not inside every trial."""
    spec = dataset_spec(dataset)
    files = spec.files(root) if spec.files is not None else []
    for path in files:
        scan_pickle(path)
    log.info("%s: %d data file(s) checked in %s", dataset, len(files), spec.locate(root))
    return files


def locate_folders(spec: FolderDatasetSpec, root: Path) -> Path:
    """The folder holding `spec`'s split folders: `root` itself or `root/spec.subfolder`; FileNotFoundError
    names what is missing and gives the manual steps."""
    root = Path(root).expanduser()
    steps = spec.manual_steps.format(root=root)
    if not root.is_dir():
        raise FileNotFoundError(f"{spec.name}: the data root {root} does not exist. {steps}")
    wanted = list(dict.fromkeys(spec.folders.values()))
    base = next((c for c in (root, root / spec.subfolder) if any((c / f).is_dir() for f in wanted)), None)
    if base is None:
        raise FileNotFoundError(f"{spec.name} not found: no {' or '.join(f + '/' for f in wanted)} folder in {root} "
                                f"(nor in {root / spec.subfolder}). {steps}")
    for folder in wanted:
        if not (base / folder).is_dir():
            raise FileNotFoundError(f"{spec.name}: no {folder}/ folder at {base / folder}. {steps}")
    return base


def check_folders(spec: FolderDatasetSpec, root: Path, *, images: bool = False) -> tuple[Path, list[str]]:
    """(the folder holding the split folders, the class names), checking by listing folders (no image is opened)
    that every split folder exists and holds the training split's class folders, and with `images` that every
    class folder of every split holds an image (listing until the first one). FileNotFoundError (with the manual
    steps) for a missing folder, no class folders or class folders without images (all of them named);
    DataCheckError (a ValueError) naming the folder whose class folders differ from the training split's."""
    base = locate_folders(spec, root)
    try:
        classes = find_classes(base / spec.folders["train"])
        for name, folder in spec.folders.items():
            if name != "train":
                same_classes(base / folder, classes)
        if images:
            empty = [path for folder in dict.fromkeys(spec.folders.values())
                     for path in class_folders_without_images(base / folder, classes)]
            if len(empty) == 1:
                raise FileNotFoundError(f"class folder {empty[0]} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            if empty:
                shown = ", ".join(map(str, empty[:10])) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
                raise FileNotFoundError(f"{len(empty)} class folders hold no images ({', '.join(IMAGE_EXTENSIONS)}): "
                                        f"{shown}")
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{spec.name}: {err}. {spec.manual_steps.format(root=root)}") from None
    return base, classes


def _load_folder_splits(spec: FolderDatasetSpec, root: Path | str | None, splits: list[str], *,
                        subset: int | None, subset_seed: int | None, device: torch.device | str,
                        split_file: Path | str | None) -> dict[str, ImageFolderDataset]:
    for name in splits:
        if name not in spec.folders:
            raise ValueError(f"unknown split {name!r} for {spec.name}; expected one of {', '.join(spec.folders)}")
    if split_file is not None:
        raise ValueError(f"split_file applies to NB201's data sets, not {spec.name} (got {split_file})")
    root = resolve_data_root(root)
    base, classes = check_folders(spec, root)
    try:
        out = {}
        for name in splits:
            data = ImageFolderDataset.from_folder(
                base / spec.folders[name], classes=classes, device=device, name=f"{spec.name}/{name}",
                mean=spec.mean, std=spec.std, image_size=spec.image_size, eval_resize=spec.eval_resize,
                max_unreadable_fraction=spec.max_unreadable_fraction)
            out[name] = data.subset(subset, subset_seed)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{spec.name}: {err}. {spec.manual_steps.format(root=root)}") from None
    log.info("%s: %s from %s (%d classes)", spec.name,
             ", ".join(f"{k} {len(v)} images" for k, v in out.items()), base, len(classes))
    return out


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
                split_file: Path | str | None = None,
                download: bool = True) -> dict[str, DeviceDataset] | dict[str, ImageFolderDataset]:
    """Several splits of one data set, reading each raw file once (see the module docstring for names).

    `subset` keeps the first `subset` examples of every split (subset_seed None) or a random `subset` drawn
    with `subset_seed`; `root` is the folder holding e.g. `cifar-10-batches-py`, or that folder itself (None:
    $BALENAS_DATA_ROOT, else the per-user cache); CIFAR-10/100 missing there are downloaded unless `download`
    is False (see `prepare_dataset`). A `FOLDER_DATASETS` name gives `ImageFolderDataset`s (never downloaded).
    """
    splits = list(splits)
    if dataset in FOLDER_DATASETS:
        return _load_folder_splits(FOLDER_DATASETS[dataset], root, splits, subset=subset, subset_seed=subset_seed,
                                   device=device, split_file=split_file)
    spec = dataset_spec(dataset)
    for name in splits:
        if name not in spec.splits:
            raise ValueError(f"unknown split {name!r} for {dataset}; expected one of {', '.join(spec.splits)}")
    root = prepare_dataset(dataset, root, download=download, check_files=False)  # the reads check every file
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
