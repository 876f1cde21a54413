"""The proxy stage: selection rules on hand-built frames, spec validation, and a tiny end-to-end run on Ray."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from search_spaces.nb201 import all_architectures, network, to_tuple
from search_spaces.space import get_space
from trainables.methods import make_distribution
from trainables.proxy_stage.config import ProxySettings, ProxyStage
from trainables.proxy_stage.driver import run_proxy_stage
from trainables.proxy_stage.selection import rank_sum, sampling_seed, select

NAN = math.nan


def test_rank_sum_on_a_hand_built_frame():
    frame = pd.DataFrame({"arch": ["a", "b", "c", "d"],
                          "p": [1.0, 3.0, 2.0, 4.0],   # ranks 1 3 2 4
                          "q": [40.0, 10.0, 30.0, NAN]})  # d failed q -> excluded; ranks among a,b,c: 3 1 2
    total = rank_sum(frame, ["p", "q"])
    assert total.tolist()[:3] == [1 + 3, 3 + 1, 2 + 2]
    assert math.isnan(total.iloc[3])


def test_select_rules():
    frame = pd.DataFrame({"arch": ["a", "b", "c", "b", "d"],
                          "p": [1.0, 3.0, 2.0, 3.0, 5.0],
                          "q": [30.0, 10.0, 20.0, 10.0, NAN],
                          "r": [NAN, NAN, NAN, NAN, NAN]})
    rows = select(frame, ["p", "q", "r"], combine=[("p", "q")], argmax="z")
    chosen = {r["rule"]: r["arch"] for r in rows}
    # p: d is best; q: a; r: every value failed; rank p+q over a,b,c (d failed q): a=1+3, b=3+1, c=2+2 -> tie,
    # first in sample order wins
    assert chosen == {"argmax": "z", "proxy:p": "d", "proxy:q": "a", "proxy:r": None, "rank:p+q": "a"}


def test_rank_combination_prefers_the_consistently_good_architecture():
    frame = pd.DataFrame({"arch": list("abcd"), "p": [4.0, 1.0, 3.0, 2.0], "q": [1.0, 4.0, 3.0, 2.0]})
    assert {r["rule"]: r["arch"] for r in select(frame, ["p", "q"], [("p", "q")])}["rank:p+q"] == "c"


@pytest.mark.parametrize("section, message", [
    ({"names": ["naswot", "bogus"]}, "bogus"),
    ({"names": ["naswot", "synflow"], "combine": [["naswot", "snip"]]}, "not scored"),
    ({"resources": {"cpu": 1, "tpu": 1}}, "tpu"),
    ({"samples": 0}, "samples"),
    ({"typo_key": 3}, "typo_key"),
])
def test_bad_proxy_section_names_the_field(section, message):
    with pytest.raises(ValueError, match=message):
        _stage(proxies=section)  # the size keys (typo_key) are checked against the stage's space


def test_config_defaults_and_overrides():
    cfg = ProxySettings.checked({"names": ["naswot", "synflow"], "resources": {"gpu": 0.25}}, samples=7, names=None)
    assert (cfg.samples, cfg.names, cfg.resources.gpu) == (7, ["naswot", "synflow"], 0.25)
    assert cfg.size("nb201") == {"C": 16, "N": 5} and cfg.size("nb1shot1-2") == {"C": 128, "N": 3}
    assert cfg.rank_groups == [["naswot", "synflow"]]
    assert ProxySettings.checked(cfg) is cfg  # a validated section is not validated again
    assert ProxySettings.checked(cfg, samples=3).samples == 3 and cfg.samples == 7
    with pytest.raises(ValueError, match=r"proxies\.samples: .*\(got 0\)"):
        ProxySettings.checked(cfg, samples=0)  # an override is checked


def _stage(space: str = "nb201", proxies=None, **overrides) -> ProxyStage:
    return ProxyStage.build(space=space, dataset="cifar10", data_root=None, download=True, benchmark=None,
                            proxies=proxies, **overrides)


@pytest.mark.parametrize("space, section, message", [
    ("nb201", {"layers": 8}, "proxies.layers: space 'nb201' takes no size key 'layers'"),
    ("nb201", {"C": 0}, "proxies.C: must be an integer >= 1"),
])
def test_proxy_size_keys_belong_to_the_space(space, section, message):
    with pytest.raises(ValueError, match=message):
        _stage(space, section)


def test_the_stage_holds_the_network_size_of_its_space():
    assert _stage("nb201", {"C": 4}).size == {"C": 4, "N": 5}
    assert _stage("nb1shot1-2").size == {"C": 128, "N": 3} and _stage().proxies.names == ["naswot"]


# ----- end to end on a local Ray ------------------------------------------------------------------------------
def _fake_checkpoint(path, seed: int):
    """A checkpoint as trainables.search.loop.SearchRun.save writes it (the fields load_distribution reads)."""
    space = get_space("nb201")
    dist = make_distribution("balenas", space, {}, num_valid=16, seed=seed)
    with torch.no_grad():  # a learned-looking mean: conv3x3 preferred on every edge, not certain
        for mu in dist.mu.values():
            mu.zero_()
            mu[:, 3] = 1.0
    torch.save({"config": {"space": "nb201", "method_params": {}, "seed": seed}, "method": "balenas",
                "num_valid": 16, "distribution": dist.state_dict()}, path)
    return dist


def _fake_benchmark(path):
    """An NB201 table with a known accuracy: 10 x (number of 3x3 convolutions) + (number of 1x1)."""
    archs = all_architectures()
    acc = [10.0 * to_tuple(a).count(3) + to_tuple(a).count(2) for a in archs]
    pd.DataFrame({"arch_str": archs, "cifar10_test_acc_200ep": acc}).to_csv(path, index=False)
    return dict(zip(archs, acc))


@pytest.mark.slow
def test_proxy_stage_end_to_end(local_ray, tmp_path, tiny_cifar10):
    from trainables.runs import store

    dists = {f"t{i}": _fake_checkpoint(tmp_path / f"t{i}.pt", seed=i) for i in range(2)}
    truth = _fake_benchmark(tmp_path / "bench.csv")
    trials = pd.DataFrame({"trial_id": ["t0", "t1", "t2"], "method": ["balenas"] * 3, "seed": [0, 1, 2],
                           "status": ["TERMINATED", "TERMINATED", "ERROR"],
                           "checkpoint_path": [str(tmp_path / "t0.pt"), str(tmp_path / "t1.pt"), None]})
    stage = ProxyStage.build(space="nb201", dataset="cifar10", data_root=str(tiny_cifar10), download=True,
                             benchmark=str(tmp_path / "bench.csv"),
                             proxies={"samples": 6, "names": ["params", "flops", "naswot"], "batch_size": 8,
                                      "seed": 0, "archs_per_task": 4, "C": 4, "N": 1, "resources": {"cpu": 1}})
    run_dir = tmp_path / "run"
    selections = run_proxy_stage(run_dir, stage, trials, progress=False)

    samples = store.read_table(run_dir, "samples")
    assert sorted(store.partitions(run_dir, "samples")) == ["t0", "t1"]  # t2 has no checkpoint
    assert len(samples) == 12 and {"naswot", "naswot_error", "params", "sample", "method"} <= set(samples.columns)
    for tid, dist in dists.items():
        rows = samples[samples.trial_id == tid].sort_values("sample")
        # the trial's own distribution, seeded by proxies.seed and the trial's seed (independent across seeds)
        assert rows.arch.tolist() == dist.sample(6, seed=sampling_seed(0, int(tid[1])))
        arch = rows.arch.iloc[0]  # params column = the real parameter count of the C=4, N=1 network
        assert rows.params.iloc[0] == sum(p.numel() for p in network(arch, 10, C=4, N=1).parameters())

    stored = store.read_table(run_dir, "selections")
    assert len(stored) == len(selections) == 2 * 5
    assert set(selections.rule) == {"argmax", "proxy:params", "proxy:flops", "proxy:naswot",
                                    "rank:params+flops+naswot"}
    for tid, dist in dists.items():
        sel = selections[selections.trial_id == tid].set_index("rule")
        rows = samples[samples.trial_id == tid]
        assert sel.loc["argmax", "arch"] == dist.most_likely()
        assert sel.loc["proxy:params", "arch"] == rows.loc[rows.params.idxmax(), "arch"]
        for rule, arch in sel.arch.items():
            assert sel.loc[rule, "bench_cifar10_test"] == truth[arch]
        assert set(sel.method) == {"balenas"} and sel.seed.iloc[0] == int(tid[1])


@pytest.mark.slow
def test_proxy_stage_command_on_a_run_dir(local_ray, tmp_path, tiny_cifar10, capsys):
    import importlib.util
    from pathlib import Path

    import yaml

    from trainables.runs import store

    repo = Path(__file__).resolve().parents[2]
    spec_mod = importlib.util.spec_from_file_location("proxy_stage_cmd", repo / "platform" / "proxy_stage.py")
    module = importlib.util.module_from_spec(spec_mod)
    spec_mod.loader.exec_module(module)
    run_dir = tmp_path / "run"
    _fake_checkpoint(tmp_path / "t0.pt", seed=3)
    store.write_partition(run_dir, "trials", pd.DataFrame({"method": ["balenas"], "seed": [3], "status": ["TERMINATED"],
                                                           "checkpoint_path": [str(tmp_path / "t0.pt")]}), "t0")
    spec = {"space": "nb201", "dataset": "cifar10", "data_root": str(tiny_cifar10),
            "proxies": {"samples": 4, "names": ["naswot"], "batch_size": 8, "C": 4, "N": 1}}
    (run_dir / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert module.main([str(run_dir), "--samples", "3", "--names", "params", "flops", "--no-progress"]) == 0
    samples = store.read_table(run_dir, "samples")
    assert len(samples) == 3 and {"params", "flops"} <= set(samples.columns) and "naswot" not in samples
    assert set(store.read_table(run_dir, "selections").rule) == {"argmax", "proxy:params", "proxy:flops",
                                                                 "rank:params+flops"}
    assert "rank:params+flops" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        module.main([str(tmp_path / "nowhere")])


def test_sampling_seed_differs_per_trial_seed_and_is_reproducible():
    seeds = {sampling_seed(0, s) for s in range(50)} | {sampling_seed(1, s) for s in range(50)}
    assert len(seeds) == 100 and sampling_seed(3, 7) == sampling_seed(3, 7)


def test_channels_last_scoring_matches_nchw():
    from trainables.proxy_stage.selection import score_architectures

    torch.manual_seed(0)
    inputs, targets = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    archs = all_architectures()[1000:1006]
    size = {"C": 4, "N": 1}
    plain = score_architectures(archs, inputs, targets, ["naswot", "params"], space="nb201", size=size)
    nhwc = score_architectures(archs, inputs, targets, ["naswot", "params"], space="nb201", size=size,
                               channels_last=True)
    assert sum(row["naswot"] is not None for row in plain) >= 3
    for a, b in zip(plain, nhwc):
        assert a["arch"] == b["arch"] and a["params"] == b["params"]
        assert a["naswot_error"] == b["naswot_error"]  # the same failures (e.g. no path to the output)
        if a["naswot"] is not None:
            assert b["naswot"] == pytest.approx(a["naswot"], rel=1e-4)


def test_channels_last_is_a_proxy_stage_setting():
    assert ProxySettings.checked({"names": ["naswot"], "channels_last": True}).channels_last is True
    assert ProxySettings.checked({"names": ["naswot"]}).channels_last is False


# ----- selection under a cost budget (issue 23) ---------------------------------------------------------------
def _budget_frame():
    return pd.DataFrame({"arch": ["a", "b", "c", "d", "e"],
                         "p": [5.0, 4.0, 3.0, 2.0, NAN],
                         "q": [1.0, 2.0, 5.0, 4.0, 3.0]})


COSTS = {"a": 9.0, "b": 6.0, "c": 4.0, "d": 1.0, "e": 2.0, "z": 7.0, "y": 3.0}


def test_every_rule_chooses_within_the_budget_and_pareto_lists_the_trade_off():
    from trainables.proxy_stage.selection import BudgetView

    view = BudgetView(5.0, COSTS, likelihood={"a": -1.0, "b": -2.0, "c": -4.0, "d": -3.0, "e": -9.0})
    rows = select(_budget_frame(), ["p", "q"], combine=[("p", "q")], argmax="z", budget=view)
    single = {r["rule"]: r for r in rows if not r["rule"].startswith("pareto:")}
    # within the budget (cost <= 5): c, d, e. p: c (3 > 2; e failed); q: c (5); rank p+q over c, d (e failed p):
    # c = 2 + 2, d = 1 + 1; argmax z costs 7: the within-budget sample most likely under the mode is d (-3 > -4)
    assert {k: r["arch"] for k, r in single.items()} == {"argmax": "d", "proxy:p": "c", "proxy:q": "c",
                                                         "rank:p+q": "c"}
    assert "7 > 5" in single["argmax"]["note"] and "note" not in single["proxy:p"]
    # pareto over all samples, score up and cost down (brute force below)
    frame = _budget_frame()
    for name in ("p", "q"):
        got = sorted(r["arch"] for r in rows if r["rule"] == f"pareto:{name}")
        expect = sorted(a for a, s in zip(frame.arch, frame[name]) if not math.isnan(s) and not any(
            (s2 >= s and COSTS[a2] <= COSTS[a]) and (s2 > s or COSTS[a2] < COSTS[a])
            for a2, s2 in zip(frame.arch, frame[name]) if not math.isnan(s2)))
        assert got == expect, name
    assert sorted(r["arch"] for r in rows if r["rule"] == "pareto:q") == ["c", "d"]


def test_an_argmax_within_the_budget_is_kept_and_no_candidate_within_is_said():
    from trainables.proxy_stage.selection import BudgetView

    rows = select(_budget_frame(), ["p"], argmax="y", budget=BudgetView(5.0, COSTS))
    assert {r["rule"]: r["arch"] for r in rows if r["rule"] in ("argmax", "proxy:p")} == {"argmax": "y",
                                                                                          "proxy:p": "c"}
    rows = select(_budget_frame(), ["p"], [], argmax="z", budget=BudgetView(0.5, COSTS))
    single = [r for r in rows if not r["rule"].startswith("pareto:")]
    assert [r["arch"] for r in single] == [None, None]
    assert all("no sampled architecture within the budget 0.5" in r["note"] for r in single)


@pytest.mark.slow
def test_the_proxy_stage_selects_within_the_trial_budget(local_ray, tmp_path, tiny_cifar10):
    """A trial whose stored config carries a params budget: its rows carry the true cost of every architecture
    from the budget's source, every rule's choice is within the budget, and the pareto rule is written."""
    import json

    from trainables.runs import store
    from trainables.search.budget import CostConstraint

    dist = _fake_checkpoint(tmp_path / "t0.pt", seed=0)
    samples = dist.sample(8, seed=sampling_seed(0, 0))
    true_cost, source = CostConstraint(metric="params", budget=1.0).true_cost("nb201", "cifar10")
    costs = sorted(true_cost(a) for a in set(samples))
    budget = costs[len(costs) // 2]  # about half the samples within
    cost = {"metric": "params", "budget": budget}
    trials = pd.DataFrame({"trial_id": ["t0"], "method": ["balenas"], "seed": [0], "status": ["TERMINATED"],
                           "checkpoint_path": [str(tmp_path / "t0.pt")],
                           "config_json": [json.dumps({"space": "nb201", "cost": cost})]})
    stage = ProxyStage.build(space="nb201", dataset="cifar10", data_root=str(tiny_cifar10), download=True,
                             benchmark=None, proxies={"samples": 8, "names": ["params", "naswot"], "batch_size": 8,
                                                      "C": 4, "N": 1})
    selections = run_proxy_stage(tmp_path / "run", stage, trials, progress=False)
    rows = store.read_table(tmp_path / "run", "samples")
    assert source == "parts:params" and set(rows.budget_source) == {source}
    for arch, got in zip(rows.arch, rows.budget_cost):
        assert got == pytest.approx(true_cost(arch))
    assert rows.within_budget.tolist() == [c <= budget for c in rows.budget_cost]
    chosen = selections[~selections.rule.str.startswith("pareto:")]
    assert set(chosen.rule) == {"argmax", "proxy:params", "proxy:naswot", "rank:params+naswot"}
    assert chosen.within_budget.all() and (chosen.budget_cost <= budget).all()
    assert (selections.rule == "pareto:naswot").sum() >= 1
    # the scored params of the C=4 network rank like the true cost at the proxy size: the proxy:params choice is
    # the most expensive sample within the budget
    assert chosen.set_index("rule").loc["proxy:params", "budget_cost"] == pytest.approx(max(c for c in costs
                                                                                            if c <= budget))
