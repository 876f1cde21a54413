"""FLOPs as multiply-accumulates of the Conv2d and Linear layers for ONE input image.

Convention (as NB201's xautodl `get_model_infos` counts convolutions and linear layers): a convolution
costs C_out * H_out * W_out * (C_in / groups) * k_h * k_w multiply-accumulates, a linear layer
in_features * out_features; bias additions, BatchNorm, activations and pooling are not counted.
NAS-Bench-Suite-Zero's `flops` (tensorwatch) also counts those cheaper layers, so values differ by a
small architecture-dependent amount; see benchmarks/proxies.md for how much the rankings differ.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainables.proxies.base import hooks_removed


def conv_macs(layer: nn.Conv2d, output: torch.Tensor) -> int:
    per_position = (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
    return int(layer.out_channels * math.prod(output.shape[2:]) * per_position)


def compute(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    total = [0]

    def hook(module, args, output):
        if isinstance(module, nn.Conv2d):
            total[0] += conv_macs(module, output)
        else:
            total[0] += module.in_features * module.out_features * math.prod(output.shape[1:-1])

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with hooks_removed(handles), torch.no_grad():
        net(inputs[:1])
    return float(total[0])
