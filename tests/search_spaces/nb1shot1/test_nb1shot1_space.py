"""NAS-Bench-1Shot1 as a SearchSpace: groups, discretisation, one-hot, supernet, derived networks, sampling
by every registered method."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces.nb1shot1 import Arch, arch_to_spec, parse
from search_spaces.nb1shot1.encoding import random_architecture
from search_spaces.nb1shot1.nb101.graph import canonical_spec
from search_spaces.space import available_spaces, get_space

SPACES = ["nb1shot1-1", "nb1shot1-2", "nb1shot1-3"]


def test_registered_and_shapes():
    assert set(SPACES) <= set(available_spaces())
    s1, s2, s3 = (get_space(n) for n in SPACES)
    assert s1.arch_shapes == {"ops": (4, 3), "output": (1, 5), "inputs_3": (1, 3), "inputs_4": (1, 4)}
    assert s2.arch_shapes == {"ops": (4, 3), "output": (1, 5), "inputs_2": (1, 2), "inputs_3": (1, 3),
                              "inputs_4": (1, 4)}
    assert s3.arch_shapes["ops"] == (5, 3) and s3.arch_shapes["output"] == (1, 6) and "inputs_5" in s3.arch_shapes
    assert all(s.benchmark_name == "nb101" for s in (s1, s2, s3))
    for s in (s1, s2, s3):
        assert set(s.option_names) == set(s.arch_shapes)
        assert all(len(s.option_names[g]) == shape[1] for g, shape in s.arch_shapes.items())


def test_discretize_takes_top_k_parents():
    space = get_space("nb1shot1-2")
    scores = {g: torch.zeros(shape) for g, shape in space.arch_shapes.items()}
    scores["ops"][:, 1] = 1.0  # conv3x3 everywhere
    scores["ops"][0] = torch.tensor([3.0, 0.0, 0.0])  # block 1: maxpool
    scores["inputs_2"][0] = torch.tensor([0.1, 0.9])
    scores["inputs_3"][0] = torch.tensor([5.0, -1.0, 4.0])
    scores["inputs_4"][0] = torch.tensor([0.0, 2.0, 3.0, 1.0])
    scores["output"][0] = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
    probs = {g: torch.softmax(t, -1) for g, t in scores.items()}  # per-row probabilities (the contract)
    assert space.discretize(probs) == "2:maxpool3x3~0|conv3x3~1|conv3x3~0+2|conv3x3~1+2|out~2+3+4"
    with pytest.raises(ValueError, match="inputs_3"):
        space.discretize({g: t for g, t in scores.items() if g != "inputs_3"})
    with pytest.raises(ValueError, match="shape"):
        space.discretize({**scores, "ops": torch.zeros(3, 3)})


@pytest.mark.parametrize("name", SPACES)
def test_one_hot_round_trip_and_canonical(name):
    space = get_space(name)
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = random_architecture(space.number, rng).to_string()
        assert space.discretize(space.one_hot(arch)) == arch
        assert space.canonical(arch) == arch
    other = "3:conv3x3~0|conv3x3~1|conv3x3~2|conv3x3~0+3|conv3x3~1+4|out~4+5"
    if name != "nb1shot1-3":
        with pytest.raises(ValueError, match="belongs to space 3"):
            space.canonical(other)


@pytest.mark.parametrize("name", SPACES)
def test_supernet_forward_backward_and_exact_skipping(name):
    torch.manual_seed(0)
    space = get_space(name)
    net = space.supernet(num_classes=10, C=4, N=1).eval()
    x = torch.randn(2, 3, 32, 32)
    alphas = {g: torch.randn(shape, requires_grad=True) for g, shape in space.arch_shapes.items()}
    weights = {g: torch.softmax(a, dim=-1) for g, a in alphas.items()}
    out = net(x, weights)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in alphas.values())
    # a discrete architecture as weights: skipping the zero-weight ops/edges changes nothing
    arch = random_architecture(space.number, np.random.default_rng(1)).to_string()
    oh = space.one_hot(arch)
    active = {g: [torch.nonzero(row).flatten().tolist() for row in w] for g, w in oh.items()}
    with torch.no_grad():
        torch.testing.assert_close(net(x, oh, active), net(x, oh), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", SPACES)
def test_derived_network_is_the_nb101_model_of_the_cell(name):
    space = get_space(name)
    rng = np.random.default_rng(2)
    archs = [random_architecture(space.number, rng).to_string() for _ in range(3)]
    for arch in archs:
        net = space.network(arch, num_classes=10, C=4, N=1)
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        assert net.module_hash == canonical_spec(*arch_to_spec(arch))[2]
    # only chosen ops are built: an all-maxpool cell has fewer parameters than an all-conv3x3 one
    a = parse(archs[0])
    pool = Arch(a.space, (0,) * len(a.ops), a.parents, a.output).to_string()
    conv = Arch(a.space, (1,) * len(a.ops), a.parents, a.output).to_string()
    n_pool = sum(p.numel() for p in space.network(pool, C=4, N=1).parameters())
    n_conv = sum(p.numel() for p in space.network(conv, C=4, N=1).parameters())
    assert n_pool < n_conv


@pytest.mark.parametrize("method", ["darts-v1", "darts-v2", "balenas", "balenas-v2", "idarts", "snas", "gdas",
                                    "drnas"])
def test_every_method_samples_valid_architectures(method):
    registry = pytest.importorskip("trainables.methods.registry")
    if method not in registry.available_methods():
        pytest.skip(f"method {method} not registered yet")
    for name in SPACES:
        space = get_space(name)
        dist = registry.make_distribution(method, space, {}, num_valid=64, device="cpu", seed=0)
        archs = dist.sample(16, seed=3)
        assert len(archs) == 16
        for a in archs:
            assert space.canonical(a) == a
            canonical_spec(*arch_to_spec(a))
        assert space.canonical(dist.most_likely())
