"""The second-order (unrolled) architecture gradient of DARTS, shared by darts-v2 and balenas-v2.

DARTS (Liu et al., ICLR 2019, `architect.py`; NB201's DARTS-V2 is the same) approximates the best-response
weights by one virtual SGD step on the training loss,
    w' = w - eta * (momentum * buf + dL_train/dw + weight_decay * w),
and differentiates the validation loss through it:
    dL_val(w', a)/da  -  eta * d2L_train(w, a)/(da dw) . v,     v = dL_val(w', a)/dw',
where the Hessian-vector product is a central finite difference on the weights,
    [dL_train(w + R v, a)/da - dL_train(w - R v, a)/da] / (2 R),   R = 0.01 / ||v||.
Written here from that description: the supernet's own parameters are shifted in place (no model copy) and
restored bit-exactly from a saved copy, and every gradient is taken with `torch.autograd.grad`, so the
model's `.grad` (the weight step's) is never touched. No host synchronisation: R stays a device tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn


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


def _grads(loss: torch.Tensor, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, list(inputs), allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]


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
