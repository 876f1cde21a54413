"""NB101 records -> Parquet table -> queries: tiny files in the official format, corruption, the CLI, and
the 500 published NAS-Bench-101 architectures of NAS-Bench-Suite-Zero as a real check of hash + query."""

from __future__ import annotations

import json

import numpy as np
import pytest
from nb101_zc import NASLIB_OPS, zc_entries, zc_groups, zc_table

from balenas.commands.benchmark import main
from search_spaces.benchmarks.base import BenchmarkQueryError, UnknownArchitectureError
from search_spaces.nb1shot1.nb101.benchmark import NB101Benchmark, convert
from search_spaces.nb1shot1.nb101.graph import CONV1X1, CONV3X3, MAXPOOL3X3, InvalidSpecError, canonical_spec
from search_spaces.nb1shot1.nb101.records import decode_record, encode_record
from search_spaces.nb1shot1.nb101.tfrecord import RecordError, iter_records, write_records

CELLS = [  # (matrix, ops) already pruned, as the official file stores them
    (np.array([[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
               [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0]]),
     ["input", CONV1X1, CONV3X3, CONV3X3, CONV3X3, MAXPOOL3X3, "output"]),
    (np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), ["input", CONV3X3, "output"]),
    (np.array([[0, 1, 1, 0], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]]), ["input", MAXPOOL3X3, CONV1X1, "output"]),
]


def _runs(rng, n_cells, epochs_list=(4, 12, 36, 108)):
    """Per (cell, epochs): 3 repeats of (halfway, final) evaluation dicts with random accuracies."""
    out = {}
    for c in range(n_cells):
        for e in epochs_list:
            reps = []
            for _ in range(3):
                final = {"current_epoch": float(e), "training_time": float(rng.uniform(100, 2000)),
                         "train_accuracy": float(rng.uniform(0.8, 1)),
                         "validation_accuracy": float(rng.uniform(0.5, 0.95)),
                         "test_accuracy": float(rng.uniform(0.5, 0.95))}
                half = {k: v / 2 for k, v in final.items()}
                reps.append((half, final))
            out[c, e] = reps
    return out


def _write_official(path, cells, runs, params):
    records = []
    for (c, e), reps in runs.items():
        m, ops = cells[c]
        h = canonical_spec(m, ops)[2]
        for half, final in reps:
            start = {"current_epoch": 0.0, "training_time": 0.0, "train_accuracy": 0.1,
                     "validation_accuracy": 0.1, "test_accuracy": 0.1}
            records.append(encode_record(h, e, m, ops, params[c], [start, half, final],
                                         total_time=final["training_time"]))
    write_records(path, records)
    return len(records)


@pytest.fixture
def tiny_table(tmp_path):
    rng = np.random.default_rng(0)
    runs = _runs(rng, len(CELLS))
    params = [2694282, 120000, 345678]
    src = tmp_path / "nasbench_tiny.tfrecord"
    n = _write_official(src, CELLS, runs, params)
    out = tmp_path / "nb101.parquet"
    summary = convert(src, out, check_hashes=True)
    assert summary["records"] == n == 3 * 4 * 3 and summary["cells"] == 3 and summary["rows"] == 12
    return out, runs, params, src


def test_records_decode_like_the_official_api(tiny_table):
    _, runs, params, src = tiny_table
    first = decode_record(next(iter_records(src))[1])
    half, final = runs[0, 4][0]
    assert first.epochs == 4 and first.trainable_parameters == params[0]
    assert first.final["validation_accuracy"] == final["validation_accuracy"]
    assert first.halfway["test_accuracy"] == half["test_accuracy"]
    assert first.matrix().tolist() == CELLS[0][0].tolist()


def test_query_means_and_stds_over_repeats(tiny_table):
    out, runs, params, _ = tiny_table
    bench = NB101Benchmark.open(out)
    assert len(bench) == 3 and bench.epochs() == [4, 12, 36, 108]
    for c, (m, ops) in enumerate(CELLS):
        for e in (4, 12, 36, 108):
            res = bench.query(m, ops, epochs=e)
            finals = [f for _, f in runs[c, e]]
            halves = [h for h, _ in runs[c, e]]
            v = [f["validation_accuracy"] for f in finals]
            assert res["valid_accuracy"] == pytest.approx(np.mean(v), abs=1e-12)
            assert res["valid_accuracy_std"] == pytest.approx(np.std(v), abs=1e-9)
            assert res["test_accuracy"] == pytest.approx(np.mean([f["test_accuracy"] for f in finals]), abs=1e-12)
            assert res["train_accuracy"] == pytest.approx(np.mean([f["train_accuracy"] for f in finals]), abs=1e-12)
            assert res["training_time"] == pytest.approx(np.mean([f["training_time"] for f in finals]), rel=1e-12)
            assert res["halfway_valid_accuracy"] == pytest.approx(
                np.mean([h["validation_accuracy"] for h in halves]), abs=1e-12)
            assert res["trainable_parameters"] == params[c] and res["num_repeats"] == 3
    # record(): platform keys, percent
    h = bench.query(*CELLS[1])["module_hash"]
    rec = bench.record(h)
    assert set(rec) == {"bench_nb101_train", "bench_nb101_valid", "bench_nb101_test", "params_M"}
    assert rec["bench_nb101_valid"] == pytest.approx(100 * bench.query(*CELLS[1])["valid_accuracy"])
    assert rec["params_M"] == pytest.approx(0.12)


def test_query_prunes_before_lookup(tiny_table):
    bench = NB101Benchmark.open(tiny_table[0])
    m, ops = CELLS[2]
    # the same cell with a dead-end vertex (1) inserted: pruning must remove it before hashing
    big = np.zeros((5, 5), dtype=int)
    big[0, 1] = 1  # input -> dead end
    big[0, 2] = big[0, 3] = big[2, 3] = big[2, 4] = big[3, 4] = 1
    big_ops = ["input", CONV3X3, MAXPOOL3X3, CONV1X1, "output"]
    assert bench.query(big, big_ops)["valid_accuracy"] == bench.query(m, ops)["valid_accuracy"]
    assert bench.query(big, big_ops)["module_adjacency"].tolist() == m.tolist()


def test_query_errors(tiny_table):
    bench = NB101Benchmark.open(tiny_table[0])
    with pytest.raises(InvalidSpecError, match="disconnected"):
        bench.query(np.zeros((3, 3)), ["input", CONV3X3, "output"])
    with pytest.raises(InvalidSpecError, match="too many edges"):
        bench.query(np.triu(np.ones((7, 7)), 1), ["input", *[CONV3X3] * 5, "output"])
    with pytest.raises(InvalidSpecError, match="unsupported op"):
        bench.query(CELLS[1][0], ["input", "conv5x5", "output"])
    with pytest.raises(UnknownArchitectureError, match="no 108-epoch result"):
        bench.query(CELLS[1][0], ["input", MAXPOOL3X3, "output"])
    with pytest.raises(BenchmarkQueryError, match="epochs=200"):
        bench.query(*CELLS[1], epochs=200)


def test_corrupted_crc_names_file_and_offset(tiny_table, tmp_path):
    src = tiny_table[3]
    raw = bytearray(src.read_bytes())
    offsets = [o for o, _ in iter_records(src)]
    raw[offsets[5] + 12 + 10] ^= 0x20  # a byte inside record 5's data
    bad = tmp_path / "corrupt.tfrecord"
    bad.write_bytes(bytes(raw))
    with pytest.raises(RecordError) as err:
        convert(bad, tmp_path / "x.parquet")
    assert err.value.offset == offsets[5] and "corrupt.tfrecord" in str(err.value)
    assert f"offset {offsets[5]}" in str(err.value) and "CRC" in str(err.value)
    assert not (tmp_path / "x.parquet").exists()


def test_bad_payload_and_missing_files(tmp_path):
    src = tmp_path / "junk.tfrecord"
    write_records(src, [b"not json"])
    with pytest.raises(RecordError, match="offset 0.*JSON"):
        convert(src, tmp_path / "o.parquet")
    with pytest.raises(FileNotFoundError, match="nasbench_full"):
        convert(tmp_path / "nope.tfrecord", tmp_path / "o.parquet")
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        NB101Benchmark.open(tmp_path / "nope.parquet")


def test_cli_convert_and_query(tiny_table, tmp_path, capsys):
    """`balenas benchmark convert|query --benchmark nb101`: the converter's flags, a cell by matrix and ops
    (NB101's own fields, JSON) or by module hash (the generic lines)."""
    _, _, _, src = tiny_table
    out = tmp_path / "cli.parquet"
    assert main(["convert", str(src), str(out), "--benchmark", "nb101", "--quiet", "--check-hashes"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 12
    assert main(["convert", str(src), str(tmp_path / "nocrc.parquet"), "--benchmark", "nb101", "--no-crc"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["rows"] == 12 and "wrote" in captured.err  # progress on stderr
    assert main(["convert", str(src), str(tmp_path / "x.parquet"), "--benchmark", "nb201", "--no-crc"]) == 2
    assert "--no-crc does not apply to --benchmark nb201" in capsys.readouterr().err
    m, ops = CELLS[1]
    matrix = ["--matrix", "".join(map(str, m.ravel())), "--ops", ",".join(ops)]
    assert main(["query", "--benchmark", "nb101", "--table", str(out), *matrix]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["trainable_parameters"] == 120000 and 0.5 <= res["valid_accuracy"] <= 0.95 and res["epochs"] == 108
    assert main(["query", "--benchmark", "nb101", "--table", str(out), *matrix, "--epochs", "36"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 36
    assert main(["query", "--benchmark", "nb101", "--table", str(out), "--arch", res["module_hash"]]) == 0
    lines = capsys.readouterr().out
    assert f"nb101           valid   108ep  {100 * res['valid_accuracy']:.4f}" in lines and "params_M" in lines
    assert main(["query", "--benchmark", "nb101", "--table", str(out), "--matrix", "000000000", "--ops",
                 ",".join(ops)]) == 2
    assert "disconnected" in capsys.readouterr().err
    assert main(["query", "--benchmark", "nb101", "--table", str(out), "--matrix", "0" * 49]) == 2
    assert "--matrix and --ops together" in capsys.readouterr().err
    assert main(["query", "--table", str(out), *matrix]) == 2  # nb201 names its cells by string only
    assert "--matrix, --ops do not apply to --benchmark nb201" in capsys.readouterr().err


def test_open_benchmark_registry(tiny_table):
    from search_spaces.benchmarks import open_benchmark

    bench = open_benchmark("nb101", tiny_table[0])
    assert isinstance(bench, NB101Benchmark) and len(bench) == 3


# ----- real data: 500 NB101 architectures published with zero-cost scores (NASLib / NAS-Bench-Suite-Zero)
def test_zc_op_code_order_from_parameter_counts(shared_data):
    """Check NASLib's op codes before relying on them: a least-squares fit of the published parameter
    counts on the number of vertices of each code gives conv3x3 (9 C^2 weights) by far the largest slope."""
    entries = zc_entries(shared_data)
    assert len(entries) == 500
    X = np.array([[ops[1:-1].count(c) for c in (2, 3, 4)] + [1] for _, ops, _ in entries], dtype=float)
    y = np.array([v["params"] for _, _, v in entries])
    slope = np.linalg.lstsq(X, y, rcond=None)[0]
    assert slope[2] > 3 * max(slope[0], slope[1])  # code 4 = conv3x3-bn-relu


def test_zc_architectures_hash_and_query(shared_data, tmp_path):
    """The keys are unpruned random specs (NASLib samples, then NB101 prunes), many of them the same cell.
    NASLib reports one random repeat per sample, so a correct hash groups samples whose published
    accuracies take at most 3 distinct values (NB101's 3 repeats) and whose FLOPs agree."""
    entries = zc_entries(shared_data)
    groups, _ = zc_groups(entries)
    multi = [g for g in groups.values() if len(g) > 1]
    assert len(groups) < 500 and sum(len(g) >= 4 for g in multi) >= 10
    for g in multi:
        assert len({round(v["val_accuracy"], 6) for v in g}) <= 3
    assert sum(len({v["flops"] for v in g}) == 1 for g in multi) >= 0.9 * len(multi)
    # table built from them: each cell's repeats = its distinct published accuracies
    zc_table(shared_data, tmp_path)
    bench = NB101Benchmark.open(tmp_path / "zc.parquet")
    assert len(bench) == len(groups)
    for m, codes, v in entries:
        res = bench.query(m, [NASLIB_OPS[c] for c in codes], epochs=108)
        published = sorted({x["val_accuracy"] for x in groups[res["module_hash"]]})
        assert published[0] - 1e-6 <= 100 * res["valid_accuracy"] <= published[-1] + 1e-6
        assert v["val_accuracy"] in published


def test_generic_benchmark_interface(tiny_table, capsys):
    """The Benchmark base's query(arch, dataset, split, epochs) and the shared query command work on NB101."""
    from balenas.commands.benchmark import main as benchmarks_main

    bench = NB101Benchmark.open(tiny_table[0])
    res = bench.query(*CELLS[0], epochs=36)
    h = res["module_hash"]
    assert bench.query(h, "nb101", "valid", 36) == pytest.approx(100 * res["valid_accuracy"])
    assert bench.column("nb101", "test", 36)[bench.row(h)] == pytest.approx(100 * res["test_accuracy"])
    assert ("nb101", "valid", 108) in bench.available()
    m, ops = bench.spec(h)
    assert m.tolist() == CELLS[0][0].tolist() and ops == CELLS[0][1]
    assert benchmarks_main(["query", h, "--benchmark", "nb101", "--table", str(tiny_table[0]), "--epochs", "108"]) == 0
    assert "nb101" in capsys.readouterr().out


def test_convert_reports_progress(tiny_table, tmp_path):
    messages = []
    summary = convert(tiny_table[3], tmp_path / "p.parquet", progress=messages.append)
    assert messages and messages[-1].startswith("wrote") and f"{summary['records']:,} records" in messages[-1]
