"""Jacobian covariance (jacob_cov / jacov): the score of the FIRST NASWOT paper version.

Mellor et al., arXiv:2006.04647v1; definition as in SamsungLabs/zero-cost-nas
(foresight/pruners/measures/jacob_cov.py) and NAS-Bench-Suite-Zero (NASLib `jacov`): the input gradient
of the summed outputs for each image of a batch, the correlation matrix of those B Jacobians, and
score = -sum_i (log(v_i + k) + 1 / (v_i + k)) over its eigenvalues v, with k = 1e-5. BatchNorm uses batch
statistics (train mode). Undefined (an explicit error) when some image's Jacobian is constant, e.g.
when no path connects input and output.
"""

from __future__ import annotations

import torch
from torch import nn

from trainables.proxies.base import ProxyFailure, finite

K = 1e-5


def jacobian_score(jacobians: torch.Tensor) -> float:
    """[B, D] per-image Jacobians -> the jacob_cov score (float64)."""
    j = jacobians.double()
    j = j - j.mean(dim=1, keepdim=True)
    norms = j.norm(dim=1)
    flat = int((norms == 0).sum())
    if flat:
        raise ProxyFailure(f"input Jacobian is constant for {flat} of {j.shape[0]} images: correlation undefined")
    j = j / norms[:, None]
    corr = j @ j.t()
    eig = torch.linalg.eigvalsh(corr)
    return finite(-(torch.log(eig + K) + 1.0 / (eig + K)).sum(), "jacob_cov score")


def compute(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    x = inputs.detach().clone().requires_grad_(True)
    y = net(x)
    if not y.requires_grad:
        raise ProxyFailure("network output does not depend on the input")
    (grad,) = torch.autograd.grad(y, x, torch.ones_like(y), allow_unused=True)
    if grad is None:
        raise ProxyFailure("network output does not depend on the input")
    return jacobian_score(grad.reshape(grad.shape[0], -1))
