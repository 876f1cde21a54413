"""NB201's decomposition for measured latency lookup tables (`search_spaces.latency_lut`).

Parts: the stem, the two residual reduction blocks and the head (fixed), and per stage (C, 2C, 4C channels at
full, half and quarter resolution) each of the four ops that compute something, the node sum of two edges and
the zero tensor of a node without inputs. A derived network runs each op of its cell N times per stage: every
edge is computed whether or not it reaches the cell output (as `InferCell` does). The fixed modules and the
input shapes are taken from a real network (forward hooks), so they cannot drift from the network code.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from search_spaces.nb201.encoding import NUM_NODES, OPS, to_tuple
from search_spaces.nb201.networks import NB201Network
from search_spaces.nb201.ops import make_op
from search_spaces.space import Add, LatencyPart, record_shapes

_NONE = OPS.index("none")
STAGES = 3


class ZerosLike(nn.Module):
    """A node without inputs: a zero tensor of the cell's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def _reference(num_classes: int, image_size: int, C: int, N: int) -> tuple[NB201Network, dict[str, tuple]]:
    """A network (every edge a 3x3 conv) and the per-image input shape of its stem, cells and head."""
    net = NB201Network("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                       "nor_conv_3x3~2|", num_classes=num_classes, C=C, N=N).eval()
    named = {"stem": net.stem, "head": net.lastact, **{f"cell{i}": c for i, c in enumerate(net.cells)}}
    return net, record_shapes(net, image_size, inputs=named)


def first_cell(stage: int, N: int) -> int:
    """Index in `cells` of the first cell of a stage (a reduction block sits between stages)."""
    return stage * (N + 1)


def latency_parts(num_classes: int, image_size: int, C: int = 16, N: int = 5) -> list[LatencyPart]:
    net, shapes = _reference(num_classes, image_size, C, N)
    parts = [LatencyPart("stem", "fixed", lambda: copy.deepcopy(net.stem), (shapes["stem"],))]
    for stage in range(STAGES):
        shape = shapes[f"cell{first_cell(stage, N)}"]
        if stage:
            block = first_cell(stage, N) - 1
            parts.append(LatencyPart(f"reduction{stage}", "fixed",
                                     lambda b=block: copy.deepcopy(net.cells[b]), (shapes[f"cell{block}"],)))
        for op in OPS:
            if op != "none":
                parts.append(LatencyPart(f"stage{stage}/{op}", "op",
                                         lambda op=op, c=shape[0]: make_op(op, c, c, 1), (shape,)))
        parts.append(LatencyPart(f"stage{stage}/add", "op", Add, (shape, shape)))
        parts.append(LatencyPart(f"stage{stage}/zeros", "op", ZerosLike, (shape,)))
    parts.append(LatencyPart("head", "fixed", lambda: nn.Sequential(
        copy.deepcopy(net.lastact), copy.deepcopy(net.global_pooling), nn.Flatten(), copy.deepcopy(net.classifier)),
        (shapes["head"],)))
    return parts


def _reach(ops: tuple[int, ...]) -> tuple[list[bool], list[bool]]:
    """Per node: reached from the cell input, and reaching the cell output, through edges that are not none."""
    edges = [(j, i, ops[e]) for e, (i, j) in enumerate((i, j) for i in range(1, NUM_NODES) for j in range(i))]
    from_input = [True] + [False] * (NUM_NODES - 1)
    for j, i, op in edges:  # edges come in node order, so one pass settles every node
        from_input[i] = from_input[i] or (op != _NONE and from_input[j])
    to_output = [False] * (NUM_NODES - 1) + [True]
    for j, i, op in reversed(edges):
        to_output[j] = to_output[j] or (op != _NONE and to_output[i])
    return from_input, to_output


def cell_counts(arch: str, live_only: bool = False) -> dict[str, int]:
    """Parts one cell runs: each computing op, the node sums (inputs - 1 per node), zero nodes.

    `live_only`: as a graph compiler runs the cell (onnxruntime): edges whose source does not depend on the
    input are constant-folded and edges whose result never reaches the output are removed; a cell whose output
    does not depend on its input makes the whole network a constant (no parts at all)."""
    ops = to_tuple(arch)
    from_input, to_output = _reach(ops) if live_only else ([True] * NUM_NODES, [True] * NUM_NODES)
    counts: dict[str, int] = {}
    e = 0
    for node in range(1, NUM_NODES):
        inputs = 0
        for j in range(node):
            if ops[e] != _NONE and from_input[j] and to_output[node]:
                counts[OPS[ops[e]]] = counts.get(OPS[ops[e]], 0) + 1
                inputs += 1
            e += 1
        if inputs == 0 and not live_only:
            counts["zeros"] = counts.get("zeros", 0) + 1
        elif inputs > 1:
            counts["add"] = counts.get("add", 0) + inputs - 1
    return counts


def latency_counts(arch: str, num_classes: int, image_size: int, C: int = 16, N: int = 5, *,
                   live_only: bool = False) -> dict[str, int]:
    """How often a network of `arch` runs each part (`live_only`: as onnxruntime runs it, dead code removed)."""
    if live_only and not _reach(to_tuple(arch))[0][-1]:
        return {}  # the output is a constant: the compiled network computes nothing
    per_cell = cell_counts(arch, live_only)
    out = {"stem": 1, "reduction1": 1, "reduction2": 1, "head": 1}
    for stage in range(STAGES):
        out.update({f"stage{stage}/{k}": N * n for k, n in per_cell.items()})
    return out
