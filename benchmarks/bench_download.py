"""Cost of the data download beyond the transfer: `fetch` (stream + md5 + extract + rename) against the manual
steps it replaces (`curl -o` + `md5sum` + `tar xzf`), both from a local HTTP server on 127.0.0.1 serving a
full-size archive in CIFAR-10's layout (6 random batches of 10,000 images, ~185 MB; the official is 163 MB).

    python benchmarks/bench_download.py [--batches 6] [--repeats 2]

The network is not measured (these machines have none): on a real link add size / bandwidth to both.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import pickle
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from search_spaces.data.download import Archive, fetch


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def make_archive(folder: Path, batches: int) -> Path:
    """cifar-10-python.tar.gz with `batches` pickled batches of 10,000 random 3x32x32 images."""
    src = folder / "src" / "cifar-10-batches-py"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{k}" for k in range(1, batches)] + ["test_batch"]
    for name in names:
        record = {"data": rng.integers(0, 256, (10_000, 3072), dtype=np.uint8),
                  "labels": rng.integers(0, 10, 10_000).tolist()}
        with open(src / name, "wb") as f:
            pickle.dump(record, f, protocol=2)
    out = folder / "serve" / "cifar-10-python.tar.gz"
    out.parent.mkdir()
    with tarfile.open(out, "w:gz", compresslevel=1) as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_download_", dir="/tmp"))
    try:
        archive = make_archive(work, args.batches)
        md5 = hashlib.md5(archive.read_bytes()).hexdigest()
        handler = functools.partial(_Quiet, directory=str(archive.parent))
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{archive.name}"
        source = {"cifar10": Archive("CIFAR-10", url, md5, "cifar-10-batches-py", "test_batch")}
        ours, manual = [], []
        for r in range(args.repeats):
            root = work / f"ours{r}"
            start = time.perf_counter()
            fetch("cifar10", root, sources=source, progress=False)
            ours.append(time.perf_counter() - start)
            peer = work / f"manual{r}"
            peer.mkdir()
            start = time.perf_counter()
            subprocess.run(["curl", "-s", "-o", str(peer / archive.name), url], check=True)
            subprocess.run(["md5sum", str(peer / archive.name)], check=True, capture_output=True)
            subprocess.run(["tar", "xzf", str(peer / archive.name), "-C", str(peer)], check=True)
            manual.append(time.perf_counter() - start)
        httpd.shutdown()
        size = archive.stat().st_size / 2**20
        print(f"archive {size:.0f} MiB ({args.batches} batches), load {os.getloadavg()[0]:.1f}")
        print(f"fetch (stream+md5+extract+rename): {min(ours):.2f} s   curl+md5sum+tar: {min(manual):.2f} s   "
              f"ratio {min(ours) / min(manual):.2f}   (best of {args.repeats})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
