"""The search-space interface every method and the search loop program against, and its registry.

A space describes its architecture parameters as named groups of categorical choices
(`arch_shapes[name] = (rows, options)`: one categorical per row), builds a supernet whose forward takes
per-group weights, turns per-row probabilities into a discrete architecture (`discretize`, which owns every
rule beyond a per-row argmax), builds derived networks, and owns its specifics: network sizes for the search
and for proxies, labels, published reference rows, an optional picture of an architecture and optional
enumeration of the whole space. Generic layers ask the space; they never branch on its name.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:  # only for annotations: a space imports neither pandas nor matplotlib to be built
    import pandas as pd
    from matplotlib.figure import Figure

# name -> ("module:attribute", keyword arguments); imported lazily so that a space's dependencies load only
# when it is used. The key is the space's `name`: `get_space` sets it on the space it builds.
_SPACES: dict[str, tuple[str, dict]] = {
    "nb201": ("search_spaces.nb201.space:NB201Space", {}),
    "nb1shot1-1": ("search_spaces.nb1shot1.space:NB1Shot1Space", {"number": 1}),
    "nb1shot1-2": ("search_spaces.nb1shot1.space:NB1Shot1Space", {"number": 2}),
    "nb1shot1-3": ("search_spaces.nb1shot1.space:NB1Shot1Space", {"number": 3}),
    "darts": ("search_spaces.darts.space:DartsSpace", {}),
}

#: the space a config or spec uses when it names none.
DEFAULT_SPACE = "nb201"

ArchWeights = Mapping[str, torch.Tensor]
ActiveOps = Mapping[str, Sequence[Sequence[int]]]


# ----- the optional latency decomposition (`search_spaces.latency_lut`) ----------------------------------------
@dataclass(frozen=True)
class LatencyPart:
    """One timed piece of a network: `key` (unique in the space's decomposition), `kind` ('fixed' or 'op'),
    a factory of the module, and the per-image shape of each of its inputs (the batch is added when timed)."""

    key: str
    kind: str
    make: Callable[[], nn.Module]
    input_shapes: tuple[tuple[int, ...], ...]


class Add(nn.Module):
    """The sum of two tensors: a cell's node sums, as a module so that a latency table can time it alone."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


def record_shapes(net: nn.Module, image_size: int, inputs: Mapping[str, nn.Module] | None = None,
                  outputs: Mapping[str, nn.Module] | None = None) -> dict[str, tuple[int, ...]]:
    """Per-image shapes seen in one eval forward of a zero image: of the first input of each module in `inputs`
    and of the output of each in `outputs` (first call each), keyed as given. How a space's `latency_parts` takes
    its shapes from a real network instead of restating the network's arithmetic."""
    shapes: dict[str, tuple[int, ...]] = {}

    def before(key):
        def hook(module, args):
            shapes.setdefault(key, tuple(args[0].shape[1:]))
        return hook

    def after(key):
        def hook(module, args, out):
            shapes.setdefault(key, tuple(out.shape[1:]))
        return hook

    handles = [m.register_forward_pre_hook(before(k)) for k, m in (inputs or {}).items()]
    handles += [m.register_forward_hook(after(k)) for k, m in (outputs or {}).items()]
    was_training = net.training
    try:
        with torch.no_grad():
            first = next(net.parameters(), None)
            net.eval()(torch.zeros(1, 3, image_size, image_size, device=None if first is None else first.device))
    finally:
        net.train(was_training)
        for h in handles:
            h.remove()
    return shapes


class SearchSpace(ABC):
    """One cell search space: shapes of its choices, its supernet, discretisation, derived networks, and
    the specifics that generic code asks for (sizes, labels, reference rows, pictures, enumeration)."""

    name: str
    #: group name -> (rows, options); each row is one categorical choice (e.g. NB201: {"edges": (6, 5)}).
    arch_shapes: Mapping[str, tuple[int, int]]
    #: option names per group, for labels in metrics and plots.
    option_names: Mapping[str, Sequence[str]]
    #: name of the ground-truth benchmark (`search_spaces.benchmarks.open_benchmark`), or None.
    benchmark_name: str | None = None
    #: the size keywords of `supernet` and their search defaults (e.g. NB201 {"C": 16, "N": 5}).
    search_size: ClassVar[Mapping[str, int]] = {}
    #: the size keywords of `network` and the defaults of the networks that proxies score.
    proxy_size: ClassVar[Mapping[str, int]] = {}
    #: other keywords `network` takes (e.g. DARTS' "auxiliary", "imagenet" for final training); none by default.
    network_extras: ClassVar[tuple[str, ...]] = ()
    #: search-config defaults of this space where they differ from the generic ones (keys of
    #: `trainables.search.config.SearchConfig`, e.g. DARTS' weight decay 3e-4); a config's own keys win.
    search_defaults: ClassVar[Mapping[str, Any]] = {}

    # ----- what every space implements ----------------------------------------------------------------
    @abstractmethod
    def supernet(self, num_classes: int, **size: int) -> nn.Module:
        """A supernet whose `forward(x, weights: ArchWeights, active: ActiveOps | None)` returns logits;
        `size` holds keys of `search_size` (missing ones take its defaults)."""

    @abstractmethod
    def discretize(self, probs: ArchWeights) -> str:
        """Per group, a [rows, options] tensor of per-row probabilities (rows sum to 1; the same meaning
        for every method) -> canonical architecture string. Ties break towards the lower index."""

    @abstractmethod
    def network(self, arch: str, num_classes: int = 10, **size: int) -> nn.Module:
        """The derived (evaluation) network of a canonical architecture string; `size` holds keys of
        `proxy_size` (missing ones take its defaults) and of `network_extras`. A network built with an
        auxiliary head returns (logits, aux_logits) in training mode; one with drop path has a float
        attribute `drop_path_prob` (0 = off, never applied in eval mode)."""

    @abstractmethod
    def canonical(self, arch: str) -> str:
        """Validate and normalise an architecture string (ValueError naming the bad token)."""

    # ----- optional, with generic defaults -------------------------------------------------------------
    def one_hot(self, arch: str, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Supernet weights that compute the discrete `arch` (one-hot rows, or multi-hot where a space picks
        several options of a row); their discretisation is `arch`."""
        raise NotImplementedError(f"space {self.name!r} does not encode architectures as one-hot weights")

    def expected_selection(self, probs: ArchWeights) -> ArchWeights:
        """How much of each (row, option) the space's discretisation keeps in expectation, differentiable in
        `probs` (per-row probabilities, or `one_hot` of an architecture, which must come back unchanged): the
        weights of an additive cost model (`search_spaces.cost_model`). Default: `probs` itself (one option per
        row, every row kept, as NB201)."""
        return dict(probs)

    def row_names(self, group: str) -> list[str]:
        """Labels of the rows (categorical choices) of a group, for plots; default 'group[i]'."""
        rows, _ = self.arch_shapes[group]
        return [f"{group}[{i}]" for i in range(rows)]

    def reference_rows(self, dataset: str) -> pd.DataFrame:
        """Published results that apply to this space and data set, in the long row format of results tables
        (`search_spaces.benchmarks.published.ROW_COLUMNS`); empty where none are published."""
        import pandas as pd

        from search_spaces.benchmarks.published import ROW_COLUMNS

        return pd.DataFrame(columns=ROW_COLUMNS)

    def trained_reference(self, dataset: str) -> pd.DataFrame:
        """Published test errors (%) of this space's architectures trained from scratch on `dataset`, for the
        final-training report (`search_spaces.benchmarks.published.TRAINED_COLUMNS`); empty where none are
        published (a space with a ground-truth table is compared against the table instead)."""
        import pandas as pd

        from search_spaces.benchmarks.published import TRAINED_COLUMNS

        return pd.DataFrame(columns=TRAINED_COLUMNS)

    def draw(self, arch: str) -> Figure | None:
        """A picture of an architecture (e.g. DARTS' normal and reduction cells); None where there is none."""
        return None

    def enumerate(self) -> list[str]:
        """Every architecture of the space, canonical; a ValueError where enumeration does not apply."""
        raise ValueError(f"space {self.name!r} cannot be enumerated; pass an architecture list instead")

    def count(self) -> int | None:
        """How many architectures `enumerate` lists, without listing them (a space with a closed form overrides
        this; listing NB-1shot1's space 3 takes seconds); None where enumeration does not apply."""
        try:
            return len(self.enumerate())
        except ValueError:
            return None

    # ----- size keywords ------------------------------------------------------------------------------
    def sizes(self, kind: str, given: Mapping[str, Any] | None = None, *, field: str = "") -> dict[str, int]:
        """`search_size` or `proxy_size` (`kind` = 'search' | 'proxy') updated with `given`; a key the space
        does not take, or a value that is not an integer >= 1, is a ValueError naming `<field>.<key>`."""
        defaults = {"search": self.search_size, "proxy": self.proxy_size}[kind]
        out = dict(defaults)
        for key, value in (given or {}).items():
            where = f"{field}.{key}" if field else key
            if key not in defaults:
                raise ValueError(f"{where}: space {self.name!r} takes no size key {key!r} (got {value!r}); its "
                                 f"{kind} size keys: {', '.join(defaults) or '(none)'}")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{where}: must be an integer >= 1 (got {value!r})")
            out[key] = value
        return out


def available_spaces() -> list[str]:
    return sorted(_SPACES)


def get_space(name: str) -> SearchSpace:
    """The search space registered under `name` (e.g. 'nb201', 'nb1shot1-2')."""
    if name not in _SPACES:
        raise ValueError(f"unknown search space {name!r}; available: {', '.join(available_spaces())}")
    target, kwargs = _SPACES[name]
    module, _, attr = target.partition(":")
    space = getattr(importlib.import_module(module), attr)(**kwargs)
    space.name = name  # the registry key is the space's name (one spelling, here)
    return space


def register_space(name: str, target: str, **kwargs) -> None:
    """Register a space as 'module:attribute' (a SearchSpace subclass or factory) called with `kwargs`."""
    _SPACES[name] = (target, kwargs)
