"""SNAS (Xie et al., ICLR 2019, "SNAS: Stochastic Neural Architecture Search"): a concrete (Gumbel-softmax)
relaxation of each edge's op choice, trained jointly with the weights on the training loss.

Every weight step draws a fresh relaxed sample softmax((log_softmax(alpha) + g) / tau) per edge (shared by
all cells) and hands it to the loop without detaching it: the loop's backward of the
training loss fills alpha.grad, and `update`, called right after the weight step, takes the Adam step and
clears it. SNAS has no validation-batch step, so the loop's valid_loss/valid_acc stay NaN for it.

Defaults: temperature linear from tau_max = 1 to tau_min = 0.03 over the epochs (the authors' code,
SNAS-Series `--temp 1 --temp_min 0.03 --temp_annealing`, whose `Temp_Scheduler` is linear); Adam lr 3e-4,
betas (0.5, 0.999), weight decay 1e-3 (their distributed arch optimizer; the NB201 DARTS-family setting).
SNAS' resource constraint and its credit-assignment analysis are out of scope; alpha starts at
1e-3 * randn like the other methods (softmax is shift-invariant, so SNAS' N(1, 0.01) location init differs
only in its 10x larger spread). SNAS published no NB201 setting; its DARTS-space search ran 150 epochs of
SGD 0.025 -> 0.001 cosine, momentum 0.9, weight decay 3e-4 (the search config's business).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from trainables.methods.base import ArchStepContext, EdgeWeights
from trainables.methods.gumbel import AnnealedGumbel, AnnealedGumbelParams, gumbel_noise, relaxed_sample


class SNASParams(AnnealedGumbelParams):
    """SNAS' temperature: linear from 1 to 0.03 (SNAS-Series `--temp 1 --temp_min 0.03`)."""

    tau_max: float = AnnealedGumbelParams.model_fields["tau_max"].default
    tau_min: float = AnnealedGumbelParams.model_fields["tau_min"].default


class SNAS(AnnealedGumbel):
    """Joint training of weights and alpha through Gumbel-softmax samples."""

    Params: ClassVar = SNASParams

    def weights_for_weight_step(self) -> EdgeWeights:
        """A relaxed sample that keeps its graph to alpha (the loop's backward reaches alpha through it)."""
        return EdgeWeights({n: relaxed_sample(a, gumbel_noise(a.detach(), self.generator), self.tau)
                            for n, a in self.alpha.items()})

    def update(self, ctx: ArchStepContext) -> dict[str, torch.Tensor]:
        leaves = list(self.alpha.values())
        if all(a.grad is None for a in leaves):
            raise RuntimeError("method 'snas': no training-loss gradient reached alpha; the loop must call "
                               "backward() on the weight step's loss before update()")
        for a in leaves:
            if a.grad is None:
                a.grad = torch.zeros_like(a)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {}
