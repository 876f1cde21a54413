"""NAS-Bench-201 candidate operations and the residual reduction block.

Structure and parameter layout follow the NAS-Bench-201 paper (Dong & Yang, ICLR 2020) so that parameter
counts match the benchmark's published `params` column exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.nb201.encoding import OPS


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv (no bias) -> BatchNorm, the benchmark's convolution unit."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 affine: bool = True, track_running_stats: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )


class Zero(nn.Module):
    """The `none` op: a zero tensor of the output shape."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.c_out, self.stride = c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 and x.shape[1] == self.c_out:
            return x.mul(0.0)
        n, _, h, w = x.shape
        return x.new_zeros(n, self.c_out, (h + self.stride - 1) // self.stride, (w + self.stride - 1) // self.stride)


class FactorizedReduce(nn.Module):
    """Skip connection that changes stride or width (two offset 1x1 convolutions), as in DARTS/NB201."""

    def __init__(self, c_in: int, c_out: int, stride: int, affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        if stride == 2:
            half = c_out // 2
            self.convs = nn.ModuleList([nn.Conv2d(c_in, half, 1, stride=2, bias=False),
                                        nn.Conv2d(c_in, c_out - half, 1, stride=2, bias=False)])
            self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0)
        else:
            self.convs = nn.ModuleList([nn.Conv2d(c_in, c_out, 1, stride=1, bias=False)])
            self.pad = None
        self.bn = nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        if self.pad is None:
            return self.bn(self.convs[0](x))
        y = self.pad(x)
        return self.bn(torch.cat([self.convs[0](x), self.convs[1](y[:, :, 1:, 1:])], dim=1))


class AvgPool(nn.Module):
    """3x3 average pooling (padding not counted); a 1x1 ReLUConvBN first when widths differ."""

    def __init__(self, c_in: int, c_out: int, stride: int, affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        self.preprocess = (None if c_in == c_out
                           else ReLUConvBN(c_in, c_out, 1, 1, 0, affine, track_running_stats))
        self.pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x if self.preprocess is None else self.preprocess(x))


def make_op(name: str, c_in: int, c_out: int, stride: int, affine: bool = True,
            track_running_stats: bool = True) -> nn.Module:
    """Build one candidate operation by its NB201 name."""
    if name == "none":
        return Zero(c_in, c_out, stride)
    if name == "skip_connect":
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return FactorizedReduce(c_in, c_out, stride, affine, track_running_stats)
    if name == "nor_conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, stride, 0, affine, track_running_stats)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, stride, 1, affine, track_running_stats)
    if name == "avg_pool_3x3":
        return AvgPool(c_in, c_out, stride, affine, track_running_stats)
    raise ValueError(f"unknown NB201 operation {name!r}; expected one of {', '.join(OPS)}")


class ResNetBasicBlock(nn.Module):
    """The residual block that halves resolution and doubles width between NB201 stages."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        if stride == 2:
            self.downsample: nn.Module | None = nn.Sequential(
                nn.AvgPool2d(2, stride=2, padding=0), nn.Conv2d(c_in, c_out, 1, bias=False))
        elif c_in != c_out:
            self.downsample = ReLUConvBN(c_in, c_out, 1, 1, 0)
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return residual + self.conv_b(self.conv_a(x))
