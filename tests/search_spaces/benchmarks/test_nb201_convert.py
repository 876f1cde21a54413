"""Converter from the official NB201 file, built here with nas_201_api's own classes, and the command line."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch

nas_201_api = pytest.importorskip("nas_201_api")

from balenas.commands.benchmark import main  # noqa: E402
from search_spaces.benchmarks import open_benchmark  # noqa: E402
from search_spaces.nb201.convert import (  # noqa: E402
    UntrustedPickleError,
    convert_source,
    load_official,
)

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
]
# NB201's evaluation set names per data set (nas_201_api ArchResults.get_metrics docstring)
SETS = {"cifar10-valid": ("x-valid", "ori-test"), "cifar10": ("ori-test",),
        "cifar100": ("x-valid", "x-test", "ori-test"), "ImageNet16-120": ("x-valid", "x-test", "ori-test")}
SEEDS = (777, 888)


def accuracy(arch: int, dataset: str, set_name: str, seed: int, epochs: int) -> float:
    """A distinct, made-up final accuracy per (arch, data set, set, seed, schedule)."""
    return (10.0 * arch + 3.0 * list(SETS).index(dataset) + 0.5 * ["x-valid", "x-test", "ori-test"].index(set_name)
            + (0.25 if seed == SEEDS[1] else 0.0) + (0.0 if epochs == 200 else 40.0) + 20.0)


def trial(arch: int, dataset: str, seed: int, epochs: int, sets, params) -> nas_201_api.ResultsCount:
    config = {"name": "infer.tiny", "channel": 16, "num_cells": 5, "arch_str": ARCHS[arch],
              "class_num": {"cifar100": 100, "ImageNet16-120": 120}.get(dataset, 10)}
    train = {i: 50.0 for i in range(epochs)}
    result = nas_201_api.ResultsCount(dataset, None, train, dict(train), params, 40.0, config, seed, epochs,
                                      [0.01])
    accs, losses, times = {}, {}, {}
    for name in sets:
        for i in range(epochs):  # earlier epochs lower: the converter must read the last one
            accs[f"{name}@{i}"] = accuracy(arch, dataset, name, seed, epochs) - (0 if i == epochs - 1 else 5)
            losses[f"{name}@{i}"], times[f"{name}@{i}"] = 1.0, 0.1
    result.update_eval(accs, losses, times)
    return result


def arch_results(arch: int, epochs: int, datasets) -> dict:
    results = nas_201_api.ArchResults(arch, ARCHS[arch])
    for dataset in datasets:
        for seed in SEEDS:
            params = np.float64(0.1 * (arch + 1) + (0.01 if dataset == "cifar100" else 0.0))  # np.mean-like
            results.update(dataset, seed, trial(arch, dataset, seed, epochs, SETS[dataset], params))
    return results.state_dict()


def official_dict() -> dict:
    infos = {}
    for arch in range(len(ARCHS)):
        # v1_0-like: the 12-epoch ('less') results of arch 2 exist only for cifar10-valid
        less = ["cifar10-valid"] if arch == 2 else list(SETS)
        infos[arch] = {"full": arch_results(arch, 200, list(SETS)), "less": arch_results(arch, 12, less)}
    return {"meta_archs": list(ARCHS), "arch2infos": infos, "evaluated_indexes": set(range(len(ARCHS)))}


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("nb201") / "NAS-Bench-201-tiny.pth"
    torch.save(official_dict(), path, _use_new_zipfile_serialization=False)  # legacy format, as in 2020
    return path


def mean_acc(arch, dataset, set_name, epochs):
    return float(np.mean([accuracy(arch, dataset, set_name, s, epochs) for s in SEEDS]))


def test_convert_official_file_and_query(official_file, tmp_path):
    bench = convert_source(official_file, progress=False)  # plain containers: weights_only loading suffices
    assert bench.architectures() == ARCHS
    expected = {("cifar10-valid", "valid"): ("cifar10-valid", "x-valid"),
                ("cifar10-valid", "test"): ("cifar10-valid", "ori-test"), ("cifar10", "test"): ("cifar10", "ori-test"),
                ("cifar100", "valid"): ("cifar100", "x-valid"), ("cifar100", "test"): ("cifar100", "x-test"),
                ("ImageNet16-120", "valid"): ("ImageNet16-120", "x-valid"),
                ("ImageNet16-120", "test"): ("ImageNet16-120", "x-test")}
    assert bench.available() == sorted((d, s, e) for d, s in expected for e in (12, 200))
    out = tmp_path / "tiny.parquet"
    assert main(["convert", str(official_file), str(out), "--quiet"]) == 0
    table = open_benchmark("nb201", out)
    for arch in range(3):
        for (dataset, split), (nb_dataset, set_name) in expected.items():
            assert table.query(ARCHS[arch], dataset, split, 200) == pytest.approx(
                mean_acc(arch, nb_dataset, set_name, 200))
    assert table.query(ARCHS[0], "cifar100", "test", 12) == pytest.approx(mean_acc(0, "cifar100", "x-test", 12))
    rec = table.record(ARCHS[1])
    assert rec["bench_cifar10_valid_test"] == pytest.approx(mean_acc(1, "cifar10-valid", "ori-test", 200))
    assert rec["params_M"] == pytest.approx(0.2)  # CIFAR-10 head
    assert len(rec) == 8
    # arch 2 has no 12-epoch cifar100 results: NaN in the column, absent from its record
    assert np.isnan(table.query(ARCHS[2], "cifar100", "test", 12))
    assert set(table.record(ARCHS[2], epochs=12)) == {"bench_cifar10_valid_valid", "bench_cifar10_valid_test",
                                                      "params_M"}
    assert table.extra("nb201_index").tolist() == [0.0, 1.0, 2.0]


def test_untrusted_pickle_needs_explicit_consent(tmp_path):
    data = official_dict()
    data["origin"] = pathlib.PurePosixPath("/somewhere")  # an object weights_only loading refuses
    path = tmp_path / "NAS-Bench-201-objects.pth"
    torch.save(data, path)
    with pytest.raises(UntrustedPickleError, match=r"weights_only=True.*PurePosixPath.*trust_pickle=True"):
        load_official(path)
    assert main(["convert", str(path), str(tmp_path / "x.parquet"), "--quiet"]) == 2
    assert not (tmp_path / "x.parquet").exists()
    assert main(["convert", str(path), str(tmp_path / "x.parquet"), "--quiet", "--trust-pickle"]) == 0
    assert open_benchmark("nb201", tmp_path / "x.parquet").query(ARCHS[0], "cifar10") == pytest.approx(
        mean_acc(0, "cifar10", "ori-test", 200))


def test_official_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="NAS-Bench-201-v1_1-096897.pth"):
        load_official(tmp_path / "missing.pth")
    not_nb201 = tmp_path / "other.pth"
    torch.save({"weights": torch.zeros(2)}, not_nb201)
    with pytest.raises(ValueError, match="not an NB201 benchmark file"):
        load_official(not_nb201)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x02garbage")
    with pytest.raises((ValueError, UntrustedPickleError), match="corrupt.pth"):
        load_official(corrupt)


def test_command_line_query(shared_data, capsys):
    csv = shared_data / "nb201" / "nb201_merged.csv"
    assert main(["query", ARCHS[1], "--table", str(csv), "--dataset", "cifar100"]) == 0
    assert capsys.readouterr().out.strip() == "52.9133"
    assert main(["query", ARCHS[0], "--table", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "cifar10-valid   valid   200ep  90.7693" in out and "params_M" in out
    assert main(["query", ARCHS[0], "--table", str(csv), "--dataset", "cifar100", "--split", "valid"]) == 2
    assert "available" in capsys.readouterr().err
