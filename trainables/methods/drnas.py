"""DrNAS (Chen et al., ICLR 2021, "DrNAS: Dirichlet Neural Architecture Search"): each edge's op weights
are a Dirichlet random vector with concentration elu(alpha) + 1, learned through reparameterised
(pathwise) samples.

Following the authors' NB201 code (xiangning-chen/DrNAS, `201-space/train_search.py`, `search_model.py`,
`architect.py`): alpha = 1e-3 * randn; every supernet forward draws a fresh Dirichlet sample per edge (shared
by all cells); the weight step uses one (detached); the architecture step is first order, Adam (lr 3e-4,
betas (0.5, 0.999)) on the validation loss of another sample plus the regulariser towards the prior
Dirichlet(1): `reg_type` 'l2' (the authors' default) is Adam weight decay `reg_scale` (1e-3) on alpha, 'kl'
adds reg_scale * sum_edges KL(Dir(elu(alpha)+1) || Dir(1)) to the loss (and no weight decay).
The progressive shrinking of the op set and the partial-channel connections of DrNAS (`--k`,
`train_search_progressive.py`) are out of scope: every op of every edge is computed at full width.
Their weight optimizer belongs to the search config / sweep spec: SGD lr 0.025 -> 0.001 cosine, momentum
0.9 without Nesterov, weight decay 3e-4, batch 64, 100 epochs (`w_nesterov: false, w_weight_decay: 3e-4,
epochs: 100`).

Samples use `torch._sample_dirichlet` with the method's own generator and the implicit reparameterisation
gradient `torch._dirichlet_grad`, i.e. exactly what `torch.distributions.Dirichlet.rsample` computes, but
reproducible from the distribution's generator instead of the global RNG.
Most likely architecture and op probabilities: the Dirichlet mean (argmax equals the authors' softmax(alpha)
argmax, as elu + 1 is increasing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch.distributions import Dirichlet, kl_divergence

from trainables.methods.arch_params import alpha_state, init_alpha, load_alpha_state
from trainables.methods.arch_step import batch_metrics
from trainables.methods.base import ArchDistribution, ArchStepContext, EdgeWeights
from trainables.methods.params import Betas, MethodParams, NonNegative, Positive


class DrNASParams(MethodParams):
    """Adam on alpha (lr, betas as DARTS'), its initial scale, and the regulariser towards Dirichlet(1):
    `reg_type` 'l2' (weight decay `reg_scale`) or 'kl' (`reg_scale` * KL in the loss)."""

    arch_lr: Positive = 3e-4
    betas: Betas = (0.5, 0.999)
    init_scale: NonNegative = 1e-3
    reg_type: Literal["l2", "kl"] = "l2"
    reg_scale: NonNegative = 1e-3


class _DirichletSample(torch.autograd.Function):
    """Dirichlet(concentration) rows drawn with an explicit generator; backward = Dirichlet.rsample's."""

    @staticmethod
    def forward(ctx, concentration: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = torch._sample_dirichlet(concentration, generator=generator)
        ctx.save_for_backward(x, concentration)
        return x

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        x, concentration = ctx.saved_tensors
        total = concentration.sum(-1, keepdim=True).expand_as(concentration)
        grad = torch._dirichlet_grad(x, concentration, total)
        return grad * (grad_output - (x * grad_output).sum(-1, keepdim=True)), None


def dirichlet_rsample(concentration: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One reparameterised sample per row of `concentration` (differentiable in it)."""
    return _DirichletSample.apply(concentration, generator)


def concentration(alpha: torch.Tensor) -> torch.Tensor:
    """DrNAS' positive parameterisation of the concentration: elu(alpha) + 1."""
    return F.elu(alpha) + 1.0


class DrNAS(ArchDistribution):
    """Dirichlet op weights, pathwise gradients, first-order architecture step."""

    Params: ClassVar = DrNASParams

    def __init__(self, space, params=None, *, num_valid: int, device="cpu", seed: int = 0):
        super().__init__(space, params, num_valid=num_valid, device=device, seed=seed)
        p = self.params
        self.reg_type, self.reg_scale = p.reg_type, p.reg_scale
        self.alpha = {k: v.requires_grad_(True) for k, v in
                      init_alpha(space, p.init_scale, self.generator, self.device).items()}
        decay = self.reg_scale if self.reg_type == "l2" else 0.0
        self.optimizer = torch.optim.Adam(list(self.alpha.values()), lr=p.arch_lr, betas=p.betas,
                                          weight_decay=decay)

    # ----- the loop's calls ----------------------------------------------------------------------
    def weights_for_weight_step(self) -> EdgeWeights:
        with torch.no_grad():
            return EdgeWeights({n: dirichlet_rsample(concentration(a), self.generator)
                                for n, a in self.alpha.items()})

    def kl_to_prior(self) -> torch.Tensor:
        """sum over all rows of KL(Dirichlet(elu(alpha) + 1) || Dirichlet(1)), differentiable in alpha."""
        total = None
        for a in self.alpha.values():
            kl = kl_divergence(Dirichlet(concentration(a)), Dirichlet(torch.ones_like(a))).sum()
            total = kl if total is None else total + kl
        return total

    def update(self, ctx: ArchStepContext) -> dict[str, torch.Tensor]:
        x_v, y_v = ctx.valid_batch
        weights = {n: dirichlet_rsample(concentration(a), self.generator) for n, a in self.alpha.items()}
        logits = ctx.forward(x_v, EdgeWeights(weights))
        ce = ctx.loss_fn(logits, y_v)
        loss = ce + self.reg_scale * self.kl_to_prior() if self.reg_type == "kl" else ce
        leaves = list(self.alpha.values())
        for a, g in zip(leaves, torch.autograd.grad(loss, leaves)):
            a.grad = g
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return batch_metrics(ce, logits, y_v)

    # ----- what the distribution looks like ----------------------------------------------------------
    def op_probabilities(self) -> dict[str, torch.Tensor]:
        """The Dirichlet mean per row."""
        with torch.no_grad():
            out = {}
            for n, a in self.alpha.items():
                c = concentration(a)
                out[n] = c / c.sum(dim=-1, keepdim=True)
            return out

    def mode_probabilities(self) -> dict[str, torch.Tensor]:
        return self.op_probabilities()

    def sample_probabilities(self, k: int, generator: torch.Generator) -> list[dict[str, torch.Tensor]]:
        """k Dirichlet draws of the op weights (already per-row probabilities)."""
        with torch.no_grad():
            conc = {n: concentration(a).to(generator.device) for n, a in self.alpha.items()}
            return [{n: dirichlet_rsample(c, generator) for n, c in conc.items()} for _ in range(int(k))]

    def extra_metrics(self) -> dict[str, float]:
        """Mean total concentration per edge: grows as the distribution sharpens (prior: number of ops)."""
        with torch.no_grad():
            sums = torch.cat([concentration(a).sum(dim=-1) for a in self.alpha.values()])
            return {"concentration_total": float(sums.mean())}

    def state_dict(self) -> dict[str, Any]:
        return alpha_state(self.alpha, self.optimizer, self.generator)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        load_alpha_state(self.alpha, self.optimizer, self.generator, state)
