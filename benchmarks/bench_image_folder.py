"""Images per second of the image-folder reader's `batch(..., augment=True)` against a plain PIL loop.

Writes synthetic JPEGs of ImageNet-like size and content (500x375, 375x500 and 500x333; smooth colour fields
plus noise, quality 90, ~ImageNet's average file size) in the standard layout into a temporary folder, then
times, in rotated rounds (timing.rotated_rounds, median per setting):
- peer: a plain PIL loop in one thread: per image open + convert('RGB') + a RandomResizedCrop box + crop + bilinear
  resize to 224, written into one uint8 [n, 224, 224, 3] array (no flip, colour jitter or normalisation);
- ours: `ImageFolderDataset.batch(index, augment=True, generator=g)`: the same decode, crop and resize, plus
  flip, ColorJitter(0.4, 0.4, 0.4, 0.2), the move to the device and normalisation, with `--workers` threads;
  also without colour jitter (jitter ranges 0) at one thread, to show what the jitter costs;
- ours, eval: `batch(index)` (Resize(256) + CenterCrop(224)).
The temporary folder is deleted at the end.

    OMP_NUM_THREADS=1 python benchmarks/bench_image_folder.py --images 256 --batch 128 --rounds 3 --workers 1 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's `benchmarks` package
from benchmarks.timing import print_ratio_rows, rotated_rounds  # noqa: E402
from search_spaces.data.image_folder import ImageFolderDataset, open_rgb, resized_crop_box  # noqa: E402

SIZES = ((500, 375), (375, 500), (500, 333))


def write_images(root: Path, n: int, classes: int = 8, seed: int = 0) -> float:
    """`n` JPEGs under root/train/<class>/; returns their mean size in KB."""
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        field = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
        pixels = np.asarray(field).astype(np.int16) + rng.normal(0, 24, (h, w, 3)).astype(np.int16)
        folder = root / "train" / f"n{i % classes:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img_{i:05d}.JPEG"
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, quality=90)
        total += path.stat().st_size
    return total / n / 1024


def peer_batch(paths: list[Path], rng: np.random.Generator, size: int = 224) -> np.ndarray:
    """The plain loop: decode, crop, resize, one image after the other in this thread."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for k, path in enumerate(paths):
        image = open_rgb(path)
        left, top, w, h = resized_crop_box(image.width, image.height, rng.random(40))
        out[k] = np.asarray(image.crop((left, top, left + w, top + h)).resize((size, size), Image.BILINEAR))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tmp-dir", default=None)
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_image_folder_", dir=args.tmp_dir))
    try:
        kb = write_images(tmp, args.images)
        data = ImageFolderDataset.from_folder(tmp / "train", device=args.device)
        paths = [data.path(i) for i in range(len(data))]
        g = torch.Generator(device=args.device).manual_seed(0)
        rng = np.random.default_rng(0)
        cursor = {"i": 0}

        def next_rows() -> list[int]:
            start = cursor["i"] % (len(data) - args.batch + 1)
            cursor["i"] += args.batch
            return list(range(start, start + args.batch))

        def timed(fn):
            def run() -> float:
                rows = next_rows()
                t = time.perf_counter()
                fn(rows)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                return time.perf_counter() - t
            return run

        def ours(workers: int, jitter=(0.4, 0.4, 0.4, 0.2), augment=True):
            d = ImageFolderDataset(data.root, data.files, data.labels, data.classes, jitter=jitter, workers=workers)
            return timed(lambda rows: d.batch(torch.tensor(rows, device=args.device), augment=augment, generator=g))

        timers = {"peer: plain PIL loop, 1 thread": timed(lambda rows: peer_batch([paths[r] for r in rows], rng))}
        for w in args.workers:
            timers[f"ours: batch(augment=True), {w} thread(s)"] = ours(w)
        timers["ours: augment without colour jitter, 1 thread"] = ours(1, jitter=(0, 0, 0, 0))
        timers[f"ours: batch() eval transform, {max(args.workers)} thread(s)"] = ours(max(args.workers),
                                                                                     augment=False)
        for fn in timers.values():  # warm-up: thread pools, PIL's codecs
            fn()
        times = rotated_rounds(timers, args.rounds)
        medians = {k: statistics.median(v) for k, v in times.items()}
        peer = next(iter(medians.values()))
        print(f"{args.images} synthetic JPEGs ({', '.join(f'{w}x{h}' for w, h in SIZES)}; mean {kb:.0f} KB), "
              f"batch {args.batch}, {args.rounds} rounds, device {args.device}, torch threads "
              f"{torch.get_num_threads()}, {os.cpu_count()} CPUs")
        print("| setting | s / batch (median) | min | max | time / peer's | images/s |")
        print("|---|---|---|---|---|---|")
        print_ratio_rows(times, medians, peer, extra=lambda k: f"{args.batch / medians[k]:.0f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
