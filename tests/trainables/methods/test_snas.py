"""SNAS: Gumbel-softmax samples against the Gumbel-max theorem (argmax frequencies = softmax(alpha)), the
temperature schedule, joint training (the weight-step loss reaches alpha and Adam steps on it), resume,
sampling and the real loop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from more_methods_kit import (
    assert_distribution_summaries,
    assert_resume_equal,
    assert_run_search,
    run_steps,
    tiny_setup,
)

from search_spaces.space import get_space
from trainables.methods import ArchStepContext, make_distribution
from trainables.methods.gumbel import linear_temperature


def _snas(params=None, seed=0):
    return make_distribution("snas", get_space("nb201"), params or {}, num_valid=10, seed=seed)


def test_relaxed_samples_follow_softmax_alpha():
    """argmax of softmax((log p + g) / tau) is a draw from p for any tau (Gumbel-max): check frequencies."""
    dist = _snas()
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, 0.5]] * 6)
    with torch.no_grad():
        dist.alpha["edges"].copy_(logits)
    dist.tau = 0.7
    n = 4000
    counts = torch.zeros(6, 5)
    with torch.no_grad():
        for _ in range(n):
            w = dist.weights_for_weight_step().weights["edges"]
            counts += F.one_hot(w.argmax(-1), 5)
    freq = counts / n
    expected = torch.softmax(logits, -1)
    # binomial standard error <= sqrt(0.25 / 4000) = 0.008; allow 4.5 sigma
    assert (freq - expected).abs().max() < 0.036


def test_samples_are_simplex_points_that_sharpen_as_tau_falls():
    dist = _snas()
    with torch.no_grad():
        dist.alpha["edges"].copy_(torch.randn(6, 5))
    for tau, bound in ((10.0, None), (0.03, 0.99)):
        dist.tau = tau
        w = dist.weights_for_weight_step().weights["edges"]
        torch.testing.assert_close(w.sum(-1), torch.ones(6))
        assert (w >= 0).all() and w.requires_grad  # not detached: the training loss must reach alpha
        if bound is not None:
            assert (w.max(-1).values > bound).float().mean() > 0.8  # nearly one-hot at low temperature
    dist.tau = 10.0
    assert dist.weights_for_weight_step().weights["edges"].max() < 0.6  # near uniform at high temperature


def test_temperature_schedule_is_linear_from_tau_max_to_tau_min():
    dist = _snas()
    taus = []
    for epoch in range(5):
        dist.on_epoch_start(epoch, 5)
        taus.append(dist.tau)
    # the authors' --temp 1 --temp_min 0.03
    assert taus[0] == pytest.approx(1.0) and taus[-1] == pytest.approx(0.03)
    steps = [a - b for a, b in zip(taus, taus[1:])]
    assert all(s == pytest.approx(steps[0]) for s in steps) and steps[0] > 0
    assert dist.extra_metrics() == {"tau": pytest.approx(0.03)}
    assert linear_temperature(10.0, 0.1, 0, 1) == 10.0  # a single epoch keeps tau_max


def test_update_is_adam_on_the_training_loss_gradient():
    dist, model, opt, batches = tiny_setup("snas")
    (x, y), (xv, yv) = batches[0]
    alpha0 = dist.alpha["edges"].detach().clone()
    gen_state = dist.generator.get_state()
    ew = dist.weights_for_weight_step()
    loss = F.cross_entropy(model(x, ew.weights), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    grad = dist.alpha["edges"].grad.clone()
    # the same gradient, independently: rebuild the sample from the same noise draw
    dist.generator.set_state(gen_state)
    a = alpha0.clone().requires_grad_(True)
    fi = torch.finfo(a.dtype)
    u = torch.rand(a.shape, generator=dist.generator).clamp(fi.tiny, 1 - fi.eps)
    w = torch.softmax((torch.log_softmax(a, -1) - torch.log(-torch.log(u))) / dist.tau, -1)
    (expected,) = torch.autograd.grad(F.cross_entropy(model(x, {"edges": w}), y), a)
    torch.testing.assert_close(grad, expected)
    opt.step()
    ctx = ArchStepContext(model, None, F.cross_entropy, (x, y), (xv, yv), opt, 0.05, 1, 0, 1)
    assert dist.update(ctx) == {}
    ref = alpha0.clone().requires_grad_(True)
    adam = torch.optim.Adam([ref], lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    ref.grad = expected
    adam.step()
    torch.testing.assert_close(dist.alpha["edges"].detach(), ref.detach())
    assert dist.alpha["edges"].grad is None  # cleared for the next step


def test_update_without_a_training_gradient_is_an_error():
    dist, model, opt, batches = tiny_setup("snas")
    (x, y), (xv, yv) = batches[0]
    ctx = ArchStepContext(model, None, F.cross_entropy, (x, y), (xv, yv), opt, 0.05, 1, 0, 1)
    with pytest.raises(RuntimeError, match="backward"):
        dist.update(ctx)


@pytest.mark.parametrize("params, match", [({"tau_min": 2.0}, "tau_min"), ({"tau_max": 0}, "tau_max"),
                                           ({"temperature": 1}, "unknown hyper-parameter")])
def test_bad_params_name_the_field(params, match):
    with pytest.raises(ValueError, match=match):
        _snas(params)


def test_joint_training_moves_alpha_through_the_loop_order():
    dist, model, opt, batches = tiny_setup("snas")
    assert dist.update_interval == 1
    alpha0 = dist.alpha["edges"].detach().clone()
    run_steps(dist, model, opt, batches, 0, 3)
    assert not torch.equal(alpha0, dist.alpha["edges"].detach())


def test_resume_is_exact():
    assert_resume_equal("snas")


def test_summaries_and_samples():
    dist = _snas({"init_scale": 1.0})
    assert_distribution_summaries(dist)


def test_through_run_search_and_checkpoint_resume(tiny_cifar10, tmp_path):
    metrics = assert_run_search("snas", tiny_cifar10, tmp_path)
    assert [m["tau"] for m in metrics] == pytest.approx([1.0, 0.515, 0.03])
