"""NAS-Bench-201 as a `SearchSpace`: one group of 6 edges x 5 ops shared by all cells."""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.nb201.encoding import NUM_EDGES, canonical, to_string, to_tuple
from search_spaces.nb201.networks import NB201SuperNet, network
from search_spaces.nb201.ops import OPS
from search_spaces.space import ArchWeights, SearchSpace


class NB201Space(SearchSpace):
    name = "nb201"
    arch_shapes = {"edges": (NUM_EDGES, len(OPS))}
    option_names = {"edges": OPS}
    benchmark_name = "nb201"

    def supernet(self, C: int, N: int, num_classes: int) -> nn.Module:
        return NB201SuperNet(C=C, N=N, num_classes=num_classes)

    def discretize(self, scores: ArchWeights) -> str:
        edges = scores["edges"]
        if tuple(edges.shape) != (NUM_EDGES, len(OPS)):
            raise ValueError(f"NB201 scores must have shape {(NUM_EDGES, len(OPS))}, got {tuple(edges.shape)}")
        return to_string(edges.detach().argmax(dim=-1).cpu().tolist())

    def network(self, arch: str, num_classes: int = 10, C: int = 16, N: int = 5) -> nn.Module:
        return network(arch, num_classes=num_classes, C=C, N=N)

    def canonical(self, arch: str) -> str:
        return canonical(arch)

    def one_hot(self, arch: str, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        idx = torch.tensor(to_tuple(arch), device=device)
        return {"edges": torch.nn.functional.one_hot(idx, len(OPS)).float()}
