"""Run folders written before the layout move (c23f5f1) still load and `--resume` (issue 20).

The fixtures (tests/fixtures/pre_layout_runs, see its README) were written by the old code: Tune pickled the old
module paths into tuner.pkl and its experiment state, and the tables name checkpoints under the folder they were
written in. Each test copies a fixture to tmp_path first (a resume writes into the run folder).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

import analysis
from balenas import cli
from trainables.runs import store
from trainables.search import SearchRun, load_distribution
from trainables.train import TrainRun

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pre_layout_runs"

pytestmark = pytest.mark.shared_data


@pytest.fixture(autouse=True)
def _cifar10():
    import os

    root = os.environ.get("BALENAS_DATA_ROOT")
    if not root or not (Path(root) / "cifar-10-batches-py").is_dir():
        pytest.skip("needs the shared CIFAR-10 copy in $BALENAS_DATA_ROOT (the fixtures' spec has no data_root)")


def _copy(tmp_path: Path, run: str) -> Path:
    dest = tmp_path / "runs"
    dest.mkdir(exist_ok=True)
    shutil.copytree(FIXTURES / run, dest / run)
    return dest / run


def _checkpoint(run_dir: Path, name: str) -> Path:
    return sorted(run_dir.glob(f"*/checkpoint_*/{name}"))[-1]


def test_old_sweep_tables_and_checkpoints_load(tmp_path):
    run_dir = _copy(tmp_path, "sweep")
    tables = analysis.load(run_dir)
    assert len(tables.trials) == 1 and len(tables.epochs) == 2
    assert len(tables.samples) == 4 and set(tables.selections["rule"]) >= {"argmax", "proxy:params"}
    dist, config = load_distribution(_checkpoint(run_dir, "search.pt"))
    assert config["method"] == "balenas" and config["space"] == "nb201"
    assert dist.most_likely() == tables.trials["genotype"].iloc[0]
    run = SearchRun.from_checkpoint(_checkpoint(run_dir, "search.pt"))
    assert run.epoch == 2 and run.done


def test_old_training_loads(tmp_path):
    run_dir = _copy(tmp_path, "train")
    final = store.read_table(run_dir, "final")
    assert final["status"].tolist() == ["TERMINATED"]
    run = TrainRun.from_checkpoint(_checkpoint(run_dir, "train.pt"))
    assert run.epoch == 2 and run.arch == final["arch"].iloc[0]


@pytest.mark.slow
def test_an_interrupted_old_sweep_resumes_to_the_finished_ones_result(tmp_path):
    """Tune restores the old tuner.pkl (old module paths) and the trial from its pre-move checkpoint; the
    finished run equals the fixture that ran without a stop, epoch for epoch."""
    run_dir = _copy(tmp_path, "sweep_interrupted")
    before = store.read_table(run_dir, "epochs")
    spec = FIXTURES / "specs" / "sweep_interrupted.yaml"
    assert cli.main(["sweep", str(spec), "--storage", str(run_dir.parent), "--resume", "--num-cpus", "2",
                     "--quiet"]) == 0
    after = store.read_table(run_dir, "epochs").sort_values("epoch")
    finished = store.read_table(FIXTURES / "sweep", "epochs").sort_values("epoch")
    assert after["epoch"].tolist() == [1, 2]
    pd.testing.assert_frame_equal(after[after.epoch == 1][before.columns].reset_index(drop=True),
                                  before[before.columns].reset_index(drop=True), check_dtype=False)
    for column in ("train_loss", "valid_loss", "genotype"):
        assert after[column].tolist() == finished[column].tolist(), column
    trials = store.read_table(run_dir, "trials")
    assert trials["status"].tolist() == ["TERMINATED"]
    selections = store.read_table(run_dir, "selections")
    assert set(selections["rule"]) >= {"argmax", "proxy:params", "proxy:naswot"}


@pytest.mark.slow
def test_a_finished_old_training_resumes_as_a_no_op(tmp_path):
    run_dir = _copy(tmp_path, "train")
    before = store.read_table(run_dir, "final")
    spec = FIXTURES / "specs" / "train.yaml"
    assert cli.main(["train", str(spec), "--storage", str(run_dir.parent), "--resume", "--num-cpus", "2",
                     "--quiet"]) == 0
    after = store.read_table(run_dir, "final")
    assert after["test_acc"].tolist() == before["test_acc"].tolist()
    assert store.read_table(run_dir, "train_epochs")["epoch"].tolist() == [1, 2]
