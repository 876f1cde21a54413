"""NAS-Bench-1Shot1 spaces: Table 1 counts by enumeration, strings, and conversion to NB101 cells."""

from __future__ import annotations

import math

import numpy as np
import pytest

from search_spaces.nb1shot1 import SPACES, all_architectures, arch_to_spec, canonical, count_architectures, parse
from search_spaces.nb1shot1.encoding import Arch, parent_sets, random_architecture
from search_spaces.nb1shot1.nb101.graph import CONV1X1, CONV3X3, MAXPOOL3X3, canonical_spec

PAPER_TABLE_1 = {1: 6240, 2: 29160, 3: 363648}  # Zela et al., ICLR 2020, Table 1


@pytest.mark.parametrize("space", [1, 2, 3])
def test_counts_match_the_paper(space):
    assert count_architectures(space) == PAPER_TABLE_1[space]


@pytest.mark.parametrize("space", [1, 2, 3])
def test_all_ops_count_is_the_closed_form_product(space):
    spec = SPACES[space]
    k = spec.num_blocks
    product = math.prod(math.comb(i, n) for i, n in enumerate(spec.block_parents, start=1))
    product *= math.comb(k + 1, spec.output_parents) * 3 ** k
    assert count_architectures(space, count_loose_ops=True) == product


@pytest.mark.parametrize("space", [1, 2])
def test_feeding_count_equals_distinct_relevant_configurations(space):
    """Independent of the counting formula: enumerate every configuration, forget the ops of blocks
    without outgoing edges, count the distinct results."""
    seen = set()
    n = 0
    for a in all_architectures(space):
        n += 1
        feeding = {p for ps in (*a.parents, a.output) for p in ps if p > 0}
        seen.add((a.parents, a.output, tuple(o if b + 1 in feeding else -1 for b, o in enumerate(a.ops))))
    assert n == count_architectures(space, count_loose_ops=True)
    assert len(seen) == count_architectures(space, count_loose_ops=False)
    if space == 1:
        assert len(seen) == PAPER_TABLE_1[1]


@pytest.mark.parametrize("space", [1, 2])
def test_every_parent_configuration_is_an_nb101_cell(space):
    vertices = set()
    for parents, output in parent_sets(space):
        for op in range(3):
            a = Arch(space, (op,) * SPACES[space].num_blocks, parents, output)
            pm, pops, _ = canonical_spec(*arch_to_spec(a.to_string()))  # raises if outside NB101
            vertices.add(len(pops))
            assert pm.sum() <= 9
    assert max(vertices) <= 6  # the dummy vertex is always pruned


@pytest.mark.parametrize("space", [2, 3])
def test_random_architectures_are_nb101_cells_and_round_trip(space):
    rng = np.random.default_rng(space)
    for _ in range(300):
        a = random_architecture(space, rng)
        s = a.to_string()
        assert parse(s) == a and canonical(s) == s
        canonical_spec(*arch_to_spec(s))


def test_known_spec():
    m, ops = arch_to_spec("1:conv3x3~0|conv1x1~0+1|maxpool3x3~0+2|conv3x3~1+3|out~2+4")
    expected = np.zeros((7, 7), dtype=int)
    for src, dst in [(0, 1), (0, 2), (1, 2), (0, 3), (2, 3), (1, 4), (3, 4), (2, 6), (4, 6)]:
        expected[src, dst] = 1
    assert m.tolist() == expected.tolist()
    assert ops == ["input", CONV3X3, CONV1X1, MAXPOOL3X3, CONV3X3, CONV1X1, "output"]
    m3, ops3 = arch_to_spec("3:conv3x3~0|conv3x3~1|conv3x3~2|conv3x3~0+3|conv3x3~1+4|out~4+5")
    assert m3[4, 5] == 1 and m3[5, 6] == 1 and len(ops3) == 7 and ops3[5] == CONV3X3


@pytest.mark.parametrize("arch, match", [
    ("conv3x3~0|conv1x1~0+1|maxpool3x3~0+2|conv3x3~1+3|out~2+4", "space number"),
    ("1:conv3x3~0|conv1x1~0+1|maxpool3x3~0+2|conv3x3~1+3", "output"),
    ("1:conv5x5~0|conv1x1~0+1|maxpool3x3~0+2|conv3x3~1+3|out~2+4", "unknown op 'conv5x5'"),
    ("1:conv3x3~0|conv1x1~0+1|maxpool3x3~2|conv3x3~1+3|out~2+4", "block 3 needs 2"),
    ("1:conv3x3~0|conv1x1~0+1|maxpool3x3~2+0|conv3x3~1+3|out~2+4", "sorted"),
    ("1:conv3x3~0|conv1x1~0+1|maxpool3x3~0+3|conv3x3~1+3|out~2+4", "among 0..2"),
    ("2:conv3x3~0|conv1x1~0|maxpool3x3~0+2|conv3x3~1+3|out~2+4", "output needs 3"),
    ("1:conv3x3~a|conv1x1~0+1|maxpool3x3~0+2|conv3x3~1+3|out~2+4", "malformed token"),
])
def test_bad_strings_name_the_problem(arch, match):
    with pytest.raises(ValueError, match=match):
        canonical(arch)
