"""Gradient norm: the sum over Conv2d/Linear layers of the L2 norm of each layer's weight gradient.

Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021 (SamsungLabs/zero-cost-nas,
NASLib measure `grad_norm`): per-layer norms of dL/dw for the cross-entropy loss of one batch, summed
(not the norm of the concatenated gradient). BatchNorm uses batch statistics (train mode).
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
            total = total + layer.weight.grad.double().norm()
    return finite(total, "grad_norm")
