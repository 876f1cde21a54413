"""DARTS (Liu et al., ICLR 2019): a point estimate alpha, edge weights softmax(alpha), Adam on the
validation loss; first order (`darts-v1`) or with the unrolled second-order gradient (`darts-v2`).

Hyper-parameters follow NAS-Bench-201's DARTS configuration (Dong & Yang, ICLR 2020; xautodl
`DARTS-V1.py`/`DARTS-V2.py`): alpha = 1e-3 * randn, Adam lr 3e-4, betas (0.5, 0.999), weight decay 1e-3.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from trainables.methods.arch_params import (
    adam_betas,
    alpha_state,
    gumbel_max,
    init_alpha,
    load_alpha_state,
    positive_float,
)
from trainables.methods.base import ArchDistribution, ArchStepContext, EdgeWeights
from trainables.methods.second_order import VirtualStep, unrolled_hypergradient


def softmax_weights(alpha: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per group, the row-wise softmax: DARTS' continuous relaxation of one categorical per row."""
    return {name: torch.softmax(a, dim=-1) for name, a in alpha.items()}


def batch_metrics(loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """The loop's per-step architecture metrics: loss and accuracy on the validation batch (0-d tensors)."""
    return {"arch_loss": loss.detach().float(),
            "arch_acc": (logits.detach().argmax(dim=-1) == labels).float().mean()}


class DartsV1(ArchDistribution):
    """First-order DARTS: alpha <- Adam(dL_val(w, alpha)/d alpha)."""

    name: ClassVar[str] = "darts-v1"
    defaults: ClassVar[Mapping[str, Any]] = {
        "arch_lr": 3e-4, "arch_weight_decay": 1e-3, "beta1": 0.5, "beta2": 0.999, "betas": None,
        "init_scale": 1e-3,
    }
    second_order: ClassVar[bool] = False

    def __init__(self, space, params=None, *, num_valid: int, device="cpu", seed: int = 0):
        super().__init__(space, params, num_valid=num_valid, device=device, seed=seed)
        p = self.params
        lr = positive_float(self.name, p, "arch_lr")
        wd = positive_float(self.name, p, "arch_weight_decay", allow_zero=True)
        betas = adam_betas(self.name, p)
        scale = positive_float(self.name, p, "init_scale", allow_zero=True)
        self.r = positive_float(self.name, p, "finite_diff_r") if self.second_order else 0.0
        self.alpha = {k: v.requires_grad_(True) for k, v in
                      init_alpha(space, scale, self.generator, self.device).items()}
        self.optimizer = torch.optim.Adam(list(self.alpha.values()), lr=lr, betas=betas, weight_decay=wd)

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


class DartsV2(DartsV1):
    """Second-order DARTS: the unrolled hypergradient (see `second_order`)."""

    name: ClassVar[str] = "darts-v2"
    defaults: ClassVar[Mapping[str, Any]] = {**DartsV1.defaults, "finite_diff_r": 0.01}
    second_order: ClassVar[bool] = True


def arch_gradients(ctx: ArchStepContext, leaves: list[torch.Tensor], names: list[str], second_order: bool,
                   r: float = 0.01) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Gradient of the validation loss w.r.t. `leaves` (alpha per group, fed through a softmax).

    First order: at the current weights. Second order: DARTS' unrolled hypergradient. Returns
    (gradients, validation loss, validation logits); shared by DARTS and BaLeNAS (which passes a sample).
    """
    x_v, y_v = ctx.valid_batch

    def edge_weights() -> EdgeWeights:
        return EdgeWeights(softmax_weights(dict(zip(names, leaves))))

    def valid_loss() -> tuple[torch.Tensor, torch.Tensor]:
        logits = ctx.forward(x_v, edge_weights())
        return ctx.loss_fn(logits, y_v), logits

    if not second_order:
        loss, logits = valid_loss()
        grads = torch.autograd.grad(loss, leaves)
        return list(grads), loss.detach(), logits.detach()

    x_t, y_t = ctx.train_batch

    def train_loss() -> torch.Tensor:
        return ctx.loss_fn(ctx.forward(x_t, edge_weights()), y_t)

    step = VirtualStep.from_optimizer(ctx.weight_optimizer, ctx.weight_lr)
    return unrolled_hypergradient(ctx.model, leaves, train_loss, valid_loss, step, r=r)
