"""Shared checks for the iDARTS / SNAS / GDAS / DrNAS tests: a tiny NB201 supernet driven by a hand-written
copy of the search loop's step order, resume equality, sampling validity and a run through `run_search`."""

from __future__ import annotations

import io

import torch
import torch.nn.functional as F

from search_spaces.nb201 import NB201SuperNet
from search_spaces.space import get_space
from trainables.methods import ArchStepContext, make_distribution


def tiny_setup(method: str, params: dict | None = None, seed: int = 0, C: int = 4):
    """(distribution, supernet, SGD optimizer, batches) for a tiny NB201 search on 8x8 random images."""
    torch.manual_seed(seed)
    model = NB201SuperNet(C=C, N=1, num_classes=3).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    dist = make_distribution(method, get_space("nb201"), params or {}, num_valid=32, seed=seed)
    g = torch.Generator().manual_seed(seed + 7)
    batches = [((torch.randn(6, 3, 8, 8, generator=g), torch.randint(0, 3, (6,), generator=g)),
                (torch.randn(6, 3, 8, 8, generator=g), torch.randint(0, 3, (6,), generator=g)))
               for _ in range(16)]
    return dist, model, opt, batches


def forward_fn(model):
    def forward(x, edge_weights):
        return model(x, edge_weights.weights, edge_weights.active)
    return forward


def make_ctx(model, opt, batch_pair, epoch: int = 0, total_epochs: int = 1, lr: float = 0.05):
    """An ArchStepContext as the loop builds it, for one (train, valid) batch pair."""
    train, valid = batch_pair
    return ArchStepContext(model, forward_fn(model), F.cross_entropy, train, valid, opt, lr, 1, epoch,
                           total_epochs)


def run_steps(dist, model, opt, batches, start: int, steps: int, epoch: int = 0, total_epochs: int = 2):
    """The loop's order (trainables/search/loop.py): weight step with the distribution's weights, then `update`
    every `update_interval` steps. Returns the metrics of every update."""
    outs = []
    for step in range(start, start + steps):
        (x, y), (xv, yv) = batches[step % len(batches)]
        ew = dist.weights_for_weight_step()
        loss = F.cross_entropy(model(x, ew.weights, ew.active), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % dist.update_interval == 0:
            ctx = ArchStepContext(model, forward_fn(model), F.cross_entropy, (x, y), (xv, yv), opt, 0.05,
                                  step + 1, epoch, total_epochs)
            outs.append(dist.update(ctx))
    return outs


def roundtrip(state: dict) -> dict:
    """A state through torch.save / torch.load(weights_only=True), as checkpoints travel."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _same(a, b) -> bool:
    """Nested equality of states (tensors compared exactly)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def alpha_of(dist) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in dist.state_dict()["alpha"].items()}


def assert_resume_equal(method: str, params: dict | None = None):
    """Run 4 steps, checkpoint (weights, optimizer, distribution), run 4 more; a fresh distribution (other
    seed) restored from the checkpoint must reproduce the continuation bit for bit. The in-memory state is
    a snapshot: later steps do not change it."""
    dist, model, opt, batches = tiny_setup(method, params)
    dist.on_epoch_start(0, 2)
    run_steps(dist, model, opt, batches, 0, 4)
    saved_model = roundtrip(model.state_dict())
    saved_opt = roundtrip(opt.state_dict())
    live_state = dist.state_dict()
    saved_dist = roundtrip(live_state)
    dist.on_epoch_start(1, 2)
    outs_a = run_steps(dist, model, opt, batches, 4, 4, epoch=1)
    alpha_a, samples_a = alpha_of(dist), dist.sample(5, seed=11)

    dist2, model2, opt2, _ = tiny_setup(method, params, seed=99)
    model2.load_state_dict(saved_model)
    opt2.load_state_dict(saved_opt)
    assert _same(live_state, saved_dist)  # unchanged by the 4 later steps
    dist2.load_state_dict(saved_dist)
    dist2.on_epoch_start(1, 2)
    outs_b = run_steps(dist2, model2, opt2, batches, 4, 4, epoch=1)
    for k in alpha_a:
        assert torch.equal(alpha_a[k], alpha_of(dist2)[k]), k
    assert samples_a == dist2.sample(5, seed=11)
    assert len(outs_a) == len(outs_b)
    for oa, ob in zip(outs_a, outs_b):
        assert oa.keys() == ob.keys()
        for k in oa:
            assert torch.equal(oa[k], ob[k]), k
    return dist


def assert_distribution_summaries(dist):
    """op_probabilities rows sum to 1; sample(k) gives k canonical NB201 strings, reproducible by seed."""
    space = get_space("nb201")
    probs = dist.op_probabilities()
    assert set(probs) == {"edges"} and probs["edges"].shape == (6, 5)
    torch.testing.assert_close(probs["edges"].sum(-1), torch.ones(6), rtol=0, atol=1e-6)
    assert (probs["edges"] >= 0).all()
    archs = dist.sample(20, seed=5)
    assert len(archs) == 20 and all(space.canonical(a) == a for a in archs)
    assert archs == dist.sample(20, seed=5)
    assert space.canonical(dist.most_likely()) == dist.most_likely()
    assert 0.0 <= dist.entropy() <= dist.max_entropy() + 1e-9


def tiny_search_config(method: str, data_root, **extra) -> dict:
    return {"space": "nb201", "dataset": "cifar10", "data_root": str(data_root), "method": method,
            "epochs": 3, "batch_size": 8, "C": 4, "N": 1, "seed": 0, "device": "cpu", "steps_per_epoch": 2,
            **extra}


def _without_time(rows):
    """Metrics minus the wall time, with NaN (SNAS has no validation step) made comparable."""
    return [{k: "nan" if v != v else v for k, v in r.items() if k != "epoch_time_s"} for r in rows]


def assert_run_search(method: str, data_root, tmp_path, params: dict | None = None):
    """Three tiny epochs through the real loop (`trainables.search.loop`): a canonical genotype and finite losses
    per epoch, and a run checkpointed after epoch 1 and resumed in a fresh `SearchRun` (other global RNG
    state) reproduces the unbroken run's metrics exactly. Returns the unbroken run's metrics."""
    from trainables.search.loop import SearchRun, run_search

    cfg = tiny_search_config(method, data_root, method_params=params or {})
    full = run_search(cfg)
    assert len(full) == 3
    space = get_space("nb201")
    for m in full:
        assert space.canonical(m["genotype"]) == m["genotype"]
        assert m["train_loss"] == m["train_loss"]  # not NaN
    first = SearchRun(cfg)
    head = [first.run_epoch()]
    path = first.save(tmp_path / f"{method}.pt")
    torch.manual_seed(1234)
    resumed = SearchRun.from_checkpoint(path)
    tail = [resumed.run_epoch() for _ in range(2)]
    assert _without_time(head + tail) == _without_time(full)
    return full
