"""UNAS: the score-function (REINFORCE) estimators against exact gradients on a tiny enumerable space (the categorical
score with and without a baseline, the score of the perturbed vector for order-dependent rules), REBAR's conditional
twin and unbiasedness, the architecture step against an independent computation, the budget through the real loop
(expected cost down, one host copy per step, bit-exact resume with the baselines), schedules, parameters,
sampling and the loop without a budget."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from more_methods_kit import (
    assert_distribution_summaries,
    assert_resume_equal,
    assert_run_search,
    make_ctx,
    run_steps,
    tiny_setup,
)

from search_spaces.data.device import DeviceDataset
from search_spaces.space import get_space
from trainables.methods import make_distribution, unas
from trainables.methods.gumbel import gumbel_noise
from trainables.methods.unas import (
    conditional_perturbed,
    cosine_lr,
    gumbel_score_gradient,
    log_prob,
    one_hot_argmax,
    rebar_weights,
    reinforce_gradient,
)
from trainables.runs.host_sync import count_host_syncs
from trainables.search.loop import SearchRun

ROWS, OPTIONS = 2, 3
N_DRAWS = 20_000
#: |Monte-Carlo mean - exact| must stay under this many standard errors in every entry (18 entries: a false
#: alarm has probability ~1e-4 per test, and the draws are seeded anyway)
SIGMAS = 4.5


def _unas(params=None, space="nb201", seed=0):
    return make_distribution("unas", get_space(space), params or {}, num_valid=10, seed=seed)


def _logits() -> torch.Tensor:
    return torch.tensor([[0.8, -0.4, 0.1], [-1.0, 0.5, 0.3]], dtype=torch.float64)


def _table() -> torch.Tensor:
    """f of the 9 architectures (row 0's option, row 1's option): arbitrary and not additive over the rows."""
    return torch.tensor([[3.0, -1.0, 0.5], [2.0, 4.0, -2.5], [0.0, 1.5, 6.0]], dtype=torch.float64)


def _draws(logits: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """n Gumbel-perturbed draws log p + g, [n, rows, options]."""
    g = torch.Generator().manual_seed(seed)
    stacked = torch.log_softmax(logits, -1).expand(n, *logits.shape)
    return stacked + gumbel_noise(stacked, g)


def _assert_within_standard_errors(per_draw: torch.Tensor, estimate: torch.Tensor, exact: torch.Tensor) -> None:
    """`estimate` (the estimator's mean over the draws) equals the mean of the per-draw values, and lies within
    SIGMAS standard errors of `exact` entry by entry."""
    torch.testing.assert_close(estimate, per_draw.mean(0), rtol=1e-7, atol=1e-7)
    se = per_draw.std(0) / math.sqrt(per_draw.shape[0])
    assert ((estimate - exact).abs() <= SIGMAS * se + 1e-9).all(), ((estimate - exact) / se)


def _exact_categorical_gradient(logits: torch.Tensor, f) -> torch.Tensor:
    """d/dlogits sum_z p(z) f(z) over all 3 x 3 architectures, by autograd over the enumeration."""
    a = logits.clone().requires_grad_(True)
    p = torch.softmax(a, -1)
    total = sum(p[0, i] * p[1, j] * f(i, j) for i, j in itertools.product(range(OPTIONS), repeat=2))
    (grad,) = torch.autograd.grad(total, a)
    return grad


# ----- the categorical score (REINFORCE) -----------------------------------------------------------------
def _categorical_per_draw(logits, hard, values, baseline):
    return (values - baseline)[:, None, None] * (hard - torch.softmax(logits, -1))


def test_reinforce_gradient_matches_the_exact_gradient_of_a_non_additive_function():
    logits, table = _logits(), _table()
    hard = one_hot_argmax(_draws(logits, N_DRAWS))
    index = hard.argmax(-1)
    values = table[index[:, 0], index[:, 1]]
    exact = _exact_categorical_gradient(logits, lambda i, j: table[i, j])
    estimate = reinforce_gradient(logits, hard, values)
    _assert_within_standard_errors(_categorical_per_draw(logits, hard, values, 0.0), estimate, exact)
    assert exact.abs().max() > 0.1  # a real signal, not a vanishing one


def test_a_baseline_keeps_reinforce_unbiased_and_cuts_its_variance():
    logits, table = _logits(), _table() + 20.0  # a large common offset: what a baseline removes
    hard = one_hot_argmax(_draws(logits, N_DRAWS, seed=1))
    index = hard.argmax(-1)
    values = table[index[:, 0], index[:, 1]]
    exact = _exact_categorical_gradient(logits, lambda i, j: table[i, j])
    p = torch.softmax(logits, -1)
    baseline = float(sum(p[0, i] * p[1, j] * table[i, j] for i, j in itertools.product(range(OPTIONS), repeat=2)))
    plain = _categorical_per_draw(logits, hard, values, 0.0)
    centred = _categorical_per_draw(logits, hard, values, baseline)
    _assert_within_standard_errors(plain, reinforce_gradient(logits, hard, values), exact)
    _assert_within_standard_errors(centred, reinforce_gradient(logits, hard, values, torch.tensor(baseline)), exact)
    assert centred.var(0).sum() < 0.05 * plain.var(0).sum()


# ----- the score of the perturbed vector (rules that look beyond the argmax) ---------------------------------
def _top2(row: torch.Tensor) -> tuple[int, int]:
    """The two largest entries of a row, ties to the lower index (as the spaces' top-k rules)."""
    order = sorted(range(row.shape[-1]), key=lambda k: (-float(row[k]), k))
    return order[0], order[1]


def test_perturbed_score_and_the_split_estimator_match_the_exact_gradient_of_an_order_rule():
    """f depends on row 0's argmax and on row 1's two largest values in order (a top-2 rule, as NB-1shot1's parents
    or DARTS' edges): the categorical score of the argmaxes alone is biased for it. The score of the perturbed vector
    is exact in expectation, and so is UNAS' split: the categorical score of f at the one-hot rows plus the
    perturbed score of the residual. Exact: the top-2 of Gumbel-perturbed log p is a draw without replacement
    (Plackett-Luce), P(first j, second l) = p_j p_l / (1 - p_j)."""
    logits = _logits()
    weights = torch.arange(27, dtype=torch.float64).view(3, 3, 3).sin() * 4.0

    def f_of(rows0: int, first: int, second: int) -> torch.Tensor:
        return weights[rows0, first, second]

    a = logits.clone().requires_grad_(True)
    p = torch.softmax(a, -1)
    total = sum(p[0, i] * p[1, j] * p[1, k] / (1 - p[1, j]) * f_of(i, j, k)
                for i, j, k in itertools.product(range(OPTIONS), repeat=3) if j != k)
    (exact,) = torch.autograd.grad(total, a)

    x = _draws(logits, N_DRAWS, seed=2)
    hard = one_hot_argmax(x)
    full = torch.stack([f_of(int(xj[0].argmax()), *_top2(xj[1])) for xj in x])
    at_hot = torch.stack([f_of(int(h[0].argmax()), *_top2(h[1])) for h in hard])  # the rule on one-hot rows
    mu = torch.log_softmax(logits, -1)
    s = 1.0 - torch.exp(mu - x)
    score = s - mu.exp() * s.sum(-1, keepdim=True)

    perturbed = gumbel_score_gradient(logits, x, full)
    _assert_within_standard_errors(full[:, None, None] * score, perturbed, exact)
    split = reinforce_gradient(logits, hard, at_hot) + gumbel_score_gradient(logits, x, full - at_hot)
    per_draw = _categorical_per_draw(logits, hard, at_hot, 0.0) + (full - at_hot)[:, None, None] * score
    _assert_within_standard_errors(per_draw, split, exact)
    biased = reinforce_gradient(logits, hard, full)
    assert ((biased - exact).abs() > SIGMAS * per_draw.std(0) / math.sqrt(N_DRAWS)).any()


def test_the_split_has_no_perturbed_part_where_the_rule_keeps_the_argmax():
    """Where the architecture is the per-row argmax (NB201), the one-hot rows and the perturbed values give the same
    architecture: the residual is exactly 0, and the perturbed score adds nothing."""
    space = get_space("nb201")
    x = _draws(torch.randn(6, 5, dtype=torch.float64), 50, seed=3)
    for xj in x:
        assert space.discretize({"edges": one_hot_argmax(xj)}) == space.discretize({"edges": torch.softmax(xj, -1)})
    zero = gumbel_score_gradient(torch.zeros(6, 5), x.float(), torch.zeros(50))
    assert torch.equal(zero, torch.zeros(6, 5))


# ----- REBAR ---------------------------------------------------------------------------------------------
def test_conditional_twin_equals_the_draw_and_keeps_finite_gradients():
    logits = torch.tensor([[4.0, -30.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0], [-60.0, 60.0, 0.0, 2.0]]).requires_grad_(True)
    x = _draws(logits.detach(), 200, seed=4)
    x = torch.log_softmax(logits, -1) + (x - torch.log_softmax(logits.detach(), -1))
    hard = one_hot_argmax(x.detach())
    twin = conditional_perturbed(logits, x, hard)
    torch.testing.assert_close(twin, x.detach(), rtol=1e-5, atol=1e-4)
    (grad,) = torch.autograd.grad((torch.softmax(twin / 0.4, -1) * torch.randn(200, 3, 4)).sum(), logits,
                                  retain_graph=True)
    assert torch.isfinite(grad).all()
    top = (twin * hard).sum(-1)
    (g_top,) = torch.autograd.grad(top.sum(), logits)  # the maximum of the twin is noise only
    assert torch.equal(g_top, torch.zeros_like(g_top))


def test_rebar_is_unbiased_for_the_discrete_objective():
    """Per draw: f(w) + stopgrad(f(z) - f(w)) log p(z) with `rebar_weights` (value zeta, gradient dzeta - dzeta~);
    its gradient averages to d/dlogits E_z[f(one_hot z)], exact by enumeration, for a smooth non-linear f. The plain
    Gumbel-softmax gradient of f(zeta) does not (biased at tau = 0.4)."""
    logits, tau = _logits(), 0.4
    A = torch.tensor([[1.0, -2.0, 0.5], [0.3, 1.2, -1.0]], dtype=torch.float64)
    B = torch.tensor([[0.0, 2.0, -1.5], [1.0, -0.5, 2.5]], dtype=torch.float64)

    def f(w: torch.Tensor) -> torch.Tensor:
        return (w * A).sum((-1, -2)) ** 2 + torch.sin((w * B).sum((-1, -2)))

    def f_of(i: int, j: int) -> torch.Tensor:
        w = torch.zeros(ROWS, OPTIONS, dtype=torch.float64)
        w[0, i] = w[1, j] = 1.0
        return f(w)

    exact = _exact_categorical_gradient(logits, f_of)
    n = N_DRAWS
    g = torch.Generator().manual_seed(5)
    noise = gumbel_noise(torch.zeros(n, ROWS, OPTIONS, dtype=torch.float64), g)
    leaf = logits.expand(n, ROWS, OPTIONS).clone().requires_grad_(True)
    w, hard = rebar_weights(leaf, noise, tau)
    torch.testing.assert_close(w, torch.softmax((torch.log_softmax(leaf, -1) + noise) / tau, -1))
    fw = f(w)
    surrogate = fw + (f(hard) - fw).detach() * log_prob(leaf, hard)
    (per_draw,) = torch.autograd.grad(surrogate.sum(), leaf)
    _assert_within_standard_errors(per_draw, per_draw.mean(0), exact)

    relaxed, _ = rebar_weights(leaf, noise, tau, rebar=False)
    (plain,) = torch.autograd.grad(f(relaxed).sum(), leaf)
    se = plain.std(0) / math.sqrt(n)
    assert ((plain.mean(0) - exact).abs() > SIGMAS * se).any()


def test_update_is_adam_on_the_rebar_gradient_of_the_generalisation_gap():
    """The architecture step against an independent computation: the noise of the weight step's draw, the training
    and validation forwards at the relaxed and at the one-hot weights, f = L_t + 0.5 |L_v - L_t|, Adam (lr 1e-3,
    betas (0.9, 0.999), weight decay 1e-6)."""
    dist, model, opt, batches = tiny_setup("unas", {"init_scale": 1.0})
    alpha0 = dist.alpha["edges"].detach().clone()
    state = dist.generator.get_state()
    dist.weights_for_weight_step()
    out = dist.update(make_ctx(model, opt, batches[0]))

    g = torch.Generator().manual_seed(0)
    g.set_state(state)
    noise = gumbel_noise(alpha0, g)
    (x, y), (xv, yv) = batches[0]
    a = alpha0.clone().requires_grad_(True)
    w, hard = rebar_weights(a, noise, 0.4)

    def objective(weights):
        lt = F.cross_entropy(model(x, {"edges": weights}), y)
        lv = F.cross_entropy(model(xv, {"edges": weights}), yv)
        return lt + 0.5 * (lv - lt).abs(), lv

    f_relaxed, valid = objective(w)
    with torch.no_grad():
        f_hard, _ = objective(hard)
    surrogate = f_relaxed + (f_hard - f_relaxed).detach() * log_prob(a, hard)
    (expected,) = torch.autograd.grad(surrogate, a)
    ref = alpha0.clone().requires_grad_(True)
    adam = torch.optim.Adam([ref], lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-6)
    ref.grad = expected
    adam.step()
    torch.testing.assert_close(dist.alpha["edges"].detach(), ref.detach(), rtol=1e-5, atol=1e-7)
    assert set(out) == {"arch_loss", "arch_acc", "objective"}
    torch.testing.assert_close(out["arch_loss"], valid.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["objective"], f_relaxed.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("params", [{"estimator": "relaxed"}, {"objective": "valid"},
                                    {"estimator": "relaxed", "objective": "valid", "tau_max": 5.0, "tau_min": 0.1}])
def test_other_settings_train_alpha_through_the_loop_order(params):
    dist, model, opt, batches = tiny_setup("unas", params)
    alpha0 = dist.alpha["edges"].detach().clone()
    outs = run_steps(dist, model, opt, batches, 0, 3)
    assert len(outs) == 3 and all(torch.isfinite(o["arch_loss"]) for o in outs)
    assert not torch.equal(alpha0, dist.alpha["edges"].detach())


# ----- the budget, by REINFORCE, in the update and through the real loop --------------------------------------
def test_update_takes_the_budget_by_reinforce_and_moves_its_baseline():
    """A stand-in budget (the count of 3x3 convolutions in each architecture string): the update asks for the
    draws' terms, their categorical score lowers the convolution's probability, and the baseline (in the state)
    follows the terms."""
    dist, model, opt, batches = tiny_setup("unas", {"arch_lr": 0.05, "cost_samples": 16})
    asked = []

    def budget_of_archs(archs):
        asked.append(list(archs))
        return torch.tensor([float(a.count("nor_conv_3x3")) for a in archs])

    conv = get_space("nb201").option_names["edges"].index("nor_conv_3x3")
    p0 = dist.op_probabilities()["edges"][:, conv].mean()
    for step in range(8):
        dist.weights_for_weight_step()
        ctx = make_ctx(model, opt, batches[step])
        ctx.budget_of_archs = budget_of_archs
        out = dist.update(ctx)
    assert set(out) == {"arch_loss", "arch_acc", "objective", "reinforce_term", "reinforce_baseline"}
    assert len(asked) == 16 and all(len(a) == 16 for a in asked)  # one-hot and drawn architectures per step
    assert dist.op_probabilities()["edges"][:, conv].mean() < p0 - 0.05
    assert 0.0 < float(dist.state_dict()["baseline"]) < 6.0
    assert float(dist.state_dict()["baseline_residual"]) == 0.0  # NB201 keeps the argmax: no residual


def _splits(n: int = 8, hw: int = 8, classes: int = 4) -> dict[str, DeviceDataset]:
    g = torch.Generator().manual_seed(0)
    return {name: DeviceDataset(torch.randint(0, 256, (n, 3, hw, hw), generator=g, dtype=torch.uint8),
                                torch.randint(0, classes, (n,), generator=g), (0.5,) * 3, (0.25,) * 3, classes, name)
            for name in ("search-train", "search-valid")}


def _budget_config(epochs: int, **params) -> dict:
    return {"space": "nb201", "method": "unas", "epochs": epochs, "batch_size": 4, "steps_per_epoch": 3, "C": 2,
            "N": 1, "device": "cpu", "seed": 0, "augment": False, "channels_last": False,
            "method_params": {"arch_lr": 0.2, "cost_samples": 16, **params},
            "cost": {"metric": "params", "budget": 0.2, "weight": 50.0}}


def test_under_a_params_budget_the_expected_cost_falls_below_it():
    """NB201, a params budget half-way between the cheapest cells and the uniform distribution's expected cost
    (0.40 M): the sampled architectures' true costs alone (the loop adds no differentiable cost term for UNAS)
    bring the expected cost under the budget."""
    run = SearchRun(_budget_config(5), splits=_splits())
    rows = [run.run_epoch() for _ in range(5)]
    costs = [r["cost_expected"] for r in rows]
    assert costs[0] > 0.2 and costs[-1] < 0.2, costs
    assert rows[-1]["reinforce_term"] < rows[0]["reinforce_term"]
    assert all(math.isfinite(r["reinforce_baseline"]) for r in rows)


def test_one_host_copy_per_step_under_a_budget_and_exact_resume(tmp_path):
    run = SearchRun(_budget_config(3), splits=_splits())
    index = torch.arange(4)
    run.step(index, index, 0.025)  # lazy optimizer state
    methods = (str(Path(unas.__file__).resolve().parent) + "/",)  # this package's calls only (not the spaces')
    with count_host_syncs(methods) as calls:
        for _ in range(2):
            run.step(index, index, 0.025)
    assert sum(calls.values()) == 2 * type(run.distribution).host_syncs_under_budget == 2, calls

    full_run = SearchRun(_budget_config(3), splits=_splits())
    full = [full_run.run_epoch() for _ in range(3)]
    first = SearchRun(_budget_config(3), splits=_splits())
    head = [first.run_epoch()]
    path = first.save(tmp_path / "unas.pt")
    torch.manual_seed(4321)
    resumed = SearchRun.from_checkpoint(path, splits=_splits())
    tail = [resumed.run_epoch() for _ in range(2)]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "epoch_time_s"} for r in rows]  # noqa: E731
    assert strip(head + tail) == strip(full)
    assert torch.equal(resumed.distribution.baseline, full_run.distribution.baseline)
    assert float(full_run.distribution.baseline) != 0.0


# ----- schedules, parameters, state, sampling, the loop ------------------------------------------------
def test_temperature_is_constant_and_the_lr_cosine_is_optional():
    dist = _unas()
    lrs, taus = [], []
    for epoch in range(4):
        dist.on_epoch_start(epoch, 4)
        lrs.append(dist.optimizer.param_groups[0]["lr"])
        taus.append(dist.tau)
    assert taus == [0.4] * 4 and lrs == [1e-3] * 4
    dist = _unas({"arch_lr_min": 3e-4})
    for epoch in range(4):
        dist.on_epoch_start(epoch, 4)
        assert dist.optimizer.param_groups[0]["lr"] == pytest.approx(cosine_lr(1e-3, 3e-4, epoch, 4))
    assert cosine_lr(1e-3, 3e-4, 0, 4) == 1e-3 and cosine_lr(1e-3, 3e-4, 2, 4) == pytest.approx(6.5e-4)


def test_defaults_follow_the_unas_code():
    p = _unas().params
    assert (p.arch_lr, p.arch_weight_decay, p.betas, p.init_scale) == (1e-3, 1e-6, (0.9, 0.999), 0.0)
    assert (p.tau_max, p.tau_min, p.estimator, p.objective, p.gap_lambda) == (0.4, 0.4, "rebar",
                                                                               "generalization_gap", 0.5)
    assert p.baseline_decay == 0.1 and p.arch_lr_min is None


@pytest.mark.parametrize("params, match", [
    ({"arch_lr_min": 1.0}, "arch_lr_min"), ({"estimator": "relax"}, "estimator"), ({"objective": "train"}, "objective"),
    ({"cost_samples": 0}, "cost_samples"), ({"baseline_decay": 1.0}, "baseline_decay"),
    ({"gap_lambda": -1}, "gap_lambda"), ({"tau_min": 1.0}, "tau_min"), ({"temperature": 1}, "unknown hyper-parameter")])
def test_bad_params_name_the_field(params, match):
    with pytest.raises(ValueError, match=match):
        _unas(params)


def test_resume_is_exact():
    assert_resume_equal("unas", {"init_scale": 1.0})


def test_summaries_and_samples():
    assert_distribution_summaries(_unas({"init_scale": 1.0}))


def test_through_run_search_and_checkpoint_resume(tiny_cifar10, tmp_path):
    metrics = assert_run_search("unas", tiny_cifar10, tmp_path)
    assert all(m["valid_loss"] == m["valid_loss"] and m["objective"] == m["objective"] for m in metrics)
    assert "reinforce_term" not in metrics[0]  # no budget, no REINFORCE


@pytest.mark.parametrize("space", ["nb1shot1-2", "darts"])
def test_multi_group_spaces_under_a_budget(space):
    """Several groups: the draws' architectures are the space's own (NB-1shot1 top-k parents, DARTS top-2 edges)
    and both parts of the estimate reach every group."""
    dist = _unas({"cost_samples": 4, "arch_lr": 0.1}, space=space)
    seen = []

    def budget_of_archs(archs):
        seen.extend(archs)
        return torch.arange(len(archs), dtype=torch.float32)

    grads, term = dist._budget_gradient(budget_of_archs)
    sp = get_space(space)
    assert len(seen) == 8 and all(sp.canonical(a) == a for a in seen)
    assert set(grads) == set(sp.arch_shapes) and all(grads[g].shape == sp.arch_shapes[g] for g in grads)
    assert all(torch.isfinite(g).all() for g in grads.values()) and float(term) == pytest.approx(1.5)
