"""benchmarks/balenas_tf_study.py: the per-seed selection bookkeeping (rule picks, ties, baselines)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "balenas_tf_study.py"


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("balenas_tf_study_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seed_rows_picks_hits_and_baselines(study):
    scores = pd.DataFrame({"arch": ["a", "b", "c", "d"], "p": [3.0, 1.0, 2.0, None], "q": [1.0, 3.0, 2.0, 4.0]})
    acc = {"a": 90.0, "b": 80.0, "c": 90.0, "d": 70.0, "m": 60.0}
    rows = {r["rule"]: r for r in study.seed_rows(["a", "b", "c", "c", "d"], "m", scores, ["p", "q"], [["p", "q"]],
                                                  acc)}
    assert rows["argmax"] == {"rule": "argmax", "arch": "m", "hit": False}
    assert rows["proxy:p"]["arch"] == "a" and rows["proxy:p"]["hit"]  # ties with c count as the best
    assert rows["proxy:q"]["arch"] == "d" and not rows["proxy:q"]["hit"]
    # ranks among a, b, c (d failed p): p 3,1,2 + q 1,3,2 -> a 4, b 4, c 4: the first in sample order
    assert rows["rank:p+q"]["arch"] == "a"
    assert rows["random sample"]["hit"] == pytest.approx(3 / 5)  # a, c, c of the 5 draws are the best
    assert rows["oracle (best sample)"]["arch"] in {"a", "c"} and rows["oracle (best sample)"]["hit"]


def test_pool_and_rank_groups(study):
    assert study.pool({1: ["x", "y"], 0: ["y", "z"]}, "x") == ["y", "z", "x"]
    assert study.rank_groups(["naswot", "synflow", "meco"], [("naswot", "synflow"), ("meco", "zico")]) == [
        ["naswot", "synflow"], ["naswot", "synflow", "meco"]]
    assert study.rank_groups(["meco", "zico"], [("zico", "meco")]) == [["zico", "meco"]]
