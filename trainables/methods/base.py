"""The one abstraction every search method implements: a distribution over architectures.

The search loop never knows which method runs. Per training step it asks the distribution for the edge
weights of the weight step (`weights_for_weight_step`), takes its SGD step on the training batch, and then,
every `update_interval` steps, calls `update(ctx)` with the validation batch. A distribution owns its
parameters, its optimizer and its randomness (`self.generator`, on the search device); everything it needs
to resume lives in `state_dict()`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from pydantic import ValidationError
from torch import nn

from search_spaces.space import ActiveOps, ArchWeights, SearchSpace
from trainables.methods.params import MethodParams
from trainables.runs.spec import validation_problems


@dataclass(frozen=True)
class EdgeWeights:
    """Weights for one supernet forward, and (optionally) the host-side list of ops worth computing.

    `active[group][row]` lists the option indices with non-zero weight; methods with sparse weights (GDAS,
    one-hot architectures) pass it so the supernet skips the rest. None = compute every op.
    """

    weights: ArchWeights
    active: ActiveOps | None = None


@dataclass
class ArchStepContext:
    """What an architecture update may use. Batches are already on the device and augmented as the loop
    decided; `forward(x, edge_weights)` runs the supernet under the loop's autocast/memory-format settings."""

    model: nn.Module
    forward: Callable[[torch.Tensor, EdgeWeights], torch.Tensor]
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    train_batch: tuple[torch.Tensor, torch.Tensor]
    valid_batch: tuple[torch.Tensor, torch.Tensor]
    weight_optimizer: torch.optim.Optimizer
    weight_lr: float
    step: int
    epoch: int
    total_epochs: int
    #: under a `cost:` budget, the budget's term of each of a list of discrete architectures from the source's own
    #: cost (table, measured LUT, exact params/FLOPs; not differentiable), a [k] tensor on the search device: what a
    #: method with `cost_by_sampling` optimises by sampling (e.g. UNAS' REINFORCE). None without a budget.
    budget_of_archs: Callable[[list[str]], torch.Tensor] | None = None


class ArchDistribution(ABC):
    """Base of every method. Subclasses set `Params`, implement the abstract methods, and are registered in
    `trainables.methods.registry`, whose key is their `name` (set on the class from the registry when it is
    defined). Hyper-parameters arrive as a dict, validated by the method's `Params` model, or as that model already
    validated (`self.params` is its instance): unknown names and bad values fail loudly."""

    #: the registry key (`trainables.methods.registry`), set from there: never written in a method's file
    name: ClassVar[str]
    #: the method's hyper-parameters: names, defaults and checks (`trainables.methods.params`).
    Params: ClassVar[type[MethodParams]] = MethodParams
    #: host synchronisations one search iteration needs by design (0: none; tests/trainables/test_host_syncs.py
    #: and benchmarks/gpu_check.py hold every method to this number)
    host_syncs_per_step: ClassVar[int] = 0
    #: False: under a budget, the loop adds the differentiable expected cost of the weights each forward uses to
    #: the loss (`trainables.search.budget`). True: the method takes the budget's gradient itself from sampled
    #: architectures' true costs (`ArchStepContext.budget_of_archs`), and the loop adds nothing.
    cost_by_sampling: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        from trainables.methods.registry import registered_name

        name = registered_name(cls)
        if name is not None:  # an unregistered subclass (a shared base, a test double) keeps its parent's name
            cls.name = name

    def __init__(self, space: SearchSpace, params: Mapping[str, Any] | MethodParams | None = None, *,
                 num_valid: int, device: torch.device | str = "cpu", seed: int = 0):
        self.space = space
        self.params = self.validate_params({} if params is None else params)
        self.num_valid = int(num_valid)
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed) + 1_000_003)

    # ----- hyper-parameters -------------------------------------------------------------------------
    @classmethod
    def validate_params(cls, params: Mapping[str, Any] | MethodParams) -> MethodParams:
        """The `Params` instance of a dict (an instance passes as it is: validated where it entered); one ValueError
        names the method and every bad hyper-parameter."""
        if type(params) is cls.Params:
            return params
        valid, found = cls.check_params(params)
        if valid is None:
            raise ValueError(f"method {cls.name!r}: " + "; ".join(f"{k}: {m}" if k else m for k, m in found))
        return valid

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> tuple[MethodParams | None, list[tuple[str, str]]]:
        """`params` validated once by the `Params` model: (the model, []) when valid, else (None, problems), each
        problem (dotted hyper-parameter name, or "" for the set as a whole; message with the bad value)."""
        try:
            return cls.Params.model_validate(dict(params)), []
        except ValidationError as err:
            allowed = ", ".join(cls.Params.model_fields) or "(none)"
            return None, [(p.path, f"unknown hyper-parameter (got {p.value!r}); allowed: {allowed}"
                           if p.kind == "extra_forbidden" else p.text) for p in validation_problems(err)]

    @property
    def update_interval(self) -> int:
        """The loop calls `update` once every this many weight steps (iDARTS' T inner steps)."""
        return 1

    # ----- what the loop calls ----------------------------------------------------------------------
    def on_epoch_start(self, epoch: int, total_epochs: int) -> None:  # noqa: B027 - optional hook
        """Schedules (temperatures) that change per epoch."""

    @abstractmethod
    def weights_for_weight_step(self) -> EdgeWeights:
        """Edge weights for the next weight step. Usually detached; a method trained on the training loss
        (SNAS) keeps their graph to its parameters, and its `update`, called right after the weight step,
        uses the gradient the loop's backward left there."""

    @abstractmethod
    def update(self, ctx: ArchStepContext) -> dict[str, torch.Tensor]:
        """One architecture step; returns 0-d tensors (no host sync), e.g. {"arch_loss": ..., "arch_acc": ...}."""

    # ----- what the distribution looks like ----------------------------------------------------------
    @abstractmethod
    def op_probabilities(self) -> dict[str, torch.Tensor]:
        """Per group, [rows, options] probabilities of each option (rows sum to 1)."""

    @abstractmethod
    def mode_probabilities(self) -> dict[str, torch.Tensor]:
        """Per group, [rows, options] per-row probabilities (rows sum to 1) of the most likely architecture:
        what `space.discretize` turns into `most_likely()`."""

    @abstractmethod
    def sample_probabilities(self, k: int, generator: torch.Generator) -> list[dict[str, torch.Tensor]]:
        """k independent draws from the learned distribution, each per group [rows, options] per-row
        probabilities (rows sum to 1; a categorical draw may give one-hot rows) for `space.discretize`."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: parameters, optimizer state, generator state."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...

    def extra_metrics(self) -> dict[str, float]:
        """Method-specific per-epoch summaries (e.g. BaLeNAS' posterior standard deviation)."""
        return {}

    # ----- derived, shared by all methods -------------------------------------------------------------
    def sample(self, k: int, generator: torch.Generator | None = None, seed: int | None = None) -> list[str]:
        """k architectures drawn from the distribution (the proxy stage's candidates)."""
        if generator is None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(0 if seed is None else int(seed))
        return [self.space.discretize(p) for p in self.sample_probabilities(int(k), generator)]

    def most_likely(self) -> str:
        return self.space.discretize(self.mode_probabilities())

    def entropy(self) -> float:
        """Mean categorical entropy (nats) over all choices of all groups."""
        total, count = 0.0, 0
        for p in self.op_probabilities().values():
            p = p.detach().double().clamp_min(1e-12)
            total += float(-(p * p.log()).sum())
            count += p.shape[0]
        return total / max(count, 1)

    def max_entropy(self) -> float:
        shapes = self.space.arch_shapes.values()
        return sum(r * math.log(o) for r, o in shapes) / max(sum(r for r, _ in shapes), 1)

