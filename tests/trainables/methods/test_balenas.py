"""BaLeNAS: its architecture step replayed by hand (Vadam on per-sample gradients), posterior growth with
data, posterior sampling statistics, state round trips and parameter errors. Runs the real NB201 supernet
at C=4, N=1 on random images (CPU, well under a second per step)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from search_spaces.space import get_space
from trainables.methods import ArchStepContext, EdgeWeights, make_distribution
from trainables.methods.arch_step import arch_gradients

SPACE = get_space("nb201")


def _context(seed=0, n=8):
    torch.manual_seed(seed)
    model = SPACE.supernet(num_classes=10, C=4, N=1).train()
    g = torch.Generator().manual_seed(seed)
    xt, xv = torch.randn(n, 3, 32, 32, generator=g), torch.randn(n, 3, 32, 32, generator=g)
    yt, yv = torch.randint(0, 10, (n,), generator=g), torch.randint(0, 10, (n,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9, weight_decay=5e-4)

    def forward(x, ew: EdgeWeights):
        return model(x, ew.weights, ew.active)

    return ArchStepContext(model, forward, F.cross_entropy, (xt, yt), (xv, yv), opt, 0.025, 1, 0, 1)


def _replay_update(dist, ctx, second_order=False):
    """mu after one step, recomputed from the method's description with the same noise draws."""
    gen = torch.Generator().manual_seed(0)
    gen.set_state(dist.generator.get_state())
    opt = dist.optimizer
    N, lam = opt.num_data, opt.prior_precision
    b1, b2 = opt.betas
    mu0 = dist.mu["edges"].clone()
    s0 = opt.exp_avg_sq[0].clone()
    m0 = opt.exp_avg[0].clone()
    t = opt.steps + 1
    grads = []
    for _ in range(dist.mc_samples):
        eps = torch.randn(mu0.shape, generator=gen)
        alpha = (mu0 + eps / torch.sqrt(N * s0 + lam)).requires_grad_(True)
        (g,), _, _ = arch_gradients(ctx, [alpha], ["edges"], second_order)
        grads.append(g)
    g = torch.stack(grads).mean(0)
    g2 = torch.stack([x * x for x in grads]).mean(0)
    m = b1 * m0 + (1 - b1) * (g + lam / N * mu0)
    s = b2 * s0 + (1 - b2) * g2
    return mu0 - opt.lr * (m / (1 - b1 ** t)) / (torch.sqrt(s / (1 - b2 ** t)) + lam / N), s


@pytest.mark.parametrize("method, mc", [("balenas", 1), ("balenas", 3), ("balenas-v2", 1)])
def test_update_is_vadam_on_sampled_alphas(method, mc):
    ctx = _context()
    dist = make_distribution(method, SPACE, {"mc_samples": mc, "arch_lr": 0.01}, num_valid=40, seed=1)
    dist.update(ctx)  # a first step so that m and s are not at their initial values
    expected_mu, expected_s = _replay_update(dist, ctx, second_order=method == "balenas-v2")
    out = dist.update(ctx)
    torch.testing.assert_close(dist.mu["edges"], expected_mu, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(dist.optimizer.exp_avg_sq[0], expected_s, rtol=1e-5, atol=1e-12)
    assert set(out) == {"arch_loss", "arch_acc"} and torch.isfinite(out["arch_loss"])


def test_posterior_precision_grows_from_init_and_with_data_size():
    ctx = _context(seed=3)
    small = make_distribution("balenas", SPACE, {"num_data": 10, "arch_lr": 0.01}, num_valid=40, seed=0)
    large = make_distribution("balenas", SPACE, {"num_data": 10_000, "arch_lr": 0.01}, num_valid=40, seed=0)
    init = small.posterior_precision()["edges"].clone()
    torch.testing.assert_close(init, torch.ones(6, 5))  # init_precision = 1
    means = []
    for _ in range(6):
        small.update(ctx)
        large.update(ctx)
        means.append(float(small.posterior_precision()["edges"].mean()))
    assert (small.posterior_precision()["edges"] > init).all()
    assert all(b > a for a, b in zip(means, means[1:]))  # s accumulates squared gradients
    # the same gradient evidence, counted over 1000x more data, gives a much more concentrated posterior
    assert (large.posterior_precision()["edges"] - 1).mean() > 100 * (small.posterior_precision()["edges"] - 1).mean()
    metrics = small.extra_metrics()
    assert metrics["posterior_std_mean"] < 1.0 and metrics["posterior_precision_mean"] == pytest.approx(means[-1])


def test_num_data_defaults_to_the_validation_split():
    assert make_distribution("balenas", SPACE, {}, num_valid=123).optimizer.num_data == 123
    assert make_distribution("balenas", SPACE, {"num_data": 7}, num_valid=123).optimizer.num_data == 7


def test_samples_follow_the_posterior():
    dist = make_distribution("balenas", SPACE, {"init_precision": 4.0}, num_valid=50)
    with torch.no_grad():
        dist.mu["edges"].copy_(torch.linspace(-1, 1, 30).view(6, 5))
    probs = torch.stack([d["edges"] for d in dist.sample_probabilities(4000, torch.Generator().manual_seed(0))])
    torch.testing.assert_close(probs.sum(-1), torch.ones(4000, 6))
    # each draw is softmax(alpha) per row: log p_j - log p_0 = alpha_j - alpha_0, with alpha ~ N(mu, 1/4)
    # independent per entry, so its mean is mu_j - mu_0 and its std sqrt(2) * 0.5
    diff = probs.log()[..., 1:] - probs.log()[..., :1]
    mu = dist.mu["edges"]
    torch.testing.assert_close(diff.mean(0), mu[:, 1:] - mu[:, :1], atol=0.05, rtol=0)  # ~4.5 sigma of the mean
    torch.testing.assert_close(diff.std(0), torch.full((6, 4), 0.5 * 2 ** 0.5), atol=0.04, rtol=0)
    torch.testing.assert_close(dist.mode_probabilities()["edges"], torch.softmax(mu, -1))
    torch.testing.assert_close(dist.op_probabilities()["edges"], torch.softmax(dist.mu["edges"], -1))


def test_weight_step_weights_sample_or_mean():
    sampled = make_distribution("balenas", SPACE, {}, num_valid=10)
    a, b = sampled.weights_for_weight_step(), sampled.weights_for_weight_step()
    assert not torch.equal(a.weights["edges"], b.weights["edges"])
    assert not a.weights["edges"].requires_grad
    mean = make_distribution("balenas", SPACE, {"weight_step_sample": False}, num_valid=10)
    torch.testing.assert_close(mean.weights_for_weight_step().weights["edges"], torch.softmax(mean.mu["edges"], -1))


def test_state_round_trip_continues_identically():
    ctx = _context(seed=4)
    a = make_distribution("balenas", SPACE, {"mc_samples": 2}, num_valid=40, seed=0)
    a.update(ctx)
    b = make_distribution("balenas", SPACE, {"mc_samples": 2}, num_valid=40, seed=5)
    b.load_state_dict(a.state_dict())
    a.update(ctx)
    b.update(ctx)
    assert torch.equal(a.mu["edges"], b.mu["edges"])
    assert torch.equal(a.posterior_precision()["edges"], b.posterior_precision()["edges"])
    assert a.optimizer.steps == b.optimizer.steps == 2


@pytest.mark.parametrize("params, key", [
    ({"mc_samples": 0}, "mc_samples"), ({"prior_precision": 2.0, "init_precision": 1.0}, "init_precision"),
    ({"num_data": -3}, "num_data"), ({"betas": [0.5, 1.0]}, "betas"),
    ({"beta1": 0.9}, "beta1: unknown hyper-parameter"),
    ({"weight_step_sample": "yes"}, "weight_step_sample"),
    ({"arch_weight_decay": 0.1}, "arch_weight_decay"),
])
def test_bad_parameters_name_the_key(params, key):
    with pytest.raises(ValueError, match=key):
        make_distribution("balenas", SPACE, params, num_valid=10)
