"""NAS-Bench-201: the 4-node, 6-edge, 5-op cell space (Dong & Yang, ICLR 2020).

Public API (stable names): `OPS`, `all_architectures()`, `network(arch, num_classes=10, C=16, N=5)`.
Encodings import without torch (benchmark look-ups stay fast); the networks load on first use.
"""

import importlib

from search_spaces.nb201.encoding import EDGES, NUM_EDGES, OPS, all_architectures, canonical, to_string, to_tuple

_LAZY = {"network": "networks", "NB201Network": "networks", "NB201SuperNet": "networks", "NB201Space": "space",
         "latency_table": "latency", "LatencyTable": "latency"}

__all__ = ["OPS", "EDGES", "NUM_EDGES", "all_architectures", "canonical", "to_string", "to_tuple", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"search_spaces.nb201.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'search_spaces.nb201' has no attribute {name!r}")
