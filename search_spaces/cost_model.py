"""Additive cost models of a space's choices: the differentiable cost a search under a budget optimises.

    model = cost_model("nb201", "latency", device="pixel3")          # packaged whole-architecture table, fitted
    model = cost_model("darts", "latency", lut="darts_cpu.parquet")  # a table measured by `balenas latency measure`
    model = cost_model("nb201", "params")                            # or "flops": exact, from the space's parts
    model.of("|nor_conv_3x3~0|+|...|")                               # the model's cost of one architecture
    model.expected(probs)                                            # E[cost] of per-row option probabilities

A model is `fixed + sum over groups g of <selection_g, per_option_g>`, where `selection` is the space's
`expected_selection(probs)`: how much of each (row, option) the space's discretisation rule keeps in expectation
(NB201: the probabilities themselves; DARTS: each edge's op probabilities without `none`, scaled by the chance
that the edge is among its node's two kept inputs; a one-hot architecture gives exactly its own choices). It is
fitted by least squares to the source's cost of architectures encoded as `space.one_hot` — every architecture
of spaces that can be enumerated, else a fixed random sample — and carries the fit's R^2 and Spearman: exact
(R^2 = 1) for params, FLOPs and measured tables of the DARTS space, whose costs add up over the kept ops; a fit
where the cost is not additive (NB201 device tables: `benchmarks/costs.md`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from search_spaces.space import ArchWeights, SearchSpace, get_space

METRICS = ("latency", "params", "flops")
UNITS = {"latency": "ms", "params": "M", "flops": "M"}
#: spaces with at most this many architectures are fitted on all of them
ENUMERATE_UP_TO = 20_000
#: architectures sampled for the fit of larger spaces
SAMPLED = 1_000


@dataclass
class AdditiveCost:
    """fixed + sum over groups of <space.expected_selection(probs), per_option>; see the module docstring."""

    space: str
    metric: str
    source: str
    fixed: float
    per_option: dict[str, torch.Tensor]
    r2: float = float("nan")
    spearman: float = float("nan")
    n_fitted: int = 0
    #: the source's own cost of one architecture (the table, the measured LUT, the exact params/FLOPs)
    exact: Callable[[str], float] | None = field(default=None, repr=False, compare=False)
    _space: SearchSpace | None = field(default=None, repr=False, compare=False)

    @property
    def unit(self) -> str:
        return UNITS[self.metric]

    def to(self, device: torch.device | str) -> AdditiveCost:
        self.per_option = {g: c.to(device) for g, c in self.per_option.items()}
        return self

    def expected(self, probs: ArchWeights) -> torch.Tensor:
        """E[cost] of per-row option probabilities (any relaxation: softmax, a Gaussian, Dirichlet or Gumbel draw),
        differentiable in `probs`; a 0-d tensor."""
        space = self._space or get_space(self.space)
        selection = space.expected_selection(probs)
        total = None
        for group, cost in self.per_option.items():
            term = (selection[group].to(cost.dtype) * cost.to(selection[group].device)).sum()
            total = term if total is None else total + term
        return total + self.fixed

    def of(self, arch: str) -> float:
        """The model's cost of one architecture."""
        space = self._space or get_space(self.space)
        return float(self.expected(space.one_hot(space.canonical(arch))))


def _fit_archs(space: SearchSpace, seed: int) -> list[str]:
    count = space.count()
    if count is not None and count <= ENUMERATE_UP_TO:
        return space.enumerate()
    from search_spaces.latency_lut import random_architectures

    return random_architectures(space, SAMPLED, seed=seed)


def fit(space: SearchSpace | str, cost: Callable[[str], float], *, metric: str, source: str,
        archs: list[str] | None = None, seed: int = 0) -> AdditiveCost:
    """Least-squares additive model of `cost(arch)` over `archs` (default: all, or a sample) encoded one-hot."""
    space = get_space(space) if isinstance(space, str) else space
    archs = archs if archs is not None else _fit_archs(space, seed)
    groups = list(space.arch_shapes)
    rows = []
    for arch in archs:
        hot = space.one_hot(arch)  # `expected_selection` returns a one-hot architecture unchanged (its contract)
        rows.append(np.concatenate([hot[g].detach().double().cpu().numpy().ravel() for g in groups]))
    x = np.column_stack([np.ones(len(rows)), np.asarray(rows)])
    y = np.asarray([float(cost(a)) for a in archs], dtype=np.float64)
    # numpy's minimum-norm least squares: some (row, option) columns are always 0 (DARTS' `none`) or collinear
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    pred = x @ coef
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((y - pred) ** 2)) / ss_tot if ss_tot > 0 else 1.0
    from scipy.stats import spearmanr

    rho = float(spearmanr(y, pred).statistic) if ss_tot > 0 else 1.0
    per_option, start = {}, 1
    for g in groups:
        shape = space.arch_shapes[g]
        n = shape[0] * shape[1]
        per_option[g] = torch.tensor(coef[start:start + n].reshape(shape), dtype=torch.float32)
        start += n
    return AdditiveCost(space.name, metric, source, float(coef[0]), per_option, r2, rho, len(archs), cost, space)


def part_values(space: SearchSpace, metric: str, size: Mapping[str, Any], num_classes: int,
                image_size: int) -> dict[str, float]:
    """Params (millions) or multiply-adds of one image (millions) of every part of the space's latency
    decomposition (`latency_parts`), counted as `search_spaces.costs` counts whole networks."""
    from search_spaces.costs import count_params
    from search_spaces.latency_lut import decomposition

    parts_of, _ = decomposition(space)
    out = {}
    for part in parts_of(num_classes, image_size, **size):
        module = part.make().eval()
        if metric == "params":
            out[part.key] = count_params(module) / 1e6
            continue
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:  # on the meta device: shapes only, the same count without the arithmetic
            module.to("meta")(*[torch.zeros(1, *s, device="meta") for s in part.input_shapes])
        out[part.key] = counter.get_total_flops() / 2 / 1e6
    return out


def check_source(metric: str, device: str | None, lut: str | None) -> None:
    """A ValueError naming `cost.<field>` unless `metric` is known and has exactly its source: `device` or `lut` for
    'latency', neither for 'params' and 'flops'."""
    if metric not in METRICS:
        raise ValueError(f"cost.metric: must be one of {', '.join(METRICS)}, got {metric!r}")
    if metric == "latency" and (device is None) == (lut is None):
        raise ValueError("cost: a latency cost needs exactly one of `device` (a packaged table's device) or `lut`"
                         " (a table measured with `balenas latency measure`)")
    if metric != "latency" and (device is not None or lut is not None):
        raise ValueError(f"cost: `device` and `lut` apply to metric 'latency', not {metric!r}")


def source_cost(space: SearchSpace | str, metric: str, *, device: str | None = None, lut: str | None = None,
                size: Mapping[str, Any] | None = None, dataset: str = "cifar10") -> tuple[Callable[[str], float], str]:
    """(the source's own cost of one architecture, the source's label `device:<d>` | `lut:<path>` |
    `parts:<metric>`) for `metric` of `space`'s derived networks at `size` (default: its proxy size) on `dataset`'s
    resolution; arguments as `cost_model`'s. What a budget's true cost is (selection rules, `cost_argmax`)."""
    from search_spaces.costs import check_devices, dataset_shape, latency_ms, split_size

    space = get_space(space) if isinstance(space, str) else space
    check_source(metric, device, lut)
    size = split_size(space, size)
    if metric == "latency" and lut is not None:
        from search_spaces.latency_lut import LatencyTable

        table = LatencyTable.read(lut)
        if table.settings["space"] != space.name:
            raise ValueError(f"cost.lut: {lut} was measured for space {table.settings['space']!r}, not {space.name!r}")
        return (lambda a: table.predict(a, space)), f"lut:{lut}"
    if metric == "latency":
        check_devices(space, [device], field="cost.device")
        probe = latency_ms(space, _fit_archs(space, 0)[0], size, dataset, [device])
        if not probe:
            raise ValueError(f"cost.device: {device!r} has no latency for space {space.name!r} at size {size} on "
                             f"{dataset!r} (the packaged tables apply to the benchmark's network only)")
        return (lambda a: latency_ms(space, a, size, dataset, [device])[device]), f"device:{device}"
    from search_spaces.latency_lut import decomposition

    classes, image_size = dataset_shape(dataset)
    _, counts_of = decomposition(space)
    values = part_values(space, metric, size, classes, image_size)

    def total(arch: str) -> float:
        return sum(n * values[k] for k, n in counts_of(arch, classes, image_size, **size).items())

    return total, f"parts:{metric}"


def cost_model(space: SearchSpace | str, metric: str, *, device: str | None = None, lut: str | None = None,
               size: Mapping[str, Any] | None = None, dataset: str = "cifar10", seed: int = 0) -> AdditiveCost:
    """The additive cost model of `metric` for `space`'s derived networks at `size` (default: its proxy size) on
    `dataset`'s resolution, fitted to the source's own cost (`source_cost`).

    Args:
        metric: 'latency' (with `device`, a device of the space's latency source, or `lut`, a measured table),
            'params' or 'flops' (millions; exact sums over the space's parts).
        device, lut: the latency source (exactly one of them for 'latency'; neither otherwise).
        seed: the sample of architectures fitted where the space is too large to enumerate.
    """
    space = get_space(space) if isinstance(space, str) else space
    cost, source = source_cost(space, metric, device=device, lut=lut, size=size, dataset=dataset)
    return fit(space, cost, metric=metric, source=source, seed=seed)


#: (space, metric, source, dataset, size) -> {architecture as given or canonical: the source's cost}, filled by
#: `true_costs` (one per process: a whole benchmark's costs are computed once)
_TRUE_COSTS: dict[tuple, dict[str, float]] = {}


def true_costs(space: SearchSpace | str, archs, metric: str, *, device: str | None = None, lut: str | None = None,
               size: Mapping[str, Any] | None = None, dataset: str = "cifar10") -> np.ndarray:
    """The source's own cost of many architectures (float64 array aligned with `archs`, the metric's unit): the
    same numbers as `source_cost(space, metric, device=, lut=, size=, dataset=)[0](arch)` (= `cost_model(...)
    .exact(arch)`), for a whole benchmark at once (analysis: true Pareto fronts, optima under a budget).

    - `device` (metric 'latency'): the space's latency source (`search_spaces.costs.latency_source`, e.g. NB201's
      packaged table) at `size` on `dataset`; a source may offer a bulk lookup as an attribute
      `table(device, *, dataset, size) -> {canonical arch: ms}` (a Mapping or a pandas Series indexed by the
      architecture), read once and looked up by string; otherwise the source is called once per distinct
      architecture. NaN where the source has no figure (another size or data set than its table's).
    - `lut` (metric 'latency') and 'params' / 'flops': `source_cost`'s function (the table read once, the parts
      counted once), called once per distinct architecture.

    Results are cached per process by (space, metric, source, dataset, size); `archs` may repeat and need not
    be canonical (each distinct spelling is canonicalised once)."""
    from pathlib import Path

    from search_spaces.costs import check_devices, latency_ms, latency_source, split_size

    space = get_space(space) if isinstance(space, str) else space
    check_source(metric, device, lut)
    size = split_size(space, size)
    if lut is not None:
        path = Path(lut).expanduser().resolve()
        source_key = ("lut", str(path), path.stat().st_mtime if path.is_file() else None)
    else:
        source_key = ("device", device) if device is not None else ("parts", metric)
    key = (space.name, metric, source_key, dataset, repr(sorted(size.items())))
    cache = _TRUE_COSTS.setdefault(key, {})
    archs = [str(a) for a in archs]
    todo = [a for a in dict.fromkeys(archs) if a not in cache]
    if todo:
        canonical = {a: space.canonical(a) for a in todo}
        fresh = [c for c in dict.fromkeys(canonical.values()) if c not in cache]
        if fresh and device is not None:
            check_devices(space, [device], field="cost.device")
            source = latency_source(space)
            bulk = getattr(source, "table", None) if source is not None else None
            found = bulk(device, dataset=dataset, size=size) if callable(bulk) else None
            if found is not None:  # the bulk lookup: one read, then a string lookup per architecture
                got = found.get if hasattr(found, "get") else dict(found).get
                values = {c: got(c) for c in fresh}
            else:
                values = {c: latency_ms(space, c, size, dataset, [device]).get(device) for c in fresh}
            for c, v in values.items():
                v = float(v) if v is not None else float("nan")
                cache[c] = v if np.isfinite(v) else float("nan")
        elif fresh:  # a measured LUT or the parts' params / FLOPs: the source itself, built once
            cost, _ = source_cost(space, metric, lut=lut, size=size, dataset=dataset)
            for c in fresh:
                cache[c] = float(cost(c))
        for a, c in canonical.items():
            cache[a] = cache[c]
    return np.fromiter((cache[a] for a in archs), dtype=np.float64, count=len(archs))
