"""iDARTS (Zhang et al., ICML 2021, "iDARTS: Differentiable Architecture Search with Stochastic Implicit
Gradients"): DARTS' softmax relaxation and Adam on alpha, but the architecture gradient is the implicit
hypergradient through the best-response weights, with an inverse Hessian approximated by K + 1 Neumann
terms (`hessian.implicit_hypergradient`), taken after every T weight steps.

Defaults are the authors' NAS-Bench-201 runs (MiaoZhang0525/iDARTS, `NAS_Bench201_codes/exps/algos/idarts.py`,
save dir "T4_K2"): K = 2 (`neumann_terms`), T = 4 (`inner_steps`, this distribution's `update_interval`),
eta = the weight optimizer's current learning rate, Adam lr 3e-4, betas (0.5, 0.999), weight decay 1e-3.
Their weight optimizer (the repo's `NAS_Bench201_codes/configs/nas-benchmark/algos/DARTS.config`: SGD lr
0.01 -> 0.001 cosine, momentum 0.9, Nesterov, weight decay 5e-4, batch 64, 30 epochs) belongs to the search
config / sweep spec (`w_lr: 0.01, epochs: 30`, the rest are the loop's defaults), because the loop owns the
weight optimizer.

Differences from the authors' code, on purpose: the T inner steps are the loop's ordinary weight steps (their
script ran its T inner steps inside the architecture step, through a deep copy of the weight optimizer), and
both second-order products are exact double-backprop products on the last training batch (they used a finite
difference for the mixed term). The weight optimizer's weight decay enters the Hessian (H + wd I), as the
inner problem carries it; the authors' products leave it out (a relative change of eta * wd ~ 1e-5 per
Neumann term).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from trainables.methods.arch_step import batch_metrics, softmax_weights
from trainables.methods.base import ArchStepContext, EdgeWeights
from trainables.methods.darts import DartsV1
from trainables.methods.hypergradients import implicit_hypergradient
from trainables.methods.params import AdamAlphaParams, Count


class IDARTSParams(AdamAlphaParams):
    """DARTS' settings plus K (`neumann_terms`, >= 0) and T (`inner_steps`)."""

    neumann_terms: int = Field(2, ge=0, strict=True)
    inner_steps: Count = 4


class IDARTS(DartsV1):
    """DARTS with the stochastic implicit hypergradient."""

    Params: ClassVar = IDARTSParams

    def __init__(self, space, params=None, *, num_valid: int, device="cpu", seed: int = 0):
        super().__init__(space, params, num_valid=num_valid, device=device, seed=seed)
        self.neumann_terms = self.params.neumann_terms
        self.inner_steps = self.params.inner_steps

    @property
    def update_interval(self) -> int:
        return self.inner_steps

    def update(self, ctx: ArchStepContext) -> dict[str, torch.Tensor]:
        names = list(self.alpha)
        leaves = [self.alpha[n] for n in names]
        weights = [p for p in ctx.model.parameters() if p.requires_grad]
        (x_t, y_t), (x_v, y_v) = ctx.train_batch, ctx.valid_batch

        def edge_weights() -> EdgeWeights:
            return EdgeWeights(softmax_weights(dict(zip(names, leaves))))

        def train_loss() -> torch.Tensor:
            return ctx.loss_fn(ctx.forward(x_t, edge_weights()), y_t)

        def valid_loss() -> tuple[torch.Tensor, torch.Tensor]:
            logits = ctx.forward(x_v, edge_weights())
            return ctx.loss_fn(logits, y_v), logits

        decay = float(ctx.weight_optimizer.param_groups[0].get("weight_decay", 0.0))
        hyper = implicit_hypergradient(weights, leaves, train_loss, valid_loss, eta=float(ctx.weight_lr),
                                       neumann_terms=self.neumann_terms, weight_decay=decay)
        for a, g in zip(leaves, hyper.grads):
            a.grad = g
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return batch_metrics(hyper.valid_loss, hyper.valid_output, y_v)
