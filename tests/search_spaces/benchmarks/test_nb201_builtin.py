"""The NB201 table shipped with the package: equal to a fresh conversion of the shared CSV, opened without a
path, and the default ground truth of nb201 sweeps (an explicit path still wins)."""

from __future__ import annotations

import numpy as np
import pytest

from balenas.commands.benchmark import main as benchmark_main
from search_spaces.benchmarks import builtin_table, open_benchmark, table_path
from search_spaces.benchmarks.table_io import read_table
from trainables.sweep.spec import validate_spec

RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


def test_packaged_table_equals_a_fresh_conversion_of_the_shared_csv(shared_data, tmp_path):
    fresh = tmp_path / "nb201.parquet"
    assert benchmark_main(["convert", str(shared_data / "nb201" / "nb201_merged.csv"), str(fresh), "--quiet"]) == 0
    meta_p, keys_p, metrics_p, extras_p = read_table(builtin_table("nb201"))
    meta_f, keys_f, metrics_f, extras_f = read_table(fresh)
    assert meta_p == meta_f and keys_p == keys_f
    assert metrics_p.keys() == metrics_f.keys() and extras_p.keys() == extras_f.keys()
    for key in metrics_f:
        np.testing.assert_array_equal(metrics_p[key], metrics_f[key])
    for key in extras_f:
        np.testing.assert_array_equal(extras_p[key], extras_f[key])


def test_open_without_a_path_gives_the_published_optima():
    bench = open_benchmark("nb201")
    assert len(bench) == 15_625 and "nb201.parquet" in bench.source
    # best test accuracies of NAS-Bench-201 (Dong & Yang 2020, Table 5 "optimal": 94.37 / 73.51 / 47.31)
    assert np.nanmax(bench.column("cifar10", "test")) == pytest.approx(94.3733, abs=1e-4)
    assert np.nanmax(bench.column("cifar100", "test")) == pytest.approx(73.5133, abs=1e-4)
    assert np.nanmax(bench.column("ImageNet16-120", "test")) == pytest.approx(47.3111, abs=1e-4)
    assert open_benchmark("nb201", "nb201").record(RESNET) == bench.record(RESNET)  # the name stands for it


def test_an_explicit_path_wins_and_a_benchmark_without_a_packaged_table_needs_one(tmp_path):
    missing = tmp_path / "mine.parquet"
    assert table_path("nb201", missing) == missing
    with pytest.raises(FileNotFoundError, match="mine.parquet"):
        open_benchmark("nb201", missing)
    assert builtin_table("nb101") is None
    with pytest.raises(ValueError, match="nb101.*ships no table"):
        open_benchmark("nb101")


def _spec(tmp_path, **extra) -> dict:
    return {"name": "t", "space": "nb201", "dataset": "cifar10", "methods": {"darts-v1": {}},
            "search": {"epochs": 1, "C": 4, "N": 1}, **extra}


def test_nb201_sweeps_get_the_packaged_ground_truth_by_default(tmp_path):
    assert validate_spec(_spec(tmp_path)).benchmark == "nb201"
    assert validate_spec(_spec(tmp_path, benchmark="nb201")).benchmark == "nb201"
    assert validate_spec(_spec(tmp_path, benchmark=None)).benchmark is None  # explicit null: no ground truth
    own = validate_spec(_spec(tmp_path, benchmark="tables/nb201.parquet"), base_dir=tmp_path).benchmark
    assert own == str((tmp_path / "tables" / "nb201.parquet").resolve())  # a path resolves against the spec
    assert validate_spec(_spec(tmp_path, space="nb1shot1-1")).benchmark is None  # NB101 ships no table
    assert validate_spec(_spec(tmp_path)).search_config("darts-v1", {}, 0)["benchmark"] == "nb201"
