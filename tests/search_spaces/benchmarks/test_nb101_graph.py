"""NB101 module hash and pruning: against nasbench-pytorch's copy of graph_util (test-only oracle), against
isomorphism invariance, and the error messages for specs outside the space."""

from __future__ import annotations

import numpy as np
import pytest

from search_spaces.nb1shot1.nb101.graph import (
    AVAILABLE_OPS,
    CONV1X1,
    CONV3X3,
    MAXPOOL3X3,
    InvalidSpecError,
    canonical_spec,
    hash_module,
    labeling,
    prune,
    spec_hash,
)

# The NB101 paper's Figure/README example cell (api.py docstring): an Inception-like module.
INCEPTION = ([[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
              [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]],
             ["input", CONV1X1, CONV3X3, CONV3X3, CONV3X3, MAXPOOL3X3, "output"])


def _random_specs(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        v = int(rng.integers(2, 8))
        m = np.triu(rng.random((v, v)) < rng.uniform(0.2, 0.6), k=1).astype(np.int8)
        ops = ["input", *rng.choice(AVAILABLE_OPS, size=v - 2).tolist(), "output"]
        out.append((m, ops))
    return out


def _oracle_hash(m, ops):
    """nasbench-pytorch's ModelSpec pruning + graph_util.hash_module; None where it finds no valid spec.

    Its ModelSpec turns the pruned matrix into a torch tensor (and fails on a disconnected graph), so the
    pruned numpy matrix is hashed with its graph_util directly, exactly as ModelSpec.hash_spec would."""
    spec_mod = pytest.importorskip("nasbench_pytorch.model.model_spec",
                                   reason="nasbench-pytorch (test-only oracle) not installed")
    graph_util = pytest.importorskip("nasbench_pytorch.model.graph_util")
    try:
        ref = spec_mod.ModelSpec(m.copy(), list(ops))
    except (RuntimeError, TypeError):  # torch.tensor(None) for a disconnected graph
        return None, None
    if not ref.valid_spec:
        return None, None
    pruned = ref.matrix.numpy()
    labels = [-1] + [list(AVAILABLE_OPS).index(op) for op in ref.ops[1:-1]] + [-2]
    return graph_util.hash_module(pruned, labels), int(pruned.sum())


def test_hash_matches_oracle_on_random_specs():
    checked = invalid = 0
    for m, ops in _random_specs(600):
        ref_hash, ref_edges = _oracle_hash(m, ops)
        try:
            ours = spec_hash(m, ops)
        except InvalidSpecError as err:
            invalid += 1
            # the oracle agrees it is outside the space: disconnected, or too many edges after pruning
            assert ref_hash is None or ref_edges > 9, (m, ops, err)
            continue
        assert ref_hash is not None and ref_edges <= 9
        assert ours == ref_hash, (m, ops)
        checked += 1
    assert checked >= 300 and invalid >= 20  # both branches really exercised


def test_hash_invariant_under_vertex_relabelling():
    m, ops = np.array(INCEPTION[0]), INCEPTION[1]
    h = spec_hash(m, ops)
    # swap the two interior vertices 1 and 2 (both feed only the output): same graph, new order
    perm = [0, 2, 1, 3, 4, 5, 6]
    pm = m[np.ix_(perm, perm)]
    assert spec_hash(pm, [ops[i] for i in perm]) == h
    # a different op on one vertex changes the hash
    assert spec_hash(m, [*ops[:1], CONV3X3, *ops[2:]]) != h


def test_pruning_removes_dangling_vertices():
    m = np.zeros((7, 7), dtype=np.int8)
    m[0, 1] = m[1, 6] = 1  # input -> conv -> output
    m[0, 2] = 1  # vertex 2 is a dead end (no path to output)
    m[3, 6] = 1  # vertex 3 has no path from input
    ops = ["input", CONV3X3, MAXPOOL3X3, CONV1X1, CONV1X1, CONV1X1, "output"]
    pm, pops = prune(m, ops)
    assert pops == ["input", CONV3X3, "output"]
    assert pm.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert spec_hash(m, ops) == hash_module(pm, labeling(pops))
    assert spec_hash(m, ops) == spec_hash(pm, pops)


@pytest.mark.parametrize("matrix, ops, match", [
    (np.zeros((3, 3)), ["input", CONV3X3, "output"], "disconnected"),
    (np.ones((3, 3)), ["input", CONV3X3, "output"], "upper triangular"),
    (np.zeros((3, 4)), ["input", CONV3X3, "output"], "square"),
    (np.triu(np.ones((3, 3)), 1), ["input", "output"], "ops has 2 entries"),
    (np.triu(np.ones((3, 3)), 1), ["input", "conv5x5", "output"], "unsupported op 'conv5x5' at vertex 1"),
    (np.triu(np.ones((3, 3)), 1), [CONV3X3, CONV3X3, "output"], "first op"),
    (np.triu(np.ones((3, 3)), 1) * 2, ["input", CONV3X3, "output"], "0 or 1"),
    (np.triu(np.ones((7, 7)), 1), ["input", *[CONV3X3] * 5, "output"], "too many edges after pruning: 21"),
    (np.triu(np.ones((8, 8)), 1) * (np.arange(8)[None, :] == np.arange(8)[:, None] + 1),
     ["input", *[CONV3X3] * 6, "output"], "too many vertices"),
])
def test_invalid_specs_raise_clear_errors(matrix, ops, match):
    with pytest.raises(InvalidSpecError, match=match):
        canonical_spec(matrix, ops)
