"""Final training through the real Ray Tune path on tiny data: the `train_epochs` and `final` tables, a NaN trial
that fails alone, interrupt + --resume ending on the weights of an unbroken run, `--from` a sweep's selections,
and one clear error (exit status 2) per bad input."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from trainables.runs import store
from trainables.runs.tuner import InterruptAfter
from trainables.sweep.spec import SpecError
from trainables.train import TrainRun
from trainables.train.driver import FINAL, TRAIN_EPOCHS, run_train
from trainables.train.protocol import PRESETS
from trainables.train.spec import validate_train_spec
from trainables.train.trainable import TrainTrainable

REPO = Path(__file__).resolve().parents[3]
GOOD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
WEAK = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|"
TINY = {"epochs": 2, "steps_per_epoch": 2, "batch_size": 16, "size": {"C": 4, "N": 1}, "eval_size": 32}


def spec_data(data_root: Path, name: str, **extra) -> dict:
    return {"name": name, "protocol": "nb201-12", "overrides": dict(TINY), "dataset": "cifar10-valid",
            "data_root": str(data_root), "architectures": [GOOD, {"arch": WEAK, "label": "weak"}], "seeds": [0],
            "device": "cpu", "resources": {"cpu": 1, "gpu": 0}, **extra}


class NaNOnWeak(TrainTrainable):
    """The WEAK architecture's loss turns NaN in its second epoch."""

    def build_run(self, train_config):
        run = TrainRun(train_config)
        if train_config["arch"] == WEAK:
            run.model.register_forward_hook(lambda m, a, out: out * float("nan") if run.epoch >= 1 else out)
        return run


@pytest.mark.slow
def test_a_nan_trial_fails_alone_with_its_epoch(ray_with_test_classes, tmp_path, tiny_cifar10):
    """... and with `export: onnx`, the finished training's ONNX file lies beside its last checkpoint, checked in
    onnxruntime against the trained torch network; the failed one has none."""
    pytest.importorskip("onnxruntime")
    spec = validate_train_spec(spec_data(tiny_cifar10, "nan", export="onnx"))
    result = run_train(spec, storage=tmp_path, trainable=NaNOnWeak, verbose=0)
    final = store.read_table(tmp_path / "nan", FINAL).set_index("arch")
    assert final.loc[GOOD, "status"] == "TERMINATED" and final.loc[GOOD, "epochs_done"] == 2
    assert final.loc[WEAK, "status"] == "ERROR" and "in epoch 2 of 2" in final.loc[WEAK, "error"]
    assert final.loc[WEAK, "num_failures"] == 0  # not retried: the same loss would come back
    assert result.exit_code == 1
    for col in ("params", "flops", "seconds_per_epoch", "device", "torch_version", "ray_version", "test_error",
                "train_loss", "protocol", "dataset", "space", "seed"):
        assert pd.notna(final.loc[GOOD, col]), col
    epochs = store.read_table(tmp_path / "nan", TRAIN_EPOCHS)
    assert sorted(epochs[epochs["arch"] == GOOD]["epoch"]) == [1, 2]
    onnx_path = Path(final.loc[GOOD, "onnx_path"])
    assert onnx_path.parent == Path(final.loc[GOOD, "checkpoint_path"]).parent and onnx_path.is_file()
    assert 0 <= final.loc[GOOD, "onnx_max_abs_diff"] <= 1e-4
    assert pd.isna(final.loc[WEAK, "onnx_path"])
    import onnxruntime as ort

    trained = TrainRun(spec.trials()[0]["train"])
    trained.model.load_state_dict(final_weights(final.loc[GOOD, "trial_path"]))
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    got = ort.InferenceSession(str(onnx_path)).run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), trained.model.eval()(x), atol=1e-4, rtol=0)


def final_weights(trial_path: str) -> dict[str, torch.Tensor]:
    ckpts = sorted(Path(trial_path).glob("checkpoint_*/train.pt"))
    return torch.load(ckpts[-1], weights_only=True)["model"]


@pytest.mark.slow
def test_interrupt_and_resume_ends_on_the_unbroken_weights(ray_with_test_classes, tmp_path, tiny_cifar10):
    overrides = {**TINY, "epochs": 3}
    data = spec_data(tiny_cifar10, "resume", overrides=overrides, architectures=[GOOD])
    spec = validate_train_spec(data)
    first = run_train(spec, storage=tmp_path, callbacks=[InterruptAfter(1)], verbose=0)
    assert first.exit_code == 130
    second = run_train(spec, storage=tmp_path, resume=True, verbose=0)
    assert second.exit_code == 0
    row = store.read_table(tmp_path / "resume", FINAL).iloc[0]
    assert row["epochs_done"] == 3 and row["status"] == "TERMINATED"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        unbroken = TrainRun(spec.trials()[0]["train"])
        for _ in range(3):
            unbroken.run_epoch()
    finally:
        torch.set_num_threads(threads)
    got = final_weights(row["trial_path"])
    for name, value in unbroken.model.state_dict().items():
        assert torch.equal(value, got[name]), name
    assert row["test_loss"] == unbroken.last_eval["test_loss"]


def fake_sweep(folder: Path, rows: list[dict], space: str = "nb201") -> Path:
    """A search run folder with only a `selections` table (what the proxy stage writes)."""
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(yaml.safe_dump({"name": folder.name, "space": space}))
    frame = pd.DataFrame(rows)
    for trial_id, part in frame.groupby("trial_id"):
        store.write_partition(folder, "selections", part.drop(columns=["trial_id"]), trial_id)
    return folder


SELECTIONS = [
    {"trial_id": "a_00000", "method": "balenas", "seed": 0, "rule": "argmax", "arch": GOOD},
    {"trial_id": "a_00000", "method": "balenas", "seed": 0, "rule": "proxy:naswot", "arch": WEAK},
    {"trial_id": "a_00001", "method": "balenas", "seed": 1, "rule": "proxy:naswot", "arch": WEAK},
    {"trial_id": "a_00002", "method": "darts-v1", "seed": 0, "rule": "proxy:naswot", "arch": GOOD},
]


def test_from_a_sweep_trains_each_distinct_selected_architecture_once(tmp_path, tiny_cifar10):
    sweep = fake_sweep(tmp_path / "search", SELECTIONS)
    data = spec_data(tiny_cifar10, "from", architectures=[], seeds=[0, 1])
    spec = validate_train_spec(data, from_sweep=str(sweep), rule="proxy:naswot")
    assert [e.arch for e in spec.architectures] == [WEAK, GOOD]  # in (method, seed) order of the choosers
    by = {e.arch: [(s["method"], s["search_seed"]) for s in e.selected_by] for e in spec.architectures}
    assert by == {GOOD: [("darts-v1", 0)], WEAK: [("balenas", 0), ("balenas", 1)]}
    assert len(spec.trials()) == 4  # 2 architectures x 2 seeds
    stored = yaml.safe_load(spec.to_yaml())
    assert stored["from"]["rule"] == "proxy:naswot" and len(stored["architectures"]) == 2


@pytest.mark.parametrize("change, needle", [
    ({"protocol": "darts-cfar"}, "unknown protocol 'darts-cfar'"),
    ({"overrides": {"epochz": 2}}, "unknown protocol field(s) 'epochz'"),
    ({"architectures": ["|nor_conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"]},
     "architectures.0: arch '|nor_conv_9x9~0|"),
    ({"dataset": "mnist"}, "dataset 'mnist'"),
    ({"architectures": []}, "give `architectures` or `from"),
    ({"colour": "red"}, "colour"),
    ({"export": "tflite"}, "export.0"),
])
def test_bad_specs_name_the_value(tiny_cifar10, change, needle):
    with pytest.raises(SpecError) as err:
        validate_train_spec({**spec_data(tiny_cifar10, "bad"), **change})
    assert needle in str(err.value)


def test_export_without_the_extra_says_how_to_install(tiny_cifar10, monkeypatch):
    import search_spaces.onnx_export as onnx_export

    def missing():
        raise onnx_export.OnnxUnavailable(onnx_export.INSTALL_HINT)

    monkeypatch.setattr(onnx_export, "require_onnx", missing)
    with pytest.raises(SpecError, match=r"export.*pip install -e \"\.\[export\]\""):
        validate_train_spec(spec_data(tiny_cifar10, "bad", export=["onnx"]))


def test_from_errors_name_the_sweep_and_rule(tmp_path, tiny_cifar10):
    data = spec_data(tiny_cifar10, "bad", architectures=[])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SpecError, match="has no selections table"):
        validate_train_spec(data, from_sweep=str(empty))
    sweep = fake_sweep(tmp_path / "search", SELECTIONS)
    with pytest.raises(SpecError, match=r"from.rule='proxy:synflow': not a rule of .*argmax, proxy:naswot"):
        validate_train_spec(data, from_sweep=str(sweep), rule="proxy:synflow")
    with pytest.raises(SpecError, match="from.rule"):
        validate_train_spec(data, from_sweep=str(sweep), rule="best-of")


def _platform_main():
    spec = importlib.util.spec_from_file_location("platform_train", REPO / "platform" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_command_exits_2_on_bad_input(tmp_path, tiny_cifar10, capsys):
    main = _platform_main()
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**spec_data(tiny_cifar10, "bad"), "protocol": "nb-201"}))
    assert main([str(path)]) == 2
    assert "unknown protocol 'nb-201'" in capsys.readouterr().err
    path.write_text(yaml.safe_dump(spec_data(tiny_cifar10, "bad", architectures=[])))
    assert main([str(path), "--from", str(tmp_path / "nowhere")]) == 2
    assert "no sweep folder" in capsys.readouterr().err


@pytest.mark.parametrize("example", sorted((REPO / "platform" / "trains").glob("*.yaml")), ids=lambda p: p.name)
def test_example_specs_validate(example, tmp_path):
    data = yaml.safe_load(example.read_text())
    assert "shared" not in example.read_text()
    if "from" in data:  # point it at a stand-in sweep (the example names a run folder that does not exist here)
        space = PRESETS[data["protocol"]].space
        arch = GOOD if space == "nb201" else str(pytest.importorskip("search_spaces.darts.published").DARTS_V2)
        sweep = fake_sweep(tmp_path / "sweep", [{**SELECTIONS[0], "rule": data["from"]["rule"], "arch": arch}],
                           space)
        assert validate_train_spec(data, from_sweep=str(sweep)).architectures[0].arch == arch
    else:
        spec = validate_train_spec(data)
        assert len(spec.trials()) >= 1
