"""Settings the space owns: size keys of the search config and the sweep spec (defaults, unknown keys named),
the space's search defaults, and the benchmark's budgets and columns."""

from __future__ import annotations

import pytest

from search_spaces.benchmarks.registry import benchmark_class
from search_spaces.space import available_spaces, get_space
from trainables.search.config import SearchConfig, parse_config
from trainables.sweep.spec import SpecError, validate_spec


@pytest.mark.parametrize("space", available_spaces())
def test_search_config_takes_the_space_size_keys(space):
    sp = get_space(space)
    assert SearchConfig(space=space).size == dict(sp.search_size)
    key = next(iter(sp.search_size))
    assert SearchConfig(space=space, **{key: 3}).size == {**sp.search_size, key: 3}


def test_a_size_key_of_another_space_is_an_error_naming_it():
    assert SearchConfig(space="nb201", C=8, N=2).size == {"C": 8, "N": 2}
    with pytest.raises(ValueError, match=r"N=?.*space 'darts' takes no size key 'N'.*C, layers"):
        parse_config({"space": "darts", "N": 5})
    with pytest.raises(ValueError, match=r"layers.*space 'nb201' takes no size key"):
        parse_config({"space": "nb201", "layers": 8})
    with pytest.raises(ValueError, match=r"C: must be an integer >= 1 \(got 0\)"):
        parse_config({"space": "nb201", "C": 0})


def test_spec_names_the_search_field_of_a_foreign_size_key(tiny_cifar10):
    data = {"name": "x", "space": "darts", "data_root": str(tiny_cifar10), "methods": {"darts-v1": {}},
            "search": {"epochs": 1, "N": 5}}
    with pytest.raises(SpecError, match=r"search\.N: unknown search setting .*size keys C, layers"):
        validate_spec(data)
    data["search"] = {"epochs": 1, "layers": 0}
    with pytest.raises(SpecError, match=r"search\.layers: must be an integer >= 1"):
        validate_spec(data)
    data["search"], data["proxies"] = {"epochs": 1}, {"N": 2}
    with pytest.raises(SpecError, match=r"proxies\.N: space 'darts' takes no size key"):
        validate_spec(data)


def test_space_search_defaults_fill_what_the_config_leaves_out():
    darts = SearchConfig(space="darts")
    assert (darts.w_nesterov, darts.w_weight_decay) == (False, 3e-4)  # quark0/darts train_search.py
    assert SearchConfig(space="darts", w_nesterov=True).w_nesterov is True
    assert (SearchConfig(space="nb201").w_nesterov, SearchConfig(space="nb201").w_weight_decay) == (True, 5e-4)


@pytest.mark.parametrize("name, epochs, columns", [
    ("nb201", 200, ["bench_cifar10_valid_valid", "bench_cifar10_test", "bench_cifar100_valid",
                    "bench_cifar100_test", "bench_imagenet16_120_valid", "bench_imagenet16_120_test"]),
    ("nb101", 108, ["bench_nb101_valid", "bench_nb101_test"]),
])
def test_benchmarks_own_their_budget_and_columns(name, epochs, columns):
    cls = benchmark_class(name)
    assert cls.default_epochs == epochs
    assert [c.bench[0] for c in cls.report_columns] == columns


def test_record_without_a_budget_uses_the_benchmark_default():
    """A table holding 36 and 108 epochs (as NB101) and default 108 answers at 108, never asks for 200."""
    import numpy as np

    from search_spaces.benchmarks.base import Benchmark, BenchmarkQueryError

    class Table(Benchmark):
        default_epochs = 108

    bench = Table(["h"], {("nb101", "test", 108): np.array([93.0]), ("nb101", "test", 36): np.array([90.0])})
    assert bench.epochs() == [36, 108] and bench.budget() == 108
    assert bench.record("h") == {"bench_nb101_test": 93.0} and bench.query("h", "nb101") == 93.0
    with pytest.raises(BenchmarkQueryError, match="epochs=200"):
        bench.record("h", epochs=200)
    Table.default_epochs = None  # no default: the largest budget held
    assert bench.budget() == 108 and bench.record("h", epochs=36) == {"bench_nb101_test": 90.0}
