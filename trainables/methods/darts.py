"""DARTS (Liu et al., ICLR 2019): a point estimate alpha, edge weights softmax(alpha), Adam on the
validation loss; first order (`darts-v1`) or with the unrolled second-order gradient (`darts-v2`).

Hyper-parameters follow NAS-Bench-201's DARTS configuration (Dong & Yang, ICLR 2020; xautodl
`DARTS-V1.py`/`DARTS-V2.py`): alpha = 1e-3 * randn, Adam lr 3e-4, betas (0.5, 0.999), weight decay 1e-3.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from trainables.methods.arch_params import alpha_state, gumbel_max, init_alpha, load_alpha_state
from trainables.methods.arch_step import arch_gradients, batch_metrics, softmax_weights
from trainables.methods.base import ArchDistribution, ArchStepContext, EdgeWeights
from trainables.methods.params import AdamAlphaParams, SecondOrderParams


class DartsV1(ArchDistribution):
    """First-order DARTS: alpha <- Adam(dL_val(w, alpha)/d alpha)."""

    Params: ClassVar = AdamAlphaParams
    second_order: ClassVar[bool] = False

    def __init__(self, space, params=None, *, num_valid: int, device="cpu", seed: int = 0):
        super().__init__(space, params, num_valid=num_valid, device=device, seed=seed)
        p = self.params
        self.r = p.finite_diff_r if self.second_order else 0.0
        self.alpha = {k: v.requires_grad_(True) for k, v in
                      init_alpha(space, p.init_scale, self.generator, self.device).items()}
        self.optimizer = torch.optim.Adam(list(self.alpha.values()), lr=p.arch_lr, betas=p.betas,
                                          weight_decay=p.arch_weight_decay)

    # ----- the loop's calls ----------------------------------------------------------------------
    def weights_for_weight_step(self) -> EdgeWeights:
        with torch.no_grad():
            return EdgeWeights(softmax_weights(self.alpha))

    def update(self, ctx: ArchStepContext) -> dict[str, torch.Tensor]:
        names = list(self.alpha)
        leaves = [self.alpha[n] for n in names]
        grads, loss, logits = arch_gradients(ctx, leaves, names, self.second_order, self.r)
        for a, g in zip(leaves, grads):
            a.grad = g
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return batch_metrics(loss, logits, ctx.valid_batch[1])

    # ----- what the distribution looks like ----------------------------------------------------------
    def op_probabilities(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return softmax_weights(self.alpha)

    def mode_probabilities(self) -> dict[str, torch.Tensor]:
        return self.op_probabilities()

    def sample_probabilities(self, k: int, generator: torch.Generator) -> list[dict[str, torch.Tensor]]:
        """Gumbel-perturbed probabilities softmax(log_softmax(alpha) + g), g ~ Gumbel(0, 1): each row's argmax
        is an exact draw from the categorical softmax(alpha), and rows keep a ranking for cross-row rules."""
        with torch.no_grad():
            return [{n: torch.softmax(gumbel_max(a.to(generator.device), generator), dim=-1)
                     for n, a in self.alpha.items()} for _ in range(int(k))]

    def state_dict(self) -> dict[str, Any]:
        return alpha_state(self.alpha, self.optimizer, self.generator)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        load_alpha_state(self.alpha, self.optimizer, self.generator, state)


class DartsV2Params(AdamAlphaParams, SecondOrderParams):
    """DARTS' settings plus the unrolled hypergradient's finite-difference radius."""


class DartsV2(DartsV1):
    """Second-order DARTS: the unrolled hypergradient (see `second_order`)."""

    Params: ClassVar = DartsV2Params
    second_order: ClassVar[bool] = True
