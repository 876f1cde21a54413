"""A whole data split resident on the compute device, with augmentation done there too.

Images stay uint8 (4x smaller than float) until a batch is drawn; random crop (zero padding 4), horizontal
flip, per-channel normalisation and cutout (DeVries & Taylor 2017, as DARTS's train.py applies it) run as
tensor ops on the device, so no host round trip and no
DataLoader workers are involved. Written by hand because torchvision's transforms work per image on the
host and would put a host sync in every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch


@dataclass
class DeviceDataset:
    images: torch.Tensor  # uint8 [N, 3, H, W]
    labels: torch.Tensor  # int64 [N]
    mean: Sequence[float]  # per channel, in [0, 1] pixel units
    std: Sequence[float]
    num_classes: int
    name: str = ""
    #: zero padding of the random crop: NB201 pads 32x32 CIFAR by 4 and 16x16 ImageNet16 by 2.
    crop_padding: int = 4
    #: images that could not be read: none, the images are in memory (ImageFolderDataset counts its skipped ones)
    unreadable_images: ClassVar[int] = 0

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape[0] != self.images.shape[0]:
            raise ValueError(f"{self.images.shape[0]} images but {self.labels.shape[0]} labels in {self.name!r}")
        self.labels = self.labels.long()
        dev = self.images.device
        self._mean = torch.tensor(self.mean, dtype=torch.float32, device=dev).view(1, -1, 1, 1) * 255.0
        self._inv_std = 1.0 / (torch.tensor(self.std, dtype=torch.float32, device=dev).view(1, -1, 1, 1) * 255.0)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str) -> DeviceDataset:
        return DeviceDataset(self.images.to(device), self.labels.to(device), self.mean, self.std,
                             self.num_classes, self.name, self.crop_padding)

    def take(self, index: torch.Tensor | Sequence[int], name: str | None = None) -> DeviceDataset:
        index = torch.as_tensor(index, dtype=torch.long, device=self.images.device)
        return DeviceDataset(self.images[index], self.labels[index], self.mean, self.std, self.num_classes,
                             name or self.name, self.crop_padding)

    def subset(self, n: int | None, seed: int | None = None) -> DeviceDataset:
        """The first `n` examples (seed None) or `n` drawn without replacement with `seed`."""
        rows = subset_rows(len(self), n, seed)
        return self if rows is None else self.take(rows[0], f"{self.name}{rows[1]}")

    def permutation(self, generator: torch.Generator) -> torch.Tensor:
        """A random order of all examples, drawn on the device."""
        return torch.randperm(len(self), generator=generator, device=self.images.device)

    def batch(self, index: torch.Tensor, *, augment: bool = False, generator: torch.Generator | None = None,
              channels_last: bool = False, cutout: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Float, normalised images and labels for `index` (a device tensor); augmentation needs `generator`.

        `cutout` > 0 zeroes a `cutout` x `cutout` square per image after normalisation (so the hole holds the
        data set's mean colour, as in DARTS's train.py, where Cutout follows Normalize).
        """
        x = self.images[index]
        if (augment or cutout) and generator is None:
            raise ValueError("augmentation needs a torch.Generator on the data's device")
        if augment:
            x = random_crop_flip(x, generator, padding=self.crop_padding)
        x = (x.float() - self._mean) * self._inv_std
        if cutout:
            x = x * cutout_mask(x.shape[0], x.shape[2], x.shape[3], cutout, generator)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels[index]

    def per_channel_stats(self) -> tuple[list[float], list[float]]:
        """Mean and std per channel over the whole split, in [0, 1] pixel units (float64 accumulation)."""
        x = self.images.double() / 255.0
        return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3), unbiased=False).tolist()


def subset_rows(length: int, n: int | None, seed: int | None) -> tuple[torch.Tensor, str] | None:
    """The rows of a data set's subset (sorted, on the CPU) and a name suffix; None when `n` keeps all rows.

    The first `n` rows with seed None, else `n` rows drawn without replacement with `seed`. Shared by every data
    set kind (device-resident and image folders) so that a subset means the same rows for both."""
    if n is None or n >= length:
        return None
    if n < 1:
        raise ValueError(f"subset size must be >= 1, got {n}")
    if seed is None:
        return torch.arange(n), f"[:{n}]"
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(length, generator=g)[:n].sort().values, f"[rand{n}@{seed}]"


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop after zero padding and a random horizontal flip, per image, as one gather on the device."""
    n, c, h, w = x.shape
    dev = x.device
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    off_y = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev)
    off_x = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=dev)
    flip = torch.rand(n, generator=generator, device=dev) < 0.5
    rows = off_y[:, None] + torch.arange(h, device=dev)[None, :]  # [n, h]
    cols_fwd = torch.arange(w, device=dev)[None, :]
    cols = off_x[:, None] + torch.where(flip[:, None], (w - 1) - cols_fwd, cols_fwd)  # [n, w]
    batch_idx = torch.arange(n, device=dev)[:, None, None, None]
    chan_idx = torch.arange(c, device=dev)[None, :, None, None]
    return padded[batch_idx, chan_idx, rows[:, None, :, None], cols[:, None, None, :]]


def cutout_mask(n: int, h: int, w: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """[n, 1, h, w] float masks, each 0 on one `length` x `length` square and 1 elsewhere, drawn on the device.

    As DeVries & Taylor's Cutout in DARTS's utils.py: the square's centre is a uniformly random pixel and the
    square is clipped at the image borders (so near an edge fewer than length**2 pixels are masked); rows
    [cy - length // 2, cy + length // 2) and the same for columns.
    """
    if length < 1:
        raise ValueError(f"cutout length must be >= 1, got {length}")
    dev = generator.device
    cy = torch.randint(0, h, (n,), generator=generator, device=dev)
    cx = torch.randint(0, w, (n,), generator=generator, device=dev)
    rows = torch.arange(h, device=dev)[None, :] - (cy[:, None] - length // 2)  # offset inside the square
    cols = torch.arange(w, device=dev)[None, :] - (cx[:, None] - length // 2)
    inside_r = (rows >= 0) & (rows < length)
    inside_c = (cols >= 0) & (cols < length)
    hole = inside_r[:, :, None] & inside_c[:, None, :]  # [n, h, w]
    return (~hole).unsqueeze(1).float()
