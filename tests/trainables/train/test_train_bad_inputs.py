"""Training specs the trials could not run are refused before Ray starts, each architecture is trained once, and
the end of a trial cannot lose its training (issue 21, items 2 and 3).

- Protocol overrides the space's network or the data set cannot take (`size` keys, `network` extras,
  `auxiliary`, data sets and split names of `splits`): exit status 2 naming `overrides.<key>`, no run folder.
- One architecture written several ways (an NB201 string twice; a DARTS genotype as text, as NASLib's compact list
  and with a node's pairs swapped; listed and selected by `from`) is one entry, stored as the canonical string,
  with a warning naming the merged entries; `--resume` compares canonical forms.
- `--resume` refusals speak of a training.
- A benchmark lookup that fails after the last epoch leaves the `final` row with the trained result and the error
  in `bench_error` (exit status 0: every training finished); a trial whose `final` row was lost (its training
  complete) is finished by `--resume` without training again.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import yaml
from ray.tune import Callback

from balenas import cli
from search_spaces.darts import DARTS_V2
from search_spaces.space import get_space
from trainables.runs import store
from trainables.train.driver import FINAL, TRAIN_EPOCHS, final_row, prepare_train_dir, run_train
from trainables.train.spec import validate_train_spec

GOOD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
WEAK = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|"
TINY = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 16, "size": {"C": 4, "N": 1}, "eval_size": 32}


def spec_data(data_root: Path, name: str = "bad", **extra) -> dict:
    return {"name": name, "protocol": "nb201-12", "overrides": dict(TINY), "dataset": "cifar10-valid",
            "data_root": str(data_root), "architectures": [GOOD], "seeds": [0], "device": "cpu",
            "resources": {"cpu": 1, "gpu": 0}, **extra}


@pytest.fixture
def no_ray(monkeypatch):
    """Ray may not start: a bad spec must be refused before it."""
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("ray.init called: the spec should have been refused before Ray starts")

    monkeypatch.setattr(ray, "init", refuse)


def write_spec(folder: Path, data: dict) -> Path:
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# ----- protocol overrides the space or the data set cannot take ------------------------------------------------
_SPLITS = {"data": "cifar10", "train": "search-train", "eval": {"valid": "search-valid", "test": "test"}}
BAD_OVERRIDES = [
    ({"size": {"C": 8, "layers": 5}}, {},
     "overrides.size.layers: space 'nb201' takes no size key 'layers' (got 5); its proxy size keys: C, N"),
    ({"network": {"imagenet": True}}, {},
     "overrides.network.imagenet: network.imagenet=True: space 'nb201''s network takes no 'imagenet'"),
    ({"auxiliary": True}, {}, "overrides.auxiliary: auxiliary=True: space 'nb201''s network has no auxiliary head"),
    ({"splits": {"cifar10-valid": {**_SPLITS, "train": "trian"}}}, {},
     "overrides.splits.cifar10-valid.train: unknown split of data set 'cifar10'; its splits: train, test, "
     "search-train, search-valid (got 'trian')"),
    ({"splits": {"cifar10-valid": {**_SPLITS, "eval": {"test": "x-test"}}}}, {},
     "overrides.splits.cifar10-valid.eval.test: unknown split of data set 'cifar10'"),
    ({"splits": {"cifar10-valid": {**_SPLITS, "data": "mnist"}}}, {},
     "overrides.splits.cifar10-valid.data: unknown data set; expected one of cifar10, cifar100"),
    # the DARTS preset on NB201 with NB201's size: its auxiliary head is what the space cannot take
    ({"size": {"C": 4, "N": 1}}, {"protocol": "darts-cifar", "space": "nb201", "dataset": "cifar10"},
     "overrides.auxiliary: auxiliary=True: space 'nb201''s network has no auxiliary head"),
]


@pytest.mark.parametrize("override, top, needle", BAD_OVERRIDES, ids=[n.split(":")[0] for _, _, n in BAD_OVERRIDES])
def test_overrides_the_space_or_data_cannot_take_are_exit_2_before_ray(tmp_path, tiny_cifar10, no_ray, capsys,
                                                                       override, top, needle):
    data = spec_data(tiny_cifar10, **top)
    data["overrides"] = {**data["overrides"], **override}
    spec = write_spec(tmp_path, data)
    assert cli.main(["train", str(spec), "--storage", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    first = next(line for line in err.splitlines() if line.startswith("error:"))
    assert first == f"error: invalid training spec {spec}:", first
    assert f"  {needle}" in err, err
    assert not (tmp_path / "runs").exists()


def test_the_presets_pass_the_protocol_checks(tiny_cifar10):
    from trainables.train.protocol import PRESETS
    from trainables.train.spec import protocol_problems

    for preset in PRESETS.values():
        spec = validate_train_spec({**spec_data(tiny_cifar10), "protocol": preset.name,
                                    "overrides": {}, "dataset": next(iter(preset.splits)),
                                    "architectures": [GOOD if preset.space == "nb201" else str(DARTS_V2)]})
        assert protocol_problems(spec, preset.space, preset) == [], preset.name


# ----- each architecture once, as its canonical string ------------------------------------------------------------
def test_an_nb201_string_listed_twice_is_one_architecture(tiny_cifar10, caplog):
    with caplog.at_level(logging.WARNING, logger="trainables.train.spec"):
        spec = validate_train_spec(spec_data(tiny_cifar10, architectures=[GOOD, WEAK, {"arch": GOOD, "label": "g"}],
                                             seeds=[0, 1]))
    assert [(e.arch, e.label) for e in spec.architectures] == [(GOOD, "g"), (WEAK, None)]
    assert len(spec.trials()) == 4 and len({(t["arch"], t["seed"]) for t in spec.trials()}) == 4
    message = caplog.text
    assert "architectures.0" in message and "architectures.2" in message and GOOD in message
    assert "architectures.1" not in message


def test_a_darts_genotype_written_three_ways_is_one_architecture_stored_canonical(tiny_cifar10, caplog):
    compact = [list(map(list, cell)) for cell in DARTS_V2.to_compact()]  # NASLib's list form, as YAML gives it
    swapped = str(DARTS_V2).replace("('sep_conv_3x3', 0), ('sep_conv_3x3', 1)", "('sep_conv_3x3', 1), "
                                                                              "('sep_conv_3x3', 0)", 1)
    assert swapped != str(DARTS_V2)
    data = {**spec_data(tiny_cifar10), "protocol": "darts-cifar", "dataset": "cifar10",
            "overrides": {**TINY, "size": {"C": 4, "layers": 2}},
            "architectures": [compact, {"arch": str(DARTS_V2), "label": "darts-v2"}, swapped]}
    with caplog.at_level(logging.WARNING, logger="trainables.train.spec"):
        spec = validate_train_spec(data)
    canonical = get_space("darts").canonical(str(DARTS_V2))
    assert [(e.arch, e.label) for e in spec.architectures] == [(canonical, "darts-v2")]
    assert [t["arch"] for t in spec.trials()] == [canonical] and spec.trials()[0]["train"]["arch"] == canonical
    stored = yaml.safe_load(spec.to_yaml())
    assert stored["architectures"][0]["arch"] == canonical  # not the compact list as written
    assert all(f"architectures.{i}" in caplog.text for i in range(3))
    again = validate_train_spec(stored)  # the stored spec validates to the same trials
    assert again.trials() == spec.trials()


def fake_sweep(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(yaml.safe_dump({"name": folder.name, "space": "nb201"}))
    for trial_id, part in pd.DataFrame(rows).groupby("trial_id"):
        store.write_partition(folder, "selections", part.drop(columns=["trial_id"]), trial_id)
    return folder


def test_an_architecture_listed_and_selected_is_one_entry_with_its_choosers(tmp_path, tiny_cifar10, caplog):
    sweep = fake_sweep(tmp_path / "search", [
        {"trial_id": "a_00000", "method": "balenas", "seed": 0, "rule": "argmax", "arch": WEAK},
        {"trial_id": "a_00001", "method": "balenas", "seed": 1, "rule": "argmax", "arch": WEAK},
        {"trial_id": "a_00002", "method": "darts-v1", "seed": 0, "rule": "argmax", "arch": GOOD}])
    data = spec_data(tiny_cifar10, architectures=[{"arch": GOOD, "label": "mine"}])
    with caplog.at_level(logging.WARNING, logger="trainables.train.spec"):
        spec = validate_train_spec(data, from_sweep=str(sweep), rule="argmax")
    by = {e.arch: (e.label, [(s["method"], s["search_seed"]) for s in e.selected_by]) for e in spec.architectures}
    assert by == {GOOD: ("mine", [("darts-v1", 0)]), WEAK: (None, [("balenas", 0), ("balenas", 1)])}
    assert [e.arch for e in spec.architectures] == [GOOD, WEAK]
    assert "architectures.0" in caplog.text and "selected by 1 search trial" in caplog.text


def test_the_command_counts_merged_architectures(tmp_path, tiny_cifar10, monkeypatch, capsys):
    import ray

    def refused(*args, **kwargs):
        raise ConnectionError("no Ray in this test")

    monkeypatch.setattr(ray, "init", refused)
    spec = write_spec(tmp_path, spec_data(tiny_cifar10, architectures=[GOOD, GOOD, WEAK]))
    assert cli.main(["train", str(spec), "--storage", str(tmp_path / "runs")]) == 2  # Ray refused, as asked
    captured = capsys.readouterr()
    assert "2 trials (2 architectures x 1 seeds)" in captured.out
    assert "no Ray in this test" in captured.err and not (tmp_path / "runs").exists()


# ----- --resume: canonical forms compare equal; the messages speak of a training ----------------------------------
def darts_data(data_root: Path, arch) -> dict:
    return {**spec_data(data_root, name="darts"), "protocol": "darts-cifar", "dataset": "cifar10",
            "overrides": {**TINY, "size": {"C": 4, "layers": 2}}, "architectures": [arch]}


def test_resume_compares_canonical_architectures_and_speaks_of_a_training(tmp_path, tiny_cifar10):
    compact = [list(map(list, cell)) for cell in DARTS_V2.to_compact()]
    first = validate_train_spec(darts_data(tiny_cifar10, compact))
    run_dir = Path(prepare_train_dir(first, tmp_path, resume=False).path)
    stored = yaml.safe_load((run_dir / "spec.yaml").read_text())
    assert stored["architectures"][0]["arch"] == str(DARTS_V2)
    before = (run_dir / "spec.yaml").read_bytes()

    same = validate_train_spec(darts_data(tiny_cifar10, str(DARTS_V2)))  # another spelling: the same training
    assert Path(prepare_train_dir(same, tmp_path, resume=True).path) == run_dir

    # a run folder stored before canonicalisation (the compact form as written) still resumes
    old = {**stored, "architectures": [{"arch": json.dumps(compact), "label": None, "selected_by": []}]}
    (run_dir / "spec.yaml").write_text(yaml.safe_dump(old))
    assert Path(prepare_train_dir(same, tmp_path, resume=True).path) == run_dir
    (run_dir / "spec.yaml").write_bytes(before)

    other = validate_train_spec(darts_data(tiny_cifar10, str(DARTS_V2).replace("dil_conv_3x3", "sep_conv_5x5")))
    with pytest.raises(ValueError, match=r"^--resume: the trials of this spec .* start a training with") as err:
        prepare_train_dir(other, tmp_path, resume=True)
    assert "sweep" not in str(err.value)
    with pytest.raises(FileExistsError, match="finish that training, ") as err:
        prepare_train_dir(same, tmp_path, resume=False)
    assert "sweep" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="no training to resume") as err:
        prepare_train_dir(same, tmp_path / "elsewhere", resume=True)
    assert "sweep" not in str(err.value) and not (tmp_path / "elsewhere").exists()
    assert (run_dir / "spec.yaml").read_bytes() == before


# ----- the end of a trial cannot lose its training ------------------------------------------------------------------
def fake_trial(benchmark: str | None) -> SimpleNamespace:
    train = {"protocol": "nb201-12", "dataset": "cifar10-valid", "space": None}
    trial = {"label": "arch00/seed=0", "arch": GOOD, "seed": 0, "selected_by": [], "benchmark": benchmark,
             "train": train}
    last = {"space": "nb201", "info_total_epochs": 2, "info_params": 1000, "info_flops": 2.0e6, "info_device": "cpu"}
    return SimpleNamespace(config={"trial": trial}, last_result=last, status="TERMINATED",
                           run_metadata=SimpleNamespace(num_failures=0), checkpoint=None, path="/trial",
                           get_error=lambda: None)


HISTORY = pd.DataFrame([{"epoch": e, "train_loss": 2.0 / e, "train_acc": 10.0 * e, "test_loss": 1.5,
                         "test_acc": 30.0 + e, "test_error": 70.0 - e, "valid_acc": 29.0, "valid_loss": 1.6,
                         "valid_error": 71.0, "epoch_time_s": 1.0} for e in (1, 2)])


def test_a_failed_benchmark_lookup_keeps_the_trained_row(tmp_path, caplog):
    bad = tmp_path / "gone.parquet"
    bad.write_text("not a table")
    with caplog.at_level(logging.WARNING, logger="trainables.train.driver"):
        row = final_row(fake_trial(str(bad)), HISTORY)
    assert row["status"] == "TERMINATED" and row["error"] is None
    assert row["test_acc"] == 32.0 and row["epochs_done"] == 2 and row["total_epochs"] == 2
    assert row["bench_error"].startswith("BenchmarkFileError: ") and str(bad) in row["bench_error"]
    assert "bench_test_acc" not in row and str(bad) in caplog.text
    good = final_row(fake_trial("nb201"), HISTORY)
    # NB201 holds cifar10-valid's 12-epoch validation accuracy (not its test accuracy)
    assert "bench_error" not in good and good["bench_valid_acc"] > 80 and good["bench_epochs"] == 12


@pytest.mark.slow
def test_a_benchmark_that_fails_after_training_keeps_the_final_row(ray_with_test_classes, tmp_path, tiny_cifar10):
    """The benchmark file is checked only with the paths (`--no-check-paths` skips it, as for cluster runs): the
    lookup fails after the last epoch, the trial is neither failed nor retried, exit status 0."""
    bad = tmp_path / "nb201.parquet"
    bad.write_text("truncated")
    spec = write_spec(tmp_path, spec_data(tiny_cifar10, name="end", benchmark=str(bad)))
    code = cli.main(["train", str(spec), "--storage", str(tmp_path / "runs"), "--no-check-paths", "--quiet"])
    assert code == 0
    row = store.read_table(tmp_path / "runs" / "end", FINAL).iloc[0]
    assert row["status"] == "TERMINATED" and row["num_failures"] == 0 and row["epochs_done"] == 1
    assert pd.notna(row["test_acc"]) and str(bad) in row["bench_error"]
    assert len(store.read_table(tmp_path / "runs" / "end", TRAIN_EPOCHS)) == 1


class FailAtTheEnd(Callback):
    """Fails each trial as it completes, as a `final` row that could not be written did; it pickles as a plain
    Callback, so a resumed run does not fail again."""

    def __reduce__(self):
        return (Callback, ())

    def on_trial_complete(self, iteration, trials, trial, **info):
        raise RuntimeError("bookkeeping failed after the last epoch")


@pytest.mark.slow
def test_resume_of_a_completed_training_only_redoes_its_bookkeeping(ray_with_test_classes, tmp_path, tiny_cifar10):
    data = spec_data(tiny_cifar10, name="done", failure={"max_failures": 1}, overrides={**TINY, "epochs": 2})
    spec_path = write_spec(tmp_path, data)
    spec = validate_train_spec(data)
    run = tmp_path / "runs" / "done"
    first = run_train(spec, storage=tmp_path / "runs", callbacks=[FailAtTheEnd()], verbose=0)
    row = store.read_table(run, FINAL).iloc[0]
    # the retry restored the last epoch's checkpoint and trained nothing: no "the training is complete" error
    assert row["epochs_done"] == 2 and "training is complete" not in str(row["error"])
    assert first.exit_code == 1
    epochs = store.read_table(run, TRAIN_EPOCHS).sort_values("epoch").reset_index(drop=True)
    ckpts = sorted(Path(row["trial_path"]).glob("checkpoint_*/train.pt"))
    weights = torch.load(ckpts[-1], weights_only=True)["model"]
    shutil.rmtree(run / FINAL)  # the lost bookkeeping

    code = cli.main(["train", str(spec_path), "--storage", str(tmp_path / "runs"), "--resume", "--quiet"])
    assert code == 0
    row = store.read_table(run, FINAL).iloc[0]
    assert row["status"] == "TERMINATED" and row["epochs_done"] == 2 and pd.notna(row["test_acc"])
    again = store.read_table(run, TRAIN_EPOCHS).sort_values("epoch").reset_index(drop=True)
    pd.testing.assert_frame_equal(again[epochs.columns], epochs)  # no epoch trained again
    ckpts = sorted(Path(row["trial_path"]).glob("checkpoint_*/train.pt"))
    for name, value in torch.load(ckpts[-1], weights_only=True)["model"].items():
        assert torch.equal(value, weights[name]), name


def test_the_results_callback_never_fails_a_finished_trial(tmp_path, monkeypatch):
    """A row builder that raises leaves `fallback_row` (the last result, status ERROR, the error); a write that
    fails is logged and done again at the end of the experiment, the epochs written before kept."""
    from trainables.runs import results as results_mod
    from trainables.runs.results import ParquetResults

    def broken_row(trial, history):
        raise KeyError("a column the builder expected")

    trial = SimpleNamespace(trial_id="t_00000", storage=None, status="TERMINATED", path="/trial",
                            last_result={"trial_label": "arch00/seed=0", "arch": GOOD, "epoch": 1, "test_acc": 31.0})
    callback = ParquetResults(tmp_path, broken_row, epochs_table=TRAIN_EPOCHS, trials_table=FINAL)
    callback.on_trial_result(1, [trial], trial, dict(trial.last_result))
    callback.on_trial_complete(1, [trial], trial)
    row = store.read_table(tmp_path, FINAL).iloc[0]
    assert row["status"] == "ERROR" and row["test_acc"] == 31.0 and row["arch"] == GOOD
    assert row["error"] == "trial row failed: KeyError: 'a column the builder expected'"

    good = ParquetResults(tmp_path, lambda t, h: {"arch": GOOD, "status": "TERMINATED", "epochs": len(h)},
                          epochs_table=TRAIN_EPOCHS, trials_table=FINAL)
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    real_write = store.write_partition
    monkeypatch.setattr(results_mod.store, "write_partition", disk_full)
    trial.last_result = {**trial.last_result, "epoch": 2, "test_acc": 33.0}
    good.on_trial_result(2, [trial], trial, dict(trial.last_result))  # logged, not raised
    good.on_trial_complete(2, [trial], trial)
    monkeypatch.setattr(results_mod.store, "write_partition", real_write)
    good.on_experiment_end([trial])  # the disk has room again: both tables are written
    assert sorted(store.read_table(tmp_path, TRAIN_EPOCHS)["epoch"]) == [1, 2]
    assert store.read_table(tmp_path, FINAL).iloc[0][["status", "epochs"]].tolist() == ["TERMINATED", 2]
