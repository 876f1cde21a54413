"""Architecture hypergradients through the weights' response to alpha, for the methods whose architecture
step is not first order: DARTS' unrolled one-step gradient (darts-v2, balenas-v2) and iDARTS' implicit
gradient. Both differentiate the validation loss through w*(alpha) with `torch.autograd.grad`, never touch a
`.grad`, and never synchronise with the host.

Unrolled (second order, `unrolled_hypergradient`). DARTS (Liu et al., ICLR 2019, `architect.py`; NB201's
DARTS-V2 is the same) approximates the best-response weights by one virtual SGD step on the training loss,
    w' = w - eta * (momentum * buf + dL_train/dw + weight_decay * w),
and differentiates the validation loss through it:
    dL_val(w', a)/da  -  eta * d2L_train(w, a)/(da dw) . v,     v = dL_val(w', a)/dw',
where the Hessian-vector product is a central finite difference on the weights,
    [dL_train(w + R v, a)/da - dL_train(w - R v, a)/da] / (2 R),   R = 0.01 / ||v||.
Written here from that description: the supernet's own parameters are shifted in place (no model copy) and
restored bit-exactly from a saved copy, and every gradient is taken with `torch.autograd.grad`, so the
model's `.grad` (the weight step's) is never touched. No host synchronisation: R stays a device tensor.

Implicit (`implicit_hypergradient`, on exact second-order products by double backpropagation). iDARTS
(Zhang et al., ICML 2021, "iDARTS: Differentiable Architecture Search with Stochastic Implicit Gradients",
Eq. 7-9) differentiates the validation loss through the best-response weights w*(alpha) with
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
from torch import nn


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


# ----- DARTS' unrolled (second-order) gradient ---------------------------------------------------------------
@dataclass(frozen=True)
class VirtualStep:
    """The SGD step DARTS unrolls: its learning rate, momentum, weight decay and momentum buffers."""

    lr: float
    momentum: float = 0.0
    weight_decay: float = 0.0
    momentum_buffers: dict[int, torch.Tensor] | None = None  # id(param) -> buffer

    @classmethod
    def from_optimizer(cls, optimizer: torch.optim.Optimizer, lr: float) -> VirtualStep:
        """Momentum/weight decay of the (first) param group and the current momentum buffers (DARTS
        ignores Nesterov in the virtual step; so do we)."""
        group = optimizer.param_groups[0]
        buffers = {}
        for g in optimizer.param_groups:
            for p in g["params"]:
                buf = optimizer.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    buffers[id(p)] = buf
        return cls(lr=float(lr), momentum=float(group.get("momentum", 0.0)),
                   weight_decay=float(group.get("weight_decay", 0.0)), momentum_buffers=buffers)


def unrolled_hypergradient(model: nn.Module, arch: Sequence[torch.Tensor],
                           train_loss: Callable[[], torch.Tensor],
                           valid_loss: Callable[[], tuple[torch.Tensor, torch.Tensor]],
                           step: VirtualStep, r: float = 0.01
                           ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """DARTS' second-order gradient of the validation loss w.r.t. `arch` (leaf tensors, requires_grad).

    `train_loss()` / `valid_loss()` run the supernet with the model's current parameters and `arch`;
    `valid_loss` returns (loss, logits). Returns (gradients per arch tensor, valid loss, valid logits), the
    latter two evaluated at the unrolled weights w'. The model's parameters are unchanged on return.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    arch = list(arch)
    buffers = step.momentum_buffers or {}

    # 1. virtual SGD step on the training loss
    g_train = _grads(train_loss(), params)
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, g in zip(params, g_train):
            d = g + step.weight_decay * p
            buf = buffers.get(id(p))
            if buf is not None and step.momentum:
                d = d + step.momentum * buf
            p.sub_(step.lr * d)
    try:
        # 2. validation loss at w': gradient w.r.t. the architecture and the unrolled weights
        loss_v, logits = valid_loss()
        grads = _grads(loss_v, arch + params)
        d_arch, v = grads[:len(arch)], grads[len(arch):]
        # 3. finite-difference Hessian-vector product at the original weights
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x) for x in v]))
        R = r / norm.clamp_min(1e-12)
        with torch.no_grad():
            for p, s, x in zip(params, saved, v):
                p.copy_(s).add_(x * R)
        g_plus = _grads(train_loss(), arch)
        with torch.no_grad():
            for p, s, x in zip(params, saved, v):
                p.copy_(s).sub_(x * R)
        g_minus = _grads(train_loss(), arch)
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
    hyper = [da - step.lr * (gp - gm) / (2 * R) for da, gp, gm in zip(d_arch, g_plus, g_minus)]
    return hyper, loss_v.detach(), logits.detach()
