"""Vadam against a closed-form posterior, against Adam in its deterministic limit, and for MC-sample isolation."""

from __future__ import annotations

import pytest
import torch

from trainables.methods.vadam import Vadam, loss_gradients


def test_converges_to_exact_gaussian_posterior():
    """Gaussian mean estimation y_i ~ N(theta, 1), prior theta ~ N(0, 1/lambda): the exact posterior has
    precision N + lambda and mean sum(y)/(N + lambda).

    Vadam runs with minibatches of one example (M = 1), where the squared per-example gradient
    (theta - y_i)^2 estimates the per-example Hessian (= 1): its expectation under q and over i is
    var(y) + (mu - ybar)^2 + 1/(N s + lambda). With var(y) = 1 exactly (standardised data) the fixed point of
    N s + lambda exceeds the exact precision by N (mu* - ybar)^2 + N/(N s + lambda) ~ 1 (1% of 101), and after
    T steps the raw EMA s carries the factor 1 - beta2^T (0.7% low for T = 5000); 200 independent chains (one
    element each) average away the MC noise (about 3% per chain). Hence a 3% tolerance on the precision.
    The mean's fixed point is exactly the posterior mean (the gradient is linear in theta); its tolerance
    (3% of the posterior std, 5x the observed error) covers the chains' step-size noise.
    """
    torch.manual_seed(0)
    N, lam, chains, T = 100, 1.0, 200, 5000
    y = torch.randn(N, dtype=torch.float64)
    y = (y - y.mean()) / y.std(unbiased=False) + 0.5  # sample mean 0.5, population variance exactly 1
    post_prec = N + lam
    post_mean = float(y.sum()) / post_prec

    mu = torch.zeros(chains, dtype=torch.float64)
    opt = Vadam([mu], num_data=N, lr=1e-2, betas=(0.9, 0.999), prior_precision=lam, init_precision=lam)
    gen = torch.Generator().manual_seed(1)
    mu_trace = []
    for t in range(T):
        i = torch.randint(0, N, (chains,), generator=gen)  # one example per chain and step
        yi = y[i]
        opt.step(loss_gradients(lambda a, yi=yi: 0.5 * ((a[0] - yi) ** 2).sum()), gen, mc_samples=2)
        if t >= T - 1000:
            mu_trace.append(mu.clone())
    precision = float(opt.precision()[0].mean())
    mean = float(torch.stack(mu_trace).mean())
    print(f"precision {precision:.3f} (exact {post_prec}), mean {mean:.5f} (exact {post_mean:.5f})")
    assert precision == pytest.approx(post_prec, rel=0.03)
    assert abs(mean - post_mean) < 0.03 / post_prec ** 0.5


def _adam_reference(mu0, grads, lr, beta1, beta2, eps, decay, s0):
    """Hand-written Adam with L2 decay in the first moment only, second moment of the raw gradient."""
    mu, m, s = mu0.clone(), torch.zeros_like(mu0), torch.full_like(mu0, s0)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * (g + decay * mu)
        s = beta2 * s + (1 - beta2) * g * g
        mu = mu - lr * (m / (1 - beta1 ** t)) / ((s / (1 - beta2 ** t)).sqrt() + eps)
    return mu


def _loss(a, target):
    """A non-quadratic loss so that successive gradients differ in a non-trivial way."""
    return 0.5 * ((a - target) ** 2).sum() + (a ** 3).sum() / 30


def _quadratic(target):
    return loss_gradients(lambda a: _loss(a[0], target))


def test_noise_free_step_is_adam_with_prior_as_weight_decay():
    """Without noise mu follows Adam with decay lambda/N on the first moment and eps = lambda/N."""
    target = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    mu0 = torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64)
    N, lam, prec0 = 50, 2.0, 5.0
    mu = mu0.clone()
    opt = Vadam([mu], num_data=N, lr=0.05, betas=(0.5, 0.999), prior_precision=lam, init_precision=prec0)
    grads = []
    for _ in range(20):
        a = mu.clone().requires_grad_(True)
        grads.append(torch.autograd.grad(_loss(a, target), a)[0])
        opt.step(_quadratic(target), None, noise=False)
    # replay with the gradients of the Vadam trajectory (each evaluated at the then-current mu)
    expected = _adam_reference(mu0, grads, 0.05, 0.5, 0.999, lam / N, lam / N, (prec0 - lam) / N)
    torch.testing.assert_close(mu, expected, rtol=1e-12, atol=1e-12)


def test_noise_free_step_equals_torch_adam_when_prior_is_zero():
    """lambda = 0 and prec_init = 0: exactly torch.optim.Adam with eps = 0 and no weight decay."""
    target = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    mu = torch.tensor([0.1, 0.2, -0.3], dtype=torch.float64)
    ref = mu.clone().requires_grad_(True)
    opt = Vadam([mu], num_data=10, lr=0.05, betas=(0.5, 0.999), prior_precision=0.0, init_precision=0.0)
    adam = torch.optim.Adam([ref], lr=0.05, betas=(0.5, 0.999), eps=0.0, weight_decay=0.0, foreach=False)
    for _ in range(25):
        opt.step(_quadratic(target), None, noise=False)
        adam.zero_grad()
        _loss(ref, target).backward()
        adam.step()
    torch.testing.assert_close(mu, ref.detach(), rtol=1e-12, atol=1e-12)


def test_mc_samples_do_not_share_gradients():
    """Each sample's gradient is its own: E[g] and E[g^2] match the per-sample values replayed by hand."""
    mu = torch.tensor([0.3, -0.7])
    opt = Vadam([mu], num_data=4, lr=0.1, prior_precision=1.0, init_precision=3.0)
    gen = torch.Generator().manual_seed(5)
    replay = torch.Generator().manual_seed(5)
    seen = []

    def grad_fn(leaves):
        seen.append(leaves[0])
        loss = (leaves[0] ** 2).sum()  # gradient 2 * a for this sample only
        return torch.autograd.grad(loss, leaves), loss.detach()

    g, g2, aux = opt.mc_gradients(grad_fn, gen, mc_samples=4)
    samples = [opt.sample(replay)[0] for _ in range(4)]
    per_sample = torch.stack([2 * s for s in samples])
    torch.testing.assert_close(g[0], per_sample.mean(0))
    torch.testing.assert_close(g2[0], (per_sample ** 2).mean(0))
    assert len(aux) == 4 and len({id(s) for s in seen}) == 4
    assert all(s.grad is None for s in seen)  # nothing accumulated into .grad that a next sample could read
    assert not torch.allclose(g2[0], g[0] ** 2)  # mean of squares, not square of mean


def test_state_round_trip_and_validation():
    mu = torch.zeros(3)
    opt = Vadam([mu], num_data=8, lr=0.1)
    gen = torch.Generator().manual_seed(0)
    opt.step(_quadratic(torch.ones(3)), gen)
    state = opt.state_dict()
    other = Vadam([mu.clone()], num_data=8, lr=0.1)
    other.load_state_dict(state)
    torch.testing.assert_close(other.precision()[0], opt.precision()[0])
    assert other.steps == 1
    with pytest.raises(ValueError, match="init_precision"):
        Vadam([mu], num_data=8, prior_precision=2.0, init_precision=1.0)
    with pytest.raises(ValueError, match="num_data"):
        Vadam([mu], num_data=0)
    with pytest.raises(ValueError, match="mc_samples"):
        opt.mc_gradients(_quadratic(torch.ones(3)), gen, mc_samples=0)
