"""Fixtures shared by the whole suite: the shared real data folder and tiny files in official formats."""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# A data set missing in a test is never fetched from the internet: downloads go to a refused local port
# (tests of the downloader point search_spaces.data.download at their own local server).
os.environ.setdefault("BALENAS_DOWNLOAD_MIRROR", "http://127.0.0.1:9/no-downloads-in-tests")

_DEFAULT_SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SHARED_DATA = Path(os.environ.get("BALENAS_SHARED_DATA", _DEFAULT_SHARED))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $BALENAS_SHARED_DATA); tests using it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA} (set BALENAS_SHARED_DATA)")
    return SHARED_DATA.resolve()


def write_cifar_batch(path: Path, images: np.ndarray, labels, label_key: str = "labels") -> None:
    """One batch in the python-pickle layout of CIFAR (`data`: uint8 N x 3072 channel-major)."""
    record = {"batch_label": path.name, label_key: list(map(int, labels)),
              "data": images.reshape(len(images), -1).astype(np.uint8),
              "filenames": [f"img_{i}.png" for i in range(len(images))]}
    with open(path, "wb") as f:
        pickle.dump(record, f, protocol=2)


def make_tiny_cifar10(root: Path, n_train_per_batch: int = 64, n_test: int = 64, batches: int = 2,
                      seed: int = 0) -> Path:
    """A `cifar-10-batches-py` folder with random images whose class is visible in the pixels."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def images_for(labels):
        x = rng.integers(0, 256, size=(len(labels), 3, 32, 32), dtype=np.uint8)
        x[:, 0, :4, :4] = (np.asarray(labels)[:, None, None] * 25).astype(np.uint8)  # a learnable cue
        return x

    for b in range(1, batches + 1):
        labels = rng.integers(0, 10, size=n_train_per_batch)
        write_cifar_batch(folder / f"data_batch_{b}", images_for(labels), labels)
    labels = rng.integers(0, 10, size=n_test)
    write_cifar_batch(folder / "test_batch", images_for(labels), labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": n_train_per_batch,
                     "num_vis": 3072}, f, protocol=2)
    return root


@pytest.fixture
def tiny_cifar10(tmp_path) -> Path:
    """A data_root holding a tiny `cifar-10-batches-py` (2 x 64 train, 64 test images)."""
    return make_tiny_cifar10(tmp_path / "data")


#: image sizes (width, height) the tiny ImageNet cycles through: smaller and larger than the 224 crop
TINY_IMAGENET_SIZES = ((40, 60), (300, 200), (64, 64), (120, 90))


def make_tiny_imagenet(root: Path, classes=("n03", "n01", "n02"), train_per_class: int = 4, val_per_class: int = 2,
                       seed: int = 0) -> Path:
    """A data root in ILSVRC-2012's folder layout (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG) of random JPEGs whose
    class is visible in their mean colour; class folders are created out of order (labels must sort them)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for wnid in classes:
            label = sorted(classes).index(wnid)
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                w, h = TINY_IMAGENET_SIZES[i % len(TINY_IMAGENET_SIZES)]
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                pixels[..., label % 3] = 255  # a learnable cue
                Image.fromarray(pixels).save(folder / f"{wnid}_{i}.JPEG", quality=90)
    return root


@pytest.fixture
def tiny_imagenet(tmp_path) -> Path:
    """A data root holding train/ (3 classes x 4 JPEGs) and val/ (3 x 2) in ILSVRC-2012's layout."""
    return make_tiny_imagenet(tmp_path / "imagenet")


@pytest.fixture(scope="module")
def local_ray():
    """A small local Ray for one test module (2 CPUs, temporary files under a short /tmp path)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, _temp_dir="/tmp/ray_tests", include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_with_test_classes(request):
    """A local Ray for one test module whose workers get that module's classes by value (workers cannot import
    test files, e.g. a test Trainable subclassing ours): 2 CPUs, one torch thread per worker."""
    import ray

    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's unix sockets live under it
    ray.init(num_cpus=2, _temp_dir=temp, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    ray.cloudpickle.register_pickle_by_value(request.module)
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def one_torch_thread():
    """torch on one thread for one test (small CPU tests: no thread start-up cost, repeatable timings)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def float64():
    """float64 as torch's default dtype for one test (exact comparisons against closed forms)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(autouse=True)
def small_cost_model_fits(monkeypatch):
    """Cost models (search_spaces.cost_model) fitted on 300 sampled architectures instead of every NB201 cell or
    1,000 samples: the additive costs the tests use are exact on any sample, and a fit then takes ~1 s."""
    from search_spaces import cost_model

    monkeypatch.setattr(cost_model, "SAMPLED", 300)
    monkeypatch.setattr(cost_model, "ENUMERATE_UP_TO", 0)
