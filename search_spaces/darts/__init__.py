"""The DARTS search space (Liu et al., ICLR 2019): 8 ops, normal + reduction cells of 4 nodes and 14 edges,
top-2 inputs per node; the search supernet and the CIFAR / ImageNet evaluation networks.

Public API (stable names): `OPS`, `Genotype` (`.parse(text)`, `str()`, `.from_compact(obj)`,
`.to_compact()`), `DARTS_V1`, `DARTS_V2`, `network(genotype, num_classes=10, C=36, layers=20,
auxiliary=True, imagenet=False)`, `supernet(C=16, layers=8, num_classes=10)`,
`count_parameters(net, auxiliary=False)`. Genotypes import without torch; networks load on first use.
"""

import importlib

from search_spaces.darts.genotype import COMPACT_OPS, EDGES, NUM_EDGES, OPS, Genotype, canonical
from search_spaces.darts.published import DARTS_V1, DARTS_V2, PC_DARTS_CIFAR, PUBLISHED

_LAZY = {"network": "networks", "supernet": "networks", "count_parameters": "networks",
         "DartsNetwork": "networks", "DartsSuperNet": "networks", "DartsSpace": "space",
         "discretize": "discretize", "draw_genotype": "draw"}

__all__ = ["OPS", "COMPACT_OPS", "EDGES", "NUM_EDGES", "Genotype", "canonical", "DARTS_V1", "DARTS_V2",
           "PC_DARTS_CIFAR", "PUBLISHED", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"search_spaces.darts.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'search_spaces.darts' has no attribute {name!r}")
