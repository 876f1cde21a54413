"""The DARTS space's eight candidate operations (Liu et al., ICLR 2019; structure as quark0/darts
`cnn/operations.py`, written here from its description).

`affine=False` builds the search network's variant (BN without learnable scale/shift); there each pooling op
is followed by such a BN, as in DARTS' `MixedOp`. Shared units (ReLU-Conv-BN, FactorizedReduce, the zero
op) are NB201's, which are the same modules.
"""

from __future__ import annotations

from torch import nn

from search_spaces.darts.genotype import OPS
from search_spaces.nb201.ops import FactorizedReduce, ReLUConvBN, Zero

__all__ = ["OPS", "make_op", "SepConv", "DilConv", "FactorizedReduce", "ReLUConvBN", "Zero", "is_identity"]


class DilConv(nn.Sequential):
    """ReLU -> depthwise k x k conv (dilation d) -> 1x1 conv -> BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation, groups=c_in,
                      bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """A separable conv applied twice: ReLU, depthwise (stride s), 1x1, BN, then ReLU, depthwise (stride 1),
    1x1, BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_in, 1, bias=False),
            nn.BatchNorm2d(c_in, affine=affine),
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=1, padding=padding, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


def make_op(name: str, C: int, stride: int, affine: bool = True, pool_bn: bool = False) -> nn.Module:
    """One candidate op on C channels; `pool_bn` appends a non-affine BN to pooling ops (search network)."""
    if name == "none":
        return Zero(C, C, stride)
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        pool = (nn.MaxPool2d(3, stride=stride, padding=1) if name == "max_pool_3x3"
                else nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False))
        return nn.Sequential(pool, nn.BatchNorm2d(C, affine=False)) if pool_bn else pool
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(C, C, stride, affine=affine)
    if name in ("sep_conv_3x3", "sep_conv_5x5"):
        k = int(name[-1])
        return SepConv(C, C, k, stride, k // 2, affine=affine)
    if name in ("dil_conv_3x3", "dil_conv_5x5"):
        k = int(name[-1])
        return DilConv(C, C, k, stride, 2 * (k // 2), 2, affine=affine)
    raise ValueError(f"unknown DARTS operation {name!r}; expected one of {', '.join(OPS)}")


def is_identity(op: nn.Module) -> bool:
    """Drop path spares identity ops (DARTS `model.py`)."""
    return isinstance(op, nn.Identity)
