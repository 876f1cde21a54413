"""iDARTS: the Neumann-series implicit hypergradient against closed forms (ridge regression's exact
best-response gradient; explicit Hessian matrices on a small smooth supernet), exact HVPs on the NB201
supernet against finite differences, and the method's plumbing (interval, resume, sampling, the real loop)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from more_methods_kit import (
    assert_distribution_summaries,
    assert_resume_equal,
    assert_run_search,
    tiny_setup,
)
from torch import nn

from search_spaces.nb201 import NB201SuperNet
from search_spaces.space import get_space
from trainables.methods import ArchStepContext, make_distribution
from trainables.methods.hypergradients import TrainGradient, implicit_hypergradient
from trainables.methods.idarts import IDARTS


# ----- ridge regression: w*(a) = (X^T X / n + diag(exp a))^-1 X^T y / n in closed form ---------------------
def _ridge_problem(seed=0, n=40, d=5):
    g = torch.Generator().manual_seed(seed)
    X, Xv = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    w_true = torch.randn(d, generator=g)
    y = X @ w_true + 0.3 * torch.randn(n, generator=g)
    yv = Xv @ w_true + 0.3 * torch.randn(n, generator=g)
    a = 0.5 * torch.randn(d, generator=g)
    return X, y, Xv, yv, a


def _ridge_exact(X, y, Xv, yv, a):
    """w*(a) and d L_val(w*(a), a) / da by the implicit function theorem, in closed form."""
    n = X.shape[0]
    A = X.T @ X / n + torch.diag(a.exp())
    w = torch.linalg.solve(A, X.T @ y / n)
    g_val = Xv.T @ (Xv @ w - yv) / n  # dL_val/dw at w*
    # dw*/da_i = -A^-1 e_i exp(a_i) w_i  =>  dL/da_i = -exp(a_i) w_i (A^-1 g_val)_i, plus the direct 0.2 a
    return w, -a.exp() * w * torch.linalg.solve(A, g_val) + 0.2 * a, A


def _ridge_hypergradient(X, y, Xv, yv, a, w_star, eta, K):
    n = X.shape[0]
    w = w_star.clone().requires_grad_(True)
    alpha = a.clone().requires_grad_(True)

    def train_loss():
        return 0.5 * ((X @ w - y) ** 2).sum() / n + 0.5 * (alpha.exp() * w ** 2).sum()

    def valid_loss():
        loss = 0.5 * ((Xv @ w - yv) ** 2).sum() / n + 0.1 * (alpha ** 2).sum()
        return loss, None

    out = implicit_hypergradient([w], [alpha], train_loss, valid_loss, eta=eta, neumann_terms=K)
    assert w.grad is None and alpha.grad is None  # nothing written to .grad
    return out.grads[0]


def test_neumann_hypergradient_converges_to_the_exact_implicit_gradient(float64):
    X, y, Xv, yv, a = _ridge_problem()
    w_star, exact, A = _ridge_exact(X, y, Xv, yv, a)
    eta = 1.0 / float(torch.linalg.eigvalsh(A).max())  # (I - eta H) has eigenvalues in [0, 1)
    errors = {K: float((_ridge_hypergradient(X, y, Xv, yv, a, w_star, eta, K) - exact).norm() / exact.norm())
              for K in (0, 1, 2, 5, 10, 20, 40, 150)}
    print(errors)
    values = list(errors.values())
    assert all(b < a_ for a_, b in zip(values, values[1:]))  # strictly better with more terms
    assert errors[0] > 1e-2  # the truncation matters at small K ...
    assert errors[150] < 1e-12  # ... and vanishes: the series sums to H^-1 / eta


def test_neumann_partial_sum_is_the_matrix_series(float64):
    """At K terms the result equals d_a L_val - eta * M^T sum_k (I - eta H)^k v with explicit matrices."""
    X, y, Xv, yv, a = _ridge_problem(seed=3)
    w_star, _, A = _ridge_exact(X, y, Xv, yv, a)
    w = w_star + 0.1  # away from the optimum: the formula does not assume it
    n, eta, K = X.shape[0], 0.2, 3
    H = A  # d2 L_train / dw2 (the ridge term is diagonal in w)
    M = torch.diag(a.exp() * w)  # d2 L_train / (da dw)
    v = Xv.T @ (Xv @ w - yv) / n
    series = sum(torch.linalg.matrix_power(torch.eye(5) - eta * H, k) @ v for k in range(K + 1))
    expected = 0.2 * a - eta * M.T @ series
    got = _ridge_hypergradient(X, y, Xv, yv, a, w, eta, K)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_negative_neumann_terms_rejected():
    w = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="neumann_terms"):
        implicit_hypergradient([w], [w], lambda: w.sum(), lambda: (w.sum(), None), eta=0.1, neumann_terms=-1)


# ----- a small smooth supernet: the method's update against explicit Hessians ----------------------------
ACTS = (lambda z: z, torch.tanh, torch.sin, torch.sigmoid, F.softplus)


class SmoothSuperNet(nn.Module):
    """out = b + sum_e sum_k w[e, k] * act_k(x W[e, k]^T): smooth in every weight and edge weight."""

    def __init__(self):
        super().__init__()
        self.W = nn.Parameter(0.5 * torch.randn(6, 5, 3, 2))
        self.b = nn.Parameter(0.1 * torch.randn(3))

    def forward(self, x, weights, active=None):
        w = weights["edges"]
        out = self.b.expand(x.shape[0], -1)
        for k, act in enumerate(ACTS):
            out = out + (w[:, k, None, None] * act(torch.einsum("ecd,nd->enc", self.W[:, k], x))).sum(0)
        return out


def _explicit_implicit_gradient(model, alpha, ctx, eta, K, wd):
    """The same quantity from full matrices: torch.autograd.functional.hessian / jacobian on flat vectors."""
    names, params = zip(*model.named_parameters())
    shapes = [p.shape for p in params]
    theta0 = torch.cat([p.detach().flatten() for p in params])

    def unflat(theta):
        out, i = {}, 0
        for name, s in zip(names, shapes):
            out[name] = theta[i:i + s.numel()].view(s)
            i += s.numel()
        return out

    def loss(theta, a, batch):
        logits = torch.func.functional_call(model, unflat(theta), (batch[0], {"edges": torch.softmax(a, -1)}))
        return F.cross_entropy(logits, batch[1])

    a0 = alpha.detach()
    H = torch.autograd.functional.hessian(lambda t: loss(t, a0, ctx.train_batch), theta0)
    H = H + wd * torch.eye(len(theta0))
    M = torch.autograd.functional.jacobian(
        lambda a: torch.autograd.functional.jacobian(lambda t: loss(t, a, ctx.train_batch), theta0,
                                                     create_graph=True), a0).reshape(len(theta0), -1)
    v = torch.autograd.functional.jacobian(lambda t: loss(t, a0, ctx.valid_batch), theta0)
    d_a = torch.autograd.functional.jacobian(lambda a: loss(theta0, a, ctx.valid_batch), a0).flatten()
    eye = torch.eye(len(theta0))
    series = sum(torch.linalg.matrix_power(eye - eta * H, k) @ v for k in range(K + 1))
    return (d_a - eta * M.T @ series).view_as(a0)


def test_update_is_adam_on_the_explicit_matrix_hypergradient(float64):
    torch.manual_seed(0)
    model = SmoothSuperNet()
    g = torch.Generator().manual_seed(1)
    xt, xv = torch.randn(12, 2, generator=g), torch.randn(12, 2, generator=g)
    yt, yv = torch.randint(0, 3, (12,), generator=g), torch.randint(0, 3, (12,), generator=g)
    wd, lr = 5e-3, 0.1
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
    ctx = ArchStepContext(model, lambda x, ew: model(x, ew.weights, ew.active), F.cross_entropy, (xt, yt),
                          (xv, yv), opt, lr, 4, 0, 1)
    dist = make_distribution("idarts", get_space("nb201"), {"neumann_terms": 3, "init_scale": 0.5},
                             num_valid=12, seed=2)
    alpha0 = dist.alpha["edges"].detach().clone()
    expected = _explicit_implicit_gradient(model, alpha0, ctx, lr, 3, wd)
    before = [p.detach().clone() for p in model.parameters()]
    out = dist.update(ctx)
    a = alpha0.clone().requires_grad_(True)
    adam = torch.optim.Adam([a], lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    a.grad = expected
    adam.step()
    torch.testing.assert_close(dist.alpha["edges"].detach(), a.detach(), rtol=1e-10, atol=1e-13)
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b) and p.grad is None  # weights and their gradients untouched
    assert set(out) == {"arch_loss", "arch_acc"} and all(t.dim() == 0 for t in out.values())


def test_exact_hvp_on_the_nb201_supernet_matches_finite_differences(float64):
    torch.manual_seed(0)
    model = NB201SuperNet(C=4, N=1, num_classes=3).double().train()
    x, y = torch.randn(6, 3, 8, 8), torch.randint(0, 3, (6,))
    edges = torch.softmax(torch.randn(6, 5), -1)
    params = list(model.parameters())

    def grads():
        return torch.autograd.grad(F.cross_entropy(model(x, {"edges": edges}), y), params)

    vector = [torch.randn_like(p) for p in params]
    hv = TrainGradient(F.cross_entropy(model(x, {"edges": edges}), y), params).hvp(vector)
    eps = 1e-7  # small enough that no ReLU changes side along the difference
    with torch.no_grad():
        for p, v in zip(params, vector):
            p.add_(eps * v)
    g_plus = grads()
    with torch.no_grad():
        for p, v in zip(params, vector):
            p.sub_(2 * eps * v)
    g_minus = grads()
    fd = torch.cat([(a - b).flatten() / (2 * eps) for a, b in zip(g_plus, g_minus)])
    exact = torch.cat([h.flatten() for h in hv])
    assert float((fd - exact).norm() / exact.norm()) < 1e-6


# ----- the method ---------------------------------------------------------------------------------------
def test_defaults_and_interval():
    dist = make_distribution("idarts", get_space("nb201"), {}, num_valid=10)
    assert isinstance(dist, IDARTS)
    assert dist.update_interval == 4 and dist.neumann_terms == 2  # the authors' T4_K2 NB201 setting
    one = make_distribution("idarts", get_space("nb201"), {"inner_steps": 1}, num_valid=10)
    assert one.update_interval == 1


@pytest.mark.parametrize("params, match", [({"neumann_terms": -1}, "neumann_terms"),
                                           ({"neumann_terms": 1.5}, "neumann_terms"),
                                           ({"inner_steps": 0}, "inner_steps"),
                                           ({"inner_step": 2}, "unknown hyper-parameter")])
def test_bad_params_name_the_field(params, match):
    with pytest.raises(ValueError, match=match):
        make_distribution("idarts", get_space("nb201"), params, num_valid=10)


def test_updates_move_alpha_on_the_nb201_supernet():
    dist, model, opt, batches = tiny_setup("idarts", {"inner_steps": 2})
    alpha0 = dist.alpha["edges"].detach().clone()
    from more_methods_kit import run_steps
    outs = run_steps(dist, model, opt, batches, 0, 6)
    assert len(outs) == 3  # one update per 2 weight steps
    assert not torch.equal(alpha0, dist.alpha["edges"].detach())
    assert all(torch.isfinite(o["arch_loss"]) for o in outs)


def test_resume_is_exact():
    assert_resume_equal("idarts", {"inner_steps": 2})


def test_summaries_and_samples():
    dist, model, opt, batches = tiny_setup("idarts", {"inner_steps": 1, "init_scale": 1.0})
    assert_distribution_summaries(dist)


def test_through_run_search_and_checkpoint_resume(tiny_cifar10, tmp_path):
    metrics = assert_run_search("idarts", tiny_cifar10, tmp_path, {"inner_steps": 2})
    assert all(m["arch_steps"] == 1 for m in metrics)  # 2 steps per epoch / T = 2
    assert all(m["valid_loss"] == m["valid_loss"] for m in metrics)
