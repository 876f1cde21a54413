"""An NB-1shot1 sweep end to end with NB101 ground truth from published numbers: sweep (2 methods on
'nb1shot1-2'), proxy stage, report. The report's tables have the sweep's own rows and NB101's columns, never
NB201's columns or published NB201 rows."""

from __future__ import annotations

import pytest
from nb101_zc import zc_table

from analysis import load
from analysis.report import build_report
from search_spaces.space import get_space
from trainables.sweep.driver import run_sweep
from trainables.sweep.spec import validate_spec


@pytest.mark.slow
def test_nb1shot1_sweep_proxy_stage_and_report(local_ray, tmp_path, tiny_cifar10, shared_data):
    table = zc_table(shared_data, tmp_path / "nb101")
    spec = validate_spec({
        "name": "ss2", "space": "nb1shot1-2", "dataset": "cifar10", "data_root": str(tiny_cifar10),
        "benchmark": str(table), "methods": {"balenas": {}, "darts-v1": {}}, "seeds": [0],
        "search": {"epochs": 1, "batch_size": 8, "C": 2, "N": 1, "steps_per_epoch": 1},
        "proxies": {"samples": 3, "names": ["params", "naswot"], "batch_size": 8, "C": 4, "N": 1,
                    "archs_per_task": 3},
        "resources": {"cpu": 1, "gpu": 0}})
    result = run_sweep(spec, storage=tmp_path / "runs", verbose=0)
    trials = result.trials
    assert sorted(trials["method"]) == ["balenas", "darts-v1"] and set(trials["status"]) == {"TERMINATED"}
    space = get_space("nb1shot1-2")
    for arch in trials["final_genotype"]:
        assert space.canonical(arch) == arch

    tables = load(result.run_dir)
    sel = tables.selections
    assert set(sel["rule"]) == {"argmax", "proxy:params", "proxy:naswot", "rank:params+naswot"}
    # params is the real parameter count of the NB101 network (C=4, N=1) of each sampled architecture
    samples = tables.samples
    for arch, params in zip(samples["arch"], samples["params"]):
        assert params == sum(p.numel() for p in space.network(arch, num_classes=10, C=4, N=1).parameters())

    report = build_report(tables, tmp_path / "report", benchmark=table)
    md = report.tables["argmax"]["md"].read_text()
    header = next(line for line in md.splitlines() if line.startswith("| Method"))
    assert header.startswith("| Method | NAS-Bench-101 valid | NAS-Bench-101 test | Seeds")
    rows = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ") and line != header]
    assert {"balenas", "darts-v1"} <= set(rows)  # the sweep's own trials
    assert "optimum (benchmark table)" in rows  # the best of the NB101 table's 108-epoch accuracies
    for text in (md, report.path.read_text()):
        assert "CIFAR-100" not in text and "ImageNet16-120" not in text and "(published)" not in text
