"""Sweeps through the real Ray Tune path on tiny generated data: Parquet tables, retries, interrupt + --resume.

The reference for "same result" is `run_search` (the search loop without Ray) on the same config: a trial
that failed and was retried from its checkpoint, or a sweep interrupted and resumed, must end with exactly
the rows and the final genotype of an unbroken run.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from trainables.runs import store
from trainables.runs.tuner import InterruptAfter
from trainables.search.loop import load_distribution, run_search
from trainables.search.trainable import SearchTrainable
from trainables.sweep.driver import run_sweep
from trainables.sweep.spec import validate_spec

REPO = Path(__file__).resolve().parents[2]
SHARED_BENCH = REPO.parent / "shared" / "data" / "nb201" / "nb201_merged.csv"

os.environ["RAY_AUTH_MODE"] = "disabled"



def make_spec(data_root: Path, name: str, methods: dict, seeds: list[int], epochs: int, **extra):
    data = {"name": name, "space": "nb201", "dataset": "cifar10", "data_root": str(data_root),
            "methods": methods, "seeds": seeds,
            "search": {"epochs": epochs, "batch_size": 8, "C": 4, "N": 1, "steps_per_epoch": 2},
            "resources": {"cpu": 1, "gpu": 0}, **extra}
    if SHARED_BENCH.is_file():
        data["benchmark"] = str(SHARED_BENCH)
    return validate_spec(data)


def reference_rows(search_config: dict) -> pd.DataFrame:
    """The epochs of an unbroken run without Ray (one thread, as in the trials)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return pd.DataFrame(run_search(search_config))
    finally:
        torch.set_num_threads(threads)


def assert_same_as_reference(epochs: pd.DataFrame, trial_search_config: dict) -> None:
    ref = reference_rows(trial_search_config)
    got = epochs.sort_values("epoch").reset_index(drop=True)
    assert got["epoch"].tolist() == ref["epoch"].tolist()
    assert got["genotype"].tolist() == ref["genotype"].tolist()
    assert got["train_loss"].tolist() == pytest.approx(ref["train_loss"].tolist(), rel=1e-5)
    assert got["valid_acc"].tolist() == pytest.approx(ref["valid_acc"].tolist(), rel=1e-5, abs=1e-6)


def test_sweep_of_two_methods_and_two_seeds_writes_parquet_tables(ray_with_test_classes, tmp_path, tiny_cifar10):
    spec = make_spec(tiny_cifar10, "e2e", {"balenas": {"arch_lr": 1e-3}, "darts-v1": {}}, [0, 1], epochs=2)
    result = run_sweep(spec, storage=tmp_path / "runs", verbose=0)
    run_dir = tmp_path / "runs" / "e2e"
    assert result.run_dir == run_dir and result.exit_code == 0 and not result.interrupted

    epochs = pd.read_parquet(run_dir / "epochs")  # plain pandas reads the hive-partitioned tables
    trials = pd.read_parquet(run_dir / "trials")
    assert len(trials) == 4 and set(trials["status"]) == {"TERMINATED"}
    assert len(epochs) == 4 * 2 and not epochs.duplicated(["trial_id", "epoch"]).any()
    for col in ["trial_id", "method", "seed", "epoch", "genotype", "train_loss", "valid_acc", "entropy",
                "op_probs", "dataset", "space", "hp_arch_lr", "epoch_time_s", "lr"]:
        assert col in epochs.columns, col
    assert epochs.loc[epochs["method"] == "darts-v1", "hp_arch_lr"].isna().all()
    assert set(epochs.loc[epochs["method"] == "balenas", "hp_arch_lr"]) == {1e-3}
    assert "posterior_std_mean" in epochs.columns  # a method extra that only BaLeNAS reports
    assert set(epochs["dataset"]) == {"cifar10"} and set(epochs["space"]) == {"nb201"}
    if SHARED_BENCH.is_file():
        assert epochs["bench_cifar10_test"].between(0, 100).all()
        assert trials["bench_cifar10_test"].notna().all()

    for col in ["status", "error", "genotype", "final_genotype", "epochs_done", "hp_arch_lr", "config_json",
                "checkpoint_path", "python_version", "torch_version", "ray_version", "balenas_version", "device",
                "num_failures"]:
        assert col in trials.columns, col
    assert (trials["epochs_done"] == 2).all() and trials["error"].isna().all()
    assert set(trials["device"]) == {"cpu"} and (trials["num_failures"] == 0).all()

    # the checkpoint of each trial holds its final distribution: its argmax is the final genotype
    for row in trials.itertuples():
        dist, config = load_distribution(row.checkpoint_path)
        assert dist.most_likely() == row.genotype == row.final_genotype
        assert config["method"] == row.method and config["seed"] == row.seed
    # a trial's rows equal an unbroken run without Ray
    darts0 = trials[(trials["method"] == "darts-v1") & (trials["seed"] == 0)].iloc[0]
    assert_same_as_reference(epochs[epochs["trial_id"] == darts0["trial_id"]], spec.trials()[2].search)

    stored = yaml.safe_load((run_dir / "spec.yaml").read_text())
    assert validate_spec(stored).trials() == spec.trials()
    with pytest.raises(FileExistsError, match="--resume"):  # never overwrite another sweep's results
        run_sweep(spec, storage=tmp_path / "runs", verbose=0)


class FlakyTrainable(SearchTrainable):
    """Fails at `FAIL_EPOCH`: once for seeds in ONCE (a marker file remembers), on every attempt for ALWAYS."""

    FAIL_EPOCH = 2
    ONCE: tuple = (0,)
    ALWAYS: tuple = (1,)
    MARKERS = ""

    def build_run(self, search_config):
        run = super().build_run(search_config)
        seed, original = search_config["seed"], run.run_epoch
        marker = Path(self.MARKERS) / f"failed-{seed}"

        def run_epoch():
            if run.epoch + 1 == self.FAIL_EPOCH and (seed in self.ALWAYS or (seed in self.ONCE
                                                                              and not marker.exists())):
                marker.touch()
                raise RuntimeError(f"injected failure at epoch {self.FAIL_EPOCH} (seed {seed})")
            return original()

        run.run_epoch = run_epoch
        return run


def test_a_failed_trial_is_retried_from_its_checkpoint_and_ends_like_an_unbroken_one(ray_with_test_classes, tmp_path,
                                                                                       tiny_cifar10):
    FlakyTrainable.MARKERS = str(tmp_path)
    spec = make_spec(tiny_cifar10, "flaky", {"darts-v1": {}}, [0, 1], epochs=3, failure={"max_failures": 1})
    result = run_sweep(spec, storage=tmp_path / "runs", verbose=0, trainable=FlakyTrainable)
    assert result.exit_code == 1  # one trial failed for good

    trials = store.read_table(result.run_dir, "trials").set_index("seed")
    epochs = store.read_table(result.run_dir, "epochs")
    retried, failed = trials.loc[0], trials.loc[1]
    assert retried["status"] == "TERMINATED" and retried["num_failures"] == 1
    assert (Path(tmp_path) / "failed-0").exists()
    rows = epochs[epochs["trial_id"] == retried["trial_id"]]
    assert rows["epoch"].tolist() == [1, 2, 3]  # epoch 2 ran twice, stored once
    assert_same_as_reference(rows, spec.trials()[0].search)
    assert retried["genotype"] == rows.sort_values("epoch")["genotype"].iloc[-1]

    assert failed["status"] == "ERROR" and failed["num_failures"] == 2
    assert "injected failure at epoch 2" in failed["error"]
    assert failed["epochs_done"] == 1
    assert epochs[epochs["trial_id"] == failed["trial_id"]]["epoch"].tolist() == [1]


def _cli():
    spec = importlib.util.spec_from_file_location("balenas_platform_sweep", REPO / "platform" / "sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_interrupted_sweep_resumed_with_resume_has_every_row_once(ray_with_test_classes, tmp_path, tiny_cifar10):
    spec = make_spec(tiny_cifar10, "resumable", {"darts-v1": {}}, [0, 1], epochs=4)
    spec_file = tmp_path / "resumable.yaml"
    spec_file.write_text(spec.to_yaml())
    storage = tmp_path / "runs"

    first = run_sweep(spec, storage=storage, verbose=0, callbacks=[InterruptAfter(3)])  # like Ctrl-C
    assert first.interrupted and first.exit_code == 130
    partial = store.read_table(first.run_dir, "epochs")
    assert 3 <= len(partial) < 8

    cli = _cli()
    assert cli.main([str(spec_file), "--storage", str(storage), "--quiet"]) == 2  # exists: needs --resume
    assert cli.main([str(spec_file), "--storage", str(storage), "--resume", "--quiet"]) == 0

    trials = store.read_table(first.run_dir, "trials")
    epochs = store.read_table(first.run_dir, "epochs")
    assert len(trials) == 2 and set(trials["status"]) == {"TERMINATED"}
    assert sorted(zip(epochs["trial_id"], epochs["epoch"])) == sorted(
        (t, e) for t in trials["trial_id"] for e in range(1, 5))
    for seed, trial in zip(spec.seeds, spec.trials()):
        trial_id = trials.loc[trials["seed"] == seed, "trial_id"].iloc[0]
        assert_same_as_reference(epochs[epochs["trial_id"] == trial_id], trial.search)


def test_cli_rejects_a_bad_spec_before_ray_starts(tmp_path, tiny_cifar10, capsys):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"name": "x", "data_root": str(tiny_cifar10),
                                                       "methods": {"balenas": {"arch_lrr": 0.1}}}))
    assert _cli().main([str(tmp_path / "bad.yaml"), "--storage", str(tmp_path)]) == 2
    assert "methods.balenas.arch_lrr" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
