"""NAS-Bench-201 macro skeleton shared by the supernet and the derived networks.

stem (3x3 conv + BN) -> N cells at C -> residual reduction -> N cells at 2C -> residual reduction ->
N cells at 4C -> BN-ReLU -> global average pool -> linear head.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from search_spaces.nb201.cells import InferCell, SearchCell
from search_spaces.nb201.encoding import to_tuple
from search_spaces.nb201.ops import ResNetBasicBlock


class _Skeleton(nn.Module):
    def __init__(self, make_cell: Callable[[int], nn.Module], C: int, N: int, num_classes: int):
        super().__init__()
        if C < 1 or N < 1 or num_classes < 1:
            raise ValueError(f"C, N and num_classes must be positive, got C={C}, N={N}, num_classes={num_classes}")
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        channels = [C] * N + [2 * C] + [2 * C] * N + [4 * C] + [4 * C] * N
        reduction = [False] * N + [True] + [False] * N + [True] + [False] * N
        layers, c_prev = [], C
        for c, red in zip(channels, reduction):
            layers.append(ResNetBasicBlock(c_prev, c, 2) if red else make_cell(c))
            c_prev = c
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.flatten(1))


class NB201Network(_Skeleton):
    """A derived (evaluation) network for one architecture string."""

    def __init__(self, arch: str, num_classes: int = 10, C: int = 16, N: int = 5):
        ops = to_tuple(arch)
        super().__init__(lambda c: InferCell(ops, c), C, N, num_classes)
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self._head(x)


class NB201SuperNet(_Skeleton):
    """The weight-sharing supernet; architecture weights come in with every forward.

    Cells use BN without affine parameters or running statistics, as in NB201's DARTS-style search; the
    edge weights ([6, 5], shared by all cells as in the benchmark's search) never live in this module.
    """

    def __init__(self, C: int = 16, N: int = 5, num_classes: int = 10):
        super().__init__(lambda c: SearchCell(c), C, N, num_classes)

    def forward(self, x: torch.Tensor, weights: Mapping[str, torch.Tensor],
                active: Mapping[str, Sequence[Sequence[int]]] | None = None) -> torch.Tensor:
        edge_weights = weights["edges"]
        edge_active = None if active is None else active.get("edges")
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, edge_weights, edge_active) if isinstance(cell, SearchCell) else cell(x)
        return self._head(x)


def network(arch: str, num_classes: int = 10, C: int = 16, N: int = 5) -> nn.Module:
    """The derived NB201 network for `arch` (parameter count equals the benchmark's at C=16, N=5)."""
    return NB201Network(arch, num_classes=num_classes, C=C, N=N)
