"""Every code path on `cuda`: the search step of each method family (and bf16, channels_last, torch.compile,
CUDA graphs), no host sync in the step, the device data set, the image-folder reader, resume, proxies. All skip
without CUDA; the GPU check (benchmarks/gpu_check.py, section cuda_tests) runs them with
`pytest -m cuda tests/cuda`."""

from __future__ import annotations

import math

import pytest
import torch

from search_spaces.data.device import DeviceDataset
from search_spaces.nb201.encoding import all_architectures
from trainables.methods import available_methods, get_method
from trainables.search.loop import SearchRun, load_distribution

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

CUDA = torch.device("cuda")


def splits(n: int = 32, device: torch.device | str = CUDA) -> dict[str, DeviceDataset]:
    g = torch.Generator().manual_seed(0)
    return {name: DeviceDataset(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                                torch.randint(0, 10, (n,), generator=g), (0.5,) * 3, (0.25,) * 3, 10, name).to(device)
            for name in ("search-train", "search-valid")}


def config(method: str = "darts-v1", **extra):
    return {"method": method, "C": 4, "N": 1, "batch_size": 8, "epochs": 3, "steps_per_epoch": 2, "device": "cuda",
            "seed": 0, **extra}


@pytest.mark.parametrize("method", available_methods())
def test_every_method_searches_on_cuda(method):
    run = SearchRun(config(method), splits=splits())
    assert next(run.model.parameters()).is_cuda and run.data_generator.device.type == "cuda"
    row = run.run_epoch()
    for key in ("train_loss", "train_acc", "entropy"):
        assert math.isfinite(row[key]), key
    run.space.canonical(row["genotype"])


@pytest.mark.parametrize("extra", [{"amp": True}, {"channels_last": True}, {"amp": True, "channels_last": True}])
def test_bf16_and_channels_last_on_cuda(extra):
    row = SearchRun(config("balenas", **extra), splits=splits()).run_epoch()
    assert math.isfinite(row["train_loss"]) and math.isfinite(row["valid_loss"])


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compiled_step_matches_eager(mode):
    eager = SearchRun(config(), splits=splits()).run_epoch()
    compiled = SearchRun(config(compile=mode), splits=splits()).run_epoch()
    assert compiled["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-3)
    assert compiled["valid_loss"] == pytest.approx(eager["valid_loss"], rel=1e-3)


@pytest.mark.parametrize("method", available_methods())
def test_step_has_no_host_sync_on_cuda(method):
    run = SearchRun(config(method), splits=splits())
    interval = max(int(run.distribution.update_interval), 1)
    index = torch.arange(8, device=CUDA)
    run.step(index, index, 0.025, interval)  # warm-up (lazy optimizer state)
    torch.cuda.synchronize()
    mode = "warn" if get_method(method).host_syncs_per_step else "error"
    torch.cuda.set_sync_debug_mode(mode)
    try:
        for _ in range(2 * interval):
            run.step(index, index, 0.025, interval)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_device_dataset_batches_match_the_cpu():
    cpu, gpu = splits(device="cpu")["search-train"], splits()["search-train"]
    index = torch.tensor([3, 1, 4, 1, 5])
    x_cpu, y_cpu = cpu.batch(index)
    x_gpu, y_gpu = gpu.batch(index.to(CUDA), channels_last=True)
    assert x_gpu.is_cuda and x_gpu.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(x_gpu.cpu(), x_cpu) and torch.equal(y_gpu.cpu(), y_cpu)
    xa, _ = gpu.batch(index.to(CUDA), augment=True, generator=torch.Generator(device=CUDA).manual_seed(0))
    xb, _ = gpu.batch(index.to(CUDA), augment=True, generator=torch.Generator(device=CUDA).manual_seed(0))
    assert torch.equal(xa, xb) and xa.shape == x_gpu.shape


def test_resume_on_cuda(tmp_path):
    cfg = config("balenas")
    unbroken = SearchRun(cfg, splits=splits())
    full = [unbroken.run_epoch() for _ in range(2)]
    first = SearchRun(cfg, splits=splits())
    first.run_epoch()
    path = first.save(tmp_path / "search.pt")
    resumed = SearchRun(cfg, splits=splits())
    resumed.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    assert resumed.epoch == 1 and resumed.data_generator.device.type == "cuda"
    tail = resumed.run_epoch()
    # data order and sampling resume exactly; cuDNN's kernels need not be bitwise reproducible
    assert tail["train_loss"] == pytest.approx(full[1]["train_loss"], rel=1e-3)
    dist, _ = load_distribution(path, device="cpu")  # a CUDA checkpoint opens on the CPU
    for k, v in first.distribution.mode_probabilities().items():
        assert torch.equal(dist.mode_probabilities()[k], v.cpu()), k


def test_proxies_on_cuda_match_the_cpu():
    from trainables.proxies import names
    from trainables.proxy_stage.selection import score_architectures

    torch.manual_seed(0)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    archs = all_architectures()[1000:1003]
    size = {"C": 4, "N": 1}
    on_cpu = score_architectures(archs, x, y, names(), space="nb201", size=size)
    on_gpu = score_architectures(archs, x, y, names(), space="nb201", size=size, device="cuda")
    for a, b in zip(on_cpu, on_gpu):
        for name in names():
            assert (a[name] is None) == (b[name] is None), (a["arch"], name, b.get(f"{name}_error"))
            if a[name] is not None and name in ("params", "flops"):
                assert a[name] == pytest.approx(b[name], rel=1e-6)


def test_image_folder_batches_on_cuda_match_the_cpu_with_one_sync(tiny_imagenet):
    import warnings

    from search_spaces.data import load_split

    cpu = load_split("imagenet", tiny_imagenet, "train")
    gpu = load_split("imagenet", tiny_imagenet, "train", device=CUDA)
    index = torch.tensor([3, 1, 4, 1, 5])
    x_cpu, y_cpu = cpu.batch(index)
    x_gpu, y_gpu = gpu.batch(index.to(CUDA), channels_last=True)
    assert x_gpu.is_cuda and x_gpu.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(x_gpu.cpu(), x_cpu, atol=1e-5) and torch.equal(y_gpu.cpu(), y_cpu)
    g = torch.Generator(device=CUDA).manual_seed(0)
    order = gpu.permutation(g)
    xa, _ = gpu.batch(order[:6], augment=True, generator=torch.Generator(device=CUDA).manual_seed(1))
    xb, _ = gpu.batch(order[:6], augment=True, generator=torch.Generator(device=CUDA).manual_seed(1))
    assert torch.equal(xa, xb)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gpu.batch(order[:6], augment=True, generator=g, cutout=16)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) == 1, [str(w.message) for w in syncs]  # index and draws to the host; the pinned copy waits not
