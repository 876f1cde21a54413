"""BaLeNAS (Zhang et al., AAAI 2022, "BaLeNAS: Differentiable Architecture Search via the Bayesian
Learning Rule"): every architecture parameter is Gaussian, alpha ~ N(mu, 1/(N*s + lambda)), and (mu, s) are
learned by natural-gradient variational inference in its Variational-Adam form (`vadam.Vadam`).

Each architecture step draws `mc_samples` alphas, evaluates the validation loss with softmax(alpha) per
edge for each (a fresh graph per sample), and feeds the mean gradient and mean squared gradient to Vadam.
N is the size of the architecture (validation) split unless `num_data` says otherwise. `balenas-v2` takes
DARTS' unrolled second-order gradient at each sampled alpha.

The weight step uses softmax of a fresh posterior sample (`weight_step_sample`, the design's "softmax of
a sample in each forward"); set it False to train the weights at softmax(mu). Op probabilities and the
most likely architecture are those of the mean, softmax(mu) (BaLeNAS discretises on mu).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from pydantic import Field, model_validator

from trainables.methods.arch_params import generator_state, init_alpha, restore_generator
from trainables.methods.arch_step import arch_gradients, softmax_weights
from trainables.methods.base import ArchDistribution, ArchStepContext, EdgeWeights
from trainables.methods.params import Betas, Count, MethodParams, NonNegative, Positive, SecondOrderParams
from trainables.methods.vadam import Vadam


class BaLeNASParams(MethodParams):
    """Vadam on (mu, s): lr and betas as DARTS' Adam; prior precision lambda; initial precision s0 (>= lambda);
    N = `num_data` (default: the validation split's size); `mc_samples` alpha draws per step."""

    arch_lr: Positive = 3e-4
    betas: Betas = (0.5, 0.999)
    prior_precision: NonNegative = 1.0
    init_precision: Positive = 1.0
    num_data: Count | None = None
    mc_samples: Count = 1
    init_scale: NonNegative = 1e-3
    weight_step_sample: bool = Field(True, strict=True)

    @model_validator(mode="after")
    def _precisions(self) -> BaLeNASParams:
        if self.init_precision < self.prior_precision:
            raise ValueError(f"init_precision ({self.init_precision}) must be >= prior_precision "
                             f"({self.prior_precision})")
        return self


class BaLeNAS(ArchDistribution):
    """First-order BaLeNAS."""

    Params: ClassVar = BaLeNASParams
    second_order: ClassVar[bool] = False

    def __init__(self, space, params=None, *, num_valid: int, device="cpu", seed: int = 0):
        super().__init__(space, params, num_valid=num_valid, device=device, seed=seed)
        p = self.params
        num_data = self.num_valid if p.num_data is None else p.num_data
        if num_data < 1:
            raise ValueError(f"method {self.name!r}: num_data (default: the validation split's size) must be "
                             f">= 1, got {num_data}")
        self.mc_samples = p.mc_samples
        self.r = p.finite_diff_r if self.second_order else 0.0
        self.names = list(space.arch_shapes)
        self.mu = init_alpha(space, p.init_scale, self.generator, self.device)
        self.optimizer = Vadam([self.mu[n] for n in self.names], num_data=num_data, lr=p.arch_lr, betas=p.betas,
                               prior_precision=p.prior_precision, init_precision=p.init_precision)

    # ----- posterior ------------------------------------------------------------------------------
    def posterior_precision(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, self.optimizer.precision()))

    def posterior_std(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, self.optimizer.std()))

    def _draw(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, self.optimizer.sample(generator)))

    # ----- the loop's calls ----------------------------------------------------------------------
    def weights_for_weight_step(self) -> EdgeWeights:
        with torch.no_grad():
            alpha = self._draw(self.generator) if self.params.weight_step_sample else self.mu
            return EdgeWeights(softmax_weights(alpha))

    def update(self, ctx: ArchStepContext) -> dict[str, torch.Tensor]:
        labels = ctx.valid_batch[1]

        def grad_fn(leaves: list[torch.Tensor]):
            grads, loss, logits = arch_gradients(ctx, leaves, self.names, self.second_order, self.r)
            acc = (logits.argmax(dim=-1) == labels).float().mean()
            return grads, (loss.float(), acc)

        aux = self.optimizer.step(grad_fn, self.generator, self.mc_samples)
        n = float(len(aux))
        return {"arch_loss": sum(a[0] for a in aux) / n, "arch_acc": sum(a[1] for a in aux) / n}

    # ----- what the distribution looks like ----------------------------------------------------------
    def op_probabilities(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return softmax_weights(self.mu)

    def mode_probabilities(self) -> dict[str, torch.Tensor]:
        return self.op_probabilities()

    def sample_probabilities(self, k: int, generator: torch.Generator) -> list[dict[str, torch.Tensor]]:
        """k draws of alpha from the posterior N(mu, 1/(N*s + lambda)), each as softmax(alpha) per row."""
        with torch.no_grad():
            std = self.posterior_std()
            out = []
            for _ in range(int(k)):
                draw = {}
                for n in self.names:
                    mu = self.mu[n].to(generator.device)
                    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
                    draw[n] = torch.softmax(mu + eps * std[n].to(mu.device), dim=-1)
                out.append(draw)
            return out

    def extra_metrics(self) -> dict[str, float]:
        with torch.no_grad():
            std = torch.cat([s.flatten() for s in self.optimizer.std()])
            prec = torch.cat([p.flatten() for p in self.optimizer.precision()])
            values = torch.stack([std.mean(), std.min(), std.max(), prec.mean()]).tolist()
        return dict(zip(("posterior_std_mean", "posterior_std_min", "posterior_std_max",
                         "posterior_precision_mean"), values))

    def state_dict(self) -> dict[str, Any]:
        return {"mu": {k: v.clone() for k, v in self.mu.items()}, "vadam": self.optimizer.state_dict(),
                "generator": generator_state(self.generator)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            for k, v in state["mu"].items():
                self.mu[k].copy_(v)
        self.optimizer.load_state_dict(state["vadam"])
        restore_generator(self.generator, state["generator"])


class BaLeNASV2Params(BaLeNASParams, SecondOrderParams):
    """BaLeNAS' settings plus the unrolled hypergradient's finite-difference radius."""


class BaLeNASV2(BaLeNAS):
    """Second-order BaLeNAS: DARTS' unrolled hypergradient at each sampled alpha."""

    Params: ClassVar = BaLeNASV2Params
    second_order: ClassVar[bool] = True
