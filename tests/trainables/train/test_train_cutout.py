"""Cutout on the device: exactly one 16x16 square per image, clipped at the borders (DARTS's Cutout)."""

from __future__ import annotations

import pytest
import torch

from search_spaces.data.device import DeviceDataset, cutout_mask


def _hole_bounds(mask: torch.Tensor) -> tuple[int, int, int, int]:
    rows = (mask == 0).any(dim=1).nonzero().flatten()
    cols = (mask == 0).any(dim=0).nonzero().flatten()
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


def _clipped_interval_ok(lo: int, hi: int, size: int, length: int) -> bool:
    """[lo, hi) = [clip(c - length/2), clip(c + length/2)) for some centre c in [0, size)."""
    half = length // 2
    return any((max(c - half, 0), min(c + half, size)) == (lo, hi) for c in range(size))


def test_every_mask_is_one_clipped_16x16_square():
    masks = cutout_mask(2000, 32, 32, 16, torch.Generator().manual_seed(0))[:, 0]
    sizes = set()
    for m in masks:
        y0, y1, x0, x1 = _hole_bounds(m)
        hole = torch.zeros(32, 32, dtype=torch.bool)
        hole[y0:y1, x0:x1] = True
        assert torch.equal(m == 0, hole), "the masked pixels are exactly one axis-aligned rectangle"
        assert _clipped_interval_ok(y0, y1, 32, 16) and _clipped_interval_ok(x0, x1, 32, 16)
        sizes.add((y1 - y0, x1 - x0))
    assert (16, 16) in sizes  # fully inside
    assert (8, 8) in sizes or any(h < 16 for h, _ in sizes)  # clipped at a border
    assert max(h * w for h, w in sizes) == 256  # never more than 16 x 16


def test_centre_at_a_corner_leaves_an_8x8_hole():
    found = False
    for seed in range(300):
        m = cutout_mask(64, 32, 32, 16, torch.Generator().manual_seed(seed))[:, 0]
        for one in m:
            if _hole_bounds(one) == (0, 8, 0, 8):
                found = True
                assert int((one == 0).sum()) == 64
    assert found


def test_batch_cutout_zeroes_normalised_pixels_and_is_seeded():
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    data = DeviceDataset(images, torch.zeros(8, dtype=torch.long), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 10)
    index = torch.arange(8)
    a, _ = data.batch(index, generator=torch.Generator().manual_seed(1), cutout=16)
    b, _ = data.batch(index, generator=torch.Generator().manual_seed(1), cutout=16)
    plain, _ = data.batch(index)
    assert torch.equal(a, b)
    zeroed = (a == 0).all(dim=1)  # all channels zero = the hole (the data set's mean colour)
    assert ((zeroed.sum(dim=(1, 2)) >= 64) & (zeroed.sum(dim=(1, 2)) <= 256)).all()
    assert torch.equal(a[~zeroed.unsqueeze(1).expand_as(a)], plain[~zeroed.unsqueeze(1).expand_as(a)])


def test_cutout_needs_a_generator_and_a_positive_length():
    data = DeviceDataset(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.zeros(2), (0, 0, 0), (1, 1, 1), 2)
    with pytest.raises(ValueError, match="Generator"):
        data.batch(torch.arange(2), cutout=4)
    with pytest.raises(ValueError, match="cutout length"):
        cutout_mask(1, 8, 8, 0, torch.Generator())
