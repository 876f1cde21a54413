"""The driver's Parquet callback without Ray: keyed epoch rows across retries and driver restarts."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from trainables.runs import store
from trainables.runs.results import ParquetResults, epoch_row
from trainables.search.trainable import trial_row
from trainables.sweep.driver import summary_table


def fake_trial(run_dir, trial_id="abc_00000", status="RUNNING", epochs=4):
    search = {"dataset": "cifar10", "space": "nb201", "epochs": epochs, "method": "balenas"}
    return SimpleNamespace(
        trial_id=trial_id, status=status, last_result={}, checkpoint=None, path=str(run_dir / trial_id),
        config={"trial": {"label": "balenas[arch_lr=0.001]/seed=0", "method": "balenas", "seed": 0,
                          "hp": {"arch_lr": 1e-3}, "search": search}},
        storage=SimpleNamespace(experiment_fs_path=str(run_dir)), run_metadata=SimpleNamespace(num_failures=1),
        get_error=lambda: "Traceback...\nRuntimeError: boom")


def result(epoch, loss):
    return {"epoch": epoch, "train_loss": loss, "genotype": f"g{epoch}", "method": "balenas", "seed": 0,
            "config": {"trial": {}}, "done": False, "timestamp": 1, "info_device": "cpu", "trial_id": "x",
            "op_probs": {"edges": [[0.2] * 5]}}


def test_epoch_row_drops_tune_bookkeeping_and_trial_info():
    row = epoch_row(result(1, 2.0))
    assert set(row) == {"epoch", "train_loss", "genotype", "method", "seed", "op_probs"}
    assert row["op_probs"] == '{"edges": [[0.2, 0.2, 0.2, 0.2, 0.2]]}'


def test_a_retry_replaces_the_rows_after_its_checkpoint_and_a_new_driver_continues(tmp_path):
    (tmp_path / "spec.yaml").write_text("name: x\n")
    cb, trial = ParquetResults(tmp_path, trial_row), fake_trial(tmp_path)
    for e in (1, 2, 3):
        cb.on_trial_result(0, [], trial, result(e, 10.0 + e))
    # the attempt failed in epoch 4; the retry restored the checkpoint of epoch 1 and re-runs epoch 2
    cb.on_trial_result(0, [], trial, result(2, 99.0))
    rows = store.read_table(tmp_path, "epochs")
    assert rows["epoch"].tolist() == [1, 2] and rows["train_loss"].tolist() == [11.0, 99.0]

    resumed = ParquetResults(tmp_path, trial_row)  # a resumed sweep's driver: starts from what is stored
    resumed.on_trial_result(0, [], trial, result(3, 5.0))
    rows = store.read_table(tmp_path, "epochs")
    assert rows["epoch"].tolist() == [1, 2, 3] and rows["train_loss"].tolist() == [11.0, 99.0, 5.0]


def test_trial_rows_say_interrupted_and_carry_errors(tmp_path):
    (tmp_path / "spec.yaml").write_text("name: x\n")
    history = pd.DataFrame([epoch_row(result(e, 1.0)) for e in (1, 2)])
    row = trial_row(fake_trial(tmp_path, status="TERMINATED"), history)
    assert row["status"] == "INTERRUPTED" and row["epochs_done"] == 2 and row["total_epochs"] == 4
    assert row["genotype"] == row["final_genotype"] == "g2" and row["hp_arch_lr"] == 1e-3 and row["error"] is None
    row = trial_row(fake_trial(tmp_path, status="ERROR"), history)
    assert row["status"] == "ERROR" and row["error"] == "RuntimeError: boom" and row["num_failures"] == 1
    row = trial_row(fake_trial(tmp_path, status="TERMINATED", epochs=2), history)
    assert row["status"] == "TERMINATED" and row["checkpoint_path"] is None


def test_summary_table_lists_each_trial_with_its_benchmark_accuracy():
    trials = pd.DataFrame({"method": ["darts-v1", "balenas"], "trial_label": ["d", "b"], "seed": [0, 0],
                           "status": ["TERMINATED", "ERROR"], "epochs_done": [3, 1], "total_epochs": [3, 3],
                           "genotype": ["|g1|", "|g2|"], "hp_arch_lr": [None, 0.001],
                           "bench_cifar10_test": [93.5, float("nan")]})
    text = summary_table(trials, "bench_cifar10_test").splitlines()
    assert text[0].split() == ["method", "hp", "seed", "status", "epochs", "genotype", "bench_cifar10_test"]
    assert text[1].split() == ["balenas", "arch_lr=0.001", "0", "ERROR", "1/3", "|g2|", "-"]
    assert text[2].split() == ["darts-v1", "-", "0", "TERMINATED", "3/3", "|g1|", "93.50"]


def test_summary_table_shows_each_trial_budget_and_its_argmax_cost():
    trials = pd.DataFrame({"method": ["unas", "unas"], "trial_label": ["u<=5", "u<=12"], "seed": [0, 0],
                           "status": ["TERMINATED"] * 2, "epochs_done": [2, 2], "total_epochs": [2, 2],
                           "genotype": ["|a|", "|b|"], "cost_budget": [5.0, 12.0], "cost_argmax": [4.5345, 11.9]})
    text = summary_table(trials).splitlines()
    assert text[0].split()[:5] == ["method", "hp", "seed", "budget", "argmax"]
    assert [line.split()[3:5] for line in text[1:]] == [["12", "11.9"], ["5", "4.535"]]


def test_trials_request_the_spec_resources_and_tune_expands_exactly_the_spec_trials(tmp_path):
    from ray.tune.search.variant_generator import generate_variants

    from trainables.sweep.driver import param_space, trial_trainable
    from trainables.sweep.spec import validate_spec

    spec = validate_spec({"name": "gpu", "data_root": str(tmp_path), "seeds": [0, 1, 2],
                          "methods": {"darts-v1": {}, "balenas": {"arch_lr": [1e-3, 2e-3], "mc_samples": [1, 2]}},
                          "resources": {"cpu": 2, "gpu": 0.25}})
    request = trial_trainable(spec).default_resource_request({})
    assert request.required_resources == {"CPU": 2.0, "GPU": 0.25}  # four trials share one GPU
    variants = [config["trial"] for _, config in generate_variants(param_space(spec))]
    assert len(variants) == 3 * (1 + 2 * 2) == len(spec.trials())
    assert sorted(v["label"] for v in variants) == sorted(t.label for t in spec.trials())
    assert all(v["search"]["method_params"] == v["hp"] for v in variants)
