"""DARTS-PRIME: the proximity regulariser (its exact gradient, and that it drives the probabilities to one-hot where
plain DARTS does not), the projection (the space's discretisation), the Fisher-information schedule against a
replica of the authors' training loop and its closed form, the real loop's architecture-step count, resume,
sampling, parameter errors and host synchronisations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from more_methods_kit import (
    assert_distribution_summaries,
    assert_resume_equal,
    assert_run_search,
    forward_fn,
    roundtrip,
    run_steps,
    tiny_setup,
)
from torch import nn

from search_spaces.space import get_space
from trainables.methods import ArchStepContext, make_distribution
from trainables.methods.darts_prime import DartsPrime


# ----- a toy "supernet" whose validation loss does not depend on the architecture ---------------------------
class FlatNet(nn.Module):
    """Logits b (the same for every input): the architecture enters with weight 0, so L_val is flat in alpha
    and only the regulariser (and Adam's weight decay) moves it. Its gradient on `b` is what the test sets."""

    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.zeros(3))

    def forward(self, x, weights, active=None):
        flat = sum((0.0 * w).sum() for w in weights.values())
        return self.b.expand(x.shape[0], -1) + flat


def flat_ctx(model, epoch=0, total_epochs=1):
    g = torch.Generator().manual_seed(0)
    batch = (torch.randn(4, 2, generator=g), torch.randint(0, 3, (4,), generator=g))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    return ArchStepContext(model, lambda x, ew: model(x, ew.weights, ew.active), F.cross_entropy, batch, batch,
                           opt, 0.1, 1, epoch, total_epochs)


def one_hot_gap(dist) -> float:
    """Mean over rows of 1 - max p: the distance of each row to its nearest one-hot, in probability mass."""
    return float(torch.cat([1 - p.max(-1).values for p in dist.op_probabilities().values()]).mean())


# ----- the regulariser ----------------------------------------------------------------------------------
def test_update_is_adam_on_the_validation_gradient_plus_the_proximity_gradient(float64):
    dist = make_distribution("darts-prime", get_space("nb201"), {"dynamic_schedule": False, "init_scale": 0.5},
                             num_valid=4, seed=1)
    model = FlatNet()
    ctx = flat_ctx(model, epoch=3, total_epochs=10)
    alpha0 = dist.alpha["edges"].detach().clone()
    z = torch.nn.functional.one_hot(alpha0.argmax(-1), 5).double()
    assert torch.equal(dist.target["edges"], z)  # NB201's projection: the per-row argmax, one-hot
    a = alpha0.clone().requires_grad_(True)
    weight = 0.1 / 2 * (3 + 0.5) / 10  # rho / 2 * t / T, t = the epoch's middle
    (grad,) = torch.autograd.grad(weight * torch.linalg.vector_norm(torch.softmax(a, -1) - z), a)
    # in closed form: weight * J_softmax^T (p - z) / ||p - z||
    p = torch.softmax(alpha0, -1)
    v = (p - z) / torch.linalg.vector_norm(p - z)
    torch.testing.assert_close(grad, weight * p * (v - (p * v).sum(-1, keepdim=True)), rtol=1e-12, atol=1e-15)
    out = dist.update(ctx)
    ref = alpha0.clone().requires_grad_(True)
    adam = torch.optim.Adam([ref], lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    ref.grad = grad  # the validation loss is flat: its gradient is 0
    adam.step()
    torch.testing.assert_close(dist.alpha["edges"].detach(), ref.detach(), rtol=1e-10, atol=1e-14)
    assert set(out) == {"arch_loss", "arch_acc"} and all(t.dim() == 0 for t in out.values())
    assert float(out["arch_loss"]) == pytest.approx(math.log(3))  # the plain validation loss, no term added


def test_weight_grows_linearly_over_the_search():
    dist = make_distribution("darts-prime", get_space("nb201"), {"rho": 0.4}, num_valid=4)
    assert [dist.proximity_weight(e, 4) for e in range(4)] == pytest.approx([0.025, 0.075, 0.125, 0.175])
    off = make_distribution("darts-prime", get_space("nb201"), {"rho": 0.0}, num_valid=4)
    assert off.proximity_weight(3, 4) == 0.0


def test_regulariser_drives_probabilities_to_one_hot_on_a_flat_loss():
    """Same seed, same steps: with rho the rows go to their one-hot target; without it nothing pulls them (Adam's
    weight decay only shrinks alpha towards uniform)."""
    gaps, start = {}, None
    for rho in (0.0, 1.0):
        dist = make_distribution("darts-prime", get_space("nb201"),
                                 {"rho": rho, "dynamic_schedule": False, "steps_per_arch_step": 1,
                                  "arch_lr": 0.05, "init_scale": 0.1}, num_valid=4, seed=0)
        start, initial = (one_hot_gap(dist), dist.entropy()), dist.most_likely()
        model = FlatNet()
        for epoch in range(4):
            dist.on_epoch_start(epoch, 4)
            for _ in range(10):
                dist.update(flat_ctx(model, epoch, 4))
        gaps[rho] = one_hot_gap(dist), dist.entropy()
    print(start, gaps)
    assert start[0] > 0.7 and gaps[0.0][0] > 0.7  # no pull without the regulariser: still near uniform
    assert gaps[1.0][0] < 0.3 and gaps[1.0][1] < 0.5 * start[1]  # most of the mass on the target op
    assert dist.most_likely() == initial  # ... the op that was the argmax: the projection's


def test_regulariser_sharpens_the_search_on_the_nb201_supernet():
    """The real validation loss too: after the same steps from the same seed, the regularised search is closer
    to one-hot and has lower entropy."""
    result = {}
    for rho in (0.0, 2.0):
        dist, model, opt, batches = tiny_setup(
            "darts-prime", {"rho": rho, "dynamic_schedule": False, "steps_per_arch_step": 1, "arch_lr": 0.03})
        for step in range(16):
            (x, y), (xv, yv) = batches[step]
            ew = dist.weights_for_weight_step()
            loss = F.cross_entropy(model(x, ew.weights, ew.active), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            dist.update(ArchStepContext(model, forward_fn(model), F.cross_entropy, (x, y), (xv, yv), opt, 0.05,
                                        step + 1, 9, 10))
        result[rho] = one_hot_gap(dist), dist.entropy()
    print(result)
    assert result[2.0][0] < result[0.0][0] - 0.05 and result[2.0][1] < result[0.0][1] - 0.05


def test_projection_is_the_space_discretisation_refreshed_each_epoch():
    space = get_space("darts")
    dist = make_distribution("darts-prime", space, {"init_scale": 1.0}, num_valid=4, seed=2)
    expected = space.one_hot(space.discretize(dist.op_probabilities()))
    for g in ("normal", "reduce"):
        assert torch.equal(dist.target[g], expected[g])
        # DARTS keeps 2 inputs per node: 8 of the 14 edges are one-hot rows, the other 6 zero rows
        assert int((dist.target[g].sum(-1) == 1).sum()) == 8 and int((dist.target[g].sum(-1) == 0).sum()) == 6
    before = {g: t.clone() for g, t in dist.target.items()}
    with torch.no_grad():
        for a in dist.alpha.values():
            a.neg_()  # a new argmax everywhere
    assert all(torch.equal(dist.target[g], before[g]) for g in before)  # z is fixed within an epoch ...
    dist.on_epoch_start(1, 5)
    new = space.one_hot(space.discretize(dist.op_probabilities()))
    assert all(torch.equal(dist.target[g], new[g]) for g in new) and not torch.equal(new["normal"],
                                                                                      before["normal"])  # ... then
    # follows alpha


# ----- the schedule -------------------------------------------------------------------------------------
def authors_schedule(traces, init=1.0, gamma=1.05, f=10, ewma=0.2) -> list[int]:
    """A replica of the authors' loop (train_scheduled_hard_statebn.py `train`, model `track_FI`): per iteration,
    decide on the EWMA of the Fisher traces so far (architecture step when 0 < EWMA < threshold, then threshold
    *= gamma^-f; else threshold *= gamma), then take the weight step whose trace is traces[it]. Returns the
    iterations with an architecture step; iteration t comes right after weight step t."""
    threshold, avg, steps = init, -1.0, []
    for it in range(len(traces) + 1):
        if 0.0 < avg < threshold:
            steps.append(it)
            threshold *= math.exp(-math.log(gamma) * f)
        else:
            threshold *= gamma
        if it < len(traces):
            avg = traces[it] if avg == -1 else ewma * traces[it] + (1 - ewma) * avg
    return steps


def drive(dist, roots) -> list[int]:
    """Call `update` after each "weight step" whose gradient is (root, 0) (Fisher trace root^2, exact in float32
    for these dyadic roots); returns the 1-based steps at which an architecture step was taken."""
    model = FlatNet()
    ctx = flat_ctx(model)
    taken = []
    for t, r in enumerate(roots, start=1):
        model.b.grad = torch.tensor([r, 0.0, 0.0])
        if dist.update(ctx) is not None:
            taken.append(t)
    return taken


def test_schedule_matches_the_authors_loop_on_changing_fisher_information():
    # falling gradients (weights settling), a jump (e.g. after the architecture changed), falling again
    roots = [4 - t / 16 for t in range(48)] + [6.0] * 10 + [2 - t / 32 for t in range(50)]
    for params in ({}, {"steps_per_arch_step": 3, "fisher_ewma": 1.0}, {"init_threshold": 30.0}):
        dist = make_distribution("darts-prime", get_space("nb201"), params, num_valid=4)
        p = dist.params
        expected = [it for it in authors_schedule([r * r for r in roots], p.init_threshold,
                                                  p.threshold_multiplier, p.steps_per_arch_step, p.fisher_ewma)
                    if it >= 1]
        assert drive(dist, roots) == expected, params
        assert len(expected) >= 4


@pytest.mark.parametrize("f, root", [(10, 2.0), (4, 1.5), (10, 0.5), (1, 3.0), (3, 0.25)])
def test_steady_fisher_gives_one_architecture_step_every_f_plus_one_weight_steps(f, root):
    """Closed form for a constant trace c, with L = log_gamma(c / init_threshold): after N weight steps the number
    of architecture steps is min(N, max(0, ceil((N - L) / (f + 1)))). Above the initial threshold (L > 0) none
    until the threshold, raised by gamma per step, first exceeds c; below it (L < 0) a burst of steps, each dividing
    it by gamma^f, until it falls under c; from then on f skips and one step, the threshold back at its value."""
    n, c = 150, root * root
    L = math.log(c) / math.log(1.05)
    dist = make_distribution("darts-prime", get_space("nb201"), {"steps_per_arch_step": f}, num_valid=4)
    taken = drive(dist, [root] * n)
    counts = [sum(t <= N for t in taken) for N in range(1, n + 1)]
    assert counts == [min(N, max(0, math.ceil((N - L) / (f + 1)))) for N in range(1, n + 1)]
    tail = taken[-4:]
    assert [b - a for a, b in zip(tail, tail[1:])] == [f + 1] * 3  # steady: one step per f + 1 weight steps


def test_fixed_schedule_is_one_architecture_step_every_f_weight_steps():
    dist = make_distribution("darts-prime", get_space("nb201"), {"dynamic_schedule": False,
                                                                 "steps_per_arch_step": 3}, num_valid=4)
    assert dist.update_interval == 3  # the loop calls update every 3rd step; every call steps
    assert dist.update(flat_ctx(FlatNet())) is not None


def test_defaults_are_the_authors_darts_prime_command():
    dist = make_distribution("darts-prime", get_space("nb201"), {}, num_valid=4)
    assert isinstance(dist, DartsPrime)
    p = dist.params
    assert (p.rho, p.steps_per_arch_step, p.dynamic_schedule, p.fisher_ewma, p.init_threshold,
            p.threshold_multiplier) == (0.1, 10, True, 0.2, 1.0, 1.05)
    assert (p.arch_lr, p.betas, p.arch_weight_decay, p.init_scale) == (3e-4, (0.5, 0.999), 1e-3, 1e-3)
    assert dist.update_interval == 1 and DartsPrime.host_syncs_per_step == 1
    assert dist.threshold == pytest.approx(1.05) and dist.fisher == -1.0


def tiny_splits(n: int = 32, classes: int = 4) -> dict:
    from search_spaces.data.device import DeviceDataset

    g = torch.Generator().manual_seed(0)
    return {name: DeviceDataset(torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8),
                                torch.randint(0, classes, (n,), generator=g), (0.5,) * 3, (0.25,) * 3, classes, name)
            for name in ("search-train", "search-valid")}


def tiny_run(params: dict, epochs: int = 3, steps: int = 8):
    from trainables.search.loop import SearchRun

    return SearchRun({"space": "nb201", "method": "darts-prime", "method_params": params, "epochs": epochs,
                      "batch_size": 4, "steps_per_epoch": steps, "C": 2, "N": 1, "device": "cpu", "seed": 0,
                      "augment": False, "channels_last": False}, splits=tiny_splits())


def test_real_loop_counts_the_scheduled_architecture_steps():
    """Through `SearchRun`: the loop calls `update` after every weight step and counts only the steps taken; which
    ones are taken is the authors' rule on the Fisher traces of the run's own weight steps."""
    run = tiny_run({"init_threshold": 20.0, "steps_per_arch_step": 2})
    dist = run.distribution
    traces, taken, original = [], [], dist.update

    def recording_update(ctx):
        grads = [w.grad for w in ctx.model.parameters() if w.grad is not None]
        traces.append(float(torch.nn.utils.get_total_norm(grads).square()))
        out = original(ctx)
        taken.append(out is not None)
        return out

    dist.update = recording_update
    rows = [run.run_epoch() for _ in range(3)]
    assert len(traces) == 24  # every weight step
    expected = authors_schedule(traces, 20.0, 1.05, 2, 0.2)
    assert [t for t, took in enumerate(taken, start=1) if took] == [it for it in expected if it >= 1]
    assert [r["arch_steps"] for r in rows] == [sum(taken[8 * e:8 * e + 8]) for e in range(3)]
    assert 0 < sum(taken) < 24
    for r in rows:  # validation metrics only from the steps taken; the schedule's state per epoch
        assert (r["arch_steps"] == 0) == math.isnan(r["valid_loss"])
        assert {"proximity_distance", "fisher_ewma", "schedule_threshold"} <= set(r)


def test_fixed_schedule_through_the_loop_and_no_host_sync():
    from trainables.runs.host_sync import count_host_syncs

    run = tiny_run({"dynamic_schedule": False, "steps_per_arch_step": 2}, epochs=2, steps=6)
    assert [run.run_epoch()["arch_steps"] for _ in range(2)] == [3, 3]
    index = torch.arange(4)
    with count_host_syncs() as calls:
        outs = [run.step(index, index, 0.025, 2)[3] for _ in range(4)]
    assert sum(out is not None for out in outs) == 2 and sum(calls.values()) == 0, calls
    dynamic = tiny_run({"init_threshold": 1e3})  # steps at once: a step with an architecture update, too
    dynamic.step(index, index, 0.025, 1)
    with count_host_syncs() as calls:
        outs = [dynamic.step(index, index, 0.025, 1)[3] for _ in range(3)]
    assert any(out is not None for out in outs) and sum(calls.values()) == 3, calls  # the one float per step


# ----- resume, sampling, parameters ---------------------------------------------------------------------
def run_prime(dist, model, opt, batches, start, steps, epoch):
    """The loop's order by hand (more_methods_kit.run_steps) after the epoch hook; the non-None outputs."""
    dist.on_epoch_start(epoch, 2)
    return run_steps(dist, model, opt, batches, start, steps, epoch)


def test_resume_is_exact_with_the_dynamic_schedule():
    params = {"init_threshold": 100.0}  # a burst of steps, then skips and steps
    dist, model, opt, batches = tiny_setup("darts-prime", params)
    run_prime(dist, model, opt, batches, 0, 5, epoch=0)
    saved = [roundtrip(model.state_dict()), roundtrip(opt.state_dict()), roundtrip(dist.state_dict())]
    assert isinstance(saved[2]["schedule"]["threshold"], float) and saved[2]["schedule"]["fisher"] > 0
    outs_a = run_prime(dist, model, opt, batches, 5, 8, epoch=1)
    assert any(o is None for o in outs_a) and any(o is not None for o in outs_a)  # steps and skips both resumed
    dist2, model2, opt2, _ = tiny_setup("darts-prime", params, seed=99)
    model2.load_state_dict(saved[0])
    opt2.load_state_dict(saved[1])
    dist2.load_state_dict(saved[2])
    outs_b = run_prime(dist2, model2, opt2, batches, 5, 8, epoch=1)
    assert (dist2.threshold, dist2.fisher) == (dist.threshold, dist.fisher)
    assert all(torch.equal(dist.alpha[g], dist2.alpha[g]) and torch.equal(dist.target[g], dist2.target[g])
               for g in dist.alpha)
    assert [o is None for o in outs_a] == [o is None for o in outs_b]
    for oa, ob in zip(outs_a, outs_b):
        assert oa is None or all(torch.equal(oa[k], ob[k]) for k in oa)
    assert dist.sample(5, seed=3) == dist2.sample(5, seed=3)


def test_resume_is_exact_with_the_fixed_schedule():
    assert_resume_equal("darts-prime", {"dynamic_schedule": False, "steps_per_arch_step": 2, "rho": 1.0})


def test_summaries_and_samples():
    dist, *_ = tiny_setup("darts-prime", {"init_scale": 1.0})
    assert_distribution_summaries(dist)
    space = get_space("darts")
    darts = make_distribution("darts-prime", space, {"init_scale": 1.0}, num_valid=4, seed=1)
    archs = darts.sample(5, seed=2)
    assert len(archs) == 5 and all(space.canonical(a) == a for a in archs) and archs == darts.sample(5, seed=2)


@pytest.mark.parametrize("params, match", [({"rho": -0.1}, "rho"),
                                           ({"steps_per_arch_step": 0}, "steps_per_arch_step"),
                                           ({"steps_per_arch_step": 2.5}, "steps_per_arch_step"),
                                           ({"dynamic_schedule": "yes"}, "dynamic_schedule"),
                                           ({"fisher_ewma": 0.0}, "fisher_ewma"),
                                           ({"fisher_ewma": 1.5}, "fisher_ewma"),
                                           ({"init_threshold": 0.0}, "init_threshold"),
                                           ({"threshold_multiplier": 1.0}, "threshold_multiplier"),
                                           ({"threshold_multiplier": True}, "threshold_multiplier"),
                                           ({"schedfreq": 10}, "unknown hyper-parameter")])
def test_bad_params_name_the_field(params, match):
    with pytest.raises(ValueError, match=match):
        make_distribution("darts-prime", get_space("nb201"), params, num_valid=4)


def test_through_run_search_and_checkpoint_resume(tiny_cifar10, tmp_path):
    metrics = assert_run_search("darts-prime", tiny_cifar10, tmp_path, {"init_threshold": 1e3})
    assert sum(m["arch_steps"] for m in metrics) > 0


def test_budget_term_reaches_alpha_through_the_architecture_step():
    """The loop's cost term (added by ctx.loss_fn to the validation loss of the weights ctx.forward used) moves
    alpha: the conformance budget setting, with an architecture step after every weight step (the paper's schedule
    takes none in these 18 weight steps: its warm-up), ends under the budget."""
    from search_spaces.cost_model import cost_model
    from search_spaces.latency_lut import random_architectures
    from trainables.search.loop import SearchRun

    space = get_space("nb201")
    model = cost_model("nb201", "params")
    uniform = float(model.expected({g: torch.full(s, 1.0 / s[1]) for g, s in space.arch_shapes.items()}))
    budget = 0.5 * (uniform + min(model.of(a) for a in random_architectures(space, 50, seed=0)))
    cfg = {"space": "nb201", "method": "darts-prime", "epochs": 6, "batch_size": 4, "steps_per_epoch": 3, "C": 2,
           "N": 1, "device": "cpu", "seed": 0, "augment": False, "channels_last": False,
           "method_params": {"arch_lr": 0.2, "dynamic_schedule": False, "steps_per_arch_step": 1},
           "cost": {"metric": "params", "budget": budget, "weight": 50.0}}
    run = SearchRun(cfg, splits=tiny_splits(16))
    rows = [run.run_epoch() for _ in range(6)]
    assert uniform > budget > rows[-1]["cost_expected"], [r["cost_expected"] for r in rows]
    assert all(r["arch_steps"] == 3 for r in rows)
