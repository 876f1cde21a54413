"""The NB301 zero-cost sample as a partial benchmark: values for sampled genotypes, missing otherwise."""

import ast
import json
import math

import pytest

from search_spaces.benchmarks import open_benchmark
from search_spaces.darts import DARTS_V2, Genotype


@pytest.fixture(scope="module")
def nb301(shared_data):
    path = shared_data / "zero_cost" / "zc_nasbench301_small.json"
    return open_benchmark("nb301-zc", path), json.loads(path.read_text())["nasbench301"]["cifar10"]


def test_sample_values_are_the_files(nb301):
    bench, rows = nb301
    assert len(bench) == 500
    for key, value in list(rows.items())[:50]:
        g = Genotype.from_compact(key)
        assert bench.query(str(g), "cifar10", "valid") == value["val_accuracy"]
        assert bench.record(g) == {"bench_cifar10_valid": value["val_accuracy"], "naslib_params_M": value["params"]}
        # the same architecture with a node's two pairs swapped is the same row
        swapped = [list(c) for c in ast.literal_eval(key)]
        swapped[0][0], swapped[0][1] = swapped[0][1], swapped[0][0]
        assert bench.query(Genotype.from_compact(swapped), "cifar10", "valid") == value["val_accuracy"]
    accs = bench.column("cifar10", "valid", 100)
    assert 91.0 < accs.min() < accs.max() < 94.6


def test_other_genotypes_are_missing_never_invented(nb301):
    bench, _ = nb301
    assert str(DARTS_V2) not in bench
    assert math.isnan(bench.query(str(DARTS_V2), "cifar10", "valid"))
    assert bench.record(str(DARTS_V2)) == {}


def test_bad_input(nb301, tmp_path):
    bench, _ = nb301
    with pytest.raises(ValueError, match="unknown op"):
        bench.query(str(DARTS_V2).replace("dil_conv_3x3", "conv_9x9"), "cifar10", "valid")
    with pytest.raises(ValueError, match="no accuracy"):
        bench.query(str(DARTS_V2), "cifar100", "valid")
    bad = tmp_path / "x.json"
    bad.write_text('{"nasbench201": {}}')
    with pytest.raises(ValueError, match="not a NASLib NB301 zero-cost file"):
        open_benchmark("nb301-zc", bad)
    with pytest.raises(FileNotFoundError, match="zc_nasbench301.json"):
        open_benchmark("nb301-zc", tmp_path / "missing.json")
