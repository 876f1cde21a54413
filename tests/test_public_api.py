"""The packages' faces: the import paths users rely on keep working, every name in a package's `__all__`
resolves, the lazy packages stay cheap to import, and no private helper is imported across packages."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["analysis", "balenas", "balenas.commands", "search_spaces", "search_spaces.benchmarks",
            "search_spaces.darts", "search_spaces.data", "search_spaces.nb1shot1", "search_spaces.nb1shot1.nb101",
            "search_spaces.nb201", "trainables", "trainables.methods", "trainables.proxies", "trainables.proxy_stage",
            "trainables.runs", "trainables.search", "trainables.sweep", "trainables.train"]
SOURCE_DIRS = ["analysis", "balenas", "search_spaces", "trainables", "platform"]


def test_the_documented_import_paths_work(tmp_path):
    from search_spaces.benchmarks import open_benchmark
    from trainables.proxies import score
    from trainables.search import SearchRun, load_distribution, run_search
    from trainables.train import TrainRun, run_training

    assert all(callable(f) for f in (run_search, load_distribution, score, open_benchmark, run_training))
    assert isinstance(SearchRun, type) and isinstance(TrainRun, type)
    assert open_benchmark("nb201").record(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")

    import analysis
    from trainables.runs import store

    run = tmp_path / "tiny"
    store.write_partition(run, "trials", pd.DataFrame({"trial_id": ["t1"], "method": ["darts-v1"]}), "t1")
    assert analysis.load(run)["trials"]["method"].tolist() == ["darts-v1"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_name_in_all_resolves(package):
    """As `from package import name` does: the attribute (lazy ones included), else the submodule."""
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    assert names, f"{package} has no __all__"
    assert len(names) == len(set(names)), f"{package}.__all__ repeats a name"
    for name in names:
        namespace: dict = {}
        exec(f"from {package} import {name}", namespace)  # noqa: S102 - the statement under test
        assert namespace[name] is not None


def test_lazy_packages_import_neither_torch_nor_ray():
    code = ("import sys, json; import balenas, balenas.cli, search_spaces, search_spaces.benchmarks, "
            "search_spaces.nb1shot1.nb101, trainables, trainables.runs, trainables.sweep, trainables.proxy_stage; "
            "print(json.dumps(sorted(m for m in ('torch', 'ray', 'pandas', 'pyarrow') if m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def _package_of(path: Path) -> str:
    """The dotted package a source file belongs to (platform scripts: 'platform')."""
    return ".".join(path.relative_to(REPO).parent.parts)


def _owner(dotted: str) -> str | None:
    """The package whose private part `dotted` names (None: nothing private, or not this project's code)."""
    parts = dotted.split(".")
    private = [i for i, part in enumerate(parts) if part.startswith("_") and not part.startswith("__")]
    if not private or parts[0] not in SOURCE_DIRS:
        return None
    owner = parts[:private[0]]
    return ".".join(owner if (REPO.joinpath(*owner)).is_dir() else owner[:-1])


def test_no_private_helper_is_imported_across_packages():
    """A leading underscore means: used inside its own package only (`balenas.commands._run` by the commands)."""
    crossings = []
    for folder in SOURCE_DIRS:
        for path in sorted((REPO / folder).rglob("*.py")):
            package = _package_of(path)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    targets = [f"{node.module}.{alias.name}" for alias in node.names]
                elif isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                else:
                    continue
                crossings += [f"{path.relative_to(REPO)}:{node.lineno} imports {dotted}" for dotted in targets
                              if _owner(dotted) not in (None, package)]
    assert not crossings, "\n".join(crossings)
