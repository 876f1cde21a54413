"""The NAS-Bench-101 network of a cell, in PyTorch: the model whose accuracy the benchmark reports.

Structure (google-research/nasbench `lib/model_builder.py`, `lib/base_ops.py`): 3x3 conv-BN-ReLU stem with
C channels -> 3 stacks of N modules, a 2x2 max-pool and doubled width before stacks 2 and 3 -> global
average pool -> linear head. In a module, vertex channels follow `compute_vertex_channels` (the output
width is split among the vertices feeding the output; other vertices take the max of their successors);
the module input reaches a vertex through a 1x1 conv-BN-ReLU projection, other vertices' outputs are
truncated to the vertex's width and summed; the output concatenates its interior inputs and adds the
projected module input when input->output is an edge. BN as TF's (momentum 0.997, i.e. PyTorch 0.003;
eps 1e-5). With C=128, N=3 the parameter count equals NB101's `trainable_parameters`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from search_spaces.nb1shot1.nb101.graph import CONV1X1, CONV3X3, MAXPOOL3X3, canonical_spec

BN_MOMENTUM = 1 - 0.997  # TF momentum 0.997 in PyTorch's convention
BN_EPS = 1e-5


class ConvBnRelu(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM, eps=BN_EPS), nn.ReLU(inplace=False))


def vertex_op(label: str, channels: int) -> nn.Module:
    if label == CONV3X3:
        return ConvBnRelu(channels, channels, 3)
    if label == CONV1X1:
        return ConvBnRelu(channels, channels, 1)
    if label == MAXPOOL3X3:
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise ValueError(f"unknown NB101 op {label!r}")


def vertex_channels(c_in: int, c_out: int, matrix: Sequence[Sequence[int]]) -> list[int]:
    """Channels of every vertex of a pruned cell (NB101's compute_vertex_channels)."""
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[-1] = c_in, c_out
    if n == 2:
        return channels
    fan_in = sum(matrix[v][n - 1] for v in range(1, n - 1))
    interior, extra = divmod(c_out, fan_in)
    for v in range(1, n - 1):
        if matrix[v][n - 1]:
            channels[v] = interior + (1 if extra > 0 else 0)
            extra -= 1 if extra > 0 else 0
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            channels[v] = max([channels[v]] + [channels[d] for d in range(v + 1, n - 1) if matrix[v][d]])
    return channels


class NB101Cell(nn.Module):
    def __init__(self, matrix: Sequence[Sequence[int]], ops: Sequence[str], c_in: int, c_out: int):
        super().__init__()
        self.matrix = [list(map(int, row)) for row in matrix]
        n = len(self.matrix)
        self.channels = vertex_channels(c_in, c_out, self.matrix)
        self.proj = nn.ModuleDict({str(t): ConvBnRelu(c_in, self.channels[t], 1)
                                   for t in range(1, n) if self.matrix[0][t]})
        self.ops = nn.ModuleDict({str(t): vertex_op(ops[t], self.channels[t]) for t in range(1, n - 1)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, n = self.matrix, len(self.matrix)
        tensors, concat = [x], []
        for t in range(1, n - 1):
            ins = [tensors[s][:, :self.channels[t]] for s in range(1, t) if m[s][t]]
            if m[0][t]:
                ins.append(self.proj[str(t)](x))
            h = ins[0]
            for other in ins[1:]:
                h = h + other
            tensors.append(self.ops[str(t)](h))
            if m[t][n - 1]:
                concat.append(tensors[t])
        if not concat:  # input -> output only
            return self.proj[str(n - 1)](x)
        out = concat[0] if len(concat) == 1 else torch.cat(concat, dim=1)
        if m[0][n - 1]:
            out = out + self.proj[str(n - 1)](x)
        return out


class NB101Network(nn.Module):
    """The NB101 model of a (matrix, ops) cell, pruned first; C stem channels, N modules per stack."""

    def __init__(self, matrix, ops: Sequence[str], num_classes: int = 10, C: int = 128, N: int = 3):
        super().__init__()
        if C < 1 or N < 1 or num_classes < 1:
            raise ValueError(f"C, N and num_classes must be positive, got C={C}, N={N}, num_classes={num_classes}")
        pruned, pruned_ops, self.module_hash = canonical_spec(matrix, ops)
        layers: list[nn.Module] = [ConvBnRelu(3, C, 3)]
        c_in, width = C, C
        for stack in range(3):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2))
                width *= 2
            for _ in range(N):
                layers.append(NB101Cell(np.asarray(pruned).tolist(), pruned_ops, c_in, width))
                c_in = width
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.layers(x).mean(dim=(2, 3)))
