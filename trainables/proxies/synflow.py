"""SynFlow: synaptic flow of the network with all weights made positive.

Tanaka et al., NeurIPS 2020; as scored in SamsungLabs/zero-cost-nas and NASLib (measure `synflow`):
BatchNorm layers are bypassed (identity), all parameters and buffers are replaced by their absolute value,
the network runs in float64 on a single input of ones, and the score is
sum over Conv2d/Linear weights of |w * d(sum of outputs)/dw|. The data batch only gives the input shape.
"""

from __future__ import annotations

import torch
from torch import nn

from trainables.proxies.base import ProxyFailure, finite, weight_layers


def _bypass_batchnorm(net: nn.Module) -> None:
    for name, child in net.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        else:
            _bypass_batchnorm(child)


def compute(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    _bypass_batchnorm(net)
    net.double()
    with torch.no_grad():
        for tensor in net.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
    out = net(ones)
    if not out.requires_grad:
        raise ProxyFailure("network output does not depend on any weight")
    out.sum().backward()
    total = torch.zeros((), dtype=torch.float64, device=inputs.device)
    for layer in weight_layers(net):
        if layer.weight.grad is not None:
            total = total + (layer.weight * layer.weight.grad).abs().sum()
    return finite(total, "synflow")
