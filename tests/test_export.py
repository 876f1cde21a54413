"""`balenas export`: ONNX parity with torch for one architecture of every space, trained weights from a final
training's checkpoint (auxiliary head left off), the install hint without the extra, and bad input."""

from __future__ import annotations

import builtins
import re

import numpy as np
import pytest
import torch

from balenas.commands import export
from search_spaces.space import available_spaces, get_space

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

TINY = {"nb201": ["C=4", "N=1"], "darts": ["C=4", "layers=3"]}
TINY_DEFAULT = ["C=4", "N=1"]  # nb1shot1-*


def some_arch(name: str, seed: int = 0) -> str:
    """A seeded architecture of any space: the discretisation of random probabilities."""
    space = get_space(name)
    g = torch.Generator().manual_seed(seed)
    return space.discretize({k: torch.rand(s, generator=g).softmax(-1) for k, s in space.arch_shapes.items()})


@pytest.mark.parametrize("name", available_spaces())
def test_onnx_matches_torch_for_every_space(name, tmp_path, capsys):
    out = tmp_path / "net.onnx"
    code = export.main([some_arch(name), "--space", name, "--size", *TINY.get(name, TINY_DEFAULT),
                        "--onnx", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    diff = float(re.search(r"max abs diff (\S+)", text).group(1))
    assert diff <= 1e-4 and out.is_file()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"images": np.zeros((3, 3, 32, 32), np.float32)})[0]  # a dynamic batch axis
    assert logits.shape == (3, 10)


def test_checkpoint_weights_are_exported_without_the_auxiliary_head(tmp_path, capsys):
    from search_spaces.data.device import DeviceDataset
    from trainables.train import TrainRun

    arch = some_arch("darts")
    g = torch.Generator().manual_seed(1)
    data = DeviceDataset(torch.randint(0, 256, (16, 3, 32, 32), generator=g, dtype=torch.uint8),
                         torch.arange(16) % 10, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 10, "random", 4)
    config = {"arch": arch, "space": "darts", "protocol": "darts-cifar", "dataset": "cifar10", "device": "cpu",
              "overrides": {"size": {"C": 4, "layers": 3}, "epochs": 1, "batch_size": 8}}
    run = TrainRun(config, splits={"train": data, "test": data})
    assert any("auxiliary" in k for k in run.model.state_dict())
    run.run_epoch()
    ckpt = run.save(tmp_path / "train.pt")

    out = tmp_path / "trained.onnx"
    assert export.main(["--checkpoint", str(ckpt), "--onnx", str(out)]) == 0, capsys.readouterr()
    x = torch.randn(2, 3, 32, 32, generator=g)
    with torch.no_grad():
        expected = run.model.eval()(x)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"images": x.numpy()})[0]
    assert np.abs(got - expected.numpy()).max() <= 1e-4

    other = some_arch("darts", seed=1)
    assert other != arch
    with pytest.raises(SystemExit) as info:
        export.main([other, "--checkpoint", str(ckpt), "--onnx", str(tmp_path / "other.onnx")])
    assert info.value.code == 2 and "differs from the checkpoint" in capsys.readouterr().err


def test_missing_extra_says_how_to_install(monkeypatch, tmp_path, capsys):
    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name.split(".")[0] in {"onnx", "onnxruntime"}:
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(SystemExit) as info:
        export.main([some_arch("nb201"), "--space", "nb201", "--onnx", str(tmp_path / "x.onnx")])
    assert info.value.code == 2
    assert 'pip install -e ".[export]"' in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("argv, needle", [
    (["|bogus~0|", "--space", "nb201"], "|bogus~0|"),
    (["not-a-genotype", "--space", "darts"], "not-a-genotype"),
    (["--space", "nb201"], "ARCH is required"),
    (["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--space", "nb201", "--size", "layers=3"], "layers"),
])
def test_bad_input_exits_2_naming_it(argv, needle, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        export.main([*argv, "--onnx", str(tmp_path / "x.onnx")])
    assert info.value.code == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
