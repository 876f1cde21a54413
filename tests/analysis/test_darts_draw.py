"""The DARTS cell pictures of the report (search_spaces/darts/draw.py, through `SearchSpace.draw`): every op label
is readable, i.e. no two labels' boxes overlap, none covers a node, all lie inside their panel, also after the
report adds its title; for the published genotypes and a few random ones."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from matplotlib.text import Annotation

from search_spaces.darts.draw import LABEL_GID
from search_spaces.darts.genotype import COMPACT_OPS, Genotype
from search_spaces.darts.published import PUBLISHED
from search_spaces.space import get_space


def _extent(text, renderer):
    patch = text.get_bbox_patch()
    return patch.get_window_extent(renderer) if patch is not None else text.get_window_extent(renderer)


def _random_genotypes(n: int, seed: int = 0) -> dict[str, Genotype]:
    rng = np.random.default_rng(seed)

    def cell():
        return [(int(source), int(rng.integers(0, len(COMPACT_OPS)))) for node in range(4)
                for source in rng.choice(node + 2, size=2, replace=False)]

    return {f"random_{i}": Genotype.from_compact([cell(), cell()]) for i in range(n)}


GENOTYPES = {**PUBLISHED, **_random_genotypes(4)}


@pytest.mark.parametrize("name", list(GENOTYPES))
def test_no_two_op_labels_overlap(name):
    genotype = GENOTYPES[name]
    fig = get_space("darts").draw(str(genotype))
    fig.suptitle(f"{name}: a method's seed 0 (argmax); another (rule)", fontsize=9)  # as the report does
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert [ax.get_title() for ax in fig.axes] == ["normal cell", "reduction cell"]
    title = fig._suptitle.get_window_extent(renderer)
    for ax, cell in zip(fig.axes, ("normal", "reduce")):
        labels = [t for t in ax.texts if t.get_gid() == LABEL_GID]
        nodes = [t for t in ax.texts if t.get_gid() != LABEL_GID and not isinstance(t, Annotation)]  # not arrows
        assert sorted(t.get_text() for t in labels) == sorted(op for op, _ in genotype.cell(cell))
        assert len(nodes) == 7  # two inputs, four nodes, the output
        boxes = [(t.get_text(), _extent(t, renderer)) for t in labels]
        overlapping = [(a, b) for (a, ba), (b, bb) in combinations(boxes, 2) if ba.overlaps(bb)]
        assert overlapping == [], f"{name} {cell}: overlapping labels {overlapping}"
        for label, box in boxes:
            assert not any(box.overlaps(_extent(n, renderer)) for n in nodes), f"{name} {cell}: {label} on a node"
            panel = ax.get_window_extent(renderer)
            assert panel.x0 <= box.x0 and box.x1 <= panel.x1 and panel.y0 <= box.y0 and box.y1 <= panel.y1
            assert not box.overlaps(title) and not box.overlaps(ax.title.get_window_extent(renderer))
