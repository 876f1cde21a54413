"""NAS-Bench-201: the 4-node, 6-edge, 5-op cell space (Dong & Yang, ICLR 2020).

Public API (stable names): `OPS`, `all_architectures()`, `network(arch, num_classes=10, C=16, N=5)`.
"""

from search_spaces.nb201.encoding import EDGES, NUM_EDGES, all_architectures, canonical, to_string, to_tuple
from search_spaces.nb201.networks import NB201Network, NB201SuperNet, network
from search_spaces.nb201.ops import OPS
from search_spaces.nb201.space import NB201Space

__all__ = ["OPS", "EDGES", "NUM_EDGES", "all_architectures", "canonical", "to_string", "to_tuple",
           "network", "NB201Network", "NB201SuperNet", "NB201Space"]
