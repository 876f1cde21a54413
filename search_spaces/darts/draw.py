"""Pictures of a genotype's normal and reduction cells as graphs (matplotlib only: graphviz is not a dependency).

Layout: the inputs c_{k-2} (0) and c_{k-1} (1) on the left, the intermediate nodes 2-5 (numbered as the
space's `row_names`, e.g. edge '4←1') in a zigzag column, so that no edge between two nodes passes through a
third and the edges from one input leave it in well separated directions, and the concatenated output c_{k}
on the right; edges are slightly curved arrows coloured by op. Each edge's op label sits on its own edge, in a
white box, at a position along the edge (middle first, then outwards, then beside it) whose box overlaps no
other label and no node and covers as little of the other edges as possible: positions are found by measuring
the rendered text, shortest edges first. The figure has a fixed layout (no layout engine), so the measured
positions stay valid when a caller adds a title (`fig.suptitle`, drawn in the reserved top band)."""

from __future__ import annotations

import math

import numpy as np

from search_spaces.darts.genotype import CELLS, NUM_NODES, Genotype

_TITLES = {"normal": "normal cell", "reduce": "reduction cell"}
_COLOURS = {"sep_conv_3x3": "tab:blue", "sep_conv_5x5": "tab:cyan", "dil_conv_3x3": "tab:purple",
            "dil_conv_5x5": "tab:pink", "max_pool_3x3": "tab:red", "avg_pool_3x3": "tab:orange",
            "skip_connect": "tab:gray"}
#: data coordinates of the inputs (0, 1), the intermediate nodes (2-5) and the output c_{k}
_POSITIONS = {0: (-1.0, 3.7), 1: (-1.0, 1.5), 2: (3.0, 5.0), 3: (4.6, 3.5), 4: (3.0, 2.0), 5: (4.6, 0.5)}
_OUT = (6.9, 2.75)
_XLIM, _YLIM = (-2.0, 7.5), (-0.15, 5.65)
_RAD = 0.12                      # curvature of the op edges (matplotlib's arc3)
_FONT = 8                        # op labels
#: positions along an edge tried for its label, in order (0 = source, 1 = target), then the same beside it
_ALONG = (0.5, 0.42, 0.58, 0.34, 0.66, 0.27, 0.73, 0.2, 0.8)
_GAP = 2.0                       # pixels kept free around each label box
#: the `gid` of every op label, so tests and callers can find them
LABEL_GID = "op-label"


def node_positions() -> dict[int, tuple[float, float]]:
    """Data coordinates of the inputs (0, 1) and the intermediate nodes (2-5)."""
    assert len(_POSITIONS) == NUM_NODES + 2
    return dict(_POSITIONS)


def _curve(ax, a, b, rad: float, ts) -> np.ndarray:
    """Points (data coordinates) at parameters `ts` of matplotlib's arc3 curve from a to b: a quadratic Bézier in
    display space whose control point is the midpoint moved by rad x (dy, -dx)."""
    p0, p1 = ax.transData.transform([a, b])
    d = p1 - p0
    control = (p0 + p1) / 2 + rad * np.array([d[1], -d[0]])
    ts = np.asarray(ts, dtype=float)[:, None]
    points = (1 - ts) ** 2 * p0 + 2 * ts * (1 - ts) * control + ts ** 2 * p1
    return ax.transData.inverted().transform(points)


def _box(text, renderer):
    """The display extent of a text's box (its bbox patch where it has one), widened by _GAP."""
    text.update_bbox_position_size(renderer)
    patch = text.get_bbox_patch()
    box = patch.get_window_extent(renderer) if patch is not None else text.get_window_extent(renderer)
    return box.expanded(1.0, 1.0).padded(_GAP)


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _place_labels(ax, edges, obstacles, renderer) -> None:
    """Put each edge's label at its best candidate position (see the module docstring): no overlap with a node or
    a placed label first, then as few points of other edges under the box as possible, then the earliest
    candidate (the middle of the edge first)."""
    inside = ax.get_window_extent(renderer)
    placed = list(obstacles)
    order = sorted(edges, key=lambda e: math.dist(e[1], e[2]))  # short edges have the fewest positions
    curves = {id(e): ax.transData.transform(_curve(ax, e[1], e[2], e[3], np.linspace(0.05, 0.95, 40)))
              for e in edges}
    for edge in order:
        op, a, b, rad = edge
        others = np.concatenate([c for key, c in curves.items() if key != id(edge)] or [np.empty((0, 2))])
        points = _curve(ax, a, b, rad, _ALONG)
        label = ax.text(*points[0], op, fontsize=_FONT, ha="center", va="center", zorder=5, gid=LABEL_GID,
                        bbox=dict(boxstyle="round,pad=0.2", fc="white", ec=_COLOURS.get(op, "black"), lw=1.0,
                                  alpha=0.95))
        size = _box(label, renderer)
        # beside the edge: one box height to either side, in data units
        lift = ax.transData.inverted().transform([(0, 0), (0, size.height)])
        lift = abs(lift[1][1] - lift[0][1])
        candidates = [tuple(p) for p in points]
        candidates += [(x, y + dy) for dy in (lift, -lift) for x, y in points]
        best, best_cost = candidates[0], None
        for i, (x, y) in enumerate(candidates):
            label.set_position((x, y))
            box = _box(label, renderer)
            clash = sum(_overlap(box, other) for other in placed)
            if not (inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)):
                clash += 1e9
            crossed = int(((others[:, 0] > box.x0) & (others[:, 0] < box.x1) & (others[:, 1] > box.y0)
                           & (others[:, 1] < box.y1)).sum())
            cost = (clash, crossed, i)
            if best_cost is None or cost < best_cost:
                best, best_cost = (x, y), cost
        label.set_position(best)
        placed.append(_box(label, renderer))


def draw_genotype(genotype: Genotype, title: str | None = None):
    """A matplotlib Figure with the two cells side by side (see the module docstring): inputs on the left, nodes
    2-5 on an arc, the concatenated output c_{k} on the right; each edge labelled with its op."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13.0, 5.6))
    FigureCanvasAgg(fig)  # a renderer to measure the labels with
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.86, wspace=0.04)
    axes = fig.subplots(1, 2)
    renderer = fig.canvas.get_renderer()
    pos = node_positions()
    names = {0: "$c_{k-2}$ (0)", 1: "$c_{k-1}$ (1)", **{n + 2: str(n + 2) for n in range(NUM_NODES)}}
    for ax, name in zip(axes, CELLS):
        ax.set_xlim(*_XLIM)
        ax.set_ylim(*_YLIM)
        ax.axis("off")
        ax.set_title(_TITLES[name], fontsize=11)
        nodes = []
        for node, (x, y) in pos.items():
            colour = "palegreen" if node < 2 else "lightblue"
            nodes.append(ax.text(x, y, names[node], ha="center", va="center", fontsize=10, zorder=6,
                                 bbox=dict(boxstyle="round,pad=0.35", fc=colour, ec="black")))
        nodes.append(ax.text(*_OUT, "$c_{k}$", ha="center", va="center", fontsize=10, zorder=6,
                             bbox=dict(boxstyle="round,pad=0.35", fc="khaki", ec="black")))
        for n in range(NUM_NODES):
            ax.annotate("", xy=_OUT, xytext=pos[n + 2], zorder=1,
                        arrowprops=dict(arrowstyle="->", color="lightgray", lw=1, shrinkA=14, shrinkB=16))
        edges = []
        for k, (op, source) in enumerate(genotype.cell(name)):
            a, b = pos[source], pos[k // 2 + 2]
            ax.annotate("", xy=b, xytext=a, zorder=2,
                        arrowprops=dict(arrowstyle="-|>", color=_COLOURS.get(op, "black"), lw=1.6, mutation_scale=12,
                                        shrinkA=15, shrinkB=15, connectionstyle=f"arc3,rad={_RAD}"))
            edges.append((op, a, b, _RAD))
        _place_labels(ax, edges, [_box(t, renderer) for t in nodes], renderer)
    if title:
        fig.suptitle(title)
    return fig
