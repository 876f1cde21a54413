"""The architecture step's shared pieces: the softmax relaxation, the gradient of the validation loss w.r.t.
alpha (first order, or DARTS' unrolled second order), and the step's metrics. Used by DARTS, BaLeNAS (at a
sampled alpha), iDARTS, SNAS, GDAS and DrNAS; each method file keeps to its own update rule.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from trainables.methods.base import ArchStepContext, EdgeWeights
from trainables.methods.hypergradients import VirtualStep, unrolled_hypergradient


def softmax_weights(alpha: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per group, the row-wise softmax: DARTS' continuous relaxation of one categorical per row."""
    return {name: torch.softmax(a, dim=-1) for name, a in alpha.items()}


def batch_metrics(loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """The loop's per-step architecture metrics: loss and accuracy on the validation batch (0-d tensors)."""
    return {"arch_loss": loss.detach().float(),
            "arch_acc": (logits.detach().argmax(dim=-1) == labels).float().mean()}


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
