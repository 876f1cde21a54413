"""Additive per-edge, per-op latency model of NB201 cells, fitted to the whole-architecture latency table.

The published tables (`latency.py`) give one latency per architecture. A differentiable search needs a latency
that is a sum over the cell's choices, so we fit

    latency(arch) ~= fixed_ms + sum_e per_edge_op_ms[e, op_e]

by least squares over all 15,625 cells, where `fixed_ms` is the part every cell shares (stem, the two reduction
blocks, the head, and the 15 cells' shared overhead) and `per_edge_op_ms[e, o]` is the cost of op `o` on edge `e`
(edges and ops in `encoding.EDGES` / `encoding.OPS` order). The parametrisation is made identifiable by fixing
`none` = 0 on every edge (it is the reference level of each edge's one-hot), so the design has 1 + 6 x 4 = 25
columns. `fit_report()` says how well the sum reproduces the table: R^2, Spearman and MAPE on all cells, and on a
held-out random 20% split fitted on the other 80% (seed 0).

    model = fit_additive("pixel3")
    model.fixed_ms, model.per_edge_op_ms        # float, [6, 5] array (ms; column 0, `none`, is 0)
    model.predict("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|")
    model.fit_report()                          # FitReport(r2=..., spearman=..., mape=..., heldout_...)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import spearmanr

from search_spaces.nb201.encoding import NUM_EDGES, OPS, to_tuple
from search_spaces.nb201.latency import LatencyTable, latency_table
from search_spaces.nb201.latency import device as _device

NUM_OPS = len(OPS)
#: Held-out share and seed of `fit_report`'s split.
HOLDOUT_FRACTION = 0.2
HOLDOUT_SEED = 0


def op_matrix(archs) -> np.ndarray:
    """[n, 6] int array of op indices; `archs` holds strings (any spelling `to_tuple` accepts) or index tuples."""
    rows = [to_tuple(a) if isinstance(a, str) else tuple(int(o) for o in a) for a in archs]
    ops = np.asarray(rows, dtype=np.int64).reshape(len(rows), NUM_EDGES)
    if ops.size and (ops.min() < 0 or ops.max() >= NUM_OPS):
        raise ValueError(f"op indices must lie in 0..{NUM_OPS - 1}")
    return ops


def design_matrix(ops: np.ndarray) -> np.ndarray:
    """[n, 25] float64: a column of ones, then per edge one indicator per op other than `none` (the reference)."""
    n = ops.shape[0]
    x = np.zeros((n, 1 + NUM_EDGES * (NUM_OPS - 1)))
    x[:, 0] = 1.0
    for e in range(NUM_EDGES):
        for o in range(1, NUM_OPS):
            x[:, 1 + e * (NUM_OPS - 1) + (o - 1)] = ops[:, e] == o
    return x


def solve(ops: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Least-squares (fixed_ms, per_edge_op_ms[6, 5]) for op matrix `ops` and latencies `y` (`none` = 0)."""
    # Hand-written on numpy.linalg.lstsq: a 25-column least squares needs no regression library.
    coef, *_ = np.linalg.lstsq(design_matrix(ops), np.asarray(y, dtype=np.float64), rcond=None)
    table = np.zeros((NUM_EDGES, NUM_OPS))
    table[:, 1:] = coef[1:].reshape(NUM_EDGES, NUM_OPS - 1)
    return float(coef[0]), table


@dataclass(frozen=True)
class FitReport:
    """How well the additive model reproduces one device's column (MAPE in percent)."""

    device: str
    n: int
    r2: float
    spearman: float
    mape: float
    heldout_n: int
    heldout_r2: float
    heldout_spearman: float
    heldout_mape: float


def _scores(y: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    rho = float(spearmanr(y, pred).statistic)
    mape = float(np.mean(np.abs(pred - y) / np.abs(y)) * 100.0)
    return r2, rho, mape


@dataclass(frozen=True)
class AdditiveLatency:
    """The fitted additive latency of one device: `fixed_ms` + the sum over edges of `per_edge_op_ms[e, op]`."""

    device: str
    fixed_ms: float
    #: [6 edges, 5 ops] in ms, edges in `EDGES` order, ops in `OPS` order; `none` (column 0) is 0 by construction.
    per_edge_op_ms: np.ndarray
    _ops: np.ndarray = field(repr=False, compare=False)
    _y: np.ndarray = field(repr=False, compare=False)

    def predict(self, arch) -> float:
        """Predicted latency (ms) of one architecture: a string or an op-index tuple."""
        return float(self.predict_many([arch])[0])

    def predict_many(self, archs) -> np.ndarray:
        """Predicted latencies (ms) of many architectures, or of an [n, 6] op-index array."""
        ops = archs if isinstance(archs, np.ndarray) and archs.ndim == 2 else op_matrix(archs)
        return self.fixed_ms + self.per_edge_op_ms[np.arange(NUM_EDGES), ops].sum(axis=1)

    def expected_ms(self, weights: np.ndarray) -> float:
        """fixed_ms + sum(weights * per_edge_op_ms) for [6, 5] op weights (e.g. softmaxed architecture weights)."""
        return float(self.fixed_ms + np.sum(np.asarray(weights) * self.per_edge_op_ms))

    def fit_report(self, *, holdout: float = HOLDOUT_FRACTION, seed: int = HOLDOUT_SEED) -> FitReport:
        """R^2, Spearman, MAPE of this fit on every cell it was fitted to, and of a refit on a random (1-holdout)
        share scored on the rest."""
        y = self._y
        r2, rho, mape = _scores(y, self.predict_many(self._ops))
        n = len(y)
        perm = np.random.default_rng(seed).permutation(n)
        n_test = int(round(holdout * n))
        test, train = perm[:n_test], perm[n_test:]
        fixed, table = solve(self._ops[train], y[train])
        pred = fixed + table[np.arange(NUM_EDGES), self._ops[test]].sum(axis=1)
        h_r2, h_rho, h_mape = _scores(y[test], pred)
        return FitReport(self.device, n, r2, rho, mape, n_test, h_r2, h_rho, h_mape)


def fit_arrays(ops: np.ndarray, y: np.ndarray, device: str = "custom") -> AdditiveLatency:
    """Fit to an [n, 6] op-index array and n latencies (ms)."""
    ops = np.asarray(ops, dtype=np.int64)
    y = np.asarray(y, dtype=np.float64)
    if ops.ndim != 2 or ops.shape[1] != NUM_EDGES or len(y) != len(ops):
        raise ValueError(f"need an [n, {NUM_EDGES}] op array and n latencies, got {ops.shape} and {y.shape}")
    fixed, table = solve(ops, y)
    return AdditiveLatency(device, fixed, table, ops, y)


def fit_additive(device: str, table: LatencyTable | None = None) -> AdditiveLatency:
    """Least-squares additive model of `device`'s column of the packaged latency table (or of `table`)."""
    _device(device)  # a ValueError listing the devices for an unknown name
    table = table if table is not None else latency_table()
    col = table.column(device)
    return fit_arrays(op_matrix(col.index), col.to_numpy(dtype=np.float64), device)
