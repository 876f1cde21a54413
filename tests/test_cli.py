"""The `balenas` command: every subcommand has --help, platform/*.py call the same functions, and a sweep whose
data are missing exits 2 with the clear download error before Ray starts."""

from __future__ import annotations

import importlib.util
import socket
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
    assert "data/*.parquet" in project["tool"]["setuptools"]["package-data"]["search_spaces.benchmarks"]
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


@pytest.mark.parametrize("script, module", [("sweep.py", "balenas.commands.sweep"),
                                            ("proxy_stage.py", "balenas.commands.proxies"),
                                            ("score_space.py", "balenas.commands.score_space"),
                                            ("train.py", "trainables.train.cli")])
def test_platform_scripts_are_thin_wrappers_of_the_commands(script, module):
    spec = importlib.util.spec_from_file_location(f"platform_{script[:-3]}", REPO / "platform" / script)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    assert loaded.main is importlib.import_module(module).main
    assert len((REPO / "platform" / script).read_text().splitlines()) < 30


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
