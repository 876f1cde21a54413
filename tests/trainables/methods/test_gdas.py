"""GDAS: hard Gumbel-max samples against softmax(alpha), exactness of computing only the sampled op, the
straight-through gradient against an independent computation, one host copy per step, the 10 -> 0.1
temperature schedule, resume, sampling and the real loop."""

from __future__ import annotations

import sys

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

from search_spaces.space import get_space
from trainables.methods import make_distribution
from trainables.search.loop import run_search


def _gdas(params=None, seed=0):
    return make_distribution("gdas", get_space("nb201"), params or {}, num_valid=10, seed=seed)


def test_weight_step_sample_is_a_detached_one_hot_with_its_active_op():
    dist = _gdas({"init_scale": 1.0})
    ew = dist.weights_for_weight_step()
    w = ew.weights["edges"]
    assert not w.requires_grad
    assert torch.equal(w.sum(-1), torch.ones(6)) and set(w.unique().tolist()) <= {0.0, 1.0}
    assert ew.active["edges"] == [[int(i)] for i in w.argmax(-1)]


def test_hard_samples_follow_softmax_alpha():
    dist = _gdas()
    logits = torch.tensor([[1.5, -1.0, 0.0, 1.0, 0.2]] * 6)
    with torch.no_grad():
        dist.alpha["edges"].copy_(logits)
    n = 3000
    counts = torch.zeros(6, 5)
    for _ in range(n):
        counts += dist.weights_for_weight_step().weights["edges"]
    assert (counts / n - torch.softmax(logits, -1)).abs().max() < 0.042  # 4.5 binomial sigmas


def test_computing_only_the_sampled_op_is_exact():
    dist, model, _, batches = tiny_setup("gdas", {"init_scale": 1.0})
    x = batches[0][0][0]
    for _ in range(3):
        ew = dist.weights_for_weight_step()
        sparse, dense = model(x, ew.weights, ew.active), model(x, ew.weights, None)
        torch.testing.assert_close(sparse, dense, rtol=0, atol=1e-6)


def test_update_is_adam_on_the_straight_through_gradient():
    dist, model, opt, batches = tiny_setup("gdas", {"init_scale": 1.0})
    dist.on_epoch_start(3, 10)
    (x, y), (xv, yv) = batches[0]
    alpha0 = dist.alpha["edges"].detach().clone()
    state = dist.generator.get_state()
    ew = dist.weights_for_weight_step()
    ctx = make_ctx(model, opt, batches[0], 3, 10)
    out = dist.update(ctx)

    # independently: the second of the two noise draws made at the weight step is the architecture sample
    g = torch.Generator().manual_seed(0)
    g.set_state(state)

    def noise():
        fi = torch.finfo(torch.float32)
        u = torch.rand(6, 5, generator=g).clamp(fi.tiny, 1 - fi.eps)
        return -torch.log(-torch.log(u))

    n_weight, n_arch = noise(), noise()
    logp = torch.log_softmax(alpha0, -1)
    assert torch.equal(ew.weights["edges"].argmax(-1), (logp + n_weight).argmax(-1))
    index = (logp + n_arch).argmax(-1)
    hard = F.one_hot(index, 5).float().requires_grad_(True)
    # dL/d(edge weights) at the one-hot, with every op computed; only the sampled entries carry gradient when
    # the unsampled ops are not computed, so keep those, then apply the softmax's vector-Jacobian product
    (g_w,) = torch.autograd.grad(F.cross_entropy(model(xv, {"edges": hard}), yv), hard)
    g_w = g_w * F.one_hot(index, 5)
    a = alpha0.clone().requires_grad_(True)
    probs = torch.softmax((torch.log_softmax(a, -1) + n_arch) / dist.tau, -1)
    (expected,) = torch.autograd.grad(probs, a, grad_outputs=g_w)
    ref = alpha0.clone().requires_grad_(True)
    adam = torch.optim.Adam([ref], lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    ref.grad = expected
    adam.step()
    torch.testing.assert_close(dist.alpha["edges"].detach(), ref.detach(), rtol=1e-5, atol=1e-9)
    assert set(out) == {"arch_loss", "arch_acc"}


def test_one_host_copy_per_step(monkeypatch):
    dist, model, opt, batches = tiny_setup("gdas")
    calls = []
    for name in ("tolist", "item", "cpu"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_code.co_filename  # our code only: Adam's CPU step counter is no sync
            if "trainables" in caller or "search_spaces" in caller:
                calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    (x, y), (xv, yv) = batches[0]
    ew = dist.weights_for_weight_step()
    F.cross_entropy(model(x, ew.weights, ew.active), y).backward()
    opt.step()
    ctx = make_ctx(model, opt, batches[0], 0, 1)
    dist.update(ctx)
    assert calls == ["tolist"]


def test_temperature_schedule_is_linear_from_10_to_0_1():
    dist = _gdas()
    taus = []
    for epoch in range(4):
        dist.on_epoch_start(epoch, 4)
        taus.append(dist.tau)
    # xautodl: tau_max - (tau_max - tau_min) * e / (E - 1)
    assert taus == pytest.approx([10.0, 6.7, 3.4, 0.1])


def test_update_without_pending_sample_draws_its_own():
    dist, model, opt, batches = tiny_setup("gdas")
    (x, y), (xv, yv) = batches[0]
    ctx = make_ctx(model, opt, batches[0], 0, 1)
    alpha0 = dist.alpha["edges"].detach().clone()
    out = dist.update(ctx)
    assert torch.isfinite(out["arch_loss"]) and not torch.equal(alpha0, dist.alpha["edges"].detach())


@pytest.mark.parametrize("params, match", [({"tau_min": 20.0}, "tau_min"), ({"tau_max": -1}, "tau_max"),
                                           ({"arch_lr": "fast"}, "arch_lr")])
def test_bad_params_name_the_field(params, match):
    with pytest.raises(ValueError, match=match):
        _gdas(params)


def test_loop_order_trains_alpha():
    dist, model, opt, batches = tiny_setup("gdas")
    alpha0 = dist.alpha["edges"].detach().clone()
    outs = run_steps(dist, model, opt, batches, 0, 3)
    assert len(outs) == 3 and not torch.equal(alpha0, dist.alpha["edges"].detach())


def test_resume_is_exact():
    assert_resume_equal("gdas")


def test_summaries_and_samples():
    assert_distribution_summaries(_gdas({"init_scale": 1.0}))


def test_through_run_search_and_checkpoint_resume(tiny_cifar10, tmp_path):
    metrics = assert_run_search("gdas", tiny_cifar10, tmp_path)
    assert [m["tau"] for m in metrics] == pytest.approx([10.0, 5.05, 0.1])
    assert all(m["valid_loss"] == m["valid_loss"] for m in metrics)


def test_multi_group_space_splits_the_one_host_copy_per_group(tiny_cifar10):
    """NAS-Bench-1Shot1 space 2 has several choice groups: each group's active lists match its one-hot rows,
    and a short search runs through the loop."""
    space = get_space("nb1shot1-2")
    dist = make_distribution("gdas", space, {"init_scale": 1.0}, num_valid=10, seed=0)
    ew = dist.weights_for_weight_step()
    assert set(ew.weights) == set(space.arch_shapes) and len(space.arch_shapes) > 1
    for name, (rows, options) in space.arch_shapes.items():
        assert ew.weights[name].shape == (rows, options)
        assert ew.active[name] == [[int(i)] for i in ew.weights[name].argmax(-1)]
    rows = run_search({"space": "nb1shot1-2", "dataset": "cifar10", "data_root": str(tiny_cifar10),
                       "method": "gdas", "epochs": 1, "batch_size": 8, "C": 4, "N": 1, "seed": 0,
                       "device": "cpu", "steps_per_epoch": 2})
    assert space.canonical(rows[0]["genotype"]) == rows[0]["genotype"]
