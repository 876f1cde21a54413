"""Variational Adam (Vadam): the Bayesian learning rule for a diagonal Gaussian q = N(mu, 1/(N*s + lambda)).

Khan et al., "Fast and Scalable Bayesian Deep Learning by Weight-Perturbation in Adam", ICML 2018, and the
authors' PyTorch `Vadam` (emtiyaz/vadam, pytorch/vadam/optimizers.py), whose update this follows exactly:
  s_0 = (prec_init - lambda) / N,  m_0 = 0
  per step: for each MC sample a_i = mu + eps_i / sqrt(N*s + lambda), eps_i ~ N(0, I):
            g_i = grad of the (data-averaged) loss at a_i;   g = mean_i g_i,  g2 = mean_i g_i**2
  m <- beta1*m + (1-beta1)*(g + (lambda/N)*mu)
  s <- beta2*s + (1-beta2)*g2
  mu <- mu - lr * (m / (1-beta1^t)) / (sqrt(s / (1-beta2^t)) + lambda/N)
The posterior precision is N*s + lambda (the raw s, without bias correction). The loss must be the average
over the data, (1/M) sum_i -log p(y_i | a), with N the size of the data set it is drawn from.

With no noise, mu's update is Adam with the prior as an L2 term on the gradient (weight decay lambda/N) and
eps = lambda/N, except that s averages g**2 of the *data* gradient (without the prior term) and starts at
(prec_init - lambda)/N; with lambda = 0 and prec_init = 0 it is exactly Adam with eps = 0.
Our own implementation (plain tensors, not a torch.optim.Optimizer) so that the noise comes from the
caller's generator and each MC sample's gradient is taken on its own fresh graph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

#: grad_fn(samples) -> (gradient per sample tensor, auxiliary output); samples are fresh leaf tensors.
GradFn = Callable[[list[torch.Tensor]], tuple[Sequence[torch.Tensor], Any]]


class Vadam:
    """Vadam over the mean tensors `params` (updated in place; they need no `requires_grad`)."""

    def __init__(self, params: Sequence[torch.Tensor], num_data: int, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), prior_precision: float = 1.0,
                 init_precision: float = 1.0):
        if not lr > 0:
            raise ValueError(f"Vadam: lr must be > 0, got {lr!r}")
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ValueError(f"Vadam: betas must be two numbers in [0, 1), got {betas!r}")
        if not prior_precision >= 0:
            raise ValueError(f"Vadam: prior_precision must be >= 0, got {prior_precision!r}")
        if not init_precision >= prior_precision:
            raise ValueError(f"Vadam: init_precision ({init_precision!r}) must be >= prior_precision "
                             f"({prior_precision!r}) so that s starts non-negative")
        if isinstance(num_data, bool) or int(num_data) != num_data or num_data < 1:
            raise ValueError(f"Vadam: num_data must be an integer >= 1, got {num_data!r}")
        self.params = list(params)
        self.num_data = int(num_data)
        self.lr = float(lr)
        self.betas = (float(betas[0]), float(betas[1]))
        self.prior_precision = float(prior_precision)
        self.init_precision = float(init_precision)
        s0 = (self.init_precision - self.prior_precision) / self.num_data
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.full_like(p, s0) for p in self.params]
        self.steps = 0

    # ----- the posterior --------------------------------------------------------------------------
    @property
    def prior_per_datum(self) -> float:
        """lambda / N: the prior's weight next to a data-averaged loss."""
        return self.prior_precision / self.num_data

    def precision(self) -> list[torch.Tensor]:
        """Posterior precision N*s + lambda per parameter."""
        return [self.num_data * s + self.prior_precision for s in self.exp_avg_sq]

    def std(self) -> list[torch.Tensor]:
        return [torch.rsqrt(p) for p in self.precision()]

    def sample(self, generator: torch.Generator) -> list[torch.Tensor]:
        """One draw mu + eps / sqrt(N*s + lambda), eps ~ N(0, I) from `generator` (detached tensors)."""
        out = []
        for mu, sd in zip(self.params, self.std()):
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            out.append(mu.detach() + eps * sd)
        return out

    # ----- the update -------------------------------------------------------------------------------
    def mc_gradients(self, grad_fn: GradFn, generator: torch.Generator | None, mc_samples: int = 1,
                     noise: bool = True) -> tuple[list[torch.Tensor], list[torch.Tensor], list[Any]]:
        """Mean gradient, mean squared gradient and the auxiliary outputs over `mc_samples` draws.

        Each draw is a new leaf tensor with its own graph: no gradient of one sample reaches another.
        `noise=False` evaluates at mu (the deterministic limit used to check the Adam equivalence).
        """
        if isinstance(mc_samples, bool) or int(mc_samples) != mc_samples or mc_samples < 1:
            raise ValueError(f"Vadam: mc_samples must be an integer >= 1, got {mc_samples!r}")
        if noise and generator is None:
            raise ValueError("Vadam: a torch.Generator is needed to draw the weight perturbation")
        g_sum = [torch.zeros_like(p) for p in self.params]
        g2_sum = [torch.zeros_like(p) for p in self.params]
        aux = []
        for _ in range(int(mc_samples)):
            draw = self.sample(generator) if noise else [p.detach().clone() for p in self.params]
            leaves = [d.requires_grad_(True) for d in draw]
            grads, out = grad_fn(leaves)
            aux.append(out)
            for gs, g2s, g in zip(g_sum, g2_sum, grads):
                g = g.detach()
                gs.add_(g)
                g2s.addcmul_(g, g)
        return [g / mc_samples for g in g_sum], [g2 / mc_samples for g2 in g2_sum], aux

    @torch.no_grad()
    def apply(self, grads: Sequence[torch.Tensor], grads_sq: Sequence[torch.Tensor]) -> None:
        """The Vadam update of m, s and mu from the MC estimates of E[g] and E[g**2]."""
        beta1, beta2 = self.betas
        self.steps += 1
        bc1 = 1.0 - beta1 ** self.steps
        bc2 = 1.0 - beta2 ** self.steps
        tl = self.prior_per_datum
        for mu, m, s, g, g2 in zip(self.params, self.exp_avg, self.exp_avg_sq, grads, grads_sq):
            m.mul_(beta1).add_(g + tl * mu, alpha=1.0 - beta1)
            s.mul_(beta2).add_(g2, alpha=1.0 - beta2)
            denom = (s / bc2).sqrt_().add_(tl)
            mu.addcdiv_(m, denom, value=-self.lr / bc1)

    def step(self, grad_fn: GradFn, generator: torch.Generator | None, mc_samples: int = 1,
             noise: bool = True) -> list[Any]:
        """One Vadam step; returns the auxiliary outputs of `grad_fn`, one per MC sample."""
        grads, grads_sq, aux = self.mc_gradients(grad_fn, generator, mc_samples, noise)
        self.apply(grads, grads_sq)
        return aux

    # ----- checkpoints --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"exp_avg": [m.clone() for m in self.exp_avg], "exp_avg_sq": [s.clone() for s in self.exp_avg_sq],
                "steps": self.steps}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if len(state["exp_avg"]) != len(self.params):
            raise ValueError(f"Vadam state holds {len(state['exp_avg'])} tensors, expected {len(self.params)}")
        with torch.no_grad():
            for dst, src in zip(self.exp_avg + self.exp_avg_sq, list(state["exp_avg"]) + list(state["exp_avg_sq"])):
                dst.copy_(src)
        self.steps = int(state["steps"])


def loss_gradients(loss_fn: Callable[[list[torch.Tensor]], torch.Tensor]) -> GradFn:
    """A `GradFn` from a loss of the samples: first-order gradients, the loss as auxiliary output."""
    def grad_fn(leaves: list[torch.Tensor]) -> tuple[Sequence[torch.Tensor], torch.Tensor]:
        loss = loss_fn(leaves)
        return torch.autograd.grad(loss, leaves), loss.detach()
    return grad_fn


__all__ = ["Vadam", "GradFn", "loss_gradients"]
