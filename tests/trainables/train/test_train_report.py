"""The report's "Final training" section from `final` tables: mean ± std per method and rule, published rows
with sources, and trained accuracy against the benchmark table per architecture."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis import final as final_mod
from analysis.tables import md_table
from trainables.runs import store

A, B = "arch-a", "arch-b"


def write_final(run_dir, rows):
    for i, row in enumerate(rows):
        store.write_partition(run_dir, "final", pd.DataFrame([row]), f"t_{i:05d}")


def row(arch, seed, err, selected_by, status="TERMINATED", **extra):
    return {"arch": arch, "seed": seed, "space": "darts", "dataset": "cifar10", "protocol": "darts-cifar",
            "status": status, "test_error": err, "test_acc": 100 - err, "params": 3.3e6,
            "selected_by": json.dumps(selected_by), "trial_label": f"{arch}/seed={seed}", "error": None, **extra}


def test_errors_per_method_and_rule_with_published_rows(tmp_path):
    bal = [{"method": "balenas", "rule": "proxy:naswot", "search_seed": s} for s in (0, 1)]
    darts = [{"method": "darts-v2", "rule": "proxy:naswot", "search_seed": 0}]
    write_final(tmp_path / "run", [row(A, 0, 2.5, bal), row(A, 1, 2.7, bal), row(B, 0, 3.1, darts),
                                   row(B, 1, float("nan"), darts, status="ERROR", error="non-finite loss")])
    table = final_mod.error_table(final_mod.final_frame([tmp_path / "run"])).set_index("method")
    # balenas: arch A chosen by two search trials x 2 seeds -> 4 values (2.5, 2.7, 2.5, 2.7)
    assert table.loc["balenas", "trainings"] == 4 and table.loc["balenas", "architectures"] == 1
    assert table.loc["balenas", "test error %"] == f"2.60 ± {pd.Series([2.5, 2.7, 2.5, 2.7]).std():.2f}"
    assert table.loc["darts-v2", "test error %"] == "3.10"  # the failed training is left out
    lines = "\n".join(final_mod.final_section([tmp_path / "run"], md_table))
    assert "## Final training" in lines and "1 training(s) did not finish" in lines
    assert "| DARTS (second order) | 2.76 ± 0.09 |" in lines and "| BaLeNAS | 2.37 |" in lines
    assert "arXiv 2111.13204" in lines


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "imagenet"])
def test_darts_published_rows_per_data_set(dataset):
    rows = final_mod.published_rows("darts", dataset)
    assert len(rows) and "BaLeNAS" in set(rows["method"])  # BaLeNAS' abstract gives all three
    assert (rows["source"].str.len() > 20).all()  # "authors, title, venue year, where"


def test_published_rows_belong_to_the_space(tmp_path):
    """An NB201 training on cifar10 is set against the NB201 table, never against DARTS-space test errors."""
    assert final_mod.published_rows("nb201", "cifar10").empty
    assert final_mod.published_rows("darts", "ImageNet16-120").empty
    rows = [row(A, 0, 10.0, [], space="nb201", dataset="cifar10", protocol="nb201-12")]
    write_final(tmp_path / "run", rows)
    lines = "\n".join(final_mod.final_section([tmp_path / "run"], md_table))
    assert "### nb201 · cifar10 · nb201-12" in lines and "Published" not in lines and "2.76" not in lines


def test_trained_against_the_table_per_architecture(tmp_path):
    rows = [row(A, s, 100 - acc, [], space="nb201", dataset="cifar10", protocol="nb201-12", bench_epochs=12,
                epochs_done=12,
                bench_test_acc=88.22, bench_valid_acc=float("nan")) for s, acc in ((0, 87.0), (1, 89.0))]
    write_final(tmp_path / "run", rows)
    bench = final_mod.benchmark_table(final_mod.final_frame([tmp_path / "run"])).iloc[0]
    assert bench["our test acc"] == "88.00 ± 1.41" and bench["table test acc"] == "88.22"
    assert bench["test diff"] == "-0.22" and "our valid acc" not in bench.index
    assert bench["our epochs"] == 12 and bench["bench epochs"] == 12


def test_no_final_table_no_section(tmp_path):
    (tmp_path / "run").mkdir()
    assert final_mod.final_section([tmp_path / "run"], md_table) == []
