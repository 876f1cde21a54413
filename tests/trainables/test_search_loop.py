"""The search loop on tiny CIFAR-10 files: every method runs, determinism, bit-exact resume, checkpoints
that load with weights_only, the distribution-only loader, benchmark metrics and config errors."""

from __future__ import annotations

import json
import math
import sys
import types

import pytest
import torch

from trainables.search.loop import SearchRun, load_distribution, run_search

METHODS = ["darts-v1", "darts-v2", "balenas", "balenas-v2"]


@pytest.fixture
def config(tiny_cifar10):
    return dict(data_root=str(tiny_cifar10), C=4, N=1, batch_size=16, epochs=3, steps_per_epoch=2,
                device="cpu", seed=0)


def _without_time(rows):
    return [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in rows]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_searches(config, method):
    run = SearchRun({**config, "method": method, "epochs": 2})
    before = {k: v.clone() for k, v in run.distribution.mode_probabilities().items()}
    rows = [run.run_epoch() for _ in range(2)]
    assert run.done and run.epoch == 2 and [r["epoch"] for r in rows] == [1, 2]
    for r in rows:
        json.dumps(r)  # JSON-able values only
        for key in ("train_loss", "train_acc", "valid_loss", "valid_acc", "entropy", "lr", "epoch_time_s"):
            assert math.isfinite(r[key]), key
        assert 0 <= r["valid_acc"] <= 100 and r["arch_steps"] == r["steps"] == 2
        run.space.canonical(r["genotype"])
        probs = json.loads(r["op_probs"])["edges"]
        assert len(probs) == 6 and all(abs(sum(row) - 1) < 1e-5 for row in probs)
    assert rows[1]["lr"] < rows[0]["lr"]  # cosine schedule
    # the argmax architecture's costs: its derived network at the space's proxy size (NB201's benchmark network,
    # C=16, N=5, whatever the supernet's size), with the packaged NB201 device latencies
    from search_spaces.costs import cost_columns, latency_column
    from search_spaces.nb201 import latency_table

    expected = cost_columns("nb201", rows[-1]["genotype"], None, "cifar10", ["pixel3"])
    assert {k: rows[-1][k] for k in ("cost_params_M", "cost_flops_M")} == {
        k: expected[k] for k in ("cost_params_M", "cost_flops_M")}
    assert rows[-1][latency_column("pixel3")] == latency_table().latency(rows[-1]["genotype"], "pixel3")
    after = run.distribution.mode_probabilities()
    assert not torch.equal(after["edges"], before["edges"])  # the architecture step moved alpha / mu
    if method.startswith("balenas"):
        assert rows[-1]["posterior_precision_mean"] > 1.0
    with pytest.raises(RuntimeError, match="complete"):
        run.run_epoch()


def test_same_seed_same_metrics_and_other_seed_differs(config):
    cfg = {**config, "method": "balenas", "epochs": 2}
    a, b = run_search(cfg), run_search(cfg)
    assert _without_time(a) == _without_time(b)
    c = run_search({**cfg, "seed": 1})
    assert _without_time(c) != _without_time(a)


@pytest.mark.parametrize("method", ["darts-v2", "balenas"])
def test_resume_is_bit_exact(config, tmp_path, method):
    cfg = {**config, "method": method}
    unbroken = SearchRun(cfg)
    full = [unbroken.run_epoch() for _ in range(3)]

    first = SearchRun(cfg)
    head = [first.run_epoch()]
    path = first.save(tmp_path / "ckpt" / "search.pt")
    del first
    torch.manual_seed(1234)  # a resumed process starts with other global RNG state
    resumed = SearchRun.from_checkpoint(path)
    assert resumed.epoch == 1 and not resumed.done
    tail = [resumed.run_epoch() for _ in range(2)]
    assert _without_time(head + tail) == _without_time(full)
    resumed_state, resumed_probs = resumed.model.state_dict(), resumed.distribution.mode_probabilities()
    for k, v in unbroken.model.state_dict().items():
        assert torch.equal(v, resumed_state[k]), k
    for k, v in unbroken.distribution.mode_probabilities().items():
        assert torch.equal(v, resumed_probs[k])
    state = torch.load(path, weights_only=True)  # plain tensors and containers only
    assert state["epoch"] == 1 and state["method"] == method and state["config"]["method"] == method


def test_in_memory_state_is_a_snapshot(config):
    run = SearchRun({**config, "method": "darts-v1"})
    run.run_epoch()
    state = run.state_dict()
    second = run.run_epoch()
    run.load_state_dict(state)
    assert run.epoch == 1
    assert _without_time([run.run_epoch()]) == _without_time([second])


def test_load_distribution_without_supernet(config, tmp_path):
    run = SearchRun({**config, "method": "balenas", "epochs": 1})
    run.run_epoch()
    path = run.save(tmp_path / "s.pt")
    dist, cfg = load_distribution(path)
    assert cfg["method"] == "balenas" and cfg["C"] == 4
    assert dist.most_likely() == run.distribution.most_likely()
    torch.testing.assert_close(dist.posterior_precision()["edges"], run.distribution.posterior_precision()["edges"])
    assert dist.sample(4, seed=0) == run.distribution.sample(4, seed=0)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_distribution(tmp_path / "missing.pt")


def test_benchmark_record_of_the_genotype(config, monkeypatch):
    seen = []

    class FakeBench:
        def __contains__(self, arch):  # a full table: every architecture has a row
            return True

        def record(self, arch):
            seen.append(arch)
            return {"bench_cifar10_test": 93.5, "cifar100_test": 70.0}

    fake = types.ModuleType("search_spaces.benchmarks")
    fake.open_benchmark = lambda name, path: FakeBench() if name == "nb201" and path == "/x.csv" else None
    monkeypatch.setitem(sys.modules, "search_spaces.benchmarks", fake)
    run = SearchRun({**config, "method": "darts-v1", "benchmark": "/x.csv", "epochs": 1})
    row = run.run_epoch()
    assert seen == [row["genotype"]]
    assert row["bench_cifar10_test"] == 93.5 and row["bench_cifar100_test"] == 70.0


def test_channels_last_and_bf16_autocast_run(config):
    rows = run_search({**config, "method": "balenas", "epochs": 1, "steps_per_epoch": 1, "amp": True,
                       "channels_last": True})
    assert math.isfinite(rows[0]["train_loss"]) and math.isfinite(rows[0]["valid_loss"])


@pytest.mark.parametrize("change, needle", [
    ({"epocs": 3}, "epocs"),
    ({"epochs": 0}, "epochs=0"),
    ({"method": "nope"}, "method='nope'"),
    ({"method_params": {"bogus": 1}}, "bogus"),
    ({"device": "tpu"}, "device='tpu'"),
    ({"dataset": "mnist"}, "dataset='mnist'"),
    ({"w_lr": 0.001, "w_lr_min": 0.01}, "w_lr_min"),
    ({"batch_size": "many"}, "batch_size='many'"),
])
def test_bad_config_names_key_and_value(config, change, needle):
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        SearchRun({**config, **change})


def test_bad_method_parameter_value_and_missing_data(config, tmp_path):
    with pytest.raises(ValueError, match="mc_samples"):
        SearchRun({**config, "method": "balenas", "method_params": {"mc_samples": 0}})
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py.*download: false"):
        SearchRun({**config, "data_root": str(tmp_path / "nothing"), "download": False})


def test_architecture_step_follows_the_weight_step_every_interval(config, monkeypatch):
    from trainables.methods.darts import DartsV1

    monkeypatch.setattr(DartsV1, "update_interval", property(lambda self: 2))
    run = SearchRun({**config, "method": "darts-v1", "steps_per_epoch": 4, "epochs": 1})
    calls = []
    original = run.distribution.update

    def spy(ctx):
        # the weight step of this iteration has already run (SGD momentum buffers exist) and ctx says so
        calls.append((ctx.step, len(run.optimizer.state) > 0, ctx.valid_batch[0].shape, ctx.weight_lr))
        return original(ctx)

    monkeypatch.setattr(run.distribution, "update", spy)
    row = run.run_epoch()
    assert [c[0] for c in calls] == [2, 4] and all(c[1] for c in calls)
    assert all(c[2] == (16, 3, 32, 32) for c in calls) and calls[0][3] == pytest.approx(0.025)
    assert row["arch_steps"] == 2 and row["steps"] == 4


def test_device_that_is_not_there(config):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="device='cuda:0'"):
        SearchRun({**config, "device": "cuda:0"})


@pytest.mark.shared_data
def test_real_cifar10_with_nb201_ground_truth(shared_data):
    """Real CIFAR-10 images, and the argmax genotype's bench_* values equal the NB201 table's own row."""
    import pandas as pd

    table = shared_data / "nb201" / "nb201_merged.csv"
    run = SearchRun(dict(data_root=str(shared_data / "cifar10"), benchmark=str(table), method="balenas",
                         C=4, N=1, batch_size=16, epochs=1, steps_per_epoch=2, train_size=64, device="cpu"))
    assert len(run.train) == len(run.valid) == 64
    row = run.run_epoch()
    df = pd.read_csv(table, usecols=["arch_str", "cifar10_test_acc_200ep", "cifar100_test_acc_200ep"])
    truth = df[df["arch_str"] == row["genotype"]].iloc[0]
    assert row["bench_cifar10_test"] == pytest.approx(truth["cifar10_test_acc_200ep"])
    assert row["bench_cifar100_test"] == pytest.approx(truth["cifar100_test_acc_200ep"])
