"""DARTS' discretisation (quark0/darts `model_search.py` `genotype()`), on per-row probabilities.

For each node, keep the two incoming edges whose strongest non-`none` op has the highest probability; each
kept edge takes its most likely non-`none` op. Ties break towards the lower index (edge, then op), as the
stable sort of the reference does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from search_spaces.darts.genotype import CELLS, NUM_EDGES, NUM_NODES, OPS, Genotype, edge_index

_NONE = OPS.index("none")


def _argmax(values: Sequence[float], skip: int) -> int:
    best = None
    for k, v in enumerate(values):
        if k != skip and (best is None or v > values[best]):
            best = k
    return best


def cell_pairs(probs: Sequence[Sequence[float]]) -> tuple[tuple[str, int], ...]:
    """One cell's [14][8] probabilities -> its 8 (op, input) pairs."""
    pairs = []
    for node in range(NUM_NODES):
        rows = [probs[edge_index(node, j)] for j in range(node + 2)]
        best_ops = [_argmax(r, _NONE) for r in rows]
        strength = [float(r[k]) for r, k in zip(rows, best_ops)]
        kept = sorted(range(node + 2), key=lambda j: -strength[j])[:2]    # stable: lower index wins ties
        pairs.extend((OPS[best_ops[j]], j) for j in kept)
    return tuple(pairs)


def discretize(probs: Mapping[str, object]) -> Genotype:
    """Per group ("normal", "reduce") a [14, 8] tensor or nested list of per-row probabilities -> Genotype."""
    cells = []
    for name in CELLS:
        if name not in probs:
            raise ValueError(f"DARTS probabilities lack group {name!r}; groups: {', '.join(CELLS)}")
        rows = probs[name]
        rows = rows.detach().double().cpu().tolist() if hasattr(rows, "detach") else [list(r) for r in rows]
        if len(rows) != NUM_EDGES or any(len(r) != len(OPS) for r in rows):
            shape = (len(rows), len(rows[0]) if rows else 0)
            raise ValueError(f"DARTS probabilities[{name!r}] must have shape {(NUM_EDGES, len(OPS))}, got {shape}")
        cells.append(cell_pairs(rows))
    return Genotype(*cells)
