"""Pictures of a genotype's normal and reduction cells as graphs (matplotlib only: graphviz is not a
dependency, and a fixed layer layout reads as well for 4-node cells)."""

from __future__ import annotations

from search_spaces.darts.genotype import CELLS, NUM_NODES, Genotype

_TITLES = {"normal": "normal cell", "reduce": "reduction cell"}
_COLOURS = {"sep_conv_3x3": "tab:blue", "sep_conv_5x5": "tab:cyan", "dil_conv_3x3": "tab:purple",
            "dil_conv_5x5": "tab:pink", "max_pool_3x3": "tab:red", "avg_pool_3x3": "tab:orange",
            "skip_connect": "tab:gray"}


def draw_genotype(genotype: Genotype, title: str | None = None):
    """A matplotlib Figure with the two cells side by side: inputs c_{k-2}, c_{k-1} on the left, nodes 0-3
    in the middle, the concatenated output c_{k} on the right; each edge labelled with its op."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, name in zip(axes, CELLS):
        pos = {0: (0.0, 2.2), 1: (0.0, 0.8)}
        for n in range(NUM_NODES):
            pos[n + 2] = (1.0 + 0.9 * n, 3.0 - n)
        out = (1.0 + 0.9 * NUM_NODES + 0.4, 1.5)
        labels = {0: "c_{k-2}", 1: "c_{k-1}", **{n + 2: str(n) for n in range(NUM_NODES)}}
        for k, (op, source) in enumerate(genotype.cell(name)):
            node = k // 2 + 2
            (x0, y0), (x1, y1) = pos[source], pos[node]
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                        arrowprops=dict(arrowstyle="->", color=_COLOURS.get(op, "black"), lw=1.6,
                                        shrinkA=14, shrinkB=14, connectionstyle="arc3,rad=0.12"))
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.08, op, fontsize=7, ha="center",
                    color=_COLOURS.get(op, "black"))
        for n in range(NUM_NODES):
            x, y = pos[n + 2]
            ax.annotate("", xy=out, xytext=(x, y),
                        arrowprops=dict(arrowstyle="->", color="lightgray", lw=1, shrinkA=14, shrinkB=14))
        for node, (x, y) in pos.items():
            colour = "palegreen" if node < 2 else "lightblue"
            ax.text(x, y, labels[node], ha="center", va="center", fontsize=9,
                    bbox=dict(boxstyle="round", fc=colour, ec="black"))
        ax.text(*out, "c_{k}", ha="center", va="center", fontsize=9, bbox=dict(boxstyle="round", fc="khaki"))
        ax.set_xlim(-0.5, out[0] + 0.5)
        ax.set_ylim(-0.5, 3.5)
        ax.set_title(_TITLES[name])
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig
