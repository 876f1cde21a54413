"""DARTS cells: the weight-sharing search cell (edge weights come in with each forward) and the derived
cell of one genotype (with drop path).

Both take two inputs, the outputs of the two previous cells, preprocessed to C channels (ReLU-Conv1x1-BN, or
FactorizedReduce when the previous cell reduced); four nodes each sum over earlier nodes; the output is the
concatenation of the four nodes (4C channels). In a reduction cell, edges leaving the inputs have stride 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.darts.genotype import EDGES, NUM_NODES, OPS
from search_spaces.darts.ops import FactorizedReduce, ReLUConvBN, is_identity, make_op

_NONE = OPS.index("none")
_SKIP = OPS.index("skip_connect")
# ops that start with ReLU(input): separable and dilated convs (and FactorizedReduce, skip at stride 2)
_CONV_OPS = frozenset(OPS.index(n) for n in ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"))


def _preprocess(c_pp: int, c_p: int, C: int, reduction_prev: bool, affine: bool) -> tuple[nn.Module, nn.Module]:
    pre0 = (FactorizedReduce(c_pp, C, 2, affine=affine) if reduction_prev
            else ReLUConvBN(c_pp, C, 1, 1, 0, affine=affine))
    return pre0, ReLUConvBN(c_p, C, 1, 1, 0, affine=affine)


def _zeros_like_node(s: torch.Tensor, stride: int) -> torch.Tensor:
    n, c, h, w = s.shape
    return s.new_zeros(n, c, (h + stride - 1) // stride, (w + stride - 1) // stride)


def _weighted_bn(bn: nn.BatchNorm2d, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """w * BN(x) for a non-affine BN, as one batch_norm whose scale is w (no separate multiply)."""
    training = bn.training or bn.running_mean is None
    if bn.training and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
    return F.batch_norm(x, bn.running_mean, bn.running_var, w.expand(x.shape[1]), None, training, bn.momentum,
                        bn.eps)


def _weighted_op(op: nn.Module, name: str, x: torch.Tensor, relu_x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """w * op(x), where `relu_x` = ReLU(x) is shared by every op of every edge leaving this node (the convs
    and FactorizedReduce start with that ReLU) and the op's final non-affine BN takes w as its scale."""
    if name in ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"):
        y = relu_x
        for layer in list(op)[1:-1]:
            y = layer(y)
        return _weighted_bn(op[-1], y, w)
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        return _weighted_bn(op[1], op[0](x), w)
    if isinstance(op, nn.Identity):
        return x * w
    # FactorizedReduce (skip_connect at stride 2)
    y = torch.cat([op.convs[0](relu_x), op.convs[1](op.pad(relu_x)[:, :, 1:, 1:])], dim=1)
    return _weighted_bn(op.bn, y, w)


class SearchCell(nn.Module):
    """All eight ops on each of the 14 edges (DARTS `model_search.py` Cell with `MixedOp`s).

    `forward(s0, s1, weights [14, 8], active)`: node i = sum over its edges e and ops k of w[e, k] * op_k.
    `none` adds exactly zero, so it is never computed; `active[e]` (host-side) lists the ops worth computing
    on edge e, which is exact when the others have weight zero (GDAS samples, discrete architectures).
    The same function as DARTS' MixedOp sum, computed with less work: one ReLU per node instead of one per
    conv op, the weight folded into each op's final non-affine BN, and the node sum accumulated in place.
    """

    def __init__(self, c_pp: int, c_p: int, C: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = _preprocess(c_pp, c_p, C, reduction_prev, affine=False)
        self.edges = nn.ModuleList(
            nn.ModuleList(make_op(name, C, 2 if reduction and source < 2 else 1, affine=False, pool_bn=True)
                          for name in OPS)
            for _, source in EDGES)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                active: Sequence[Sequence[int]] | None = None) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        relus = [None, None]
        e = 0
        for i in range(NUM_NODES):
            total = None
            for j in range(i + 2):
                for k in (range(len(OPS)) if active is None else active[e]):
                    if k == _NONE:
                        continue
                    if relus[j] is None and (k in _CONV_OPS or (k == _SKIP and self.reduction and j < 2)):
                        relus[j] = F.relu(states[j])
                    term = _weighted_op(self.edges[e][k], OPS[k], states[j], relus[j], weights[e, k])
                    total = term if total is None else total.add_(term)
                e += 1
            states.append(_zeros_like_node(states[1], 2 if self.reduction else 1) if total is None else total)
            relus.append(None)
        return torch.cat(states[2:], dim=1)


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability `drop_prob`, scaling survivors by 1/(1-p) (DARTS `utils.py`)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * (mask / keep)


class EvalCell(nn.Module):
    """The derived cell of one genotype cell: two ops per node (DARTS `model.py` Cell), affine BN.

    `op_affine=False` leaves the ops' BNs without scale/shift (the preprocessing keeps them), as NASLib's
    NB301 graph builds the cells whose `params` its zero-cost benchmark lists."""

    def __init__(self, pairs: Sequence[tuple[str, int]], c_pp: int, c_p: int, C: int, reduction: bool,
                 reduction_prev: bool, op_affine: bool = True):
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = _preprocess(c_pp, c_p, C, reduction_prev, affine=True)
        self.inputs = tuple(source for _, source in pairs)
        self.ops = nn.ModuleList(make_op(name, C, 2 if reduction and source < 2 else 1, affine=op_affine)
                                 for name, source in pairs)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        drop = self.training and drop_prob > 0.0
        for i in range(NUM_NODES):
            total = None
            for k in (2 * i, 2 * i + 1):
                h = self.ops[k](states[self.inputs[k]])
                if drop and not is_identity(self.ops[k]):
                    h = drop_path(h, drop_prob)
                total = h if total is None else total + h
            states.append(total)
        return torch.cat(states[2:], dim=1)
