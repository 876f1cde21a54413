"""The NAS-Bench-1shot1 spaces' decomposition for measured latency lookup tables (`search_spaces.latency_lut`).

Their derived networks are NAS-Bench-101 models, whose vertex widths depend on the cell's topology: the output
width is split among the vertices feeding the output (`nb101_network.vertex_channels`). So an op is timed at
every width a vertex can take at a position — out // k and out // k + 1 for k = 1 .. the cell's interior
vertices — and so are the input projections (1x1 conv-BN-ReLU from the cell input), the sums of two vertex
inputs and the output concatenation of k pieces. Fixed parts: the stem, the two max-pools between stacks and
the head (global mean, linear). Slicing a wider vertex down to a narrower one is a view and costs nothing here.
The fixed modules and the input shapes are taken from a real network (forward pre-hooks).
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import torch
from torch import nn

from search_spaces.nb1shot1.encoding import parse, to_nb101
from search_spaces.nb1shot1.nb101.graph import CONV1X1, CONV3X3, MAXPOOL3X3, canonical_spec
from search_spaces.nb1shot1.nb101_network import ConvBnRelu, NB101Cell, NB101Network, vertex_channels, vertex_op
from search_spaces.space import Add, LatencyPart, record_shapes

OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)
#: the simplest cell (input -> 3x3 conv -> output): the reference network's fixed parts and shapes
_REFERENCE_CELL = ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", CONV3X3, "output"])
#: interior vertices of a NAS-Bench-101 cell (7 vertices: input, 5 interior, output)
MAX_INTERIOR = 5


class Concat(nn.Module):
    """The cell output: its interior pieces concatenated along channels."""

    def forward(self, *pieces: torch.Tensor) -> torch.Tensor:
        return torch.cat(pieces, dim=1)


class Head(nn.Module):
    """Global mean over the last feature map, then the linear classifier (as `NB101Network.forward`)."""

    def __init__(self, classifier: nn.Linear):
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x.mean(dim=(2, 3)))


def _reference(num_classes: int, image_size: int, C: int, N: int):
    """A network (the simplest cell: input -> conv -> output) and every layer's per-image input shape."""
    net = NB101Network(*_REFERENCE_CELL, num_classes=num_classes, C=C, N=N).eval()
    named = {str(i): layer for i, layer in enumerate(net.layers)}
    shapes = record_shapes(net, image_size, inputs=named)
    return net, {int(k): v for k, v in shapes.items()}


def _cells(net: NB101Network, shapes: dict[int, tuple]) -> list[tuple[int, int, int, int]]:
    """(c_in, c_out, height, width) of every cell, in order."""
    out = []
    for i, layer in enumerate(net.layers):
        if isinstance(layer, NB101Cell):
            c_in, h, w = shapes[i]
            out.append((c_in, layer.channels[-1], h, w))
    return out


def widths(c_out: int) -> list[int]:
    """Every width a vertex of a cell with output width `c_out` can take."""
    return sorted({c for k in range(1, MAX_INTERIOR + 1) for c in (c_out // k, c_out // k + 1) if 1 <= c <= c_out})


def _where(c: int, h: int, w: int) -> str:
    return f"c{c}xH{h}xW{w}"


def latency_parts(num_classes: int, image_size: int, C: int = 128, N: int = 3) -> list[LatencyPart]:
    net, shapes = _reference(num_classes, image_size, C, N)
    parts = [LatencyPart("stem", "fixed", lambda: copy.deepcopy(net.layers[0]), (shapes[0],))]
    pools = [i for i, layer in enumerate(net.layers) if isinstance(layer, nn.MaxPool2d)]
    parts += [LatencyPart(f"downsample{k + 1}", "fixed", lambda i=i: copy.deepcopy(net.layers[i]), (shapes[i],))
              for k, i in enumerate(pools)]
    seen: set[str] = set()

    def add(key: str, make, input_shapes) -> None:
        if key not in seen:
            seen.add(key)
            parts.append(LatencyPart(key, "op", make, tuple(input_shapes)))

    for c_in, c_out, h, w in _cells(net, shapes):
        for c in widths(c_out):
            add(f"proj/{c_in}to{c}/H{h}xW{w}", lambda a=c_in, b=c: ConvBnRelu(a, b, 1), [(c_in, h, w)])
            add(f"add/{_where(c, h, w)}", Add, [(c, h, w)] * 2)
            for op in OPS:
                add(f"{op}/{_where(c, h, w)}", lambda op=op, c=c: vertex_op(op, c), [(c, h, w)])
        for k in range(2, MAX_INTERIOR + 1):
            split = vertex_channels(c_in, c_out, _fan_in(k))[1:k + 1]
            add(f"concat{k}/{_where(c_out, h, w)}", Concat, [(c, h, w) for c in split])
    parts.append(LatencyPart("head", "fixed", lambda: Head(copy.deepcopy(net.classifier)),
                             (_last_shape(net, shapes),)))
    return parts


def _last_shape(net: NB101Network, shapes: dict[int, tuple]) -> tuple:
    """Per-image shape of the last cell's output (the head's input)."""
    c_in, c_out, h, w = _cells(net, shapes)[-1]
    return (c_out, h, w)


@functools.lru_cache(maxsize=16)
def _layout(num_classes: int, image_size: int, C: int, N: int) -> tuple[tuple[int, int, int, int], ...]:
    """`_cells` of the networks at this size (built once: counting parts runs for every architecture)."""
    with torch.device("meta"):
        net = NB101Network(*_REFERENCE_CELL, num_classes=num_classes, C=C, N=N).eval()
        shapes = record_shapes(net, image_size, inputs={str(i): layer for i, layer in enumerate(net.layers)})
    return tuple(_cells(net, {int(k): v for k, v in shapes.items()}))


def _fan_in(k: int) -> list[list[int]]:
    """A cell matrix with k interior vertices, each from the input and into the output (for the concat split)."""
    n = k + 2
    m = [[0] * n for _ in range(n)]
    for v in range(1, k + 1):
        m[0][v] = m[v][n - 1] = 1
    return m


def latency_counts(arch: str, num_classes: int, image_size: int, C: int = 128, N: int = 3) -> dict[str, int]:
    matrix, ops = to_nb101(parse(arch))
    pruned, pruned_ops, _ = canonical_spec(matrix, ops)
    m = np.asarray(pruned).tolist()
    n = len(m)
    out: dict[str, int] = {"stem": 1, "downsample1": 1, "downsample2": 1, "head": 1}

    def count(key: str) -> None:
        out[key] = out.get(key, 0) + 1

    for c_in, c_out, h, w in _layout(num_classes, image_size, C, N):
        channels = vertex_channels(c_in, c_out, m)
        pieces = 0
        for t in range(1, n - 1):
            inputs = sum(m[s][t] for s in range(1, t)) + m[0][t]
            if m[0][t]:
                count(f"proj/{c_in}to{channels[t]}/H{h}xW{w}")
            for _ in range(inputs - 1):
                count(f"add/{_where(channels[t], h, w)}")
            count(f"{pruned_ops[t]}/{_where(channels[t], h, w)}")
            pieces += m[t][n - 1]
        if pieces > 1:
            count(f"concat{pieces}/{_where(c_out, h, w)}")
        if m[0][n - 1] or not pieces:
            count(f"proj/{c_in}to{c_out}/H{h}xW{w}")
            if pieces:
                count(f"add/{_where(c_out, h, w)}")
    return out
