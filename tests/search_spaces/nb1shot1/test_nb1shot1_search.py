"""NAS-Bench-1Shot1 end to end: benchmark records of the space's strings, and one search step on
'nb1shot1-1' with DARTS reporting bench_nb101_* of its argmax genotype."""

from __future__ import annotations

import itertools
import math

import pytest

from search_spaces.nb1shot1 import Arch, arch_to_spec
from search_spaces.nb1shot1.encoding import live_blocks, parent_sets
from search_spaces.nb1shot1.nb101.benchmark import NB101Benchmark, convert
from search_spaces.nb1shot1.nb101.graph import canonical_spec
from search_spaces.nb1shot1.nb101.records import encode_record
from search_spaces.nb1shot1.nb101.tfrecord import write_records


def _synthetic_accuracy(module_hash: str) -> float:
    return int(module_hash[:4], 16) / 65536


@pytest.fixture(scope="module")
def space1_table(tmp_path_factory):
    """A table holding every NB101 cell of space 1 (ops varied only on blocks that reach the output, the
    others cannot change the cell); accuracies are synthetic, a function of the module hash."""
    tmp = tmp_path_factory.mktemp("nb1shot1")
    cells = {}
    for parents, output in parent_sets(1):
        live = sorted(live_blocks(Arch(1, (0, 0, 0, 0), parents, output)))
        for live_ops in itertools.product(range(3), repeat=len(live)):
            ops = [0, 0, 0, 0]
            for b, o in zip(live, live_ops):
                ops[b - 1] = o
            pm, pops, h = canonical_spec(*arch_to_spec(Arch(1, tuple(ops), parents, output).to_string()))
            cells.setdefault(h, (pm, pops))
    records = []
    for h, (pm, pops) in cells.items():
        acc = _synthetic_accuracy(h)
        ev = {"current_epoch": 108.0, "validation_accuracy": acc, "test_accuracy": acc / 2, "train_accuracy": 1.0,
              "training_time": 10.0}
        records += [encode_record(h, 108, pm, pops, 1000, [ev, ev, ev])] * 3
    write_records(tmp / "ss1.tfrecord", records)
    convert(tmp / "ss1.tfrecord", tmp / "ss1.parquet")
    return tmp / "ss1.parquet", len(cells)


def test_benchmark_record_of_space_strings(space1_table):
    path, n_cells = space1_table
    bench = NB101Benchmark.open(path)
    assert len(bench) == n_cells
    arch = "1:conv3x3~0|conv1x1~0+1|maxpool3x3~0+2|conv3x3~1+3|out~2+4"
    rec = bench.record(arch)
    h = canonical_spec(*arch_to_spec(arch))[2]
    assert rec["bench_nb101_valid"] == pytest.approx(100 * _synthetic_accuracy(h))
    assert rec["bench_nb101_test"] == pytest.approx(rec["bench_nb101_valid"] / 2)
    # the op of a block without outgoing edges does not change the cell
    loose = "1:conv3x3~0|conv1x1~0+1|maxpool3x3~0+2|conv3x3~1+3|out~2+3"
    loose2 = "1:conv3x3~0|conv1x1~0+1|maxpool3x3~0+2|maxpool3x3~1+3|out~2+3"
    assert bench.record(loose) == bench.record(loose2)
    with pytest.raises(ValueError, match="space number"):
        bench.record("conv3x3~0|out~0+1")


def test_run_search_one_step_on_space_1(space1_table, tiny_cifar10):
    search = pytest.importorskip("trainables.search.loop")
    rows = search.run_search(dict(space="nb1shot1-1", method="darts-v1", data_root=str(tiny_cifar10), C=4, N=1,
                                  batch_size=16, epochs=1, steps_per_epoch=1, device="cpu", seed=0,
                                  benchmark=str(space1_table[0])))
    assert len(rows) == 1
    row = rows[0]
    genotype = row["genotype"]
    assert genotype.startswith("1:") and math.isfinite(row["train_loss"])
    h = canonical_spec(*arch_to_spec(genotype))[2]
    assert row["bench_nb101_valid"] == pytest.approx(100 * _synthetic_accuracy(h))


@pytest.mark.parametrize("method, space", [("gdas", "nb1shot1-2"), ("snas", "nb1shot1-3"), ("drnas", "nb1shot1-2"),
                                           ("balenas", "nb1shot1-3")])
def test_other_methods_step_on_the_supernet(method, space, tiny_cifar10):
    """Sparse (GDAS: one-hot weights + active lists), joint (SNAS), Dirichlet (DrNAS) and Gaussian (BaLeNAS)
    weights all drive the 1Shot1 supernet."""
    search = pytest.importorskip("trainables.search.loop")
    registry = pytest.importorskip("trainables.methods.registry")
    if method not in registry.available_methods():
        pytest.skip(f"method {method} not registered")
    rows = search.run_search(dict(space=space, method=method, data_root=str(tiny_cifar10), C=4, N=1,
                                  batch_size=16, epochs=1, steps_per_epoch=1, device="cpu", seed=0))
    assert rows[0]["genotype"].startswith(space[-1] + ":") and math.isfinite(rows[0]["train_loss"])
