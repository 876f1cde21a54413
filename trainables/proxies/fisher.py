"""Fisher: the channel-saliency sum of Theis et al. 2018 / Turner et al. 2020 (BlockSwap).

As scored in SamsungLabs/zero-cost-nas and NASLib (measure `fisher`, channel mode): for each Conv2d/Linear
output a (pre-BatchNorm activation) and its loss gradient g, per channel c
F_c = 0.5 * mean_over_batch((sum_over_positions a * g)^2). The reference broadcasts each channel's value to
every weight of that output channel before summing, so a layer contributes
sum_c F_c * (number of weights per output channel); we keep that convention so numbers agree.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainables.proxies.base import cross_entropy_backward, finite, hooks_removed, weight_layers


def compute(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    layers = list(weight_layers(net))
    saliency: dict[int, torch.Tensor] = {}
    handles = []

    def forward_hook(layer_id: int):
        def hook(module, args, output):
            if not output.requires_grad:
                return
            act = output.detach()

            def grad_hook(grad):
                prod = act * grad
                g_nk = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
                value = 0.5 * g_nk.double().pow(2).mean(dim=0)
                saliency[layer_id] = saliency[layer_id] + value if layer_id in saliency else value

            output.register_hook(grad_hook)
        return hook

    for i, layer in enumerate(layers):
        handles.append(layer.register_forward_hook(forward_hook(i)))
    with hooks_removed(handles):
        cross_entropy_backward(net, inputs, targets)
    total = torch.zeros((), dtype=torch.float64, device=inputs.device)
    for i, layer in enumerate(layers):
        if i in saliency:
            total = total + saliency[i].sum() * math.prod(layer.weight.shape[1:])
    return finite(total, "fisher")
