"""NAS-Bench-201 as a `SearchSpace`: one group of 6 edges x 5 ops shared by all cells."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from search_spaces.nb201.encoding import NUM_EDGES, all_architectures, canonical, to_string, to_tuple
from search_spaces.nb201.networks import NB201SuperNet, network
from search_spaces.nb201.ops import OPS
from search_spaces.space import ArchWeights, SearchSpace

#: published NB201 results (one source per row; sources and checks in its `source`, `where`, `checked` columns).
PUBLISHED_CSV = Path(__file__).with_name("published.csv")
#: the edges in the benchmark's order (search_spaces.nb201.encoding.EDGES): node <- input node.
EDGE_LABELS = ("1←0", "2←0", "2←1", "3←0", "3←1", "3←2")


class NB201Space(SearchSpace):
    name = "nb201"
    arch_shapes = {"edges": (NUM_EDGES, len(OPS))}
    option_names = {"edges": OPS}
    benchmark_name = "nb201"
    # NB201's search and benchmark networks (Dong & Yang, ICLR 2020): C=16, N=5 cells per stage.
    search_size: ClassVar = {"C": 16, "N": 5}
    proxy_size: ClassVar = {"C": 16, "N": 5}

    def supernet(self, num_classes: int, **size: int) -> nn.Module:
        return NB201SuperNet(num_classes=num_classes, **self.sizes("search", size))

    def discretize(self, probs: ArchWeights) -> str:
        edges = probs["edges"]
        if tuple(edges.shape) != (NUM_EDGES, len(OPS)):
            raise ValueError(f"NB201 probabilities must have shape {(NUM_EDGES, len(OPS))}, got "
                             f"{tuple(edges.shape)}")
        return to_string(edges.detach().argmax(dim=-1).cpu().tolist())

    def network(self, arch: str, num_classes: int = 10, **size: int) -> nn.Module:
        return network(arch, num_classes=num_classes, **self.sizes("proxy", size))

    def canonical(self, arch: str) -> str:
        return canonical(arch)

    def one_hot(self, arch: str, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        idx = torch.tensor(to_tuple(arch), device=device)
        return {"edges": torch.nn.functional.one_hot(idx, len(OPS)).float()}

    def row_names(self, group: str) -> list[str]:
        return list(EDGE_LABELS) if group == "edges" else super().row_names(group)

    def enumerate(self) -> list[str]:
        return all_architectures()

    def latency_parts(self, num_classes: int, image_size: int, **size: int):
        """Timed parts of the derived networks (`search_spaces.latency_lut`): ops per stage, fixed parts."""
        from search_spaces.nb201.latency_parts import latency_parts

        return latency_parts(num_classes, image_size, **self.sizes("proxy", size))

    def latency_counts(self, arch: str, num_classes: int, image_size: int, *, live_only: bool = False,
                       **size: int) -> dict[str, int]:
        from search_spaces.nb201.latency_parts import latency_counts

        return latency_counts(self.canonical(arch), num_classes, image_size, **self.sizes("proxy", size),
                              live_only=live_only)

    def reference_rows(self, dataset: str):
        """Published NB201 results (Dong & Yang 2020, DrNAS, ...) over NB201's table columns; each row's
        source says which data set its search ran on (most searched on CIFAR-10)."""
        from search_spaces.benchmarks.published import published_rows
        from search_spaces.nb201.benchmark import NB201Benchmark

        return published_rows(PUBLISHED_CSV, NB201Benchmark.report_columns)
