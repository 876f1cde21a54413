"""Image folders (the standard ImageNet / ILSVRC-2012 layout), decoded a batch at a time on the host.

Layout, as torchvision's ImageFolder reads it: `<split>/<class>/**/<image>` with .jpeg, .jpg or .png names
(any case); the class folders sorted by name give the labels 0, 1, ... (hidden folders, whose names start with
a dot, are not classes); files are walked recursively in sorted order.

`ImageFolderDataset` duck-types `DeviceDataset` (`len`, `num_classes`, `name`, `device`, `to`, `take`, `subset`,
`permutation`, `batch`), so the final-training loop runs on it unchanged. The images cannot live on the device
(ILSVRC-2012's 1.28M JPEGs are ~140 GB), so `batch` opens and decodes the files of `index` on the host with PIL
in a thread pool (PIL releases the GIL while decoding, resizing and blending), writes them into one uint8
[n, S, S, 3] array (page-locked for CUDA, so the copy does not wait), moves that to the device and normalises
there. The cost DeviceDataset avoids: JPEG decoding
and per-image transforms on the host CPUs for every batch (benchmarks/train.md measures it), and a decode that
does not overlap the device's work on the previous step (there is no prefetching).

Transforms (quark0/darts cnn/train_imagenet.py, Liu et al., ICLR 2019; torchvision's defaults where that script
leaves them unset):
- train (`augment=True`): RandomResizedCrop(224) (scale (0.08, 1), ratio (3/4, 4/3), 10 tries, then a centre
  crop of the image clamped to that ratio range; bilinear) -> RandomHorizontalFlip(0.5) ->
  ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2) (the four in a random order);
- eval: Resize(256) (the shorter side to 256, the longer scaled and truncated; bilinear) -> CenterCrop(224);
- both: ToTensor + Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)).
Written here with PIL and numpy after torchvision's documented behaviour and its PIL code path (ImageEnhance
for brightness, contrast and saturation, a wrapping uint8 shift of the HSV hue), because torchvision cannot be
imported on our machines and its transforms are per-image host code anyway.

Randomness: all of a batch's random parameters come from `generator` (on the data's device) in one
`torch.randint` call, packed with `index` and moved to the host in one transfer: the one host sync per batch
this reader needs (the files are on the host, so it is inherent; a DeviceDataset needs none). Each image gets
`DRAWS` = 49 uniform numbers: 4 per try of RandomResizedCrop (scale, log aspect ratio, top, left), 1 for the
flip, 4 for ColorJitter's order and 4 for its factors, whatever the image. A fixed seed therefore gives the same
batches on every run (bit-identical on the CPU).

Unreadable images (a truncated or corrupt JPEG among ILSVRC-2012's 1.28M): as large-scale input pipelines do, a
batch skips them instead of ending the training. The slot of an image that cannot be read takes the next file
of the data set's list (row + 1, + 2, ..., wrapping; at most `REPLACEMENT_TRIES` more) with the slot's random
draws, and its label: the batch keeps its size and a seed still fixes it. Each failed read is counted
(`unreadable_images`, `images_read`) and its path logged once (`unreadable_paths`); the batch raises
`TooManyUnreadableImages` (naming the count, the fraction and the first files) once the failed reads exceed
`max_unreadable_fraction` (default 0.1%) of max(images read, the data set's size), i.e. the whole first epoch is
judged at once and a few early failures do not end a run that stays below the fraction, or when no replacement
can be read.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance

from search_spaces.data.device import cutout_mask, subset_rows
from search_spaces.data.errors import DataCheckError

log = logging.getLogger(__name__)

#: file name endings read as images (compared in lower case), as torchvision's IMG_EXTENSIONS subset for RGB data
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")
#: quark0/darts cnn/train_imagenet.py `transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])`
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: train_imagenet.py `RandomResizedCrop(224)` and `Resize(256)` + `CenterCrop(224)`
IMAGE_SIZE = 224
EVAL_RESIZE = 256
#: torchvision RandomResizedCrop's defaults (train_imagenet.py passes none): scale, ratio and 10 tries before the
#: centre-crop fallback (torchvision.transforms.RandomResizedCrop docs and `get_params`)
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)
CROP_TRIES = 10
#: train_imagenet.py `ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2)`, in that order
JITTER = (0.4, 0.4, 0.4, 0.2)
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")
#: uniform numbers drawn per image (see the module docstring)
DRAWS = 4 * CROP_TRIES + 1 + 4 + 4
#: resolution of the uniforms: integers in [0, 2**24) divided by 2**24 (float32's mantissa, as torch.rand's)
_UNIT = 1 << 24
_BILINEAR = Image.Resampling.BILINEAR
#: default `max_unreadable_fraction`: unreadable images (skipped and counted) tolerated per image read
MAX_UNREADABLE_FRACTION = 0.001
#: further files (the next rows of the data set) tried in order to replace an unreadable image in its batch
REPLACEMENT_TRIES = 16


class ImageReadError(OSError):
    """An image file that cannot be opened or decoded; the message names the file."""


class TooManyUnreadableImages(ImageReadError):
    """More of a data set's images are unreadable than its `max_unreadable_fraction` tolerates (or a batch slot
    found no readable replacement); the message names the count, the fraction and the first files."""


# ----- the layout ------------------------------------------------------------------------------------------------
def find_classes(folder: Path | str) -> list[str]:
    """The class folder names under `folder`, sorted; FileNotFoundError names the folder when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        loose = sum(1 for e in os.scandir(folder) if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))
        held = f"holds {loose} image file(s) but no class folders" if loose else "holds no class folders"
        raise FileNotFoundError(f"{folder} {held}: expected one folder per class, {folder}/<class>/<image>.JPEG")
    return classes


def same_classes(folder: Path | str, classes: Sequence[str]) -> list[str]:
    """`find_classes(folder)`, which must equal `classes` (e.g. the training split's); a ValueError lists the
    differences."""
    found = find_classes(folder)
    if list(classes) != found:
        missing, extra = sorted(set(classes) - set(found)), sorted(set(found) - set(classes))

        def few(names: list[str]) -> str:
            return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "") or "none"

        raise DataCheckError(f"the class folders of {folder} differ from the training split's: missing "
                             f"{few(missing)}; unexpected {few(extra)} ({len(found)} here, {len(classes)} expected; "
                             f"every split must hold the same class folders)")
    return found


def _holds_image(folder: str) -> bool:
    """Whether `folder` or a folder below it holds an image file; stops listing at the first one."""
    subfolders = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.lower().endswith(IMAGE_EXTENSIONS) and entry.is_file():
                    return True
                if entry.is_dir():
                    subfolders.append(entry.path)
    except OSError:
        return False
    return any(_holds_image(sub) for sub in sorted(subfolders))


def class_folders_without_images(folder: Path | str, classes: Sequence[str]) -> list[Path]:
    """The class folders `folder/<class>` that hold no image (`list_images` would refuse them), found by listing
    each only until its first image: cheap enough to run before Ray starts, even on ILSVRC-2012's 2,000 folders."""
    folder = Path(folder)
    return [folder / name for name in classes if not _holds_image(str(folder / name))]


def list_images(folder: Path | str, classes: Sequence[str]) -> tuple[list[str], list[int]]:
    """(paths relative to `folder`, labels) of every image under `folder/<class>`, label = index in `classes`.

    Each class folder is walked recursively (links followed), folders and files in sorted order; a class folder
    without images is a FileNotFoundError naming it.
    """
    folder = Path(folder)
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        top = folder / name
        before = len(files)
        for here, dirs, names in os.walk(top, followlinks=True):
            dirs.sort()
            rel = os.path.relpath(here, folder)
            files.extend(os.path.join(rel, f) for f in sorted(names) if f.lower().endswith(IMAGE_EXTENSIONS))
        if len(files) == before:
            raise FileNotFoundError(f"class folder {top} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        labels.extend([label] * (len(files) - before))
    return files, labels


# ----- transforms (one PIL image at a time, in the pool's threads) -----------------------------------------------
def open_rgb(path: Path | str) -> Image.Image:
    """The decoded image as RGB (torchvision's default loader: `Image.open(f).convert('RGB')`)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}") from err


def resized_crop_box(width: int, height: int, u: Sequence[float], scale: tuple[float, float] = CROP_SCALE,
                     ratio: tuple[float, float] = CROP_RATIO) -> tuple[int, int, int, int]:
    """(left, top, w, h) of RandomResizedCrop on a `width` x `height` image, from 4 uniforms in [0, 1) per try.

    torchvision's `RandomResizedCrop.get_params`: per try, an area fraction uniform in `scale` and an aspect ratio
    log-uniform in `ratio`, w = round(sqrt(area * ratio)), h = round(sqrt(area / ratio)); the first try that fits
    is placed uniformly at random. When none fits: the centre crop of the whole image with its aspect ratio
    clamped to `ratio`.
    """
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for t in range(len(u) // 4):
        u_scale, u_ratio, u_top, u_left = u[4 * t:4 * t + 4]
        target = area * (scale[0] + (scale[1] - scale[0]) * u_scale)
        aspect = math.exp(log_lo + (log_hi - log_lo) * u_ratio)
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(u_left * (width - w + 1)), int(u_top * (height - h + 1)), w, h
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (width - w) // 2, (height - h) // 2, w, h


def jitter_ops(u: Sequence[float], jitter: Sequence[float] = JITTER) -> list[tuple[str, float]]:
    """ColorJitter's draw from 8 uniforms: the order of the four ops (argsort of u[:4], a uniform permutation) and
    their factors (brightness, contrast, saturation uniform in [max(0, 1 - j), 1 + j], hue in [-j, j]); an op
    whose `jitter` is 0 is left out, as torchvision leaves out a range of 0."""
    order = np.argsort(np.asarray(u[:4]), kind="stable")
    factors = []
    for k, j in enumerate(jitter):
        lo, hi = (-j, j) if k == 3 else (max(0.0, 1.0 - j), 1.0 + j)
        factors.append(lo + (hi - lo) * float(u[4 + k]))
    return [(JITTER_OPS[k], factors[k]) for k in order if jitter[k] > 0]


def shift_hue(image: Image.Image, factor: float) -> Image.Image:
    """torchvision's PIL `adjust_hue`: the HSV hue channel (uint8) shifted by factor * 255, wrapping around.

    The shift is int(factor * 255) mod 256, which is what torchvision's float-to-uint8 cast gives on x86.
    """
    h, s, v = image.convert("HSV").split()
    shifted = np.asarray(h, dtype=np.uint8) + np.uint8(int(factor * 255) % 256)  # wraps modulo 256
    return Image.merge("HSV", (Image.fromarray(shifted, "L"), s, v)).convert("RGB")


def color_jitter(image: Image.Image, ops: Sequence[tuple[str, float]]) -> Image.Image:
    """Apply `jitter_ops`' list in order, as torchvision's PIL path does (ImageEnhance.Brightness, .Contrast,
    .Color for saturation; `shift_hue`)."""
    for name, factor in ops:
        if name == "brightness":
            image = ImageEnhance.Brightness(image).enhance(factor)
        elif name == "contrast":
            image = ImageEnhance.Contrast(image).enhance(factor)
        elif name == "saturation":
            image = ImageEnhance.Color(image).enhance(factor)
        else:
            image = shift_hue(image, factor)
    return image


def train_image(image: Image.Image, u: Sequence[float], size: int = IMAGE_SIZE,
                jitter: Sequence[float] = JITTER) -> Image.Image:
    """RandomResizedCrop(size) -> RandomHorizontalFlip -> ColorJitter(*jitter) from `DRAWS` uniforms."""
    crops = 4 * CROP_TRIES
    left, top, w, h = resized_crop_box(image.width, image.height, u[:crops])
    image = image.crop((left, top, left + w, top + h)).resize((size, size), _BILINEAR)
    if u[crops] < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return color_jitter(image, jitter_ops(u[crops + 1:crops + 9], jitter))


def eval_image(image: Image.Image, size: int = IMAGE_SIZE, resize: int = EVAL_RESIZE) -> Image.Image:
    """Resize(resize) (shorter side to `resize`, longer side int(resize * long / short)) -> CenterCrop(size)
    (top-left corner at round((side - size) / 2)), as torchvision's Resize and CenterCrop."""
    w, h = image.size
    if w <= h:
        new_w, new_h = resize, int(resize * h / w)
    else:
        new_w, new_h = int(resize * w / h), resize
    if (new_w, new_h) != (w, h):
        image = image.resize((new_w, new_h), _BILINEAR)
    top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


# ----- the data set ----------------------------------------------------------------------------------------------
_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """One decoding pool per worker count and process, shared by every ImageFolderDataset."""
    with _POOLS_LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="image-folder")
        return _POOLS[workers]


class ImageFolderDataset:
    """A split of an image-folder data set: file names on the host, labels on the device, images decoded per batch.

    `workers` decoding threads (None: torch.get_num_threads() when the batch is drawn, which a Ray trial sets to
    its CPU share); `image_size` the side of the crops (224); `eval_resize` the shorter side before the eval
    centre crop (None: round(image_size * 256 / 224), 256 at 224); `jitter` ColorJitter's four ranges;
    `max_unreadable_fraction` the unreadable images a batch skips before it fails (module docstring; 0: the
    first one fails). `unreadable_images`, `images_read` and `unreadable_paths` count this object's reads (a
    `take`, `subset` or `to` starts its own count).
    """

    def __init__(self, root: Path | str, files: Sequence[str] | np.ndarray, labels: torch.Tensor | Sequence[int],
                 classes: Sequence[str], *, name: str = "", mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, image_size: int = IMAGE_SIZE, eval_resize: int | None = None,
                 jitter: Sequence[float] = JITTER, workers: int | None = None,
                 max_unreadable_fraction: float = MAX_UNREADABLE_FRACTION):
        self.root = Path(root)
        self.files = np.asarray([os.fsencode(f) for f in files] if not isinstance(files, np.ndarray) else files)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        if self.labels.shape != (len(self.files),):
            raise ValueError(f"{len(self.files)} files but {tuple(self.labels.shape)} labels in {name!r}")
        self.classes = tuple(classes)
        self.num_classes = len(self.classes)
        self.name = name
        self.mean, self.std = tuple(mean), tuple(std)
        self.image_size = int(image_size)
        self.eval_resize = int(round(self.image_size * EVAL_RESIZE / IMAGE_SIZE)) if eval_resize is None \
            else int(eval_resize)
        if self.image_size < 1 or self.eval_resize < self.image_size:
            raise ValueError(f"image_size must be >= 1 and eval_resize >= image_size, got {self.image_size} and "
                             f"{self.eval_resize}")
        if len(jitter) != 4 or any(j < 0 for j in jitter) or jitter[3] > 0.5:
            raise ValueError(f"jitter is (brightness, contrast, saturation, hue) >= 0 with hue <= 0.5, got {jitter}")
        self.jitter = tuple(float(j) for j in jitter)
        self.workers = workers
        if not 0.0 <= max_unreadable_fraction < 1.0:
            raise ValueError(f"max_unreadable_fraction must be in [0, 1), got {max_unreadable_fraction}")
        self.max_unreadable_fraction = float(max_unreadable_fraction)
        self._normaliser()
        self._count_reads()

    def _count_reads(self) -> None:
        """Start this object's own count of reads and unreadable images."""
        self.images_read = 0
        self.unreadable_images = 0
        self._unreadable: dict[str, str] = {}  # path -> its error, in the order met (each logged once)

    @property
    def unreadable_paths(self) -> list[str]:
        """The distinct unreadable files met so far, in the order met."""
        return list(self._unreadable)

    def _normaliser(self) -> None:
        dev = self.labels.device
        self._mean = torch.tensor(self.mean, dtype=torch.float32, device=dev).view(1, -1, 1, 1) * 255.0
        self._inv_std = 1.0 / (torch.tensor(self.std, dtype=torch.float32, device=dev).view(1, -1, 1, 1) * 255.0)

    @classmethod
    def from_folder(cls, folder: Path | str, *, classes: Sequence[str] | None = None,
                    device: torch.device | str = "cpu", **kwargs) -> ImageFolderDataset:
        """Every image under `folder/<class>/`. `classes` (e.g. the training split's) fixes the label order; the
        folder must then hold exactly those class folders (a ValueError lists the differences)."""
        folder = Path(folder).expanduser()
        found = find_classes(folder) if classes is None else same_classes(folder, classes)
        files, labels = list_images(folder, found)
        return cls(folder, files, torch.tensor(labels, dtype=torch.long, device=device), found,
                   **{"name": folder.name, **kwargs})

    # ----- DeviceDataset's interface --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.files)

    @property
    def device(self) -> torch.device:
        return self.labels.device

    def _derived(self, files: np.ndarray, labels: torch.Tensor, name: str) -> ImageFolderDataset:
        out = copy.copy(self)
        out.files, out.labels, out.name = files, labels, name
        out._normaliser()
        out._count_reads()
        return out

    def to(self, device: torch.device | str) -> ImageFolderDataset:
        return self._derived(self.files, self.labels.to(device), self.name)

    def take(self, index: torch.Tensor | Sequence[int], name: str | None = None) -> ImageFolderDataset:
        index = torch.as_tensor(index, dtype=torch.long)
        rows = np.asarray(index.tolist(), dtype=np.int64)  # set-up time, not per batch
        return self._derived(self.files[rows], self.labels[index.to(self.device)], name or self.name)

    def subset(self, n: int | None, seed: int | None = None) -> ImageFolderDataset:
        """The first `n` examples (seed None) or `n` drawn without replacement with `seed` (as DeviceDataset)."""
        rows = subset_rows(len(self), n, seed)
        return self if rows is None else self.take(rows[0], f"{self.name}{rows[1]}")

    def permutation(self, generator: torch.Generator) -> torch.Tensor:
        """A random order of all examples, drawn on the device."""
        return torch.randperm(len(self), generator=generator, device=self.device)

    def batch(self, index: torch.Tensor, *, augment: bool = False, generator: torch.Generator | None = None,
              channels_last: bool = False, cutout: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Float, normalised [n, 3, S, S] images on the data's device and their int64 labels for `index`.

        `augment`: the training transform with parameters from `generator` (module docstring); else the eval
        transform. `cutout` > 0 zeroes a square per image after normalisation, as DeviceDataset does (DARTS's
        ImageNet training uses none). One host sync per call: `index` (and the random draws) to the host. An
        unreadable image is replaced and counted (module docstring); TooManyUnreadableImages past the fraction.
        """
        if (augment or cutout) and generator is None:
            raise ValueError("augmentation needs a torch.Generator on the data's device")
        index = torch.as_tensor(index, dtype=torch.long, device=self.device)
        if augment:
            draws = torch.randint(0, _UNIT, (index.numel(), DRAWS), generator=generator, device=self.device)
            packed = torch.cat([index[:, None], draws], dim=1).tolist()  # the one host sync
            host = np.asarray(packed, dtype=np.int64).reshape(-1, 1 + DRAWS)
            rows, uniforms = host[:, 0], host[:, 1:] / _UNIT
        else:
            rows, uniforms = np.asarray(index.tolist(), dtype=np.int64), None
        # to CUDA from page-locked memory without waiting (a copy from pageable memory would synchronise the
        # stream a second time); the NHWC buffer seen as NCHW
        pixels, used = self._decode(rows, uniforms)
        pixels = pixels.to(self.device, non_blocking=self.device.type == "cuda").permute(0, 3, 1, 2)
        if used is not None:  # some images were replaced: their labels follow (a transfer only then)
            index = torch.as_tensor(used, dtype=torch.long, device=self.device)
        # one converting copy into the output layout, then in-place arithmetic: ~5x faster on the CPU than
        # `(pixels.float() - mean) * inv_std` followed by `.contiguous()`, and the same numbers
        layout = torch.channels_last if channels_last else torch.contiguous_format
        x = torch.empty(pixels.shape, dtype=torch.float32, device=self.device, memory_format=layout)
        x.copy_(pixels).sub_(self._mean).mul_(self._inv_std)
        if cutout:
            x.mul_(cutout_mask(x.shape[0], x.shape[2], x.shape[3], cutout, generator))
        return x, self.labels[index]

    # ----- host decoding ----------------------------------------------------------------------------------------
    def path(self, row: int) -> Path:
        return self.root / os.fsdecode(self.files[row])

    def image(self, row: int, uniforms: Sequence[float] | None = None) -> Image.Image:
        """One example after the eval transform (`uniforms` None) or the training transform with those draws."""
        image = open_rgb(self.path(row))
        if uniforms is None:
            return eval_image(image, self.image_size, self.eval_resize)
        return train_image(image, uniforms, self.image_size, self.jitter)

    def _decode(self, rows: np.ndarray, uniforms: np.ndarray | None) -> tuple[torch.Tensor, np.ndarray | None]:
        """(uint8 [n, S, S, 3] on the host (page-locked for a CUDA device), each image decoded and transformed in a
        worker thread straight into its slot; the rows actually read where an unreadable one was replaced, else
        None)."""
        size = self.image_size
        shape = (len(rows), size, size, 3)
        if self.device.type == "cuda":
            pixels = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
            out = pixels.numpy()  # a view of host memory, not a transfer
        else:
            out = np.empty(shape, dtype=np.uint8)
            pixels = torch.from_numpy(out)

        total = len(self.files)

        def one(k: int) -> tuple[int | None, list[tuple[int, ImageReadError]]]:
            """(the row read into slot k, or None; the failed reads (row, error)) trying rows[k], then the next."""
            failed = []
            u = None if uniforms is None else uniforms[k]
            for step in range(min(REPLACEMENT_TRIES + 1, total)):
                row = (int(rows[k]) + step) % total
                try:
                    out[k] = np.asarray(self.image(row, u))
                    return row, failed
                except ImageReadError as err:
                    failed.append((row, err))
            return None, failed

        workers = self.workers or max(1, torch.get_num_threads())
        if workers == 1 or len(rows) <= 1:
            results = [one(k) for k in range(len(rows))]
        else:
            results = list(_pool(workers).map(one, range(len(rows))))
        if not any(failed for _, failed in results):
            self.images_read += len(rows)
            return pixels, None
        return pixels, self._replaced(rows, results)

    def _replaced(self, rows: np.ndarray, results: list[tuple[int | None, list]]) -> np.ndarray:
        """Count and log a batch's failed reads (in slot order, so the log is deterministic too); the rows read
        instead; TooManyUnreadableImages past `max_unreadable_fraction` or for a slot left without an image."""
        used = rows.copy()
        unfilled = []
        for k, (row, failed) in enumerate(results):
            self.images_read += len(failed) + (row is not None)
            self.unreadable_images += len(failed)
            for bad, err in failed:
                path = str(self.path(bad))
                if path not in self._unreadable:
                    self._unreadable[path] = str(err)
                    log.warning("%s: skipping an unreadable image (%d so far; the batch reads %s instead): %s",
                                self.name or self.root, self.unreadable_images,
                                "nothing" if row is None else self.path(row), err)
            if row is None:
                unfilled.append(k)
            else:
                used[k] = row
        allowed = self.max_unreadable_fraction * max(self.images_read, len(self))
        if unfilled or self.unreadable_images > allowed:
            first = "; ".join(f"{err}" for err in list(self._unreadable.values())[:5])
            more = len(self._unreadable) - 5
            why = (f"no readable image among row {int(rows[unfilled[0]])} and the {len(results[unfilled[0]][1]) - 1} "
                   f"after it, so the batch cannot be filled" if unfilled else
                   f"more than max_unreadable_fraction={self.max_unreadable_fraction:g} "
                   f"({self.max_unreadable_fraction:.2%}) of max(images read, the data set's {len(self)} images)")
            raise TooManyUnreadableImages(
                f"{self.name or self.root}: {self.unreadable_images} of the {self.images_read} images read are "
                f"unreadable ({self.unreadable_images / self.images_read:.3%}): {why}. First unreadable: {first}"
                f"{f' and {more} more file(s)' if more > 0 else ''}. Replace or remove the files (or raise "
                f"max_unreadable_fraction)")
        return used
