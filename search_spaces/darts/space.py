"""The DARTS space as a `SearchSpace` (registered as 'darts'): groups "normal" and "reduce", each [14, 8].

Sizes: the search supernet is C=16 with 8 layers (DARTS' search); proxies score the same search-scale
network derived from a genotype (no auxiliary head). `network` also takes the evaluation extras
(`auxiliary`, `imagenet`) that final training passes (e.g. C=36, layers=20, auxiliary=True on CIFAR).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from search_spaces.darts.discretize import discretize
from search_spaces.darts.genotype import CELLS, EDGES, NUM_EDGES, OPS, Genotype, canonical, edge_index
from search_spaces.darts.networks import DartsNetwork, DartsSuperNet
from search_spaces.space import ArchWeights, SearchSpace

#: row labels: node <- input, with inputs c_{k-2} = 0, c_{k-1} = 1 and nodes 2..5.
EDGE_LABELS = tuple(f"{node + 2}←{source}" for node, source in EDGES)
_NETWORK_EXTRAS = ("auxiliary", "imagenet")
#: published test errors of DARTS-space architectures trained from scratch, one source per row.
PUBLISHED_TRAININGS = Path(__file__).with_name("published_final.csv")


class DartsSpace(SearchSpace):
    name = "darts"
    arch_shapes = {"normal": (NUM_EDGES, len(OPS)), "reduce": (NUM_EDGES, len(OPS))}
    option_names = {"normal": OPS, "reduce": OPS}
    benchmark_name = "nb301-zc"
    # DARTS' search network (Liu et al., ICLR 2019: C=16, 8 cells); proxies score that scale too.
    search_size: ClassVar = {"C": 16, "layers": 8}
    proxy_size: ClassVar = {"C": 16, "layers": 8}
    network_extras: ClassVar = _NETWORK_EXTRAS
    # DARTS' weight-training settings for the search (quark0/darts cnn/train_search.py: SGD 0.025 -> 0.001
    # cosine, momentum 0.9 without Nesterov, wd 3e-4, clip 5, batch 64, 50 epochs), where NB201's differ.
    search_defaults: ClassVar[Mapping[str, Any]] = {
        "epochs": 50, "batch_size": 64, "w_lr": 0.025, "w_lr_min": 0.001, "w_momentum": 0.9,
        "w_nesterov": False, "w_weight_decay": 3e-4, "grad_clip": 5.0}

    def supernet(self, num_classes: int = 10, **size: int) -> nn.Module:
        return DartsSuperNet(num_classes=num_classes, **self.sizes("search", size))

    def discretize(self, probs: ArchWeights) -> str:
        return str(discretize(probs))

    def network(self, arch: str, num_classes: int = 10, **size) -> nn.Module:
        extras = {k: size.pop(k) for k in _NETWORK_EXTRAS if k in size}
        extras.setdefault("auxiliary", False)
        return DartsNetwork(self.canonical(arch), num_classes=num_classes, **self.sizes("proxy", size), **extras)

    def canonical(self, arch: str) -> str:
        return canonical(arch)

    def one_hot(self, arch: str, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """1 at each chosen (edge, op), 0 elsewhere (unchosen edges are all-zero rows): as supernet weights
        they compute exactly the genotype's cells; their discretisation is the genotype."""
        g = Genotype.parse(self.canonical(arch))
        out = {}
        for name in CELLS:
            w = torch.zeros(NUM_EDGES, len(OPS))
            for k, (op, source) in enumerate(g.cell(name)):
                w[edge_index(k // 2, source), OPS.index(op)] = 1.0
            out[name] = w.to(device)
        return out

    def expected_selection(self, probs):
        """Per edge, its op probabilities without `none` (the derived cell never keeps `none`), renormalised and
        scaled by the chance that the edge is one of its node's two kept inputs, taken as min(1, 2 s_e / sum of s
        over the node's edges) with s_e the edge's strongest non-`none` probability (DARTS' ranking). A one-hot
        genotype (`one_hot`: kept edges one-hot, the others zero) comes back unchanged."""
        none = OPS.index("none")
        out = {}
        for group in CELLS:
            p = probs[group]
            ops = torch.cat([p[:, :none], torch.zeros_like(p[:, none:none + 1]), p[:, none + 1:]], dim=1)
            mass = ops.sum(dim=1, keepdim=True)
            within = ops / mass.clamp_min(1e-12)
            strength = ops.max(dim=1).values
            keep = []
            for node in range(len({n for n, _ in EDGES})):
                rows = [edge_index(node, src) for n, src in EDGES if n == node]
                s_node = strength[rows]
                share = 2.0 * s_node / s_node.sum().clamp_min(1e-12)
                keep.append(torch.ones_like(share) if len(rows) <= 2 else share.clamp(max=1.0))
            out[group] = within * torch.cat(keep).unsqueeze(1)
        return out

    def row_names(self, group: str) -> list[str]:
        return list(EDGE_LABELS) if group in CELLS else super().row_names(group)

    def latency_parts(self, num_classes: int, image_size: int, **size):
        """Timed parts of the derived networks (`search_spaces.latency_lut`): ops per cell type, channels,
        resolution and stride; stems, preprocessing, joins and head fixed."""
        from search_spaces.darts.latency_parts import latency_parts

        extras = {k: size.pop(k) for k in _NETWORK_EXTRAS if k in size}
        return latency_parts(num_classes, image_size, **self.sizes("proxy", size), **extras)

    def latency_counts(self, arch: str, num_classes: int, image_size: int, *, live_only: bool = False,
                       **size) -> dict[str, int]:
        """Parts a genotype's network runs (every op of a derived DARTS cell is live: `live_only` changes
        nothing)."""
        from search_spaces.darts.latency_parts import latency_counts

        extras = {k: size.pop(k) for k in _NETWORK_EXTRAS if k in size}
        return latency_counts(self.canonical(arch), num_classes, image_size, **self.sizes("proxy", size), **extras)

    def trained_reference(self, dataset: str):
        from search_spaces.benchmarks.published import trained_rows

        return trained_rows(PUBLISHED_TRAININGS, dataset)

    def draw(self, arch: str):
        from search_spaces.darts.draw import draw_genotype

        return draw_genotype(Genotype.parse(self.canonical(arch)))

    def count(self) -> None:
        return None

    def enumerate(self) -> list[str]:
        raise ValueError("the DARTS space has about 10^18 architectures (per cell 7^8 op choices x 180 input "
                         "choices, squared): whole-space scoring does not apply; sample architectures instead")
