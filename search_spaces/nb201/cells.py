"""NAS-Bench-201 cells: the weight-sharing search cell and the discrete (inference) cell.

The search cell takes per-edge op weights as an input: it owns only network weights, never architecture
parameters, so every search method drives the same module. `none` contributes exactly zero to an edge's
sum (its output is zero whatever its weight), so it is never computed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from search_spaces.nb201.encoding import EDGES, NUM_NODES
from search_spaces.nb201.ops import OPS, make_op

_NONE = OPS.index("none")


class SearchCell(nn.Module):
    """All five ops on each of the six edges; node i = sum_j sum_k w[e(i,j), k] * op_k(node_j)."""

    def __init__(self, channels: int, affine: bool = False, track_running_stats: bool = False):
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleList(make_op(name, channels, channels, 1, affine, track_running_stats) for name in OPS)
            for _ in EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor,
                active: Sequence[Sequence[int]] | None = None) -> torch.Tensor:
        """`weights` is [6, 5]; `active[e]` (host-side) lists the op indices to compute on edge e.

        Leaving an op out of `active` is exact when its weight is zero; callers pass it for sparse weights
        (hard samples, discrete architectures) so that no work is spent on them.
        """
        nodes = [x]
        e = 0
        for i in range(1, NUM_NODES):
            total = None
            for j in range(i):
                ops = range(len(OPS)) if active is None else active[e]
                for k in ops:
                    if k == _NONE:
                        continue
                    term = self.edges[e][k](nodes[j]) * weights[e, k]
                    total = term if total is None else total + term
                e += 1
            nodes.append(torch.zeros_like(x) if total is None else total)
        return nodes[-1]


class InferCell(nn.Module):
    """One fixed op per edge (the derived network's cell), with affine BN as in the benchmark's training."""

    def __init__(self, ops: Sequence[int], channels: int):
        super().__init__()
        self.ops = tuple(int(o) for o in ops)
        self.layers = nn.ModuleList(make_op(OPS[o], channels, channels, 1) for o in self.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        e = 0
        for i in range(1, NUM_NODES):
            total = None
            for j in range(i):
                if self.ops[e] != _NONE:
                    out = self.layers[e](nodes[j])
                    total = out if total is None else total + out
                e += 1
            nodes.append(torch.zeros_like(x) if total is None else total)
        return nodes[-1]
