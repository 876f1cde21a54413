"""analysis.load on hand-built run directories in the documented layout."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest
from _frames import make_frames, make_run, write_run

from analysis import RunTables, load
from analysis.frames import op_probabilities, split_bench_column


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs") / "sweep_a", balenas_lambdas=(0.1, 0.5))


def test_tables_as_attributes_and_keys(run):
    run_dir, frames = run
    t = load(run_dir)
    assert isinstance(t, RunTables)
    assert set(t.keys()) == {"epochs", "trials", "samples", "selections", "spec"}
    for name in ("epochs", "trials", "samples", "selections"):
        assert t[name] is getattr(t, name)
        assert len(t[name]) == len(frames[name])
        assert (t[name]["run"] == "sweep_a").all()
    assert t.spec["name"] == "sweep_a" and t.specs == {"sweep_a": t.spec}
    assert t.notes == []
    with pytest.raises(KeyError, match="epochs"):
        t["nope"]


def test_values_and_partition_key_round_trip(run):
    run_dir, frames = run
    ep = load(run_dir).epochs
    assert ep["trial_id"].map(type).eq(str).all()  # hive key back as a string, not a category
    key = ["trial_id", "epoch"]
    got = ep.sort_values(key).reset_index(drop=True)
    want = frames["epochs"].sort_values(key).reset_index(drop=True)
    for col in ("epoch_time_s", "bench_cifar10_test", "seed"):
        np.testing.assert_array_equal(got[col].to_numpy(float), want[col].to_numpy(float))
    assert got["op_probs"].tolist() == want["op_probs"].tolist()


def test_union_schema_keeps_columns_only_some_trials_have(run):
    run_dir, _ = run
    t = load(run_dir)
    # hp_lambda only in BaLeNAS files, error only in the failed trial's file, posterior_std only for BaLeNAS
    assert t.trials.loc[t.trials["method"] == "darts", "hp_lambda"].isna().all()
    assert set(t.trials.loc[t.trials["method"] == "balenas", "hp_lambda"]) == {0.1, 0.5}
    failed = t.trials[t.trials["status"] == "ERROR"]
    assert len(failed) == 1 and failed["error"].iloc[0].startswith("RuntimeError: CUDA out of memory")
    assert t.epochs.loc[t.epochs["method"] == "balenas", "posterior_std_mean"].notna().all()


def test_numeric_looking_trial_ids_stay_strings(tmp_path):
    frames = make_frames(prefix="0000", failed=None, proxies=False, methods=("darts",), seeds=(0,))
    t = load(write_run(tmp_path / "r", frames))
    assert t.trials["trial_id"].tolist() == ["0000_00000"]
    frames["trials"]["trial_id"] = "00012"
    frames["epochs"]["trial_id"] = "00012"
    t = load(write_run(tmp_path / "r2", frames))
    assert t.trials["trial_id"].tolist() == ["00012"]


@pytest.mark.parametrize("filters", [[("method", "==", "balenas")], {"method": "balenas"}, {"method": ["balenas"]},
                                     [[("method", "==", "balenas")]], pc.field("method") == "balenas"])
def test_filters_are_pushed_to_every_table(run, filters):
    run_dir, frames = run
    t = load(run_dir, filters=filters)
    for name in ("epochs", "trials", "samples", "selections"):
        assert set(t[name]["method"]) == {"balenas"}
        assert len(t[name]) == int((frames[name]["method"] == "balenas").sum())


def test_filter_on_partition_key_and_or_groups(run):
    run_dir, frames = run
    tid = frames["trials"]["trial_id"].iloc[0]
    t = load(run_dir, filters=[("trial_id", "==", tid)])
    assert set(t.epochs["trial_id"]) == {tid} and len(t.trials) == 1
    t = load(run_dir, filters=[[("seed", "==", 0)], [("seed", "==", 2)]])
    assert set(t.trials["seed"]) == {0, 2}


def test_filter_on_a_column_some_tables_lack_reads_them_unfiltered(run):
    run_dir, frames = run
    t = load(run_dir, filters=[("epoch", ">=", 3)])
    assert t.epochs["epoch"].min() == 3
    assert len(t.trials) == len(frames["trials"])
    assert any("trials" in n and "epoch" in n and "unfiltered" in n for n in t.notes)


def test_bad_filters_are_one_clear_error(run):
    run_dir, _ = run
    with pytest.raises(ValueError, match="operator"):
        load(run_dir, filters=[("method", "~", "x")])
    with pytest.raises(ValueError, match="filters must be"):
        load(run_dir, filters="method == balenas")


def test_several_runs_and_globs_get_a_run_column(tmp_path):
    a, fa = make_run(tmp_path / "sweep_a", seed=1)
    b, fb = make_run(tmp_path / "sweep_b", seed=2, proxies=False)
    t = load(a, b)
    assert set(t.epochs["run"]) == {"sweep_a", "sweep_b"}
    assert len(t.epochs) == len(fa["epochs"]) + len(fb["epochs"])
    assert set(t.specs) == {"sweep_a", "sweep_b"} and t.spec == t.specs
    assert set(t.selections["run"]) == {"sweep_a"}  # sweep_b has no proxy stage
    assert any("sweep_b" in n and "selections" in n for n in t.notes)
    g = load(str(tmp_path / "sweep_*"))
    assert list(g.runs) == ["sweep_a", "sweep_b"]
    assert len(g.trials) == len(t.trials)


def test_missing_tables_are_empty_frames_with_a_note(tmp_path):
    run_dir, _ = make_run(tmp_path / "no_proxies", proxies=False)
    t = load(run_dir)
    for name in ("samples", "selections"):
        assert t[name].empty and {"trial_id", "method", "seed"} <= set(t[name].columns)
        assert any(name in n and "missing" in n for n in t.notes)
    assert t.samples.groupby("method").size().empty  # usable like any frame


def test_hidden_and_temporary_files_are_skipped(run, tmp_path):
    run_dir, frames = run
    folder = next((run_dir / "trials").iterdir())
    (folder / ".part.parquet.tmp.parquet").write_bytes(b"not parquet")  # a half-written temporary file
    try:
        assert len(load(run_dir).trials) == len(frames["trials"])
    finally:
        (folder / ".part.parquet.tmp.parquet").unlink()


def test_paths_that_are_not_runs(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no run directory matches"):
        load(str(tmp_path / "nothing_*"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        load(tmp_path / "plain")


def test_op_probabilities_long_frame(run):
    run_dir, frames = run
    t = load(run_dir)
    long = op_probabilities(t.epochs)
    assert len(long) == len(frames["epochs"]) * 6 * 5
    sums = long.groupby(["trial_id", "epoch", "row"])["prob"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, rtol=1e-9)
    # option names come from the search-space registry (NB201's op order)
    assert list(dict.fromkeys(long["op"])) == ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                               "avg_pool_3x3"]
    assert list(dict.fromkeys(long["row_label"])) == ["1←0", "2←0", "2←1", "3←0", "3←1", "3←2"]
    rec = t.epochs.iloc[0]
    first = long[(long["trial_id"] == rec["trial_id"]) & (long["epoch"] == rec["epoch"])]
    np.testing.assert_allclose(first["prob"].to_numpy(), np.ravel(json.loads(rec["op_probs"])["edges"]))


def test_split_bench_column():
    assert split_bench_column("bench_cifar10_valid_valid") == ("cifar10_valid", "valid")
    assert split_bench_column("bench_imagenet16_120_test") == ("imagenet16_120", "test")
    with pytest.raises(ValueError, match="bench_"):
        split_bench_column("valid_acc")


def test_empty_frames_concat(tmp_path):
    run_dir, _ = make_run(tmp_path / "r", proxies=False)
    t = load(run_dir, filters={"method": "no_such_method"})
    assert t.epochs.empty and t.trials.empty
    assert isinstance(t.epochs, pd.DataFrame)


def test_tables_written_by_the_sweeps_store_load_the_same(run, tmp_path):
    """The sweep writes through trainables.runs.store (union schema kept in _common_metadata, a lock file, atomic
    renames); loading its output gives the same rows as loading our plain files."""
    from trainables.runs import store

    _, frames = run
    out = tmp_path / "via_store"
    for name, df in frames.items():
        for tid, part in df.groupby("trial_id", sort=False):
            store.write_partition(out, name, part.dropna(axis=1, how="all"), tid)
    (out / "spec.yaml").write_text("name: via_store\n")
    ours, theirs = load(run[0]), load(out)
    for name in frames:
        key = ["trial_id"] + [c for c in ("epoch", "sample", "rule") if c in frames[name].columns]
        a = ours[name].drop(columns="run").sort_values(key).reset_index(drop=True)
        b = theirs[name].drop(columns="run")[a.columns].sort_values(key).reset_index(drop=True)
        assert len(a) == len(frames[name])
        pd.testing.assert_frame_equal(a, b, check_dtype=False)
