"""The Parquet store: keyed atomic partitions that plain pandas.read_parquet reads, whatever columns arrive."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow.parquet as pq
import pytest

from trainables.runs import store


def frame(epochs, **cols) -> pd.DataFrame:
    return pd.DataFrame({"epoch": list(epochs), **{k: [v] * len(epochs) for k, v in cols.items()}})


def test_rewriting_a_partition_replaces_its_rows(tmp_path):
    store.write_partition(tmp_path, "epochs", frame([1, 2], method="darts-v1"), "a_0")
    store.write_partition(tmp_path, "epochs", frame([1], method="balenas"), "b_1")
    store.write_partition(tmp_path, "epochs", frame([1, 2, 3], method="darts-v1"), "a_0")
    out = store.read_table(tmp_path, "epochs")
    assert sorted(zip(out["trial_id"], out["epoch"])) == [("a_0", 1), ("a_0", 2), ("a_0", 3), ("b_1", 1)]
    assert out["trial_id"].map(type).eq(str).all()
    assert store.partitions(tmp_path, "epochs") == ["a_0", "b_1"]
    assert list(store.read_partition(tmp_path, "epochs", "a_0")["epoch"]) == [1, 2, 3]


def test_columns_that_only_later_partitions_have_survive_plain_pandas(tmp_path):
    # first trial: a method without the extra metric and with an all-null hyper-parameter column
    store.write_partition(tmp_path, "epochs", frame([1, 2], hp_x=None, method="darts-v1"), "a_0")
    store.write_partition(tmp_path, "epochs", frame([1, 2], hp_x=0.5, posterior_std=0.9, method="balenas"), "b_1")
    store.write_partition(tmp_path, "epochs", frame([1], hp_x=1, method="gdas"), "c_2")  # int into a float column
    out = pd.read_parquet(tmp_path / "epochs")  # what users do: no helper
    assert len(out) == 5
    b = out[out["trial_id"] == "b_1"]
    assert b["posterior_std"].tolist() == [0.9, 0.9] and b["hp_x"].tolist() == [0.5, 0.5]
    assert out[out["trial_id"] == "a_0"]["posterior_std"].isna().all()
    assert out[out["trial_id"] == "c_2"]["hp_x"].tolist() == [1.0]
    # every file carries the union schema
    schemas = {tuple(pq.read_schema(p).names) for p in (tmp_path / "epochs").glob("*/part.parquet")}
    assert len(schemas) == 1


def test_filters_and_columns(tmp_path):
    store.write_partition(tmp_path, "t", frame([1, 2, 3], method="a"), "x_0")
    store.write_partition(tmp_path, "t", frame([1, 2], method="b"), "y_1")
    out = store.read_table(tmp_path, "t", filters=[("method", "==", "b"), ("epoch", ">", 1)])
    assert out[["trial_id", "epoch"]].values.tolist() == [["y_1", 2]]
    out = store.read_table(tmp_path, "t", filters=[("trial_id", "=", "x_0")], columns=["epoch"])
    assert out["epoch"].tolist() == [1, 2, 3]


def test_key_column_in_rows_must_match_the_key(tmp_path):
    df = frame([1]).assign(trial_id="other")
    with pytest.raises(ValueError, match="other"):
        store.write_partition(tmp_path, "t", df, "mine")
    store.write_partition(tmp_path, "t", frame([1]).assign(trial_id="mine"), "mine")
    assert store.read_table(tmp_path, "t")["trial_id"].tolist() == ["mine"]


@pytest.mark.parametrize("bad", ["a/b", "x=y", ".hidden", "", " pad"])
def test_unsafe_key_values_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="partition"):
        store.write_partition(tmp_path, "t", frame([1]), bad)


def test_incompatible_types_are_a_clear_error(tmp_path):
    store.write_partition(tmp_path, "t", frame([1], genotype="|a|"), "a")
    with pytest.raises(ValueError, match="genotype"):
        store.write_partition(tmp_path, "t", frame([1], genotype=3.5), "b")


def test_a_crash_mid_write_leaves_the_previous_file(tmp_path, monkeypatch):
    store.write_partition(tmp_path, "t", frame([1, 2]), "a")

    def boom(table, where, **kw):
        with open(where, "wb") as f:
            f.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(store.pq, "write_table", boom)
    with pytest.raises(OSError):
        store.write_partition(tmp_path, "t", frame([1, 2, 3]), "a")
    monkeypatch.undo()
    assert store.read_table(tmp_path, "t")["epoch"].tolist() == [1, 2]
    leftovers = [p for p in os.listdir(tmp_path / "t" / "trial_id=a") if p != "part.parquet"]
    assert leftovers == []
    assert len(pd.read_parquet(tmp_path / "t")) == 2


def test_missing_table_and_unpartitioned_tables(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        store.read_table(tmp_path, "nope")
    store.write_table(tmp_path, "summary", pd.DataFrame({"method": ["a", "b"], "acc": [1.0, 2.0]}))
    assert store.read_table(tmp_path, "summary")["acc"].tolist() == [1.0, 2.0]
    assert pd.read_parquet(tmp_path / "summary")["method"].tolist() == ["a", "b"]
