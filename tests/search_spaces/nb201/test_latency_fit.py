"""The additive per-edge, per-op latency fit (search_spaces/nb201/latency_fit.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from search_spaces.nb201.encoding import NUM_EDGES, OPS, all_architectures, to_tuple
from search_spaces.nb201.latency import DEVICES, LatencyTable, latency_table
from search_spaces.nb201.latency_fit import fit_additive, fit_arrays, op_matrix


def _synthetic_table(costs: np.ndarray, fixed: float) -> LatencyTable:
    archs = all_architectures()
    ops = op_matrix(archs)
    y = fixed + costs[np.arange(NUM_EDGES), ops].sum(axis=1)
    frame = pd.DataFrame({"arch": archs, **{d.column: y for d in DEVICES}})
    return LatencyTable(frame)


def test_recovers_exactly_additive_costs():
    rng = np.random.default_rng(1)
    costs = rng.uniform(0.0, 3.0, size=(NUM_EDGES, len(OPS)))  # `none` not free: the fit moves it into fixed_ms
    fixed = 4.5
    model = fit_additive("pixel3", _synthetic_table(costs, fixed))
    np.testing.assert_allclose(model.per_edge_op_ms, costs - costs[:, :1], atol=1e-9)
    assert model.fixed_ms == pytest.approx(fixed + costs[:, 0].sum(), abs=1e-9)
    assert model.per_edge_op_ms.shape == (6, 5) and np.all(model.per_edge_op_ms[:, 0] == 0)
    arch = all_architectures()[1234]
    want = fixed + costs[np.arange(NUM_EDGES), list(to_tuple(arch))].sum()
    assert model.predict(arch) == pytest.approx(want, abs=1e-9)
    assert model.predict(to_tuple(arch)) == pytest.approx(want, abs=1e-9)
    r = model.fit_report()
    assert r.n == 15625 and r.heldout_n == 3125
    assert r.r2 == pytest.approx(1.0, abs=1e-12) and r.heldout_r2 == pytest.approx(1.0, abs=1e-12)
    assert r.mape == pytest.approx(0.0, abs=1e-9) and r.heldout_mape == pytest.approx(0.0, abs=1e-9)
    assert r.spearman == pytest.approx(1.0) and r.heldout_spearman == pytest.approx(1.0)


def test_expected_ms_of_one_hot_weights_is_predict():
    rng = np.random.default_rng(2)
    ops = rng.integers(0, len(OPS), size=(500, NUM_EDGES))
    model = fit_arrays(ops, rng.uniform(1, 5, size=500))
    w = np.eye(len(OPS))[list(ops[0])]
    assert model.expected_ms(w) == pytest.approx(model.predict(tuple(ops[0])))


def test_real_table_one_device():
    model = fit_additive("titanx_b1")
    assert np.isfinite(model.fixed_ms) and np.all(np.isfinite(model.per_edge_op_ms))
    r = model.fit_report()
    for v in (r.r2, r.spearman, r.mape, r.heldout_r2, r.heldout_spearman, r.heldout_mape):
        assert np.isfinite(v)
    col = latency_table().column("titanx_b1")
    pred = np.array([model.predict(a) for a in col.index])
    assert r.spearman == pytest.approx(float(spearmanr(col.to_numpy(dtype=np.float64), pred).statistic), abs=1e-12)
    assert 0.5 < r.r2 <= 1.0


def test_unknown_device_is_a_value_error():
    with pytest.raises(ValueError, match="known devices"):
        fit_additive("no_such_device")
