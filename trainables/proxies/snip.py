"""SNIP: connection sensitivity |w * dL/dw| summed over all Conv2d/Linear weights.

Lee et al., ICLR 2019; as scored in SamsungLabs/zero-cost-nas and NASLib (measure `snip`): the gradient of
the cross-entropy loss on one batch with respect to a multiplicative mask of ones equals w * dL/dw, so we
take that product directly. BatchNorm uses batch statistics (train mode).
"""

from __future__ import annotations

import torch
from torch import nn

from trainables.proxies.base import cross_entropy_backward, finite, weight_layers


def compute(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    cross_entropy_backward(net, inputs, targets)
    total = torch.zeros((), dtype=torch.float64, device=inputs.device)
    for layer in weight_layers(net):
        if layer.weight.grad is not None:
            total = total + (layer.weight * layer.weight.grad).abs().double().sum()
    return finite(total, "snip")
