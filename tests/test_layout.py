"""The layout's promises (docs/design.md section 2): one folder per stage, imports running one way.

Counted by benchmarks/layout.py, the script that measured the move; these tests keep the figures where the move
left them. A failure names the offending import.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def layout():
    spec = importlib.util.spec_from_file_location("layout_under_test", ROOT / "benchmarks" / "layout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: trainables' stages, bottom to top; a stage imports only stages on an earlier line (or its own)
TRAINABLES_ORDER = [{"runs"}, {"methods", "proxies"}, {"search"}, {"proxy_stage"}, {"sweep", "train"}]


def test_trainables_has_at_most_six_top_level_modules(layout):
    assert len(layout.top_level_modules(ROOT)) <= 6, layout.top_level_modules(ROOT)


def test_no_import_runs_back_up(layout):
    assert layout.upward_imports(ROOT) == []


def test_trainables_stages_import_only_downward(layout):
    rank = {name: i for i, names in enumerate(TRAINABLES_ORDER) for name in names}
    files = layout.modules(ROOT)
    bad = []
    for src, path in files.items():
        parts = src.split(".")
        if parts[0] != "trainables" or len(parts) < 2 or parts[1] not in rank:
            continue
        for dst in layout.imports(src, path, set(files)):
            dparts = dst.split(".")
            if dparts[0] == "trainables" and len(dparts) > 1 and dparts[1] in rank \
                    and rank[dparts[1]] > rank[parts[1]]:
                bad.append(f"{src} -> {dst}")
            if dparts[0] in ("analysis", "balenas"):
                bad.append(f"{src} -> {dst}")
    assert bad == []


def test_the_counter_sees_an_upward_import(layout, tmp_path):
    """The check can fail: a generic benchmark module importing a space is reported."""
    for pkg in layout.PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "search_spaces" / "space.py").write_text("from search_spaces.benchmarks import base\n")
    (tmp_path / "search_spaces" / "benchmarks").mkdir()
    (tmp_path / "search_spaces" / "benchmarks" / "__init__.py").write_text("")
    (tmp_path / "search_spaces" / "benchmarks" / "base.py").write_text(
        "def f():\n    from search_spaces.space import x\n")
    (tmp_path / "trainables" / "a.py").write_text("import analysis\n")
    bad = layout.upward_imports(tmp_path)
    assert ("trainables.a", "analysis") in bad
    assert ("search_spaces.benchmarks.base", "search_spaces.space") in bad
    assert layout.top_level_modules(tmp_path) == ["a.py"]
