"""Measured latency lookup tables (`search_spaces.latency_lut`, `balenas latency`).

The decomposition is checked on a deterministic fake clock: a torch dispatch mode counts the elements every
aten op writes, and the clock reads that count, so a part "takes" as long as the work it does. A table then
predicts a whole network exactly when the space's parts and counts cover the network's work exactly (a part
left out, counted twice or timed at the wrong shape breaks the equality).
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from balenas.cli import main as cli
from search_spaces import latency_lut as lut
from search_spaces.space import available_spaces, get_space

SPACES_WITH_PARTS = [n for n in available_spaces() if callable(getattr(get_space(n), "latency_parts", None))]
#: small sizes of each space (the DARTS space needs layers >= 3 for its two reductions; 5 gives every cell kind)
SMALL = {"nb201": {"C": 4, "N": 1}, "darts": {"C": 2, "layers": 4}, **{f"nb1shot1-{k}": {"C": 4, "N": 1}
                                                                       for k in (1, 2, 3)}}


class WorkClock(TorchDispatchMode):
    """Counts the elements written by every aten op (views, which write nothing, left out); `clock()` reads the
    count (in thousands)."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            self.total += sum(t.numel() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor))
        return out

    def clock(self) -> float:
        return self.total / 1e3


def test_every_space_has_a_decomposition():
    assert available_spaces() == SPACES_WITH_PARTS


def test_a_space_without_one_is_named():
    class Plain:
        name = "plain"

    with pytest.raises(ValueError, match="space 'plain' has no latency decomposition.*spaces with one: darts"):
        lut.decomposition(Plain())


@pytest.mark.parametrize("space_name", SPACES_WITH_PARTS)
def test_table_sums_to_the_whole_network_on_a_fake_clock(space_name):
    size = SMALL.get(space_name, {})
    work = WorkClock()
    with work:
        table = lut.measure_parts(space_name, size, dataset="ImageNet16-120", warmup=1, repeats=2, clock=work.clock,
                                  progress=False)
        result = lut.validate(table, 4, seed=3, clock=work.clock, progress=False)
    assert result["n"] == 4 and len({r["arch"] for r in result["rows"]}) == 4
    for row in result["rows"]:
        assert row["measured_ms"] > 0
        assert row["predicted_ms"] == pytest.approx(row["measured_ms"], rel=1e-9), row["arch"]
    assert result["mape_pct"] == pytest.approx(0.0, abs=1e-6)
    # every part is timed once per round, and every op part is used by some architecture of the space
    assert (table.rows["repeats"] == 2).all() and table.rows["part"].is_unique


def test_a_missing_part_breaks_the_prediction():
    work = WorkClock()
    with work:
        table = lut.measure_parts("nb201", SMALL["nb201"], warmup=0, repeats=1, clock=work.clock, progress=False)
        arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
        whole = lut.measure_networks("nb201", [arch], table, clock=work.clock)[0]
    assert table.predict(arch) == pytest.approx(whole, rel=1e-9)
    table.rows = table.rows[table.rows["part"] != "reduction2"]
    with pytest.raises(ValueError, match="lacks part.*reduction2"):
        table.predict(arch)


def test_timer_interleaves_parts_round_by_round():
    calls = []
    timer = lut.Timer(warmup=1, repeats=3, clock=lambda: float(len(calls)))
    times = timer.times_ms([lambda: calls.append("a"), lambda: calls.append("b")])
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert times == [[1e3] * 3, [1e3] * 3]
    with pytest.raises(ValueError, match="repeats"):
        lut.Timer(repeats=0)


def _ort_conv_count(arch: str, size: dict, tmp_path) -> int:
    """Conv and lone BatchNorm nodes onnxruntime keeps in its optimised graph of `arch`'s network (it turns the
    head's BatchNorm into a depthwise Conv or keeps it, depending on the graph)."""
    import onnx
    import onnxruntime as ort

    from search_spaces.costs import build_network
    from search_spaces.onnx_export import to_onnx_bytes

    model, image = build_network("nb201", arch, size, "cifar10")
    data = to_onnx_bytes(model, (torch.randn(1, 3, image, image),), dynamic_batch=False)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(tmp_path / "optimised.onnx")).graph
    return sum(node.op_type in ("Conv", "FusedConv", "BatchNormalization") for node in graph.node)


@pytest.mark.parametrize("arch", [
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    # node 1 reaches nothing: its conv is dead code
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|nor_conv_3x3~0|none~1|nor_conv_1x1~2|",
    # node 2 has no input: the conv leaving it runs on a constant
    "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    # no path from input to output: the whole network is a constant
    "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|",
])
def test_live_counts_match_onnxruntime_optimised_graph(arch, tmp_path):
    pytest.importorskip("onnxruntime")
    size = SMALL["nb201"]
    space = get_space("nb201")
    live = space.latency_counts(arch, 10, 32, live_only=True, **size)
    convs_per = {"stem": 1, "reduction1": 3, "reduction2": 3, "head": 1, "nor_conv_1x1": 1, "nor_conv_3x3": 1}
    expected = sum(n * convs_per.get(k.split("/")[-1], 0) for k, n in live.items())
    assert _ort_conv_count(arch, size, tmp_path) == expected
    full = space.latency_counts(arch, 10, 32, **size)
    assert sum(full.values()) >= sum(live.values())


def test_table_round_trip_and_bad_files(tmp_path):
    work = WorkClock()
    with work:
        table = lut.measure_parts("nb201", SMALL["nb201"], warmup=0, repeats=1, clock=work.clock, progress=False)
    path = table.write(tmp_path / "t.parquet")
    again = lut.LatencyTable.read(path)
    assert again.settings["space"] == "nb201" and again.settings["size"] == SMALL["nb201"]
    assert again.ms == table.ms
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="junk.parquet.*not a Parquet"):
        lut.LatencyTable.read(tmp_path / "junk.parquet")
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        lut.LatencyTable.read(tmp_path / "nope.parquet")
    import pandas as pd

    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="not a latency lookup table"):
        lut.LatencyTable.read(tmp_path / "other.parquet")


def test_random_architectures_are_distinct_and_canonical():
    for name in SPACES_WITH_PARTS:
        space = get_space(name)
        archs = lut.random_architectures(space, 8, seed=1)
        assert len(set(archs)) == 8 and all(space.canonical(a) == a for a in archs)
        assert archs == lut.random_architectures(space, 8, seed=1)


def test_cli_measures_validates_and_predicts(tmp_path, capsys):
    out = tmp_path / "lut.parquet"
    assert cli(["latency", "measure", "--space", "nb201", "--size", "C=4", "N=1", "--repeats", "2", "--warmup", "0",
                "--out", str(out), "--validate", "3", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "23 parts of space 'nb201'" in printed and "validation on 3 sampled architectures: Spearman" in printed
    assert (tmp_path / "lut.parquet.validation.parquet").is_file()
    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    assert cli(["latency", "predict", str(out), arch]) == 0
    ms = float(capsys.readouterr().out.split()[0])
    assert math.isfinite(ms) and ms > 0


@pytest.mark.parametrize("argv, message", [
    (["--space", "nope"], "nope"),
    (["--batch", "0"], "--batch must be >= 1"),
    (["--size", "C=4", "X=1"], "X"),
    (["--device", "cuda"], "CUDA is not available"),
])
def test_cli_bad_input_exits_2_naming_it(argv, message, tmp_path, capsys):
    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit) as exit_info:
        cli(["latency", "measure", *argv, "--out", str(tmp_path / "x.parquet"), "--no-progress"])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "x.parquet").exists()
