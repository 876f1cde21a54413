"""GraSP: -w * (H g) summed over all Conv2d/Linear weights (gradient signal preservation).

Wang et al., ICLR 2020; as scored in SamsungLabs/zero-cost-nas and NASLib (measure `grasp`, T=1, one
iteration): g = dL/dw on the batch, Hg = d(g_detached . dL/dw)/dw by double backpropagation, and the score
is sum(-w * Hg). The reference runs the forward pass twice on the same batch; with batch-statistics
BatchNorm both passes are identical, so one pass with `create_graph=True` gives the same number.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainables.proxies.base import ProxyFailure, finite, weight_layers


def compute(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    weights = [layer.weight for layer in weight_layers(net)]
    loss = F.cross_entropy(net(inputs), targets)
    if not loss.requires_grad:
        raise ProxyFailure("loss does not depend on any weight")
    grads = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    used = [(w, g) for w, g in zip(weights, grads) if g is not None]
    if not used:
        raise ProxyFailure("loss does not depend on any Conv2d/Linear weight")
    z = sum((g.detach() * g).sum() for _, g in used)
    if not z.requires_grad:
        raise ProxyFailure("gradient does not depend on the weights (no curvature)")
    hg = torch.autograd.grad(z, [w for w, _ in used], allow_unused=True)
    total = torch.zeros((), dtype=torch.float64, device=inputs.device)
    for (w, _), h in zip(used, hg):
        if h is not None:
            total = total + (-w.detach() * h).double().sum()
    return finite(total, "grasp")
