"""Gumbel noise and the temperature schedule shared by the concrete-relaxation methods (SNAS, GDAS).

A Gumbel-softmax sample of a row of logits alpha at temperature tau is softmax((log_softmax(alpha) + g) / tau)
with g ~ Gumbel(0, 1) i.i.d.; its argmax (the same for every tau > 0) is an exact draw from softmax(alpha)
(Jang et al. / Maddison et al., ICLR 2017).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from pydantic import model_validator

from trainables.methods.darts import DartsV1
from trainables.methods.params import AdamAlphaParams, Positive


def gumbel_noise(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """i.i.d. Gumbel(0, 1) noise of `like`'s shape, dtype and device, drawn with `generator`."""
    u = torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    u = u.clamp(torch.finfo(u.dtype).tiny, 1.0 - torch.finfo(u.dtype).eps)
    return -torch.log(-torch.log(u))


def relaxed_sample(alpha: torch.Tensor, noise: torch.Tensor, tau: float) -> torch.Tensor:
    """Row-wise Gumbel-softmax sample of softmax(alpha) with the given noise (differentiable in alpha)."""
    return torch.softmax((torch.log_softmax(alpha, dim=-1) + noise) / tau, dim=-1)


class AnnealedGumbelParams(AdamAlphaParams):
    """DARTS' settings plus the temperature range (tau_max at the first epoch down to tau_min at the last)."""

    tau_max: Positive = 1.0
    tau_min: Positive = 0.03

    @model_validator(mode="after")
    def _range(self) -> AnnealedGumbelParams:
        if self.tau_min > self.tau_max:
            raise ValueError(f"tau_min ({self.tau_min}) must not exceed tau_max ({self.tau_max})")
        return self


def linear_temperature(tau_max: float, tau_min: float, epoch: int, total_epochs: int) -> float:
    """tau_max at epoch 0 down to tau_min at the last epoch, linearly (xautodl GDAS:
    tau_max - (tau_max - tau_min) * epoch / (total_epochs - 1); SNAS' `Temp_Scheduler` is linear too)."""
    if total_epochs <= 1:
        return tau_max
    frac = min(max(epoch / (total_epochs - 1), 0.0), 1.0)
    return tau_max - (tau_max - tau_min) * frac


class AnnealedGumbel(DartsV1):
    """DARTS-style alpha plus a Gumbel temperature annealed linearly per epoch (shared by SNAS and GDAS)."""

    def __init__(self, space, params=None, *, num_valid: int, device="cpu", seed: int = 0):
        super().__init__(space, params, num_valid=num_valid, device=device, seed=seed)
        self.tau_max, self.tau_min = self.params.tau_max, self.params.tau_min
        self.tau = self.tau_max

    def on_epoch_start(self, epoch: int, total_epochs: int) -> None:
        self.tau = linear_temperature(self.tau_max, self.tau_min, epoch, total_epochs)

    def extra_metrics(self) -> dict[str, float]:
        return {"tau": float(self.tau)}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "tau": float(self.tau)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.tau = float(state.get("tau", self.tau_max))
