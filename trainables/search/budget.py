"""A budget on the searched architecture's cost, for every method through the one probabilities contract.

    cost: {metric: latency, device: pixel3, budget: 14.0}     # or {metric: params, budget: 0.8}, flops, lut: PATH
    # mode: penalty (default) | lagrangian;  weight: the penalty's lambda (or the dual variable's start);
    # dual_lr: the dual-ascent step of the lagrangian

The expected cost `E[cost]` of the weights a method feeds the supernet (`search_spaces.cost_model`: softmax for the
DARTS family, the Gaussian draw for BaLeNAS — per Monte-Carlo sample, as its loss —, the Dirichlet draw for DrNAS,
the Gumbel draw for SNAS and GDAS) is differentiable in the architecture parameters, so the loop adds a term to
every loss whose forward weights carry gradients: the architecture step's validation loss for most methods, the
weight step's loss for SNAS (whose architecture gradient comes from it). The term has no gradient with respect to
the network weights, so the weight step is unchanged. No method is named here.

- penalty: `weight * max(0, E/budget - 1)` (a hinge: no pull once under budget);
- lagrangian: `nu * (E/budget - 1)` with `nu >= 0` raised by dual ascent after each architecture step,
  `nu <- max(0, nu + dual_lr * (E/budget - 1))` (device tensors: no host sync), starting at `weight`.

Each epoch row records `cost_expected` (of the distribution's op probabilities), `cost_budget`, `cost_dual` (the
lagrangian's nu), and `cost_argmax` (the argmax architecture's cost from the source: the table, the measured LUT,
or the exact params/FLOPs), in the model's unit.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from search_spaces.space import ArchWeights, SearchSpace


class CostConstraint(BaseModel):
    """The `cost:` block of a search config or sweep spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: Literal["latency", "params", "flops"]
    budget: float = Field(gt=0)
    device: str | None = None
    lut: str | None = None
    mode: Literal["penalty", "lagrangian"] = "penalty"
    weight: float = Field(1.0, ge=0)
    dual_lr: float = Field(0.05, gt=0)

    @model_validator(mode="after")
    def _source(self) -> CostConstraint:
        if self.metric == "latency" and (self.device is None) == (self.lut is None):
            raise ValueError("a latency budget needs exactly one of `device` (a packaged table's device, e.g. pixel3) "
                             "or `lut` (a table measured with `balenas latency measure`)")
        if self.metric != "latency" and (self.device is not None or self.lut is not None):
            raise ValueError(f"`device` and `lut` apply to metric 'latency', not {self.metric!r}")
        return self

    @field_validator("lut")
    @classmethod
    def _lut_exists(cls, v: str | None) -> str | None:
        if v is not None and not Path(v).is_file():
            raise ValueError("latency lookup table not found (measure one with `balenas latency measure`)")
        return v

    def true_cost(self, space: str, dataset: str) -> tuple[Callable[[str], float], str]:
        """(the source's own cost of one architecture in the budget's unit, the source's label: `device:<d>`,
        `lut:<path>` or `parts:<metric>`), built once per process (`search_spaces.cost_model.source_cost`)."""
        return _source(space, self.metric, self.device, self.lut, dataset)

    def check_space(self, space: SearchSpace) -> None:
        """A ValueError naming `cost.device` for a device the space's latency source does not know."""
        if self.device is not None:
            from search_spaces.costs import check_devices

            check_devices(space, [self.device], field="cost.device")


@functools.lru_cache(maxsize=16)
def _source(space: str, metric: str, device: str | None, lut: str | None, dataset: str):
    from search_spaces.cost_model import source_cost

    return source_cost(space, metric, device=device, lut=lut, dataset=dataset)


@functools.lru_cache(maxsize=16)
def _fitted(space: str, metric: str, device: str | None, lut: str | None, dataset: str):
    """The fitted cost model, once per process (Tune reuses a worker for several trials of one sweep)."""
    from search_spaces.cost_model import cost_model

    return cost_model(space, metric, device=device, lut=lut, dataset=dataset)


def _carries_grad(weights: ArchWeights) -> bool:
    return any(w.requires_grad for w in weights.values())


class BudgetTerm:
    """The cost term of one search run: the space's additive cost model on the run's device, and the dual."""

    def __init__(self, constraint: CostConstraint, space: SearchSpace, dataset: str, device: torch.device):
        self.constraint = constraint
        fitted = _fitted(space.name, constraint.metric, constraint.device, constraint.lut, dataset)
        self.model = dataclasses.replace(fitted, per_option=dict(fitted.per_option)).to(device)
        self.dual = torch.tensor(float(constraint.weight), device=device)
        self._last: ArchWeights | torch.Tensor | None = None

    def term(self, weights: ArchWeights) -> torch.Tensor:
        """The term added to a loss whose forward used `weights` (remembered for the dual step)."""
        self._last = weights
        excess = self.model.expected(weights) / self.constraint.budget - 1.0
        if self.constraint.mode == "penalty":
            return self.constraint.weight * torch.relu(excess)
        return self.dual * excess

    def of_archs(self, archs: list[str]) -> torch.Tensor:
        """The term of each discrete architecture from the source's own cost (the table, the LUT, the exact
        params/FLOPs; the additive model where the source has none), a [k] tensor on the run's device without
        gradient: for methods that estimate the budget's gradient by sampling (`cost_by_sampling`). Their mean
        excess feeds the next `dual_step`."""
        cost = torch.tensor([self._true_cost(a) for a in archs], dtype=torch.float32, device=self.dual.device)
        excess = cost / self.constraint.budget - 1.0
        self._last = excess.mean()
        if self.constraint.mode == "penalty":
            return self.constraint.weight * torch.relu(excess)
        return self.dual * excess

    def _true_cost(self, arch: str) -> float:
        cache = self.__dict__.setdefault("_true", {})
        if arch not in cache:
            cache[arch] = float(self.model.exact(arch)) if self.model.exact else self.model.of(arch)
        return cache[arch]

    def add_to(self, loss: torch.Tensor, weights: ArchWeights) -> torch.Tensor:
        """`loss` plus the term when `weights` carry gradients to architecture parameters; else `loss`."""
        return loss + self.term(weights) if _carries_grad(weights) else loss

    def dual_step(self) -> None:
        """Dual ascent after an architecture step (lagrangian only), on the last weights' expected cost."""
        if self.constraint.mode != "lagrangian" or self._last is None:
            return
        with torch.no_grad():
            if isinstance(self._last, torch.Tensor):  # the mean excess of sampled architectures (`of_archs`)
                excess = self._last
            else:
                excess = (self.model.expected({g: w.detach() for g, w in self._last.items()})
                          / self.constraint.budget - 1)
            self.dual.add_(self.constraint.dual_lr * excess).clamp_(min=0.0)
        self._last = None

    def metrics(self, probs: ArchWeights, argmax: str | None) -> dict[str, float]:
        with torch.no_grad():
            out = {"cost_expected": float(self.model.expected({g: p.detach() for g, p in probs.items()})),
                   "cost_budget": float(self.constraint.budget), "cost_dual": float(self.dual)}
        if argmax is not None:
            out["cost_argmax"] = self._true_cost(argmax)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"dual": self.dual.detach().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dual.copy_(state["dual"])
