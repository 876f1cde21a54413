"""Trade-off geometry of (cost, accuracy) points: the non-dominated set, its exact 2-D hypervolume and the best point
under a budget. Shared by the
proxy stage's `pareto:` rules (score up, cost down) and the report's fronts; written here because numpy has none
and the libraries that do (pymoo, botorch) are heavy dependencies for two short functions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _points(costs, accuracies) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(costs, dtype=np.float64).ravel()
    a = np.asarray(accuracies, dtype=np.float64).ravel()
    if c.shape != a.shape:
        raise ValueError(f"costs and accuracies differ in length: {c.size} and {a.size}")
    return c, a


def pareto_front(costs: Sequence[float], accuracies: Sequence[float]) -> np.ndarray:
    """Indices of the non-dominated points (lower cost and higher accuracy are better), in increasing cost.

    A point is dominated when another is at least as good in both and better in one. Ties: of several points with
    the same cost only those with the highest accuracy can be on the front; identical points (same cost and
    accuracy) dominate neither other, so all of them are on it (in index order). Points with a NaN or infinite
    cost or accuracy are left out. O(n log n)."""
    c, a = _points(costs, accuracies)
    ok = np.flatnonzero(np.isfinite(c) & np.isfinite(a))
    if not len(ok):
        return np.empty(0, dtype=np.intp)
    order = ok[np.lexsort((-a[ok], c[ok]))]  # cost up, accuracy down within a cost (stable: index order on ties)
    cs, acc = c[order], a[order]
    starts = np.r_[True, cs[1:] != cs[:-1]]
    group = np.cumsum(starts) - 1
    best = acc[starts]  # each cost's best accuracy
    before = np.r_[-np.inf, np.maximum.accumulate(best)[:-1]]  # the best accuracy at any lower cost
    keep = (acc == best[group]) & (acc > before[group])
    return order[keep]


def hypervolume(costs: Sequence[float], accuracies: Sequence[float], ref_cost: float, ref_acc: float) -> float:
    """The exact area that the points dominate, bounded by the reference point: the union over the points of the
    rectangles [cost, ref_cost] x [ref_acc, accuracy]. A point no cheaper than `ref_cost` or no more accurate
    than `ref_acc` adds nothing, nor does a dominated one; the unit is the cost's unit x the accuracy's."""
    c, a = _points(costs, accuracies)
    keep = np.isfinite(c) & np.isfinite(a) & (c < ref_cost) & (a > ref_acc)
    c, a = c[keep], a[keep]
    if not len(c):
        return 0.0
    front = pareto_front(c, a)  # in increasing cost, so accuracy increases along it
    fc, fa = c[front], a[front]
    widths = np.diff(np.r_[fc, float(ref_cost)])
    return float(np.sum(widths * (fa - float(ref_acc))))


def optimum_under_budget(costs: Sequence[float], accuracies: Sequence[float], budget: float) -> int | None:
    """The index of the best accuracy among the points whose cost is at most `budget` (ties: the lower cost, then
    the lower index); None where no point with an accuracy meets the budget."""
    c, a = _points(costs, accuracies)
    ok = np.flatnonzero(np.isfinite(c) & np.isfinite(a) & (c <= float(budget)))
    if not len(ok):
        return None
    best = ok[a[ok] == a[ok].max()]
    return int(best[np.argmin(c[best])])  # argmin: the first of equal costs, i.e. the lower index
