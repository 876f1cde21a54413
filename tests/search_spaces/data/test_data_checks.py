"""The pre-Ray check of the pickle batches (`prepare_dataset` -> `check_dataset_files` -> `scan_pickle`): a truncated,
non-pickle or tampered batch is refused in milliseconds, naming the file, without unpickling anything; good batches
of every protocol pass exactly when the restricted unpickler would load them."""

from __future__ import annotations

import pickle
import re
import time

import numpy as np
import pytest
from conftest import make_tiny_cifar10, write_cifar_batch
from tiny_data_formats import make_tiny_cifar100, make_tiny_imagenet16, write_batch

from search_spaces.data import (
    DataCheckError,
    PickleFileError,
    check_dataset_files,
    load_pickle,
    load_split,
    prepare_dataset,
    scan_pickle,
)
from search_spaces.data import safe_pickle as safe_pickle_module

#: the pre-Ray check of a tiny data set must finish well within this (it runs before every sweep and training)
TINY_CHECK_S = 1.0


def timed_prepare(dataset: str, root, **kwargs):
    """prepare_dataset's result (or its error) and its duration."""
    start = time.perf_counter()
    try:
        return prepare_dataset(dataset, root, download=False, **kwargs), time.perf_counter() - start
    except (FileNotFoundError, DataCheckError) as err:
        return err, time.perf_counter() - start


def cut(path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


# ----- truncated and non-pickle files ----------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["header", "labels", "pixels", "last byte"])
def test_a_truncated_cifar_batch_is_refused_before_ray_naming_the_file(tmp_path, where):
    root = make_tiny_cifar10(tmp_path, n_train_per_batch=16, n_test=8, batches=2)
    path = root / "cifar-10-batches-py" / "data_batch_2"
    size = path.stat().st_size
    cut(path, {"header": 3, "labels": 60, "pixels": size // 2, "last byte": size - 1}[where])
    err, seconds = timed_prepare("cifar10", root)
    assert isinstance(err, PickleFileError) and isinstance(err, ValueError)
    assert str(path) in str(err) and "truncated" in str(err)
    assert f"the file has only {path.stat().st_size:,} bytes" in str(err)
    assert seconds < TINY_CHECK_S
    with pytest.raises(PickleFileError, match=re.escape(str(path))):  # and the trial's read agrees
        load_split("cifar10", root, "train")


def test_a_truncated_pixel_payload_reports_the_declared_size(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    images = np.zeros((100, 3, 32, 32), np.uint8)  # zeros: the payload is 307,200 raw bytes in any protocol
    for name in ("data_batch_1", "test_batch"):
        write_cifar_batch(folder / name, images, [0] * 100)
    cut(folder / "test_batch", 200_000)
    with pytest.raises(PickleFileError) as err:
        prepare_dataset("cifar10", tmp_path, download=False)
    assert str(folder / "test_batch") in str(err.value) and "307,200-byte payload" in str(err.value)


@pytest.mark.parametrize("content, expected", [
    (b"", "empty file"),
    (b"<html><body>404 Not Found</body></html>", "not a pickle"),
    (b"\x1f\x8b\x08\x00 a gzip archive", "not a pickle"),
    (b"\x80\x02}q\x00\xff\xfe", "is not a pickle opcode"),
])
def test_a_file_that_is_no_pickle_batch_is_named(tmp_path, content, expected):
    root = make_tiny_cifar10(tmp_path, n_train_per_batch=4, n_test=4, batches=1)
    path = root / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(content)
    with pytest.raises(PickleFileError, match=re.escape(str(path)) + ".*" + re.escape(expected)):
        prepare_dataset("cifar10", root, download=False)


def test_cifar100_and_imagenet16_files_are_checked_too(tmp_path):
    root100 = make_tiny_cifar100(tmp_path / "c100")
    root16, _ = make_tiny_imagenet16(tmp_path / "in16", batches=3)
    assert [p.name for p in check_dataset_files("cifar100", root100)] == ["train", "test"]
    assert [p.name for p in check_dataset_files("ImageNet16-120", root16)] == [
        "train_data_batch_1", "train_data_batch_2", "train_data_batch_3", "val_data"]
    for dataset, root, path in (("cifar100", root100, root100 / "cifar-100-python" / "train"),
                                ("ImageNet16-120", root16, root16 / "ImageNet16" / "train_data_batch_2")):
        cut(path, path.stat().st_size - 10)
        err, seconds = timed_prepare(dataset, root)
        assert isinstance(err, PickleFileError) and str(path) in str(err) and "truncated" in str(err)
        assert seconds < TINY_CHECK_S


def test_missing_training_batches_are_found_before_ray(tmp_path):
    root = make_tiny_cifar10(tmp_path, n_train_per_batch=4, n_test=4, batches=1)
    (root / "cifar-10-batches-py" / "data_batch_1").unlink()
    err, _ = timed_prepare("cifar10", root)
    assert isinstance(err, FileNotFoundError) and "no data_batch_* files" in str(err)
    root16, _ = make_tiny_imagenet16(tmp_path / "in16", batches=1)
    (root16 / "ImageNet16" / "train_data_batch_1").unlink()
    err, _ = timed_prepare("ImageNet16-120", root16)
    assert isinstance(err, FileNotFoundError) and "no train_data_batch_* files" in str(err)
    assert prepare_dataset("cifar10", root, check_files=False) == root  # a reader's own call checks by reading


# ----- tampered files: refused by the scan, nothing unpickled ----------------------------------------------------
class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def _malicious(marker) -> dict[str, bytes]:
    """Pickles that would run `touch marker`, each naming os.system another way."""
    shell = f"touch {marker}".encode()
    short = bytes([len(shell)])
    return {
        "protocol 2 GLOBAL": pickle.dumps({"data": _RunsShell(marker), "labels": [1]}, protocol=2),
        "protocol 4 STACK_GLOBAL": pickle.dumps({"data": _RunsShell(marker), "labels": [1]}, protocol=4),
        "protocol 0 GLOBAL": b"(dp0\nS'data'\np1\ncos\nsystem\np2\n(S'" + shell + b"'\ntRp3\ns.",
        "INST": b"(dS'data'\n(S'" + shell + b"'\nios\nsystem\ns.",
        # the names stored in the memo early, fetched for STACK_GLOBAL later
        "memo STACK_GLOBAL": (b"\x80\x04}\x94(\x8c\x05posix\x94\x8c\x06system\x94\x8c\x04data\x94h\x01h\x02\x93\x8c"
                              + short + shell + b"\x85Ru."),
        # the module name duplicated on the stack: the scan follows no DUP, so it refuses the name as untracked
        "DUP STACK_GLOBAL": b"\x80\x04\x8c\x05posix2\x8c\x06system\x93\x8c" + short + shell + b"\x85R\x86.",
        "extension code": b"\x80\x02\x82\x01)R.",
        "persistent id": b"\x80\x02\x8c\x01x\x94Q.",
    }


@pytest.mark.parametrize("kind", list(_malicious("m")))
def test_a_batch_naming_a_forbidden_global_is_refused_by_the_scan_before_any_unpickling(tmp_path, kind,
                                                                                          monkeypatch):
    root = make_tiny_cifar10(tmp_path, n_train_per_batch=4, n_test=4, batches=2)
    marker = tmp_path / "pwned"
    path = root / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(_malicious(marker)[kind])

    unpicklers = []

    class NoUnpickling:
        def __init__(self, *args, **kwargs):
            unpicklers.append(args)
            raise AssertionError("the pre-Ray check must not unpickle")

    for module, name in ((pickle, "Unpickler"), (safe_pickle_module, "RestrictedUnpickler")):
        monkeypatch.setattr(module, name, NoUnpickling)
    for name in ("load", "loads"):
        monkeypatch.setattr(pickle, name, NoUnpickling)
    err, seconds = timed_prepare("cifar10", root)
    assert isinstance(err, PickleFileError), err
    message = str(err)
    assert str(path) in message and "refusing to load" in message and "nothing was unpickled" in message
    expected = {"extension code": "extension code", "persistent id": "persistent id",
                "DUP STACK_GLOBAL": "cannot follow"}.get(kind, "system")
    assert expected in message
    if expected == "system":
        assert re.search(r"global (posix|os|nt)\.system", message)
    assert unpicklers == [] and not marker.exists() and seconds < TINY_CHECK_S

    monkeypatch.undo()  # the trial's restricted unpickler refuses it too, before anything runs
    with pytest.raises(PickleFileError, match=re.escape(str(path))):
        load_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("bytes_keys", [False, True])
def test_the_scan_accepts_exactly_what_the_restricted_unpickler_loads(tmp_path, protocol, bytes_keys):
    """Every protocol of a batch dict (numpy arrays of protocol 5 need numpy's _frombuffer, which both refuse)."""
    rng = np.random.default_rng(protocol)
    record = {"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, 6).tolist(),
              "batch_label": "training batch 1 of 5", "filenames": [f"img_{i}.png" for i in range(6)],
              "mean": np.zeros(3, np.float64)}
    if bytes_keys:  # Python 2 style
        record = {k.encode(): v for k, v in record.items()}
    path = tmp_path / "batch"
    write_batch(path, record, protocol=protocol)
    try:
        load_pickle(path)
        loads = True
    except PickleFileError:
        loads = False
    try:
        scan_pickle(path)
        scans = True
    except PickleFileError as err:
        scans = False
        assert "numeric._frombuffer" in str(err)
    assert scans == loads and loads == (protocol < 5)


def test_good_tiny_data_sets_pass_quickly(tmp_path):
    root = make_tiny_cifar10(tmp_path / "c10", n_train_per_batch=64, n_test=64, batches=5)
    result, seconds = timed_prepare("cifar10", root)
    assert result == root and seconds < TINY_CHECK_S
    assert len(check_dataset_files("cifar10", root)) == 6


@pytest.mark.shared_data
def test_the_real_cifar10_batches_pass_in_well_under_a_second_each(shared_data):
    """~31 MB per batch: the scan walks the opcodes (30,000 per batch) and skips the pixel payload unread."""
    root = shared_data / "cifar10"
    start = time.perf_counter()
    files = check_dataset_files("cifar10", root)
    seconds = time.perf_counter() - start
    assert len(files) >= 2 and all(p.stat().st_size > 30_000_000 for p in files)
    assert seconds < 0.5 * len(files), seconds  # measured ~0.05 s per batch on a quiet machine
