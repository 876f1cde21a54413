"""NB201 splits: sizes, disjointness, official split files vs seeded halves, subsets, name errors."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest
import torch
from tiny_data_formats import image_with_index, index_of, make_tiny_cifar100, make_tiny_imagenet16, write_batch

from search_spaces.data import DATASETS, load_split, load_splits, resolve_data_root
from search_spaces.data.splits import md5_of, read_split_file, seeded_halves


def make_indexed_cifar10(root, per_batch=30, batches=2, n_test=20):
    """A cifar-10-batches-py folder whose images encode their position in the training order."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for k in range(batches):
        write_batch(folder / f"data_batch_{k + 1}",
                    {"data": image_with_index(per_batch, 32, k * per_batch).reshape(per_batch, -1),
                     "labels": rng.integers(0, 10, per_batch).tolist()})
    write_batch(folder / "test_batch", {"data": image_with_index(n_test, 32, 5000).reshape(n_test, -1),
                                        "labels": rng.integers(0, 10, n_test).tolist()})
    return root


def write_split_file(path, first_key, first, second_key, second):
    path.write_text(json.dumps({first_key: ["int", [int(i) for i in first]],
                                second_key: ["int", [int(i) for i in second]]}))
    return path


def test_cifar10_search_halves_partition_the_training_set(tmp_path):
    root = make_indexed_cifar10(tmp_path)
    parts = load_splits("cifar10", root, ["train", "search-train", "search-valid", "test"])
    a, b = (index_of(parts[s].images) for s in ("search-train", "search-valid"))
    assert len(a) == len(b) == 30
    assert not set(a) & set(b) and sorted([*a, *b]) == list(range(60))
    expected_a, expected_b = seeded_halves(60)
    assert a.tolist() == expected_a.tolist() and b.tolist() == expected_b.tolist()
    assert index_of(parts["test"].images).tolist() == list(range(5000, 5020))
    # labels travel with their images
    train = parts["train"]
    assert torch.equal(parts["search-valid"].labels, train.labels[torch.from_numpy(b)])
    assert parts["search-train"].name == "cifar10/search-train"
    assert isinstance(parts["train"].images, torch.Tensor) and parts["train"].images.dtype == torch.uint8


def test_cifar10_official_split_file_applies_to_official_files(tmp_path, monkeypatch, caplog):
    root = make_indexed_cifar10(tmp_path)
    folder = root / "cifar-10-batches-py"
    official = dataclasses.replace(DATASETS["cifar10"], official_count=60, official_md5={
        f"data_batch_{k}": md5_of(folder / f"data_batch_{k}") for k in (1, 2)})
    monkeypatch.setitem(DATASETS, "cifar10", official)
    perm = np.random.default_rng(7).permutation(60)
    split = write_split_file(tmp_path / "cifar-split.txt", "train", perm[:30], "valid", perm[30:])
    a = load_split("cifar10", root, "search-train", split_file=split)
    b = load_split("cifar10", root, "search-valid", split_file=split)
    assert index_of(a.images).tolist() == perm[:30].tolist()  # the file's order, as xautodl indexes it
    assert index_of(b.images).tolist() == perm[30:].tolist()

    # a file whose md5 differs is not the official order: fall back to seeded halves, with a warning
    monkeypatch.setitem(DATASETS, "cifar10", dataclasses.replace(official, official_md5={"data_batch_1": "0" * 32}))
    with caplog.at_level(logging.WARNING, logger="search_spaces.data.datasets"):
        c = load_split("cifar10", root, "search-train", split_file=split)
    assert "not the official file" in caplog.text and "seeded halves" in caplog.text
    assert index_of(c.images).tolist() == seeded_halves(60)[0].tolist()


def test_cifar10_split_file_not_applied_when_size_differs(tmp_path, caplog):
    root = make_indexed_cifar10(tmp_path)
    split = write_split_file(tmp_path / "s.txt", "train", range(0, 60, 2), "valid", range(1, 60, 2))
    with caplog.at_level(logging.WARNING, logger="search_spaces.data.datasets"):
        a = load_split("cifar10", root, "search-train", split_file=split)
    assert "has 60 images, the official one 50000" in caplog.text
    assert index_of(a.images).tolist() == seeded_halves(60)[0].tolist()


def test_cifar100_test_halves_and_search_splits(tmp_path, monkeypatch):
    root = make_tiny_cifar100(tmp_path)
    parts = load_splits("cifar100", root, ["train", "test", "x-valid", "x-test", "search-train", "search-valid"])
    test_idx = index_of(parts["test"].images)
    xv, xt = index_of(parts["x-valid"].images), index_of(parts["x-test"].images)
    assert len(xv) == len(xt) == 20 and not set(xv) & set(xt) and sorted([*xv, *xt]) == sorted(test_idx)
    assert torch.equal(parts["search-train"].images, parts["train"].images)  # NB201 searches on all of train
    assert torch.equal(parts["search-valid"].images, parts["x-valid"].images)
    # the official split file applies when the test file is the official one
    folder = root / "cifar-100-python"
    monkeypatch.setitem(DATASETS, "cifar100", dataclasses.replace(
        DATASETS["cifar100"], official_count=40, official_md5={"test": md5_of(folder / "test")}))
    split = write_split_file(tmp_path / "cifar100-test-split.txt", "xvalid", range(0, 40, 2), "xtest",
                             range(1, 40, 2))
    xv = load_split("cifar100", root, "x-valid", split_file=split)
    assert index_of(xv.images).tolist() == [10_000 + i for i in range(0, 40, 2)]


def test_imagenet16_halves(tmp_path):
    root, written = make_tiny_imagenet16(tmp_path)
    parts = load_splits("ImageNet16-120", root, ["test", "x-valid", "x-test"])
    n = len(parts["test"])
    assert n == int((written["val_data"] <= 120).sum())
    assert len(parts["x-valid"]) == n // 2 and len(parts["x-test"]) == n - n // 2


def test_subsets_first_n_or_seeded(tmp_path):
    root = make_indexed_cifar10(tmp_path)
    first = load_split("cifar10", root, "train", subset=10)
    assert index_of(first.images).tolist() == list(range(10))
    r1 = load_split("cifar10", root, "train", subset=10, subset_seed=3)
    r2 = load_split("cifar10", root, "train", subset=10, subset_seed=3)
    r3 = load_split("cifar10", root, "train", subset=10, subset_seed=4)
    assert index_of(r1.images).tolist() == index_of(r2.images).tolist()
    assert index_of(r1.images).tolist() != index_of(r3.images).tolist()
    assert len(set(index_of(r1.images))) == 10
    assert len(load_split("cifar10", root, "test", subset=1000)) == 20  # larger than the split: all of it


def test_unknown_names_list_the_valid_ones(tmp_path):
    root = make_indexed_cifar10(tmp_path)
    with pytest.raises(ValueError, match="unknown data set 'cifar-10'.*cifar10, cifar100, ImageNet16-120"):
        load_split("cifar-10", root, "train")
    with pytest.raises(ValueError, match="unknown split 'x-valid' for cifar10.*search-train, search-valid"):
        load_split("cifar10", root, "x-valid")


def test_data_root_explicit_then_environment_then_user_cache(tmp_path, monkeypatch, caplog):
    root = make_indexed_cifar10(tmp_path / "env")
    cached = make_indexed_cifar10(tmp_path / "cache" / "balenas" / "data")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("BALENAS_DATA_ROOT", str(root))
    caplog.set_level(logging.INFO, logger="search_spaces.data.datasets")
    assert resolve_data_root(tmp_path / "given") == tmp_path / "given"
    assert resolve_data_root(None) == root and "$BALENAS_DATA_ROOT" in caplog.text
    assert len(load_split("cifar10", None, "test")) == 20
    monkeypatch.delenv("BALENAS_DATA_ROOT")
    assert resolve_data_root(None) == cached and "per-user cache" in caplog.text
    assert len(load_split("cifar10", None, "test", download=False)) == 20
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_root(None) == tmp_path / "home" / ".cache" / "balenas" / "data"


def test_split_file_validation(tmp_path):
    overlap = write_split_file(tmp_path / "a.txt", "train", [0, 1, 2], "valid", [2, 3])
    with pytest.raises(ValueError, match="overlap"):
        read_split_file(overlap, ("train", "valid"), 10)
    out_of_range = write_split_file(tmp_path / "b.txt", "train", [0, 1], "valid", [2, 10])
    with pytest.raises(ValueError, match=r"0\.\.9"):
        read_split_file(out_of_range, ("train", "valid"), 10)
    with pytest.raises(ValueError, match="expected keys"):
        read_split_file(overlap, ("xvalid", "xtest"), 10)
    plain = tmp_path / "c.txt"
    plain.write_text(json.dumps({"xvalid": [0, 2], "xtest": [1, 3]}))  # plain lists are accepted too
    a, b = read_split_file(plain, ("xvalid", "xtest"), 4)
    assert a.tolist() == [0, 2] and b.tolist() == [1, 3]
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_split_file(tmp_path / "missing.txt", ("train", "valid"), 4)
    root = make_indexed_cifar10(tmp_path / "data")
    with pytest.raises(FileNotFoundError, match="split file not found: .*missing.txt"):
        load_split("cifar10", root, "train", split_file=tmp_path / "missing.txt")


def test_official_cifar_split_file_is_read(shared_data):
    """The real cifar-split.txt: two disjoint 25,000-index halves of range(50000)."""
    train, valid = read_split_file(shared_data / "nb201" / "cifar-split.txt", ("train", "valid"), 50_000)
    assert len(train) == len(valid) == 25_000
    assert np.union1d(train, valid).tolist() == list(range(50_000))
