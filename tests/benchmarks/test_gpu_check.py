"""The GPU check's CPU mode (`--device cpu --tiny`), so that the script never rots before a GPU is at hand."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.heavy
def test_cpu_tiny_mode_runs_every_section(tmp_path, tiny_cifar10):
    """A large budget so that no section is cut short on a loaded machine: in --tiny every section's work is
    bounded by step counts (a quiet 2-core machine finishes in well under a minute)."""
    out = tmp_path / "out"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--device", "cpu", "--tiny",
                           "--data", str(tiny_cifar10), "--fractions", "1", "0.5", "--budget-s", "3000"],
                          capture_output=True, text=True, timeout=1200, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    sections = report["sections"]
    assert set(sections) == {"environment", "host_syncs", "cuda_tests", "iteration", "naswot", "search", "packed",
                             "darts_iteration", "darts_cifar", "compile"}
    failed = {k: v.get("error") for k, v in sections.items() if v["status"] == "failed"}
    assert not failed, failed
    assert sections["cuda_tests"]["status"].startswith("skipped: no CUDA")
    compiled = sections["compile"]["results"]["table"]
    assert compiled and all(r["result"].startswith(("skipped", "n/a")) for r in compiled)  # CPU: not compiled
    assert sections["environment"]["results"]["torch"]
    assert sections["host_syncs"]["results"]["all_ok"] is True
    table = sections["iteration"]["results"]["table"]
    eager = {r["method"]: r for r in table if r["setting"] == "eager fp32"}
    assert set(eager) == {"darts-v1", "balenas", "gdas"}
    assert all(r["result"] == "ok" and r["s_per_iteration"] > 0 for r in eager.values())
    assert set(sections["iteration"]["results"]["fastest"]) == {"darts-v1", "balenas", "gdas"}
    search = sections["search"]["results"]
    assert search["data"].startswith("CIFAR-10 data_batch_1, data_batch_2")  # the --data files were read
    assert search["projected_50_epochs_min"] > 0 and len(search["epochs"]) >= 1
    packed = sections["packed"]["results"]["table"]
    assert [r["trials"] for r in packed] == [1, 2] and all(r["aggregate_it_per_s"] > 0 for r in packed)
    assert all(r["archs_per_s"] > 0 for r in sections["naswot"]["results"]["table"])
    md = (out / "gpu_check.md").read_text()
    assert "## iteration: ok" in md and "## packed: ok" in md


def test_a_failing_section_keeps_the_others(tmp_path, monkeypatch):
    gpu_check = load_gpu_check()

    def broken(*args, **kwargs):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(gpu_check, "naswot", broken)
    data = gpu_check.main(["--out", str(tmp_path), "--device", "cpu", "--tiny", "--sections", "environment",
                           "naswot", "darts_cifar"])
    on_disk = json.loads((tmp_path / "gpu_check.json").read_text())
    assert on_disk["sections"].keys() == data["sections"].keys() == {"environment", "naswot", "darts_cifar"}
    assert on_disk["sections"]["naswot"]["status"] == "failed"
    assert "planted failure" in on_disk["sections"]["naswot"]["error"]
    assert on_disk["sections"]["environment"]["status"] == "ok"
    assert on_disk["sections"]["darts_cifar"]["status"].startswith("skipped")
    assert "## naswot: failed" in (tmp_path / "gpu_check.md").read_text()


def test_out_of_time_sections_are_skipped_not_lost(tmp_path):
    gpu_check = load_gpu_check()
    data = gpu_check.main(["--out", str(tmp_path), "--device", "cpu", "--tiny", "--budget-s", "0",
                           "--sections", "environment", "iteration"])
    assert all(v["status"].startswith("skipped: out of time") for v in data["sections"].values())


def test_bad_arguments_name_the_flag(tmp_path):
    gpu_check = load_gpu_check()
    with pytest.raises(SystemExit, match="--fractions"):
        gpu_check.main(["--out", str(tmp_path), "--device", "cpu", "--fractions", "2"])
    with pytest.raises(SystemExit, match="--data"):
        gpu_check.main(["--out", str(tmp_path), "--device", "cpu", "--data", str(tmp_path / "nope")])


@pytest.mark.heavy
def test_packed_trials_without_ray_run_as_subprocesses(monkeypatch):
    gpu_check = load_gpu_check()
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError: the machine without Ray
    res: dict = {}
    gpu_check.packed(res, gpu_check.torch.device("cpu"), gpu_check.TINY, [1, 0.5], 240, True)
    assert res["how"].startswith("Ray is not installed")
    assert [r["trials"] for r in res["table"]] == [1, 2]
    assert all(r["aggregate_it_per_s"] > 0 for r in res["table"]) and res["table"][0]["x one trial"] == 1.0
