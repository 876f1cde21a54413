"""Exact second-order products by double backpropagation, and iDARTS' implicit hypergradient built on them.

iDARTS (Zhang et al., ICML 2021, "iDARTS: Differentiable Architecture Search with Stochastic Implicit
Gradients", Eq. 7-9) differentiates the validation loss through the best-response weights w*(alpha) with
the implicit function theorem and approximates the inverse Hessian by a truncated Neumann series:

    dL_val/da ~= d_a L_val - eta * (d2 L_train / da dw) . sum_{k=0..K} (I - eta H)^k . d_w L_val,
    H = d2 L_train / dw2  (+ weight_decay * I when the inner problem carries an L2 term).

The authors' code (MiaoZhang0525/iDARTS, `NAS_Bench201_codes/exps/algos/idarts.py`) forms the Neumann terms
with double-backprop Hessian-vector products but the mixed term with a finite difference; here both are exact
(`torch.autograd.grad` with `create_graph=True`), and the function knows nothing of supernets: it takes the
inner and outer parameters as tensor lists and the two losses as closures, so it can be checked against a
closed-form bilevel problem. Nothing here synchronises with the host.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch


def _grads(outputs: torch.Tensor | Sequence[torch.Tensor], inputs: Sequence[torch.Tensor], *,
           grad_outputs: Sequence[torch.Tensor] | None = None, create_graph: bool = False,
           retain_graph: bool | None = None) -> list[torch.Tensor]:
    """torch.autograd.grad with unused inputs (and outputs without a graph) mapped to zeros."""
    inputs = list(inputs)
    outputs = [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)
    paired = zip(outputs, [None] * len(outputs) if grad_outputs is None else list(grad_outputs))
    pairs = [(o, g) for o, g in paired if o.requires_grad]
    if not pairs:
        return [torch.zeros_like(x) for x in inputs]
    outs = [o for o, _ in pairs]
    gouts = None if grad_outputs is None else [g for _, g in pairs]
    grads = torch.autograd.grad(outs, inputs, grad_outputs=gouts, allow_unused=True,
                                create_graph=create_graph, retain_graph=retain_graph)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]


class TrainGradient:
    """d L_train / dw with its graph kept, so that Hessian-vector products (w.r.t. w, or mixed w.r.t. the
    outer parameters) are one backward pass each through it."""

    def __init__(self, loss: torch.Tensor, weights: Sequence[torch.Tensor]):
        self.weights = list(weights)
        self.grads = _grads(loss, self.weights, create_graph=True)

    def hvp(self, vector: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """(d2 L_train / dw2) . vector, exactly; the graph is kept for further products."""
        return [g.detach() for g in _grads(self.grads, self.weights, grad_outputs=vector, retain_graph=True)]

    def mixed(self, outer: Sequence[torch.Tensor], vector: Sequence[torch.Tensor],
              retain_graph: bool = False) -> list[torch.Tensor]:
        """(d2 L_train / d outer d w) . vector: the gradient of <dL_train/dw, vector> w.r.t. `outer`."""
        return [g.detach() for g in _grads(self.grads, outer, grad_outputs=vector, retain_graph=retain_graph)]


def neumann_inverse_hvp(train_grad: TrainGradient, vector: Sequence[torch.Tensor], eta: float, terms: int,
                        weight_decay: float = 0.0) -> list[torch.Tensor]:
    """sum_{k=0..terms} (I - eta (H + weight_decay I))^k . vector  (~= H^-1 vector / eta for large `terms`
    when 0 < eta < 2 / lambda_max)."""
    p = [v.detach() for v in vector]
    total = [v.clone() for v in p]
    for _ in range(int(terms)):
        hp = train_grad.hvp(p)
        p = [x - eta * (h + weight_decay * x) for x, h in zip(p, hp)]
        total = [t + x for t, x in zip(total, p)]
    return total


@dataclass(frozen=True)
class Hypergradient:
    """The outer gradient per outer tensor, the validation loss (detached) and what the closure returned
    alongside it (e.g. logits, detached)."""

    grads: list[torch.Tensor]
    valid_loss: torch.Tensor
    valid_output: Any


def implicit_hypergradient(weights: Sequence[torch.Tensor], outer: Sequence[torch.Tensor],
                           train_loss: Callable[[], torch.Tensor],
                           valid_loss: Callable[[], tuple[torch.Tensor, Any]], *, eta: float,
                           neumann_terms: int, weight_decay: float = 0.0) -> Hypergradient:
    """iDARTS' hypergradient of the validation loss w.r.t. `outer` at the current inner `weights`.

    `train_loss()` and `valid_loss()` evaluate their loss at the current tensors (`valid_loss` returns
    (loss, anything)); `eta` is the inner learning rate and `neumann_terms` is K (K + 1 terms, k = 0..K).
    `weight_decay` adds the inner problem's L2 term to the Hessian. No tensor is modified; no `.grad` is
    written.
    """
    if neumann_terms < 0:
        raise ValueError(f"neumann_terms must be >= 0, got {neumann_terms}")
    weights, outer = list(weights), list(outer)
    loss_v, output = valid_loss()
    g = _grads(loss_v, outer + weights)
    d_outer, v = g[:len(outer)], g[len(outer):]
    train_grad = TrainGradient(train_loss(), weights)
    s = neumann_inverse_hvp(train_grad, v, eta, neumann_terms, weight_decay)
    mixed = train_grad.mixed(outer, s)
    grads = [d.detach() - eta * m for d, m in zip(d_outer, mixed)]
    if isinstance(output, torch.Tensor):
        output = output.detach()
    return Hypergradient(grads, loss_v.detach(), output)
