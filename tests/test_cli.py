"""The `balenas` command: every subcommand has --help, platform/*.py call the same functions, and a sweep whose
data are missing exits 2 with the clear download error before Ray starts."""

from __future__ import annotations

import ast
import importlib.util
import runpy
import socket
import sys
from pathlib import Path

import pytest
import yaml

from balenas import cli

REPO = Path(__file__).resolve().parents[1]


def test_pyproject_declares_the_console_script_and_the_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["balenas"] == "balenas.cli:main"
    assert "balenas*" in project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert "data/*.parquet" in project["tool"]["setuptools"]["package-data"]["search_spaces.nb201"]
    assert any(dep.startswith("filelock") for dep in project["project"]["dependencies"])


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in cli.COMMANDS)


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_subcommand_has_its_own_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    assert f"usage: balenas {command}" in capsys.readouterr().out


@pytest.mark.parametrize("subcommand, expected", [
    ("convert", ["nb101", "nb201", "--trust-pickle", "--no-crc", "--check-hashes", "nasbench_full.tfrecord"]),
    ("query", ["--arch", "--matrix", "--ops", "--table", "nb101"])])
def test_benchmark_subcommands_have_help_naming_every_benchmark(subcommand, expected, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["benchmark", subcommand, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: balenas benchmark {subcommand}" in out
    assert all(word in out for word in expected), [word for word in expected if word not in out]


@pytest.mark.parametrize("script, module", [("sweep.py", "balenas.commands.sweep"),
                                            ("proxy_stage.py", "balenas.commands.proxies"),
                                            ("score_space.py", "balenas.commands.score_space"),
                                            ("train.py", "balenas.commands.train")])
def test_platform_scripts_are_one_line_calls_of_the_commands(script, module):
    path = REPO / "platform" / script
    spec = importlib.util.spec_from_file_location(f"platform_{script[:-3]}", path)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    assert loaded.main is importlib.import_module(module).main
    tree = ast.parse(path.read_text())
    defs = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    guard = [node for node in tree.body if isinstance(node, ast.If)]
    assert not defs and len(guard) == 1 and len(guard[0].body) == 1
    assert "main(prog=" in ast.unparse(guard[0].body[0])


@pytest.mark.parametrize("module, argv, usage", [
    ("balenas", ["--help"], "usage: balenas"),
    ("search_spaces.benchmarks", ["convert", "--help"], "usage: python -m search_spaces.benchmarks convert"),
    ("analysis", ["report", "--help"], "usage: python -m analysis report")])
def test_python_m_entry_points_are_the_same_commands(module, argv, usage, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [module, *argv])
    with pytest.raises(SystemExit) as info:
        runpy.run_module(module, run_name="__main__", alter_sys=False)
    assert info.value.code == 0
    assert usage in capsys.readouterr().out


def _spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "space": "nb201", "dataset": "cifar10",
                                    "methods": {"darts-v1": {}}, "search": {"epochs": 1, "C": 4, "N": 1}}))
    return path


def test_a_sweep_without_data_and_network_exits_2_naming_the_url(tmp_path, monkeypatch, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"  # closed once the block ends: connections are refused
    monkeypatch.setenv("BALENAS_DOWNLOAD_MIRROR", url)
    monkeypatch.delenv("BALENAS_DATA_ROOT", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cli.main(["sweep", str(_spec_file(tmp_path)), "--storage", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert f"{url}/cifar-10-python.tar.gz" in err and "by hand" in err
    assert str(tmp_path / "cache" / "balenas" / "data" / "cifar-10-batches-py") in err
    assert not (tmp_path / "runs").exists()

    assert cli.main(["sweep", str(_spec_file(tmp_path)), "--no-download", "--storage", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "--no-download" in err and "cifar-10-python.tar.gz" in err and url not in err
