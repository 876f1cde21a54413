"""Results on any pyarrow filesystem: `file://` URIs and a filesystem object (SubTreeFileSystem) stand in for
object storage; the Parquet store, Tune's storage, --resume and `analysis.load` all go through pyarrow.fs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs
import pytest

from analysis import load
from trainables.runs import store
from trainables.runs.fsfolder import Folder, location
from trainables.sweep.driver import run_sweep
from trainables.sweep.spec import validate_spec

os.environ["RAY_AUTH_MODE"] = "disabled"


def frame(epochs, **cols):
    return pd.DataFrame({"epoch": list(epochs), **{k: [v] * len(epochs) for k, v in cols.items()}})


@pytest.mark.parametrize("kind", ["uri", "subtree"])
def test_the_store_writes_replaces_and_reads_through_any_filesystem(tmp_path, kind):
    if kind == "uri":
        run_dir = f"file://{tmp_path}/run"
    else:
        run_dir = Folder(pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()), "run")
    store.write_partition(run_dir, "epochs", frame([1, 2], method="a"), "t0")
    store.write_partition(run_dir, "epochs", frame([1], method="b", hp_x=0.5), "t1")  # widens the schema
    store.write_partition(run_dir, "epochs", frame([1, 2, 3], method="a"), "t0")  # replaces t0's rows
    got = store.read_table(run_dir, "epochs").sort_values(["trial_id", "epoch"])
    assert got["trial_id"].tolist() == ["t0"] * 3 + ["t1"] and got["hp_x"].isna().tolist() == [True] * 3 + [False]
    on_disk = tmp_path / "run" / "epochs"  # the same files a local reader sees, no temporary files left
    assert sorted(p.name for p in on_disk.iterdir() if p.name != ".lock") == [
        "_common_metadata", "trial_id=t0", "trial_id=t1"]
    assert not [p for p in on_disk.rglob("*") if p.name.endswith(".tmp")]
    assert len(pd.read_parquet(on_disk)) == 4
    assert store.partitions(run_dir, "epochs") == ["t0", "t1"]


def test_a_storage_uri_pyarrow_cannot_open_is_named(tmp_path, tiny_cifar10):
    with pytest.raises(ValueError, match="nosuchfs://bucket/runs"):
        location("nosuchfs://bucket/runs")
    spec = validate_spec({"name": "x", "data_root": str(tiny_cifar10), "methods": {"darts-v1": {}}})
    with pytest.raises(ValueError, match="nosuchfs://bucket/runs"):  # before Ray starts
        run_sweep(spec, storage="nosuchfs://bucket/runs", verbose=0)


def _spec(data_root: Path, name: str):
    return validate_spec({"name": name, "space": "nb201", "dataset": "cifar10", "data_root": str(data_root),
                          "methods": {"darts-v1": {}}, "seeds": [0], "resources": {"cpu": 1, "gpu": 0},
                          "search": {"epochs": 2, "batch_size": 8, "C": 4, "N": 1, "steps_per_epoch": 2},
                          "proxies": {"samples": 3, "names": ["naswot"], "batch_size": 8, "C": 4, "N": 1}})


@pytest.mark.slow
def test_a_sweep_with_uri_and_filesystem_object_storage_resumes_and_loads(local_ray, tmp_path, tiny_cifar10):
    local_ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    uri = f"file://{tmp_path}/uri"
    first = run_sweep(_spec(tiny_cifar10, "viauri"), storage=uri, verbose=0)
    assert first.exit_code == 0 and first.run_dir == tmp_path / "uri" / "viauri"
    tables = load(f"{uri}/viauri")
    assert len(tables.epochs) == 2 and len(tables.trials) == 1 and len(tables.samples) == 3
    # --resume of a finished sweep through the URI: Tune restores from the same filesystem, nothing repeats
    again = run_sweep(_spec(tiny_cifar10, "viauri"), storage=uri, resume=True, verbose=0)
    assert again.exit_code == 0 and len(load(f"{uri}/viauri").epochs) == 2

    subtree = Folder(pafs.SubTreeFileSystem(str(tmp_path / "tree"), pafs.LocalFileSystem()), "runs")
    second = run_sweep(_spec(tiny_cifar10, "viaobject"), storage=subtree, verbose=0)
    assert second.exit_code == 0
    assert (tmp_path / "tree" / "runs" / "viaobject" / "spec.yaml").is_file()  # Tune's files went there too
    assert any((tmp_path / "tree" / "runs" / "viaobject").glob("*/checkpoint_*"))
    tables = load(subtree / "viaobject")
    assert len(tables.epochs) == 2 and tables.trials["status"].tolist() == ["TERMINATED"]
    assert len(tables.samples) == 3
    assert tables.epochs["genotype"].tolist() == load(f"{uri}/viauri").epochs["genotype"].tolist()


def test_spec_paths_missing_on_every_node_are_named_before_any_trial(local_ray, tmp_path):
    from trainables.runs.tuner import check_paths_on_cluster

    check_paths_on_cluster({"data_root": str(tmp_path)})  # exists (this host is the cluster's only node)
    with pytest.raises(FileNotFoundError, match=f"data_root {tmp_path}/nowhere: exists on none of the"):
        check_paths_on_cluster({"data_root": str(tmp_path / "nowhere")})


def test_a_storage_uri_in_a_spec_file_is_kept_as_a_uri(tmp_path, tiny_cifar10):
    from trainables.sweep.spec import load_spec

    path = tmp_path / "s.yaml"
    path.write_text(f"name: x\ndata_root: {tiny_cifar10}\nmethods: {{darts-v1: {{}}}}\nstorage: s3://bucket/runs\n")
    assert load_spec(path, check_paths=False).storage == "s3://bucket/runs"
