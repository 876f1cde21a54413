"""The real data batch the proxies are scored on."""

from __future__ import annotations

from pathlib import Path

import torch


def proxy_batch(dataset: str, root: Path | str | None, batch_size: int, *, seed: int | None = None,
                split: str = "train", device: torch.device | str = "cpu",
                download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` normalised, un-augmented images and labels of `split`: the first ones (seed None) or a
    seeded random draw, the same on every call (every architecture is scored on the same batch). `root` None:
    $BALENAS_DATA_ROOT or the per-user cache; missing CIFAR data are downloaded unless `download` is False."""
    from search_spaces.data import datasets

    if int(batch_size) < 2:
        raise ValueError(f"proxy batch_size must be >= 2 (kernels and correlations need pairs), got {batch_size}")
    data = datasets.load_split(dataset, root, split, subset=int(batch_size), subset_seed=seed, device=device,
                              download=download)
    if len(data) < int(batch_size):
        raise ValueError(f"{dataset}/{split} under {root} has {len(data)} images, fewer than batch_size={batch_size}")
    return data.batch(torch.arange(len(data), device=data.device))
