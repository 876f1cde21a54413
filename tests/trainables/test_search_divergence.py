"""A search that diverges ends its trial with an error naming the epoch and the quantity: the loop raises
`NonFiniteSearch` (a non-finite weight or architecture loss, or non-finite distribution parameters, checked once
per epoch), the Trainable ends the trial without retries, its trials row says ERROR, the proxy stage selects
nothing for it, the sweep exits 1 and `balenas train --from` never trains it; the other trials go on."""

from __future__ import annotations

import logging
import math
import os

import pandas as pd
import pytest
import torch

from search_spaces.data.device import DeviceDataset
from search_spaces.space import get_space
from trainables.methods import make_distribution
from trainables.proxy_stage.driver import _trials
from trainables.proxy_stage.selection import sample_trial
from trainables.search.loop import NonFiniteSearch, SearchRun, nonfinite_state

os.environ["RAY_AUTH_MODE"] = "disabled"

DIVERGING_LR = 1.0e30


def tiny_splits(n: int = 16) -> dict[str, DeviceDataset]:
    g = torch.Generator().manual_seed(0)
    return {name: DeviceDataset(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                                torch.randint(0, 10, (n,), generator=g), (0.5,) * 3, (0.25,) * 3, 10, name)
            for name in ("search-train", "search-valid")}


def tiny_run(method: str = "darts-v1", epochs: int = 3, **params) -> SearchRun:
    return SearchRun({"method": method, "space": "nb201", "batch_size": 4, "epochs": epochs, "device": "cpu",
                      "C": 2, "N": 1, "steps_per_epoch": 2, "method_params": params}, splits=tiny_splits())


def test_a_huge_arch_lr_ends_the_search_in_its_first_epoch(one_torch_thread):
    run = tiny_run(arch_lr=DIVERGING_LR)
    with pytest.raises(NonFiniteSearch) as caught:
        run.run_epoch()
    message = str(caught.value)
    assert message.startswith("non-finite ") and message.endswith("in epoch 1 of 3"), message
    assert "distribution parameters (alpha.edges" in message
    metrics = caught.value.metrics  # the epoch as measured, for the epochs table
    assert metrics["epoch"] == 1 and metrics["genotype"] is None and run.epoch == 1


def _poison_params(run: SearchRun, monkeypatch) -> None:
    """The parameters turn NaN after the last architecture step of the epoch: the losses were measured before."""
    dist, update = run.distribution, run.distribution.update
    params = dist.alpha if hasattr(dist, "alpha") else dist.mu

    def poisoning_update(ctx):
        out = update(ctx)
        if run.global_step == (run.epoch + 1) * run.steps_per_epoch:
            with torch.no_grad():
                params["edges"][0, 0] = float("nan")
        return out

    monkeypatch.setattr(dist, "update", poisoning_update)


def _poison_arch_loss(run: SearchRun, monkeypatch) -> None:
    update = run.distribution.update
    monkeypatch.setattr(run.distribution, "update", lambda ctx: {**update(ctx), "arch_loss": torch.tensor(math.nan)})


def _poison_both_losses(run: SearchRun, monkeypatch) -> None:
    """An infinite constant added to every loss: the losses are infinite, the gradients (and so the weights and
    the distribution) stay finite."""
    import trainables.search.loop as loop

    original = loop._loss_fn
    monkeypatch.setattr(loop, "_loss_fn", lambda logits, labels: original(logits, labels) + math.inf)


@pytest.mark.parametrize("method, poison, named", [
    ("darts-v1", _poison_params, "distribution parameters (alpha.edges)"),
    ("balenas", _poison_params, "distribution parameters (mu.edges)"),
    ("darts-v1", _poison_arch_loss, "architecture loss (valid_loss=nan)"),
    ("darts-v1", _poison_both_losses, "weight loss (train_loss=inf); architecture loss (valid_loss=inf)"),
])
def test_each_non_finite_quantity_is_named_with_its_epoch(method, poison, named, monkeypatch, one_torch_thread):
    run = tiny_run(method, epochs=3)
    run.run_epoch()
    poison(run, monkeypatch)
    with pytest.raises(NonFiniteSearch) as caught:
        run.run_epoch()
    assert str(caught.value) == f"non-finite {named} in epoch 2 of 3"
    assert caught.value.metrics["epoch"] == 2 and caught.value.metrics["genotype"] is None


def test_a_healthy_search_does_not_raise(one_torch_thread):
    metrics = tiny_run(epochs=1).run_epoch()
    assert metrics["genotype"] and math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["valid_loss"])


def test_sampling_refuses_a_stored_distribution_with_nan_parameters(tmp_path):
    """A run folder written before the loop checked (the diverged trial stored as finished): no samples."""
    space = get_space("nb201")
    dist = make_distribution("darts-v1", space, {}, num_valid=16, seed=0)
    path = tmp_path / "search.pt"
    torch.save({"config": {"space": "nb201", "method_params": {}, "seed": 0}, "method": "darts-v1", "num_valid": 16,
                "distribution": dist.state_dict()}, path)
    assert sample_trial(str(path), 3, 0)["argmax"] is not None and nonfinite_state(dist) == []
    with torch.no_grad():
        dist.alpha["edges"].fill_(float("nan"))
    torch.save({"config": {"space": "nb201", "method_params": {}, "seed": 0}, "method": "darts-v1", "num_valid": 16,
                "distribution": dist.state_dict()}, path)
    got = sample_trial(str(path), 3, 0)
    assert got["samples"] == [] and got["argmax"] is None and "alpha.edges" in got["error"]


def test_the_proxy_stage_skips_failed_trials_and_says_so(tmp_path, caplog):
    trials = pd.DataFrame({"trial_id": ["a", "b"], "method": ["darts-v1"] * 2, "seed": [0, 1],
                           "status": ["TERMINATED", "ERROR"], "error": [None, "non-finite x in epoch 1 of 2"],
                           "checkpoint_path": [str(tmp_path / "a.pt"), str(tmp_path / "b.pt")]})
    with caplog.at_level(logging.WARNING, logger="trainables.proxy_stage.driver"):
        usable = _trials(tmp_path, trials)
    assert usable["trial_id"].tolist() == ["a"]
    assert "trial b (darts-v1, seed 1) skipped: status ERROR (non-finite x in epoch 1 of 2)" in caplog.text


# ----- end to end on a local Ray ------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_diverged_trial_fails_the_sweep_and_is_never_selected(local_ray, tmp_path, tiny_cifar10):
    from analysis import load
    from analysis.report import failed_trials
    from analysis.tables import selections_frame
    from trainables.runs import store
    from trainables.sweep.driver import run_sweep
    from trainables.sweep.spec import validate_spec
    from trainables.train.spec import validate_train_spec

    spec = validate_spec({
        "name": "diverge", "space": "nb201", "dataset": "cifar10", "data_root": str(tiny_cifar10),
        "methods": {"darts-v1": {"arch_lr": [3.0e-4, DIVERGING_LR]}}, "seeds": [0],
        "search": {"epochs": 2, "batch_size": 8, "C": 2, "N": 1, "steps_per_epoch": 2},
        "proxies": {"samples": 3, "names": ["params"], "batch_size": 8, "C": 2, "N": 1, "archs_per_task": 3},
        "failure": {"max_failures": 2},  # a divergence must not spend these
        "resources": {"cpu": 1, "gpu": 0}})
    result = run_sweep(spec, storage=tmp_path / "runs", verbose=0)
    assert result.exit_code == 1 and not result.interrupted

    trials = store.read_table(result.run_dir, "trials").set_index("hp_arch_lr")
    healthy, diverged = trials.loc[3.0e-4], trials.loc[DIVERGING_LR]
    assert healthy["status"] == "TERMINATED" and pd.isna(healthy["error"]) and healthy["epochs_done"] == 2
    assert diverged["status"] == "ERROR" and diverged["num_failures"] == 0
    assert diverged["error"].startswith("non-finite ") and diverged["error"].endswith("in epoch 1 of 2")
    assert "distribution parameters (alpha.edges" in diverged["error"] and pd.isna(diverged["final_genotype"])

    epochs = store.read_table(result.run_dir, "epochs")
    rows = epochs[epochs["trial_id"] == diverged["trial_id"]]  # kept for inspection
    assert rows["epoch"].tolist() == [1] and pd.isna(rows["genotype"].iloc[0]) and "NaN" in rows["op_probs"].iloc[0]
    assert rows["error"].iloc[0] == diverged["error"]
    assert epochs[epochs["trial_id"] == healthy["trial_id"]]["epoch"].tolist() == [1, 2]

    selections = store.read_table(result.run_dir, "selections")
    assert set(selections["trial_id"]) == {healthy["trial_id"]}
    assert set(selections["rule"]) == {"argmax", "proxy:params"}

    # `balenas train --from` trains only what the healthy trial's rules chose
    for rule in ("argmax", "proxy:params"):
        train = validate_train_spec({"name": "final", "protocol": "nb201-12", "data_root": str(tiny_cifar10)},
                                    from_sweep=str(result.run_dir), rule=rule)
        chosen = {by["search_trial_id"] for entry in train.architectures for by in entry.selected_by}
        assert chosen == {healthy["trial_id"]}, rule

    # the report: the diverged trial among the failed ones, none of its rows among the selections
    tables = load(result.run_dir)
    sel, _ = selections_frame(tables)
    assert set(sel["trial_id"]) == {healthy["trial_id"]}
    failed = failed_trials(tables.trials)
    assert failed["trial_id"].tolist() == [diverged["trial_id"]] and failed["error"].iloc[0] == diverged["error"]
