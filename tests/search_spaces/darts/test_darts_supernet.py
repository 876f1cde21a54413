"""The search supernet and DARTS' discretisation rule."""

import pytest
import torch

from search_spaces.darts import DARTS_V1, DARTS_V2, OPS, Genotype, supernet
from search_spaces.darts.discretize import discretize
from search_spaces.darts.genotype import edge_index
from search_spaces.darts.space import DartsSpace


def _probs(seed):
    g = torch.Generator().manual_seed(seed)
    return {c: torch.softmax(torch.randn(14, 8, generator=g), -1) for c in ("normal", "reduce")}


def _reference_parse(W):
    """DARTS' `genotype()._parse` loop, transcribed in its own terms (sorted by strongest non-none op)."""
    gene, n, start = [], 2, 0
    none = OPS.index("none")
    for i in range(4):
        rows = W[start:start + n]
        edges = sorted(range(i + 2), key=lambda x: -max(rows[x][k] for k in range(8) if k != none))[:2]
        for j in edges:
            k_best = max((k for k in range(8) if k != none), key=lambda k: (rows[j][k], -k))
            gene.append((OPS[k_best], j))
        start += n
        n += 1
    return gene


@pytest.mark.parametrize("seed", range(20))
def test_discretize_matches_darts_rule(seed):
    p = _probs(seed)
    expected = Genotype(*(_reference_parse(p[c].tolist()) for c in ("normal", "reduce")))
    assert discretize(p) == expected


def test_none_is_ignored_and_ties_go_to_lower_index():
    p = {c: torch.full((14, 8), 1 / 8) for c in ("normal", "reduce")}
    p["normal"][:, 0] = 0.9                     # `none` dominates everywhere: it never counts
    g = discretize(p)
    assert g.normal == (("max_pool_3x3", 0), ("max_pool_3x3", 1)) * 4
    p["normal"][edge_index(3, 4), OPS.index("dil_conv_5x5")] = 0.5
    assert discretize(p).normal[-2:] == (("max_pool_3x3", 0), ("dil_conv_5x5", 4))


@pytest.mark.parametrize("genotype", [DARTS_V1, DARTS_V2])
def test_one_hot_round_trip(genotype):
    space = DartsSpace()
    assert space.discretize(space.one_hot(str(genotype))) == str(genotype)


def test_skipping_zero_weight_ops_is_exact():
    """GDAS-style sparse weights: computing only the active ops gives the full forward's result."""
    torch.manual_seed(0)
    net = supernet(C=4, layers=3, num_classes=10)
    x = torch.randn(2, 3, 8, 8)
    weights = DartsSpace().one_hot(str(DARTS_V2))
    weights["normal"][0, 5] = 0.25                 # one extra op on an edge, to exercise mixing
    active = {c: [w[e].nonzero().flatten().tolist() for e in range(14)] for c, w in weights.items()}
    full = net(x, weights)
    sparse = net(x, weights, active)
    assert torch.allclose(full, sparse, atol=1e-6, rtol=0)


def _naive_cell(cell, s0, s1, w):
    """DARTS' MixedOp sum, op by op from the same modules: sum_k w[e, k] * op_k(x), `none` included."""
    states = [cell.preprocess0(s0), cell.preprocess1(s1)]
    e = 0
    for i in range(4):
        total = 0
        for j in range(i + 2):
            total = total + sum(w[e, k] * op(states[j]) for k, op in enumerate(cell.edges[e]))
            e += 1
        states.append(total)
    return torch.cat(states[2:], dim=1)


@pytest.mark.parametrize("reduction", [False, True])
def test_fused_cell_equals_mixed_op_sum(reduction):
    """The cell's fused forward (shared ReLU, weight folded into the BN, in-place sums) computes DARTS'
    MixedOp sum, values and gradients."""
    from search_spaces.darts.cells import SearchCell

    torch.manual_seed(0)
    cell = SearchCell(6, 6, 2, reduction=reduction, reduction_prev=False).double()
    s0, s1 = torch.randn(2, 2, 6, 6, 6, dtype=torch.float64, requires_grad=True)
    w = torch.softmax(torch.randn(14, 8, dtype=torch.float64), -1).requires_grad_()
    out = cell(s0, s1, w)
    ref = _naive_cell(cell, s0, s1, w)
    assert torch.allclose(out, ref, atol=1e-12)
    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum(), [w, s1, *cell.parameters()], allow_unused=True)
    refs = torch.autograd.grad((ref * g).sum(), [w, s1, *cell.parameters()], allow_unused=True)
    for a, b in zip(grads, refs):
        assert (a is None and b is None) or torch.allclose(a, b, atol=1e-10)


def test_supernet_gradients_reach_weights_and_arch():
    net = supernet(C=4, layers=3, num_classes=10)
    w = {c: torch.softmax(torch.zeros(14, 8), -1).requires_grad_() for c in ("normal", "reduce")}
    net(torch.randn(2, 3, 8, 8), w).sum().backward()
    assert all(w[c].grad is not None and w[c].grad[:, 1:].abs().sum() > 0 for c in w)


def test_bad_probabilities():
    with pytest.raises(ValueError, match="lack group 'reduce'"):
        discretize({"normal": torch.ones(14, 8)})
    with pytest.raises(ValueError, match=r"must have shape \(14, 8\)"):
        discretize({"normal": torch.ones(14, 7), "reduce": torch.ones(14, 8)})


def test_space_hooks():
    space = DartsSpace()
    assert space.row_names("normal")[0] == "2←0" and space.row_names("reduce")[-1] == "5←4"
    fig = space.draw(str(DARTS_V2))
    assert len(fig.axes) == 2 and [a.get_title() for a in fig.axes] == ["normal cell", "reduction cell"]
    with pytest.raises(ValueError, match="whole-space scoring does not apply"):
        space.enumerate()
