"""DARTS v1/v2: the architecture step against gradients computed independently on a tiny differentiable
"supernet", Gumbel-max sampling against softmax(alpha), state round trips and parameter errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.space import get_space
from trainables.methods import ArchStepContext, make_distribution
from trainables.methods.arch_step import arch_gradients, softmax_weights

ACTS = (lambda z: z, torch.tanh, torch.sin, torch.sigmoid, F.softplus)


class TinySuperNet(nn.Module):
    """out = sum_e sum_k w[e, k] * act_k(x @ W[e, k]^T): every edge weight matters, all smooth."""

    def __init__(self, d_in=4, classes=3):
        super().__init__()
        self.W = nn.Parameter(0.5 * torch.randn(6, 5, classes, d_in))
        self.b = nn.Parameter(0.1 * torch.randn(classes))

    def forward(self, x, weights, active=None):
        w = weights["edges"]
        out = self.b.expand(x.shape[0], -1)
        for k, act in enumerate(ACTS):
            z = act(torch.einsum("ecd,nd->enc", self.W[:, k], x))  # [6, n, classes]
            out = out + (w[:, k, None, None] * z).sum(0)
        return out


def _context(model, seed=0, momentum=0.9, wd=5e-4, lr=0.05):
    g = torch.Generator().manual_seed(seed)
    xt, xv = torch.randn(16, 4, generator=g), torch.randn(16, 4, generator=g)
    yt, yv = torch.randint(0, 3, (16,), generator=g), torch.randint(0, 3, (16,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
    # one real weight step so that the momentum buffers are non-zero
    F.cross_entropy(model(xt, {"edges": torch.full((6, 5), 0.2)}), yt).backward()
    opt.step()
    opt.zero_grad()

    def forward(x, ew):
        return model(x, ew.weights, ew.active)

    return ArchStepContext(model, forward, F.cross_entropy, (xt, yt), (xv, yv), opt, lr, 1, 0, 1)


def _exact_unrolled_gradient(ctx, alpha):
    """d/d alpha of L_val(w - lr*(g_train(w, alpha) + wd*w + momentum*buf), alpha), by autograd."""
    model, opt = ctx.model, ctx.weight_optimizer
    group = opt.param_groups[0]
    a = alpha.detach().clone().requires_grad_(True)
    names, params = zip(*model.named_parameters())
    loss_t = F.cross_entropy(model(ctx.train_batch[0], {"edges": torch.softmax(a, -1)}), ctx.train_batch[1])
    grads = torch.autograd.grad(loss_t, params, create_graph=True)
    unrolled = {n: p - ctx.weight_lr * (g + group["weight_decay"] * p
                                        + group["momentum"] * opt.state[p]["momentum_buffer"])
                for n, p, g in zip(names, params, grads)}
    logits = torch.func.functional_call(model, unrolled, (ctx.valid_batch[0], {"edges": torch.softmax(a, -1)}))
    return torch.autograd.grad(F.cross_entropy(logits, ctx.valid_batch[1]), a)[0]


def test_second_order_gradient_matches_exact_unrolled_gradient(float64):
    torch.manual_seed(0)
    model = TinySuperNet()
    ctx = _context(model)
    alpha = torch.randn(6, 5).requires_grad_(True)
    before = [p.detach().clone() for p in model.parameters()]
    (fd,), loss, logits = arch_gradients(ctx, [alpha], ["edges"], second_order=True, r=0.01)
    exact = _exact_unrolled_gradient(ctx, alpha)
    (first,), _, _ = arch_gradients(ctx, [alpha], ["edges"], second_order=False)
    second = exact - first  # the second-order term -lr * H v
    print("max |first|", float(first.abs().max()), "max |second|", float(second.abs().max()),
          "max err", float((fd - exact).abs().max()))
    # the central difference's error is O(R^2) relative to the term it estimates (R = 0.01 / ||v||)
    assert (fd - exact).abs().max() < 1e-4 * second.abs().max()
    assert second.abs().max() > 1e-3 * first.abs().max()  # the second-order term is not negligible
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b)  # weights restored bit-exactly
        assert p.grad is None  # the weight step's gradients are never touched
    assert loss.shape == () and logits.shape == (16, 3)


def _adam_step(alpha, grad, lr=3e-4, betas=(0.5, 0.999), wd=1e-3):
    a = alpha.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([a], lr=lr, betas=betas, weight_decay=wd)
    a.grad = grad.clone()
    opt.step()
    return a.detach()


@pytest.mark.parametrize("method", ["darts-v1", "darts-v2"])
def test_update_is_adam_on_the_architecture_gradient(method, float64):
    torch.manual_seed(1)
    model = TinySuperNet()
    ctx = _context(model, seed=1)
    dist = make_distribution(method, get_space("nb201"), {}, num_valid=16, seed=3)
    alpha0 = dist.alpha["edges"].detach().clone()
    if method == "darts-v1":
        a = alpha0.clone().requires_grad_(True)
        grad = torch.autograd.grad(F.cross_entropy(model(ctx.valid_batch[0], {"edges": torch.softmax(a, -1)}),
                                                   ctx.valid_batch[1]), a)[0]
    else:
        grad = _exact_unrolled_gradient(ctx, alpha0)
    out = dist.update(ctx)
    torch.testing.assert_close(dist.alpha["edges"].detach(), _adam_step(alpha0, grad), rtol=1e-7, atol=1e-12)
    assert set(out) >= {"arch_loss", "arch_acc"} and all(v.dim() == 0 for v in out.values())


def test_alpha_init_and_weights():
    dist = make_distribution("darts-v1", get_space("nb201"), {}, num_valid=10, seed=0)
    alpha = dist.alpha["edges"]
    assert alpha.shape == (6, 5) and alpha.abs().max() < 1e-2  # 1e-3 * randn
    ew = dist.weights_for_weight_step()
    assert not ew.weights["edges"].requires_grad
    torch.testing.assert_close(ew.weights["edges"].sum(-1), torch.ones(6))
    same = make_distribution("darts-v1", get_space("nb201"), {}, num_valid=10, seed=0)
    assert torch.equal(same.alpha["edges"], alpha)
    other = make_distribution("darts-v1", get_space("nb201"), {}, num_valid=10, seed=1)
    assert not torch.equal(other.alpha["edges"], alpha)


def test_gumbel_max_samples_follow_softmax_alpha():
    dist = make_distribution("darts-v1", get_space("nb201"), {}, num_valid=10)
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, -3.0])
    with torch.no_grad():
        dist.alpha["edges"].copy_(logits.expand(6, 5))
    n = 2000
    draws = dist.sample_probabilities(n, torch.Generator().manual_seed(0))
    torch.testing.assert_close(draws[0]["edges"].sum(-1), torch.ones(6))
    choices = torch.stack([d["edges"].argmax(-1) for d in draws]).flatten()  # 6 * n categorical draws
    freq = torch.bincount(choices, minlength=5).double() / choices.numel()
    p = torch.softmax(logits.double(), -1)
    sigma = (p * (1 - p) / choices.numel()).sqrt()
    assert ((freq - p).abs() < 4 * sigma + 1e-4).all(), (freq, p)
    # sample(k) discretises draws with the seed given
    assert dist.sample(5, seed=3) == dist.sample(5, seed=3)
    assert dist.most_likely() == "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"  # op 0 has the largest logit


def test_state_round_trip_continues_identically():
    torch.manual_seed(2)
    model = TinySuperNet()
    ctx = _context(model, seed=2)
    a = make_distribution("darts-v1", get_space("nb201"), {"arch_lr": 0.01}, num_valid=16, seed=0)
    a.update(ctx)
    b = make_distribution("darts-v1", get_space("nb201"), {"arch_lr": 0.01}, num_valid=16, seed=9)
    b.load_state_dict(a.state_dict())
    a.update(ctx)
    b.update(ctx)
    assert torch.equal(a.alpha["edges"], b.alpha["edges"])
    assert a.sample(3, torch.Generator().manual_seed(0)) == b.sample(3, torch.Generator().manual_seed(0))
    assert torch.equal(a.generator.get_state(), b.generator.get_state())


@pytest.mark.parametrize("params, key", [
    ({"arch_lr": -1}, "arch_lr"), ({"betas": [0.5]}, "betas"), ({"betas": [1.5, 0.9]}, "betas"),
    ({"beta1": 0.9}, "beta1: unknown hyper-parameter"),
    ({"arch_weight_decay": "x"}, "arch_weight_decay"), ({"lr": 0.1}, "lr"), ({"finite_diff_r": 0.01}, "finite_diff_r"),
])
def test_bad_parameters_name_the_key(params, key):
    with pytest.raises(ValueError, match=key):
        make_distribution("darts-v1", get_space("nb201"), params, num_valid=10)


def test_v2_rejects_bad_finite_difference_radius():
    with pytest.raises(ValueError, match="finite_diff_r"):
        make_distribution("darts-v2", get_space("nb201"), {"finite_diff_r": 0}, num_valid=10)


def test_softmax_weights_rows_sum_to_one():
    w = softmax_weights({"edges": torch.randn(6, 5)})
    torch.testing.assert_close(w["edges"].sum(-1), torch.ones(6))
