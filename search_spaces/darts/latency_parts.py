"""The DARTS space's decomposition for measured latency lookup tables (`search_spaces.latency_lut`).

Parts: the stem (CIFAR, or ImageNet's two stems), each cell's two preprocessing layers and its join (four node
sums and the concatenation), the head (fixed: none depends on the genotype), and every op of `OPS` but `none`
at every distinct (cell type, channels, resolution, stride) of the network: a reduction cell's edges leaving
its two inputs have stride 2, all other edges stride 1. A genotype's network runs 8 ops per cell; the auxiliary
head is left out (evaluation networks run without it). Shapes and fixed modules come from a real network.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence

import torch
from torch import nn

from search_spaces.darts.genotype import NUM_NODES, OPS, Genotype
from search_spaces.darts.networks import DartsNetwork
from search_spaces.darts.ops import make_op
from search_spaces.space import LatencyPart, record_shapes

#: a genotype whose network has every fixed part (any genotype does; the fixed parts do not depend on it)
_REFERENCE = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
              "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, "
              "3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), "
              "('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
              "reduce_concat=[2, 3, 4, 5])")
_STEMS = ("stem", "stem0", "stem1")


class Join(nn.Module):
    """The end of a derived cell: node i = op(2i) + op(2i+1), then the four nodes concatenated."""

    def forward(self, *outs: torch.Tensor) -> torch.Tensor:
        return torch.cat([outs[2 * i] + outs[2 * i + 1] for i in range(NUM_NODES)], dim=1)


def _reference(num_classes: int, image_size: int, size: dict) -> tuple[DartsNetwork, dict[str, tuple]]:
    """The reference network and per-image shapes: inputs of stems, preprocessing and head, outputs of cells."""
    net = DartsNetwork(_REFERENCE, num_classes=num_classes, **{**size, "auxiliary": False}).eval()
    inputs = {s: getattr(net, s) for s in _STEMS if hasattr(net, s)}
    inputs["head"] = net.global_pooling
    outputs = {}
    for i, cell in enumerate(net.cells):
        inputs.update({f"cell{i}/preprocess0": cell.preprocess0, f"cell{i}/preprocess1": cell.preprocess1})
        outputs.update({f"cell{i}/ops": cell.preprocess1, f"cell{i}/out": cell})
    return net, record_shapes(net, image_size, inputs, outputs)


def _position(kind: str, shape: Sequence[int], stride: int) -> str:
    return f"{kind}/C{shape[0]}xH{shape[1]}/s{stride}"


def _op_positions(reduction: bool, shape: Sequence[int]) -> dict[int, tuple]:
    """stride -> per-image input shape of the ops of a cell whose inputs (after preprocessing) have `shape`:
    in a reduction cell, edges from the inputs have stride 2 and edges from its nodes (at half the resolution)
    stride 1."""
    if not reduction:
        return {1: tuple(shape)}
    c, h, w = shape
    return {2: tuple(shape), 1: (c, (h + 1) // 2, (w + 1) // 2)}


def latency_parts(num_classes: int, image_size: int, **size) -> list[LatencyPart]:
    net, shapes = _reference(num_classes, image_size, size)
    parts = [LatencyPart(s, "fixed", lambda s=s: copy.deepcopy(getattr(net, s)), (shapes[s],))
             for s in _STEMS if hasattr(net, s)]
    positions: dict[str, tuple] = {}
    for i, cell in enumerate(net.cells):
        for p in ("preprocess0", "preprocess1"):
            key = f"cell{i}/{p}"
            parts.append(LatencyPart(key, "fixed", lambda c=cell, p=p: copy.deepcopy(getattr(c, p)), (shapes[key],)))
        channels = shapes[f"cell{i}/out"][0] // NUM_NODES
        node = (channels, *shapes[f"cell{i}/out"][1:])
        parts.append(LatencyPart(f"cell{i}/join", "fixed", Join, (node,) * (2 * NUM_NODES)))
        kind = "reduce" if cell.reduction else "normal"
        for stride, shape in _op_positions(cell.reduction, shapes[f"cell{i}/ops"]).items():
            positions.setdefault(_position(kind, shape, stride), shape)
    for position, shape in positions.items():
        stride = int(position.rsplit("/s", 1)[1])
        for op in OPS:
            if op != "none":
                parts.append(LatencyPart(f"{position}/{op}", "op",
                                         lambda op=op, c=shape[0], s=stride: make_op(op, c, s), (shape,)))
    parts.append(LatencyPart("head", "fixed", lambda: nn.Sequential(
        copy.deepcopy(net.global_pooling), nn.Flatten(), copy.deepcopy(net.classifier)), (shapes["head"],)))
    return parts


@functools.lru_cache(maxsize=32)
def _layout(num_classes: int, image_size: int, size: tuple) -> tuple[tuple[str, ...], tuple[tuple[bool, tuple], ...]]:
    """(stems present, per cell (is reduction, op input shape)) of the networks at this size."""
    net, shapes = _reference(num_classes, image_size, dict(size))
    return (tuple(s for s in _STEMS if hasattr(net, s)),
            tuple((cell.reduction, shapes[f"cell{i}/ops"]) for i, cell in enumerate(net.cells)))


def latency_counts(arch: str, num_classes: int, image_size: int, **size) -> dict[str, int]:
    stems, cells = _layout(num_classes, image_size, tuple(sorted(size.items())))
    genotype = Genotype.parse(arch)
    out = {s: 1 for s in stems}
    out["head"] = 1
    for i, (reduction, shape) in enumerate(cells):
        out.update({f"cell{i}/preprocess0": 1, f"cell{i}/preprocess1": 1, f"cell{i}/join": 1})
        kind = "reduce" if reduction else "normal"
        where = _op_positions(reduction, shape)
        for op, source in genotype.cell(kind):
            stride = 2 if reduction and source < 2 else 1
            key = f"{_position(kind, where[stride], stride)}/{op}"
            out[key] = out.get(key, 0) + 1
    return out
