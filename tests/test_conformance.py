"""Conformance of every registered method, space and proxy (as timm tests every entry of `list_models()`):
a new registry entry is tested here without editing a list.

- every method x every space: a short search runs; `most_likely()` and `sample(k)` give valid architectures;
  the distribution's probabilities are per-row probabilities; a stopped and resumed search is bit-exact;
- equal probabilities give the same architecture for every method (the space discretises, not the method);
- every proxy scores every space's derived network (a number, or an explicit error row, never a silent NaN).

Networks are tiny (C=2, one cell per stage or the fewest layers the space builds), images 8x8, one step per
epoch.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch

from search_spaces.data.device import DeviceDataset
from search_spaces.latency_lut import random_architectures
from search_spaces.space import available_spaces, get_space
from trainables import proxies
from trainables.methods import available_methods, get_method, make_distribution
from trainables.proxy_stage.selection import score_architectures
from trainables.search.loop import SearchRun

SPACES = available_spaces()
METHODS = available_methods()
NUM_CLASSES = 4


def tiny(space, kind: str) -> dict[str, int]:
    """The smallest size a space builds: width C=2 and every other key (cells, layers) 1, raised one at a time
    (up to the default) while the space rejects it with an error naming the key (e.g. DARTS: layers >= 3)."""
    defaults = space.sizes(kind)
    size = {k: min(v, 2 if k == "C" else 1) for k, v in defaults.items()}
    build = space.supernet if kind == "search" else lambda **kw: space.network(_some_arch(space), **kw)
    for _ in range(sum(defaults.values())):
        try:
            build(num_classes=NUM_CLASSES, **size)
            return size
        except ValueError as err:
            named = [k for k in size if k in str(err) and size[k] < defaults[k]]
            if not named:
                raise
            size[named[0]] += 1
    return defaults


def _some_arch(space) -> str:
    uniform = {g: torch.full((rows, opts), 1.0 / opts) for g, (rows, opts) in space.arch_shapes.items()}
    return space.discretize(uniform)


def _splits(seed: int = 0, n: int = 8, hw: int = 8) -> dict[str, DeviceDataset]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name in ("search-train", "search-valid"):
        images = torch.randint(0, 256, (n, 3, hw, hw), generator=g, dtype=torch.uint8)
        labels = torch.randint(0, NUM_CLASSES, (n,), generator=g)
        out[name] = DeviceDataset(images, labels, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), NUM_CLASSES, name)
    return out


def _config(space: str, method: str, epochs: int = 2) -> dict:
    return {"space": space, "method": method, "epochs": epochs, "batch_size": 4, "steps_per_epoch": 1,
            "device": "cpu", "seed": 0, "augment": False, "channels_last": False,
            **tiny(get_space(space), "search")}


def _check_probabilities(space, probs: dict[str, torch.Tensor]) -> None:
    assert set(probs) == set(space.arch_shapes)
    for group, p in probs.items():
        assert tuple(p.shape) == tuple(space.arch_shapes[group]), group
        assert bool((p >= 0).all()), group
        torch.testing.assert_close(p.sum(-1).double(), torch.ones(p.shape[0], dtype=torch.float64), atol=1e-5,
                                   rtol=0)


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("method", METHODS)
def test_method_on_space_searches_samples_and_resumes_exactly(method, space_name, tmp_path):
    space = get_space(space_name)
    cfg = _config(space_name, method)
    unbroken = SearchRun(cfg, splits=_splits())
    full = [unbroken.run_epoch() for _ in range(2)]
    for row in full:
        assert space.canonical(row["genotype"]) == row["genotype"]
        assert math.isfinite(row["train_loss"])

    dist = unbroken.distribution
    _check_probabilities(space, dist.mode_probabilities())
    draws = dist.sample_probabilities(3, torch.Generator().manual_seed(0))
    assert len(draws) == 3
    for probs in draws:
        _check_probabilities(space, probs)
    assert dist.most_likely() == space.discretize(dist.mode_probabilities())
    samples = dist.sample(5, seed=1)
    assert len(samples) == 5 and samples == dist.sample(5, seed=1)
    for arch in [dist.most_likely(), *samples]:
        assert space.canonical(arch) == arch

    first = SearchRun(cfg, splits=_splits())
    head = [first.run_epoch()]
    path = first.save(tmp_path / "search.pt")
    del first
    torch.manual_seed(4321)  # a resumed process starts with other global RNG state
    resumed = SearchRun.from_checkpoint(path, splits=_splits())
    tail = [resumed.run_epoch()]
    # NaN (a method without validation metrics, e.g. SNAS) must compare equal to NaN here
    strip = lambda rows: [{k: "nan" if isinstance(v, float) and math.isnan(v) else v  # noqa: E731
                           for k, v in r.items() if k != "epoch_time_s"} for r in rows]
    assert strip(head + tail) == strip(full)
    resumed_state = resumed.model.state_dict()
    for k, v in unbroken.model.state_dict().items():
        assert torch.equal(v, resumed_state[k]), k
    for k, v in dist.mode_probabilities().items():
        assert torch.equal(v, resumed.distribution.mode_probabilities()[k]), k


@functools.cache
def _params_model(space_name: str):
    """The space's params model, fitted once per space for the whole parametrisation (the same fit the search
    run makes: both use the fixture-sized sample)."""
    from search_spaces.cost_model import cost_model

    return cost_model(space_name, "params")


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_under_a_budget_lowers_the_expected_cost_below_it(method, space_name):
    """A params budget well under the uniform distribution's expected cost: every method, through its own
    relaxation, brings the expected cost under it in a few steps (a strong penalty and a large architecture step
    size, so that four tiny epochs suffice)."""
    model = _params_model(space_name)
    space = get_space(space_name)
    uniform = float(model.expected({g: torch.full(s, 1.0 / s[1]) for g, s in space.arch_shapes.items()}))
    cheapest = min(model.of(a) for a in random_architectures(space, 50, seed=0))
    budget = cheapest + 0.5 * (uniform - cheapest)
    fields = get_method(method).Params.model_fields
    params = {"arch_lr": 0.2} if "arch_lr" in fields else {}
    if "dynamic_schedule" in fields:  # an architecture step after every weight step (DARTS-PRIME's fixed schedule)
        params.update(dynamic_schedule=False, steps_per_arch_step=1)
    cfg = {**_config(space_name, method, epochs=6), "steps_per_epoch": 3, "method_params": params,
           "cost": {"metric": "params", "budget": budget, "weight": 50.0}}
    run = SearchRun(cfg, splits=_splits())
    rows = [run.run_epoch() for _ in range(6)]
    assert rows[0]["cost_budget"] == pytest.approx(budget)
    assert rows[-1]["cost_expected"] < budget, [r["cost_expected"] for r in rows]
    assert math.isfinite(rows[-1]["cost_argmax"]) and rows[-1]["cost_dual"] == 50.0


@pytest.mark.parametrize("space_name", SPACES)
def test_equal_probabilities_give_one_architecture_for_every_method(space_name):
    """With alpha = 0 (init_scale 0) every method's distribution is uniform per row; the most likely
    architecture is then the space's discretisation of equal probabilities, whatever the method."""
    space = get_space(space_name)
    expected = _some_arch(space)
    assert space.canonical(expected) == expected
    tested = []
    for method in METHODS:
        if "init_scale" not in get_method(method).Params.model_fields:
            continue
        dist = make_distribution(method, space, {"init_scale": 0.0}, num_valid=8, seed=3)
        for p in dist.mode_probabilities().values():
            torch.testing.assert_close(p, torch.full_like(p, 1.0 / p.shape[-1]))
        assert dist.most_likely() == expected, method
        tested.append(method)
    assert tested, "no method takes init_scale"


@pytest.mark.parametrize("space_name", SPACES)
def test_every_proxy_scores_the_space_network(space_name):
    space = get_space(space_name)
    dist = make_distribution(METHODS[0], space, {}, num_valid=8, seed=0)
    archs = dist.sample(2, seed=0)
    g = torch.Generator().manual_seed(0)
    inputs, targets = torch.randn(4, 3, 8, 8, generator=g), torch.randint(0, NUM_CLASSES, (4,), generator=g)
    names = proxies.names()
    rows = score_architectures(archs, inputs, targets, names, space=space_name, num_classes=NUM_CLASSES,
                               size=tiny(space, "proxy"))
    assert [r["arch"] for r in rows] == archs
    for row in rows:
        for name in names:
            value, error = row[name], row[f"{name}_error"]
            if error is None:
                assert value is not None and math.isfinite(value), (name, row["arch"])
            else:
                assert value is None or math.isnan(value), (name, error)
        assert row["params_error"] is None and row["params"] > 0  # every network has parameters


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "imagenet", "ImageNet16-120", "no-such-data"])
def test_trained_reference_has_the_published_columns(space_name, dataset):
    from search_spaces.benchmarks.published import TRAINED_COLUMNS

    rows = get_space(space_name).trained_reference(dataset)
    assert list(rows.columns) == TRAINED_COLUMNS
    assert (rows["dataset"] == dataset).all() and rows["source"].notna().all() and rows["where"].notna().all()
    assert rows["test_error"].astype(float).between(0, 100).all()


def test_sizes_reject_a_key_the_space_does_not_take():
    for name in SPACES:
        space = get_space(name)
        with pytest.raises(ValueError, match=f"takes no size key 'width_multiplier'.*{name}|{name}.*width"):
            space.sizes("search", {"width_multiplier": 2})
        assert space.sizes("proxy") == dict(space.proxy_size)


@pytest.mark.parametrize("space_name", SPACES)
def test_the_space_counts_what_it_enumerates(space_name):
    """`count()` (what cost-model fits and the report ask before listing a space) is `len(enumerate())`, checked by
    listing where that takes under a second; None exactly where enumeration does not apply."""
    space = get_space(space_name)
    count = space.count()
    if count is None:
        with pytest.raises(ValueError):
            space.enumerate()
    elif count <= 50_000:
        assert count == len(space.enumerate())
    else:
        assert isinstance(count, int)
