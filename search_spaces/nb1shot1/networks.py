"""NAS-Bench-1Shot1 one-shot supernet (NB101 macro skeleton, 1Shot1 search cells).

Skeleton (NB101 `model_builder`, as adapted by automl/nasbench-1shot1 `optimizers/darts/model_search.py`):
3x3 conv-BN-ReLU stem -> 3 stacks of N cells, 2x2 max-pool and doubled width between stacks -> a 1x1
ReLU-conv-BN that maps the last cell's concatenated output back to the stack width -> global average pool
-> linear head. (NB101/TF 'same' pooling: 32 -> 16 -> 8; the 1Shot1 code pads by one, 32 -> 17 -> 9.)

Search cell: block i sums its (weighted) candidate inputs — the cell input through block i's own 1x1
conv-BN-ReLU projection, and earlier blocks' outputs — and applies the mixed op (maxpool3x3,
conv3x3-bn-relu, conv1x1-bn-relu). The cell output concatenates the (weighted) projected input and all
block outputs, so every cell emits C * (K + 1) channels. Architecture weights are inputs of `forward`.
Derived (discrete) networks are NB101's own model: `nb101_network.NB101Network`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from search_spaces.nb1shot1.encoding import OPS, SpaceSpec


class ConvBnRelu(nn.Sequential):
    """NB101's conv -> BN -> ReLU unit ('same' padding)."""

    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=False))


def make_op(name: str, channels: int) -> nn.Module:
    if name == "maxpool3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    if name == "conv3x3":
        return ConvBnRelu(channels, channels, 3)
    if name == "conv1x1":
        return ConvBnRelu(channels, channels, 1)
    raise ValueError(f"unknown nb1shot1 op {name!r}; expected one of {', '.join(OPS)}")


def input_group(block: int) -> str:
    """Name of the architecture-weight group of block `block`'s parent choice."""
    return f"inputs_{block}"


class _Skeleton(nn.Module):
    def __init__(self, make_cell, out_channels, C: int, N: int, num_classes: int):
        super().__init__()
        if C < 1 or N < 1 or num_classes < 1:
            raise ValueError(f"C, N and num_classes must be positive, got C={C}, N={N}, num_classes={num_classes}")
        self.stem = ConvBnRelu(3, C, 3)
        self.cells = nn.ModuleList()
        self.downsample_before = {N, 2 * N}
        c_in, width = C, C
        for i in range(3 * N):
            if i in self.downsample_before:
                width *= 2
            self.cells.append(make_cell(c_in, width))
            c_in = out_channels(width)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.postprocess = nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c_in, width, 1, bias=False),
                                         nn.BatchNorm2d(width, affine=False))
        self.classifier = nn.Linear(width, num_classes)

    def _run(self, x: torch.Tensor, cell_fn) -> torch.Tensor:
        x = self.stem(x)
        for i, cell in enumerate(self.cells):
            if i in self.downsample_before:
                x = self.pool(x)
            x = cell_fn(cell, x)
        x = self.postprocess(x)
        return self.classifier(x.mean(dim=(2, 3)))


class SearchCell(nn.Module):
    def __init__(self, spec: SpaceSpec, c_in: int, channels: int):
        super().__init__()
        self.spec = spec
        k = spec.num_blocks
        self.projections = nn.ModuleList(ConvBnRelu(c_in, channels, 1) for _ in range(k + 1))
        self.mixed = nn.ModuleList(nn.ModuleList(make_op(name, channels) for name in OPS) for _ in range(k))
        self.choice = set(spec.choice_blocks())
        self.channels = channels

    def forward(self, s0: torch.Tensor, weights: Mapping[str, torch.Tensor],
                active: Mapping[str, Sequence[Sequence[int]]] | None) -> torch.Tensor:
        op_w = weights["ops"]
        op_active = None if active is None else active.get("ops")
        states: list[torch.Tensor] = []
        for b in range(1, self.spec.num_blocks + 1):
            candidates = range(b)  # 0 = cell input (projected), j = block j
            if b in self.choice:
                group = input_group(b)
                w = weights[group][0]
                chosen = candidates if active is None or group not in active else active[group][0]
                terms = [self._source(j, s0, states, b) * w[j] for j in chosen]
            else:  # fixed parents: all candidates (their count equals the parent count)
                terms = [self._source(j, s0, states, b) for j in candidates]
            x = torch.stack(terms).sum(0) if len(terms) > 1 else terms[0] if terms else None
            if x is None:  # every parent has weight exactly zero (sparse weights)
                n, _, h, w_ = s0.shape
                states.append(s0.new_zeros(n, self.channels, h, w_))
                continue
            ops = range(len(OPS)) if op_active is None else op_active[b - 1]
            out = None
            for k in ops:
                term = self.mixed[b - 1][k](x) * op_w[b - 1, k]
                out = term if out is None else out + term
            states.append(torch.zeros_like(x) if out is None else out)
        outs = [self.projections[-1](s0), *states]
        w = weights["output"][0]
        chosen = None if active is None or "output" not in active else set(active["output"][0])
        return torch.cat([t * w[j] if chosen is None or j in chosen else torch.zeros_like(t)
                          for j, t in enumerate(outs)], dim=1)

    def _source(self, j: int, s0: torch.Tensor, states: list[torch.Tensor], block: int) -> torch.Tensor:
        return self.projections[block - 1](s0) if j == 0 else states[j - 1]


class NB1Shot1SuperNet(_Skeleton):
    """The one-shot model; `forward(x, weights, active=None)` with weights for every `arch_shapes` group."""

    def __init__(self, spec: SpaceSpec, C: int = 16, N: int = 3, num_classes: int = 10):
        k = spec.num_blocks
        super().__init__(lambda c_in, w: SearchCell(spec, c_in, w), lambda w: w * (k + 1), C, N, num_classes)
        self.spec = spec

    def forward(self, x: torch.Tensor, weights: Mapping[str, torch.Tensor],
                active: Mapping[str, Sequence[Sequence[int]]] | None = None) -> torch.Tensor:
        return self._run(x, lambda cell, h: cell(h, weights, active))
