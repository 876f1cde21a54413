"""On-device augmentation of loaded splits: shapes, determinism, exact padding-crop and flip geometry."""

from __future__ import annotations

import itertools

import pytest
import torch
from conftest import make_tiny_cifar10

from search_spaces.data import load_split, random_crop_flip


@pytest.fixture
def cifar(tmp_path):
    return load_split("cifar10", make_tiny_cifar10(tmp_path), "train")


def test_augmented_batch_keeps_shape_dtype_and_labels(cifar):
    index = torch.arange(32)
    x, y = cifar.batch(index, augment=True, generator=torch.Generator().manual_seed(0))
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.float32
    assert torch.equal(y, cifar.labels[:32])
    xc, _ = cifar.batch(index, augment=True, generator=torch.Generator().manual_seed(0), channels_last=True)
    assert xc.is_contiguous(memory_format=torch.channels_last) and torch.equal(xc, x)


def test_augmentation_is_deterministic_for_a_seed(cifar):
    index = torch.arange(64)
    a, _ = cifar.batch(index, augment=True, generator=torch.Generator().manual_seed(5))
    b, _ = cifar.batch(index, augment=True, generator=torch.Generator().manual_seed(5))
    c, _ = cifar.batch(index, augment=True, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_normalisation_uses_the_published_cifar10_statistics(cifar):
    x, _ = cifar.batch(torch.arange(4))
    mean = torch.tensor([125.3, 123.0, 113.9]).view(1, 3, 1, 1)
    std = torch.tensor([63.0, 62.1, 66.7]).view(1, 3, 1, 1)
    torch.testing.assert_close(x, (cifar.images[:4].float() - mean) / std)


def test_padding_crop_and_flip_are_exact_on_a_hand_made_image():
    c, h, w, pad = 3, 6, 5, 2
    image = torch.arange(1, c * h * w + 1, dtype=torch.uint8).view(1, c, h, w)  # every pixel distinct, > 0
    padded = torch.zeros(1, c, h + 2 * pad, w + 2 * pad, dtype=torch.uint8)
    padded[..., pad:pad + h, pad:pad + w] = image
    candidates = {}
    for oy, ox, flip in itertools.product(range(2 * pad + 1), range(2 * pad + 1), (False, True)):
        crop = padded[0, :, oy:oy + h, ox:ox + w]
        candidates[(oy, ox, flip)] = crop.flip(-1) if flip else crop
    out = random_crop_flip(image.expand(2000, -1, -1, -1), torch.Generator().manual_seed(0), padding=pad)
    assert out.shape == (2000, c, h, w) and out.dtype == torch.uint8
    seen = set()
    for img in out:
        matches = [k for k, v in candidates.items() if torch.equal(img, v)]
        assert len(matches) == 1, "every output must be one zero-padded crop, flipped or not"
        seen.add(matches[0])
    assert seen == set(candidates)  # all 5 x 5 offsets, with and without flip, occur
    # the centred crop without flip is the image; with flip it is the image mirrored left-right
    assert torch.equal(candidates[(pad, pad, False)], image[0])
    assert torch.equal(candidates[(pad, pad, True)][:, :, 0], image[0, :, :, -1])


def test_flip_rate_is_about_half():
    image = torch.zeros(1, 1, 4, 4, dtype=torch.uint8)
    image[..., :, 0] = 255  # a bright left column
    out = random_crop_flip(image.expand(4000, -1, -1, -1), torch.Generator().manual_seed(1), padding=0)
    flipped = (out[:, 0, :, -1] == 255).all(dim=1)
    kept = (out[:, 0, :, 0] == 255).all(dim=1)
    assert torch.all(flipped ^ kept)
    assert abs(flipped.float().mean().item() - 0.5) < 0.03  # 4000 fair coin flips: sd 0.008
