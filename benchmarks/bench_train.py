"""Seconds per epoch of final training (`TrainRun`) at a preset's full size, extrapolated from a few steps, and
the projected wall time of the whole run; beside a host-side peer loop.

Ours: `TrainRun` of the preset (full network size, batch, augmentation, auxiliary head, drop path) on a
synthetic uint8 data set of the real shape (timings do not depend on pixel values): `--steps` timed training
steps after one warm-up step and `--eval-batches` evaluation batches, extrapolated to the preset's training set
(CIFAR-10: 50,000 images; NB201 `cifar10-valid`: 25,000) and test set (10,000; 25,000 + 10,000 for
cifar10-valid).

Peer: the same network and optimizer fed the way quark0/darts' `train.py` and xautodl feed it: a float
DataLoader-style pipeline with per-image host transforms (numpy pad + random crop, flip, cutout, normalise),
collated and copied to the device each step. The ratio is ours / peer per training step; the data-preparation
share is printed on its own too (ours: one gather on the device; peer: a Python loop over images).

    python benchmarks/bench_train.py --protocols nb201 darts-cifar [--steps 2] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from search_spaces.data.device import DeviceDataset
from trainables.train import PRESETS, TrainRun
from trainables.train.loop import split_logits

ARCHS = {
    "nb201": "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
}
#: (training images, evaluated images) of the preset's default data set
SIZES = {"darts-cifar": (50_000, 10_000), "nb201": (25_000, 35_000), "nb201-12": (25_000, 35_000)}
DATASET = {"darts-cifar": "cifar10", "nb201": "cifar10-valid", "nb201-12": "cifar10-valid"}


def arch_for(space: str) -> str:
    if space == "darts":
        from search_spaces.darts.published import DARTS_V2

        return str(DARTS_V2)
    return ARCHS[space]


def synthetic(n: int, device: str) -> DeviceDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    return DeviceDataset(images.to(device), (torch.arange(n) % 10).to(device), (0.49, 0.48, 0.45),
                         (0.25, 0.24, 0.26), 10, "synthetic")


def host_batch(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, cutout: int, mean, std):
    """Per-image host transforms as torchvision + DARTS's Cutout do them, then collate."""
    out = np.empty(images.shape, dtype=np.float32)
    for i, img in enumerate(images):
        padded = np.pad(img, ((0, 0), (4, 4), (4, 4)))
        y, x = rng.integers(0, 9, size=2)
        crop = padded[:, y:y + 32, x:x + 32]
        if rng.random() < 0.5:
            crop = crop[:, :, ::-1]
        t = (crop.astype(np.float32) / 255.0 - mean) / std
        if cutout:
            cy, cx = rng.integers(0, 32, size=2)
            t[:, max(cy - cutout // 2, 0):cy + cutout // 2, max(cx - cutout // 2, 0):cx + cutout // 2] = 0.0
        out[i] = t
    return torch.from_numpy(out), torch.from_numpy(labels)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()  # kernels run asynchronously: time what finished


def timed(fn, n: int) -> float:
    times = []
    for _ in range(n):
        _sync()
        t0 = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(protocol: str, steps: int, eval_batches: int, device: str) -> dict:
    preset = PRESETS[protocol]
    n_train, n_eval = SIZES[protocol]
    B = preset.batch_size
    data = synthetic(max(B * (steps + 1), preset.eval_batch_size * eval_batches), device)
    run = TrainRun({"arch": arch_for(preset.space), "protocol": protocol, "dataset": DATASET[protocol],
                    "device": device, "overrides": {"epochs": 1, "steps_per_epoch": 1}},
                   splits={"train": data, "test": data})
    p = run.protocol

    def train_step(x, y):
        logits, aux = split_logits(run.model(x))
        loss = F.cross_entropy(logits, y) + (p.auxiliary_weight * F.cross_entropy(aux, y) if aux is not None else 0)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if p.grad_clip:
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), p.grad_clip)
        run.optimizer.step()

    offsets = iter(range(10**9))

    def ours_step():
        index = torch.arange(B, device=data.device) + (next(offsets) % steps) * B
        train_step(*data.batch(index, augment=p.augment, generator=run.generator, cutout=p.cutout))

    host_images = data.images.cpu().numpy()
    host_labels = data.labels.cpu().numpy()
    rng = np.random.default_rng(0)
    mean = np.asarray(data.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(data.std, dtype=np.float32).reshape(3, 1, 1)

    def peer_data():
        idx = rng.integers(0, len(host_labels), size=B)
        x, y = host_batch(host_images[idx], host_labels[idx].astype(np.int64), rng, p.cutout, mean, std)
        return x.to(device), y.to(device)

    def peer_step():
        train_step(*peer_data())

    def ours_data():
        data.batch(torch.arange(B, device=data.device), augment=p.augment, generator=run.generator, cutout=p.cutout)

    run.model.train()
    ours_step()  # warm-up
    ours_times, peer_times = [], []
    for _ in range(steps):  # interleaved, so that load changes hit both alike
        ours_times.append(timed(ours_step, 1))
        peer_times.append(timed(peer_step, 1))
    ours, peer = statistics.median(ours_times), statistics.median(peer_times)
    ours_prep, peer_prep = timed(ours_data, 5), timed(peer_data, 5)
    run.model.eval()
    with torch.no_grad():
        ev = timed(lambda: run.model(data.batch(torch.arange(p.eval_batch_size, device=data.device))[0]),
                   eval_batches)
    steps_per_epoch = math.ceil(n_train / B)
    epoch = ours * steps_per_epoch + ev * math.ceil(n_eval / p.eval_batch_size)
    return {"protocol": protocol, "params": run.params, "batch": B, "step_s": ours, "peer_step_s": peer,
            "prep_ms": ours_prep * 1e3, "peer_prep_ms": peer_prep * 1e3, "eval_batch_s": ev,
            "steps_per_epoch": steps_per_epoch, "epoch_s": epoch, "epochs": preset.epochs,
            "run_h": epoch * preset.epochs / 3600}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocols", nargs="+", default=["nb201", "darts-cifar"], choices=sorted(SIZES))
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--eval-batches", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, device {args.device}, load {os.getloadavg()[0]:.1f}")
    for protocol in args.protocols:
        r = bench(protocol, args.steps, args.eval_batches, args.device)
        print(f"{r['protocol']}: {r['params']:,} params, batch {r['batch']}: step {r['step_s']:.2f} s "
              f"(peer {r['peer_step_s']:.2f} s, ours/peer {r['step_s'] / r['peer_step_s']:.2f}); data prep "
              f"{r['prep_ms']:.1f} ms vs peer {r['peer_prep_ms']:.1f} ms ({r['prep_ms'] / r['peer_prep_ms']:.2f}); "
              f"eval batch {r['eval_batch_s']:.2f} s; epoch ~{r['epoch_s']:.0f} s ({r['steps_per_epoch']} steps); "
              f"{r['epochs']} epochs ~{r['run_h']:.1f} h", flush=True)
    print(f"load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
