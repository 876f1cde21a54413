"""Searching the DARTS space: DARTS' defaults from the space, a tiny sweep with the proxy stage and the report,
and the errors a user meets. (Every method on every space, resumed exactly: tests/test_conformance.py.)"""

from __future__ import annotations

import os
import shutil
import tempfile

import pandas as pd
import pytest

from search_spaces.darts import Genotype
from search_spaces.space import get_space
from trainables.search.config import parse_config


def test_space_owns_darts_search_defaults():
    cfg = parse_config({"space": "darts"})
    assert cfg.size == {"C": 16, "layers": 8}
    assert (cfg.epochs, cfg.batch_size, cfg.w_lr, cfg.w_lr_min, cfg.w_momentum, cfg.w_weight_decay,
            cfg.grad_clip, cfg.w_nesterov) == (50, 64, 0.025, 0.001, 0.9, 3e-4, 5.0, False)
    assert parse_config({"space": "darts", "w_weight_decay": 1e-4}).w_weight_decay == 1e-4   # user wins
    nb201 = parse_config({"space": "nb201"})
    assert nb201.w_weight_decay == 5e-4 and nb201.w_nesterov      # other spaces keep their own defaults


def test_n_on_darts_names_the_field():
    with pytest.raises(ValueError, match=r"N.*layers|layers.*N"):
        parse_config({"space": "darts", "N": 5})


def test_spec_with_n_on_darts_names_the_field():
    from trainables.sweep.spec import validate_spec

    with pytest.raises(ValueError, match=r"search\.N.*C, layers"):
        validate_spec({"name": "x", "space": "darts", "dataset": "cifar10", "methods": {"darts-v1": {}},
                       "seeds": [0], "search": {"N": 5}})


def test_whole_space_scoring_is_a_clear_error():
    with pytest.raises(ValueError, match="does not apply"):
        get_space("darts").enumerate()


@pytest.mark.slow
def test_tiny_sweep_with_proxy_stage(tiny_cifar10):
    """A darts sweep end to end through Ray Tune: two methods, the proxy stage scoring sampled genotypes on
    the search-scale network, and Parquet tables holding DARTS genotypes."""
    import ray

    from trainables.sweep.driver import run_sweep
    from trainables.sweep.spec import validate_spec

    spec = validate_spec({
        "name": "darts_tiny", "space": "darts", "dataset": "cifar10", "data_root": str(tiny_cifar10),
        "methods": {"balenas": {}, "gdas": {}}, "seeds": [0],
        "search": {"epochs": 1, "batch_size": 4, "C": 2, "layers": 3, "steps_per_epoch": 1, "train_size": 16},
        "proxies": {"samples": 3, "names": ["naswot", "synflow"], "batch_size": 4, "C": 2, "layers": 3},
        "resources": {"cpu": 1, "gpu": 0}})
    temp = tempfile.mkdtemp(prefix="hd", dir="/tmp")
    storage = tempfile.mkdtemp(prefix="h-darts_runs", dir="/tmp")
    ray.init(num_cpus=2, _temp_dir=temp, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        run_sweep(spec, storage=storage, verbose=0)
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    run_dir = os.path.join(storage, "darts_tiny")
    epochs = pd.read_parquet(os.path.join(run_dir, "epochs"))
    samples = pd.read_parquet(os.path.join(run_dir, "samples"))
    selections = pd.read_parquet(os.path.join(run_dir, "selections"))
    assert sorted(epochs["method"].unique()) == ["balenas", "gdas"]
    for g in [*epochs["genotype"], *samples["arch"], *selections["arch"]]:
        assert str(Genotype.parse(g)) == g
    assert samples["naswot"].notna().all() and samples["synflow"].notna().all()
    # the report: the chosen genotypes' table and pictures of their cells
    import analysis
    from analysis.report import build_report

    report = build_report(analysis.load(run_dir), os.path.join(run_dir, "report"))
    text = report.path.read_text()
    assert "## Chosen architectures" in text and "Genotype(normal=" in text
    assert os.path.isfile(os.path.join(run_dir, "report", "architecture_0.png"))
    shutil.rmtree(storage, ignore_errors=True)
