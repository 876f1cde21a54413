"""DrNAS: generator-driven Dirichlet samples against torch.distributions.Dirichlet.rsample (values and
pathwise gradients) and the closed-form mean, the KL regulariser against its closed form (scipy), the
architecture step against an independent computation for both regulariser types, resume, sampling and the
real loop."""

from __future__ import annotations

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
from scipy.special import digamma, gammaln

from search_spaces.space import get_space
from trainables.methods import make_distribution
from trainables.methods.drnas import concentration, dirichlet_rsample


def _drnas(params=None, seed=0):
    return make_distribution("drnas", get_space("nb201"), params or {}, num_valid=10, seed=seed)


def test_samples_and_gradients_equal_torch_dirichlet_rsample():
    conc = torch.tensor([[0.5, 1.0, 2.0, 3.0, 0.8]] * 6) + torch.rand(6, 5)
    c1 = conc.clone().requires_grad_(True)
    g = torch.Generator().manual_seed(123)
    x1 = dirichlet_rsample(c1, g)
    c2 = conc.clone().requires_grad_(True)
    torch.manual_seed(123)  # the global generator with the same seed yields the same stream
    x2 = torch.distributions.Dirichlet(c2).rsample()
    assert torch.equal(x1, x2)
    weights = torch.randn(6, 5)
    (g1,) = torch.autograd.grad((x1 * weights).sum(), c1)
    (g2,) = torch.autograd.grad((x2 * weights).sum(), c2)
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)


def test_sample_mean_is_the_dirichlet_mean():
    dist = _drnas()
    alpha = torch.tensor([[0.5, -0.5, 2.0, 0.0, 1.0]] * 6)
    with torch.no_grad():
        dist.alpha["edges"].copy_(alpha)
    conc = F.elu(alpha) + 1
    mean = conc / conc.sum(-1, keepdim=True)
    torch.testing.assert_close(dist.op_probabilities()["edges"], mean)
    draws = torch.stack([s["edges"] for s in dist.sample_probabilities(4000, torch.Generator().manual_seed(0))])
    assert torch.allclose(draws.sum(-1), torch.ones(4000, 6))
    # per-component std <= 0.5 / sqrt(c0 + 1) ~ 0.19; standard error over 4000 draws ~ 0.003
    assert (draws.mean(0) - mean).abs().max() < 0.015
    assert dist.most_likely() == get_space("nb201").discretize({"edges": torch.softmax(alpha, -1)})  # argmax of alpha


def _kl_to_uniform_closed_form(conc):
    """KL(Dir(c) || Dir(1)) = lnG(c0) - sum lnG(c_i) - lnG(K) + sum (c_i - 1)(psi(c_i) - psi(c0))."""
    c = conc.double().numpy()
    c0 = c.sum(-1)
    K = c.shape[-1]
    return (gammaln(c0) - gammaln(c).sum(-1) - gammaln(K)
            + ((c - 1) * (digamma(c) - digamma(c0)[:, None])).sum(-1)).sum()


def test_kl_regulariser_matches_the_closed_form():
    dist = _drnas({"reg_type": "kl"})
    with torch.no_grad():
        dist.alpha["edges"].copy_(torch.randn(6, 5))
    expected = _kl_to_uniform_closed_form(concentration(dist.alpha["edges"].detach()))
    assert float(dist.kl_to_prior().detach()) == pytest.approx(expected, rel=1e-5)
    with torch.no_grad():
        dist.alpha["edges"].zero_()  # concentration 1 = the prior
    assert float(dist.kl_to_prior().detach()) == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("reg_type", ["l2", "kl"])
def test_update_is_adam_on_the_regularised_validation_loss(reg_type):
    scale = 0.05
    params = {"reg_type": reg_type, "reg_scale": scale, "init_scale": 0.5}
    dist, model, opt, batches = tiny_setup("drnas", params)
    (x, y), (xv, yv) = batches[0]
    alpha0 = dist.alpha["edges"].detach().clone()
    state = dist.generator.get_state()
    ctx = make_ctx(model, opt, batches[0], 0, 1)
    out = dist.update(ctx)

    # independently: the public rsample on the global generator set to the method's state
    torch.set_rng_state(state)
    a = alpha0.clone().requires_grad_(True)
    conc = F.elu(a) + 1
    w = torch.distributions.Dirichlet(conc).rsample()
    ce = F.cross_entropy(model(xv, {"edges": w}), yv)
    loss = ce
    if reg_type == "kl":
        c0 = conc.sum(-1)
        kl = (torch.lgamma(c0) - torch.lgamma(conc).sum(-1) - torch.lgamma(torch.tensor(5.0))
              + ((conc - 1) * (torch.digamma(conc) - torch.digamma(c0)[:, None])).sum(-1)).sum()
        loss = ce + scale * kl
    (grad,) = torch.autograd.grad(loss, a)
    ref = alpha0.clone().requires_grad_(True)
    decay = scale if reg_type == "l2" else 0.0
    adam = torch.optim.Adam([ref], lr=3e-4, betas=(0.5, 0.999), weight_decay=decay)
    ref.grad = grad
    adam.step()
    torch.testing.assert_close(dist.alpha["edges"].detach(), ref.detach(), rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(out["arch_loss"], ce.detach())  # reported loss: the cross-entropy alone


def test_weight_step_sample_is_detached_and_on_the_simplex():
    dist = _drnas()
    w = dist.weights_for_weight_step().weights["edges"]
    assert not w.requires_grad and (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(6))
    assert dist.weights_for_weight_step().active is None  # every op has positive weight


@pytest.mark.parametrize("params, match", [({"reg_type": "l1"}, "reg_type"), ({"reg_scale": -1}, "reg_scale"),
                                           ({"arch_weight_decay": 1e-3}, "unknown hyper-parameter")])
def test_bad_params_name_the_field(params, match):
    with pytest.raises(ValueError, match=match):
        _drnas(params)


def test_loop_order_trains_alpha_and_reports_concentration():
    dist, model, opt, batches = tiny_setup("drnas")
    alpha0 = dist.alpha["edges"].detach().clone()
    assert dist.extra_metrics()["concentration_total"] == pytest.approx(5.0, abs=0.05)  # ~ the prior's
    run_steps(dist, model, opt, batches, 0, 3)
    assert not torch.equal(alpha0, dist.alpha["edges"].detach())


@pytest.mark.parametrize("reg_type", ["l2", "kl"])
def test_resume_is_exact(reg_type):
    assert_resume_equal("drnas", {"reg_type": reg_type})


def test_summaries_and_samples():
    assert_distribution_summaries(_drnas({"init_scale": 1.0}))


def test_through_run_search_and_checkpoint_resume(tiny_cifar10, tmp_path):
    metrics = assert_run_search("drnas", tiny_cifar10, tmp_path, {"reg_type": "kl"})
    assert all(m["concentration_total"] > 0 for m in metrics)
