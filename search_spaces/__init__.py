"""What can be searched: operations, cells, supernets, derived networks, encodings, data and ground truth.

    from search_spaces import get_space, available_spaces
    space = get_space("nb201")          # a SearchSpace: supernet, discretize, network, sizes, ...

The space registry (`get_space`, `available_spaces`, `register_space`, `DEFAULT_SPACE`, `SearchSpace` and its
`ArchWeights` / `ActiveOps` types) loads on first use (it imports torch); the spaces are the subpackages `nb201`,
`nb1shot1`, `darts`, data sets `data`, ground truth `benchmarks` (`open_benchmark`).
"""

import importlib

_LAZY = {name: "space" for name in ("ActiveOps", "ArchWeights", "DEFAULT_SPACE", "SearchSpace", "available_spaces",
                                    "get_space", "register_space")}
_SUBPACKAGES = ("benchmarks", "costs", "darts", "data", "nb1shot1", "nb201")

__all__ = [*_LAZY, *_SUBPACKAGES]


def __getattr__(name: str):
    """Loaded on first use, so that encodings and benchmark look-ups do not pay for importing torch."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"search_spaces.{_LAZY[name]}"), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"search_spaces.{name}")
    raise AttributeError(f"module 'search_spaces' has no attribute {name!r}")
