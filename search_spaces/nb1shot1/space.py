"""NAS-Bench-1Shot1 spaces 1-3 as `SearchSpace`s (registered as 'nb1shot1-1', 'nb1shot1-2', 'nb1shot1-3').

Architecture-weight groups, as the reference one-shot model's parameters (`model_search.py`
`_initialize_alphas`): "ops" [K, 3] (one mixed op per block), "output" [1, K+1] (output parents among the
cell input and the K blocks) and "inputs_<i>" [1, i] for each block i whose parent set is a real choice
(blocks 3, 4 in space 1; 2.. K in spaces 2 and 3). Discretisation: argmax op per block, top-k parents
(k = the space's parent count; ties broken towards the lower index).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from search_spaces.nb1shot1.encoding import (
    OPS,
    Arch,
    all_architectures,
    canonical,
    count_architectures,
    get_spec,
    parse,
    to_nb101,
)
from search_spaces.nb1shot1.nb101_network import NB101Network
from search_spaces.nb1shot1.networks import NB1Shot1SuperNet, input_group
from search_spaces.space import ArchWeights, SearchSpace


def _top_k(row: torch.Tensor, k: int) -> tuple[int, ...]:
    order = sorted(range(row.numel()), key=lambda j: (-float(row[j]), j))
    return tuple(sorted(order[:k]))


class NB1Shot1Space(SearchSpace):
    benchmark_name = "nb101"
    # The 1Shot1 search (automl/nasbench-1shot1 optimizers/darts: init_channels 16, 9 layers = 3 stacks of 3
    # cells) and NB101's own evaluation network (128 stem channels, 3 stacks of 3 cells), whose parameter
    # count equals NB101's `trainable_parameters`.
    search_size: ClassVar = {"C": 16, "N": 3}
    proxy_size: ClassVar = {"C": 128, "N": 3}

    def __init__(self, number: int):
        self.spec = get_spec(int(number))
        self.number = self.spec.number
        self.name = f"nb1shot1-{self.number}"
        k = self.spec.num_blocks
        self.arch_shapes = {"ops": (k, len(OPS)), "output": (1, k + 1)}
        self.option_names = {"ops": OPS, "output": ("input", *(f"block{j}" for j in range(1, k + 1)))}
        for b in self.spec.choice_blocks():
            self.arch_shapes[input_group(b)] = (1, b)
            self.option_names[input_group(b)] = ("input", *(f"block{j}" for j in range(1, b)))

    def supernet(self, num_classes: int, **size: int) -> nn.Module:
        return NB1Shot1SuperNet(self.spec, num_classes=num_classes, **self.sizes("search", size))

    def _check_shapes(self, probs: ArchWeights) -> None:
        for group, shape in self.arch_shapes.items():
            if group not in probs:
                raise ValueError(f"{self.name} probabilities lack group {group!r}; groups: "
                                 f"{sorted(self.arch_shapes)}")
            if tuple(probs[group].shape) != shape:
                raise ValueError(f"{self.name} probabilities[{group!r}] must have shape {shape}, got "
                                 f"{tuple(probs[group].shape)}")

    def decode(self, probs: ArchWeights) -> Arch:
        """Per-row probabilities -> Arch (argmax op per block, top-k parents; ties to the lower index)."""
        self._check_shapes(probs)
        cpu = {g: t.detach().float().cpu() for g, t in probs.items() if g in self.arch_shapes}
        ops = tuple(int(i) for i in cpu["ops"].argmax(dim=-1).tolist())
        parents = []
        for b, k in enumerate(self.spec.block_parents, start=1):
            group = input_group(b)
            parents.append(_top_k(cpu[group][0], k) if group in cpu else tuple(range(b)))
        output = _top_k(cpu["output"][0], self.spec.output_parents)
        return Arch(self.number, ops, tuple(parents), output)

    def expected_selection(self, probs: ArchWeights) -> ArchWeights:
        """Op rows as they are; a parent row (output, inputs_<b>) keeps its top k options, so each option is kept
        with about min(1, k p). The multi-hot rows of `one_hot` come back unchanged."""
        out = {"ops": probs["ops"], "output": (self.spec.output_parents * probs["output"]).clamp(max=1.0)}
        for b, k in enumerate(self.spec.block_parents, start=1):
            group = input_group(b)
            if group in probs:
                out[group] = (k * probs[group]).clamp(max=1.0)
        return out

    def discretize(self, probs: ArchWeights) -> str:
        return self.decode(probs).to_string()

    def canonical(self, arch: str) -> str:
        out = canonical(arch)
        if parse(out).space != self.number:
            raise ValueError(f"architecture {arch!r} belongs to space {parse(out).space}, not {self.name}")
        return out

    def network(self, arch: str, num_classes: int = 10, **size: int) -> nn.Module:
        """The NB101 model of the architecture's cell (pruned); the default size is the benchmark's own
        network, whose parameter count equals NB101's `trainable_parameters`."""
        return NB101Network(*to_nb101(parse(self.canonical(arch))), num_classes=num_classes,
                            **self.sizes("proxy", size))

    def latency_parts(self, num_classes: int, image_size: int, **size: int):
        """Timed parts of the derived (NAS-Bench-101) networks (`search_spaces.latency_lut`): ops, projections,
        sums and concatenations at every width a vertex can take; stem, pools and head fixed."""
        from search_spaces.nb1shot1.latency_parts import latency_parts

        return latency_parts(num_classes, image_size, **self.sizes("proxy", size))

    def latency_counts(self, arch: str, num_classes: int, image_size: int, *, live_only: bool = False,
                       **size: int) -> dict[str, int]:
        """Parts an architecture's network runs (the NB101 cell is pruned first: every part is live)."""
        from search_spaces.nb1shot1.latency_parts import latency_counts

        return latency_counts(self.canonical(arch), num_classes, image_size, **self.sizes("proxy", size))

    def enumerate(self) -> list[str]:
        return [a.to_string() for a in all_architectures(self.number)]

    def count(self) -> int:
        """`len(enumerate())` from the parent sets alone: every block's op counted (`count_loose_ops`)."""
        return count_architectures(self.number, count_loose_ops=True)

    def row_names(self, group: str) -> list[str]:
        if group == "ops":
            return [f"block{j}" for j in range(1, self.spec.num_blocks + 1)]
        return [group]

    def one_hot(self, arch: str, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """One-hot op rows and multi-hot parent rows (1 on each chosen parent): as supernet weights they
        compute exactly the discrete cell (sums of the chosen parents, chosen outputs concatenated); their
        discretisation is `arch` (the top-k rule does not need rows that sum to 1)."""
        a = parse(self.canonical(arch))
        out = {g: torch.zeros(shape, device=device) for g, shape in self.arch_shapes.items()}
        for b, o in enumerate(a.ops):
            out["ops"][b, o] = 1.0
        for b, ps in enumerate(a.parents, start=1):
            if input_group(b) in out:
                out[input_group(b)][0, list(ps)] = 1.0
        out["output"][0, list(a.output)] = 1.0
        return out

