"""The search-space interface every method and the search loop program against, and its registry.

A space describes its architecture parameters as named groups of categorical choices
(`arch_shapes[name] = (rows, options)`: one categorical per row), builds a supernet whose forward takes
per-group weights, turns per-choice scores into a discrete architecture, and builds derived networks.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

import torch
from torch import nn

# name -> ("module:attribute", keyword arguments); imported lazily so that a space's dependencies load only
# when it is used.
_SPACES: dict[str, tuple[str, dict]] = {
    "nb201": ("search_spaces.nb201.space:NB201Space", {}),
    "nb1shot1-1": ("search_spaces.nb1shot1.space:NB1Shot1Space", {"number": 1}),
    "nb1shot1-2": ("search_spaces.nb1shot1.space:NB1Shot1Space", {"number": 2}),
    "nb1shot1-3": ("search_spaces.nb1shot1.space:NB1Shot1Space", {"number": 3}),
    "darts": ("search_spaces.darts.space:DartsSpace", {}),
}

ArchWeights = Mapping[str, torch.Tensor]
ActiveOps = Mapping[str, Sequence[Sequence[int]]]


class SearchSpace(ABC):
    """One cell search space: shapes of its choices, its supernet, discretisation and derived networks."""

    name: str
    #: group name -> (rows, options); each row is one categorical choice (e.g. NB201: {"edges": (6, 5)}).
    arch_shapes: Mapping[str, tuple[int, int]]
    #: option names per group, for labels in metrics and plots.
    option_names: Mapping[str, Sequence[str]]
    #: name of the ground-truth benchmark (`search_spaces.benchmarks.open_benchmark`), or None.
    benchmark_name: str | None = None

    @abstractmethod
    def supernet(self, C: int, N: int, num_classes: int) -> nn.Module:
        """A supernet whose `forward(x, weights: ArchWeights, active: ActiveOps | None)` returns logits."""

    @abstractmethod
    def discretize(self, scores: ArchWeights) -> str:
        """Per-choice scores (any real numbers; larger = preferred) -> canonical architecture string."""

    @abstractmethod
    def network(self, arch: str, num_classes: int = 10, C: int = 16, N: int = 5) -> nn.Module:
        """The derived (evaluation) network of a canonical architecture string."""

    @abstractmethod
    def canonical(self, arch: str) -> str:
        """Validate and normalise an architecture string (ValueError naming the bad token)."""

    def one_hot(self, arch: str, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Scores whose discretisation is `arch` (used to evaluate a discrete architecture in the supernet)."""
        raise NotImplementedError(f"space {self.name!r} does not encode architectures as one-hot scores")


def available_spaces() -> list[str]:
    return sorted(_SPACES)


def get_space(name: str) -> SearchSpace:
    """The search space registered under `name` (e.g. 'nb201', 'nb1shot1-2')."""
    if name not in _SPACES:
        raise ValueError(f"unknown search space {name!r}; available: {', '.join(available_spaces())}")
    target, kwargs = _SPACES[name]
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)(**kwargs)


def register_space(name: str, target: str, **kwargs) -> None:
    """Register a space as 'module:attribute' (a SearchSpace subclass or factory) called with `kwargs`."""
    _SPACES[name] = (target, kwargs)
