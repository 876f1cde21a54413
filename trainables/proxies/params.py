"""Parameter count: the number of trainable parameters (NB201's `params` column is this / 1e6)."""

from __future__ import annotations

import torch
from torch import nn


def compute(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    return float(sum(p.numel() for p in net.parameters() if p.requires_grad))
