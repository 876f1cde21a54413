"""The real CIFAR-10 subset in ../shared/data against the published per-channel statistics."""

from __future__ import annotations

import pytest
import torch

from search_spaces.data import load_split

# Per-channel mean/std of the 50,000 CIFAR-10 training images as commonly published (4 decimals).
PUBLISHED_MEAN = (0.4914, 0.4822, 0.4465)
PUBLISHED_STD = (0.2470, 0.2435, 0.2616)
FULL_TRAIN = 50_000


def exact_channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and (population) std in [0, 1] units from exact integer sums."""
    means, stds = [], []
    for c in range(images.shape[1]):
        x = images[:, c].to(torch.int64)
        count = x.numel()
        total, squares = x.sum().item(), (x * x).sum().item()
        mean = total / count
        means.append(mean / 255.0)
        stds.append((squares / count - mean * mean) ** 0.5 / 255.0)
    return means, stds


@pytest.mark.shared_data
def test_real_cifar10_subset_matches_published_statistics(shared_data):
    train = load_split("cifar10", shared_data / "cifar10", "train")
    test = load_split("cifar10", shared_data / "cifar10", "test")
    assert len(test) == 10_000 and len(train) % 10_000 == 0 and 10_000 <= len(train) <= FULL_TRAIN
    assert set(train.labels.unique().tolist()) == set(range(10))
    mean, std = exact_channel_stats(train.images)
    # Tolerance: the subset is n of the 50,000 images, so its channel means differ from the published ones
    # by sampling error: se = sd(per-image means) * sqrt((1 - n/N) / n) (finite-population correction),
    # measured ~0.0007-0.0008 for the 20,000-image subset. Allow 4 se, plus the published 4-decimal rounding;
    # with all 50,000 images this collapses to the rounding bound.
    n = len(train)
    per_image = train.images.float().mean(dim=(2, 3)) / 255.0
    se = per_image.std(dim=0) * ((1 - n / FULL_TRAIN) / n) ** 0.5
    for c in range(3):
        assert abs(mean[c] - PUBLISHED_MEAN[c]) <= 4 * se[c].item() + 5e-5, (c, mean[c], se[c])
    # The std of a pixel channel has a sampling error of the same order (measured differences <= 0.0006);
    # 0.003 is ~4x that, still far below what a channel mix-up or a wrong scale would give (>= 0.01).
    assert std == pytest.approx(PUBLISHED_STD, abs=0.003 if n < FULL_TRAIN else 1e-4)
    # and the normalised training batch is close to zero mean / unit std per channel
    x, _ = train.batch(torch.arange(0, n, 10))
    assert x.mean(dim=(0, 2, 3)).abs().max().item() < 0.02
    assert (x.std(dim=(0, 2, 3)) - 1).abs().max().item() < 0.03
