"""Genotypes: DARTS' text form, NASLib's compact form, the canonical string, and bad input."""

import ast
import json

import pytest

from search_spaces.darts import COMPACT_OPS, DARTS_V1, DARTS_V2, OPS, PC_DARTS_CIFAR, Genotype, canonical

# DARTS_V2 exactly as quark0/darts cnn/genotypes.py prints it (its own pair order).
DARTS_V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")


def test_op_order_is_darts_primitives():
    assert OPS == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                   "dil_conv_3x3", "dil_conv_5x5")
    assert OPS[1:] == COMPACT_OPS


def test_text_round_trip_and_canonical_order():
    g = Genotype.parse(DARTS_V2_TEXT)
    assert g == DARTS_V2
    assert Genotype.parse(str(g)) == g
    # each node's pairs as a set are the reference's; the canonical string orders them by input
    ref = ast.literal_eval(DARTS_V2_TEXT[len("Genotype("):-1].split(", normal_concat")[0].split("=", 1)[1])
    for node in range(4):
        assert set(g.normal[2 * node:2 * node + 2]) == set(ref[2 * node:2 * node + 2])
    assert str(g).startswith("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ")
    assert canonical(DARTS_V2_TEXT) == str(g) == canonical(g.to_compact())


def test_range_concat_and_published_set():
    assert PC_DARTS_CIFAR.to_compact() != DARTS_V1.to_compact()
    text = str(DARTS_V1).replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6)")
    assert Genotype.parse(text) == DARTS_V1


def test_compact_both_ways_on_naslib_sample(shared_data):
    data = json.loads((shared_data / "zero_cost" / "zc_nasbench301_small.json").read_text())
    keys = list(data["nasbench301"]["cifar10"])
    seen = set()
    for key in keys:
        compact = ast.literal_eval(key)
        g = Genotype.from_compact(key)
        back = g.to_compact()
        for cell, ref in zip(back, compact):      # same pairs per node (canonical order within a node)
            for node in range(4):
                assert set(cell[2 * node:2 * node + 2]) == set(ref[2 * node:2 * node + 2])
        assert Genotype.from_compact(back) == g == Genotype.parse(str(g))
        seen.add(str(g))
    assert len(seen) == len(keys) == 500


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.replace("'dil_conv_3x3', 2", "'conv_7x1_1x7', 2"), "unknown op 'conv_7x1_1x7'"),
    (lambda t: t.replace("('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2)",
                         "('max_pool_3x3', 0), ('max_pool_3x3', 2), ('skip_connect', 2)"), "input 2 of node 2"),
    (lambda t: t.replace("('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0)",
                         "('sep_conv_3x3', 0), ('sep_conv_3x3', 0), ('sep_conv_3x3', 0)"), "takes input 0 twice"),
    (lambda t: t.replace("('dil_conv_3x3', 2)]", "('dil_conv_3x3', 2), ('sep_conv_3x3', 3)]"), "got 9"),
    (lambda t: t.replace(", ('dil_conv_3x3', 2)]", "]"), "got 7"),
    (lambda t: t.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 3, 4, 5, 6]"), "normal_concat"),
    (lambda t: t.replace("('none', 0)", "") .replace("'sep_conv_3x3', 0", "'none', 0", 1), "unknown op 'none'"),
])
def test_bad_genotypes_name_the_problem(mutate, message):
    with pytest.raises(ValueError, match=message):
        Genotype.parse(mutate(DARTS_V2_TEXT))


@pytest.mark.parametrize("text", ["foo", "Genotype(", "__import__('os').system('true')", "Genotype(1, 2)",
                                  "Genotype(normal=[], reduce=open('x'))"])
def test_not_a_genotype_shows_the_format(text):
    with pytest.raises(ValueError, match=r"Genotype\(normal=\[\('sep_conv_3x3', 0\)"):
        Genotype.parse(text)


def test_bad_compact():
    good = [list(c) for c in DARTS_V2.to_compact()]
    with pytest.raises(ValueError, match="op index 7 is out of range"):
        Genotype.from_compact([good[0][:7] + [(1, 7)], good[1]])
    with pytest.raises(ValueError, match="compact"):
        Genotype.from_compact("[[(0, 1)")
    with pytest.raises(ValueError, match="input 4 of node 3"):
        Genotype.from_compact([good[0][:2] + [(4, 1)] + good[0][3:], good[1]])
