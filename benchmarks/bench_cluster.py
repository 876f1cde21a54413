"""The cluster path's costs, side by side (see benchmarks/README.md, "Cluster path").

1. `ray job submit` of a tiny sweep (2 trials x 2 epochs + a proxy stage) to a two-node cluster on this host
   (token auth on; one CPU per node) against the same sweep run locally (`platform/sweep.py --num-cpus 2`):
   wall time from the command to its results on disk, cluster start excluded (and reported apart).
2. The proxy stage's scoring (`trainables.proxy_stage.driver.score_distributed`, one architecture per task) on that
   cluster with one node against two: parallel efficiency = t(1 node) / (2 x t(2 nodes)).

    python benchmarks/bench_cluster.py [--archs 24]

Other users share this machine's CPUs: the script prints `uptime` before and after; read ratios with it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "platform")]

from conftest import make_tiny_cifar10  # noqa: E402
from local_cluster import LocalCluster  # noqa: E402

BIN = Path(sys.executable).parent


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def write_spec(folder: Path, data: Path) -> Path:
    spec = {"name": "bench", "space": "nb201", "dataset": "cifar10", "data_root": str(data),
            "methods": {"darts-v1": {}}, "seeds": [0, 1],
            "search": {"epochs": 2, "batch_size": 8, "C": 4, "N": 1, "steps_per_epoch": 2},
            "resources": {"cpu": 1, "gpu": 0},
            "proxies": {"samples": 4, "names": ["naswot"], "batch_size": 8, "C": 4, "N": 1, "archs_per_task": 1}}
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return time.perf_counter() - start


def score_seconds(c: LocalCluster, archs: int) -> float:
    """Seconds to score `archs` NB201 architectures (naswot + synflow, one per task) on cluster `c`."""
    code = f"""
import time, torch, ray
from search_spaces.nb201.encoding import all_architectures
from trainables.proxy_stage.driver import score_distributed
ray.init(address={c.address!r}, log_to_driver=False)
archs = all_architectures()[:{archs}]
batch = (torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,)))
score_distributed(archs[:2], batch, ["naswot"], on_rows=lambda r: None, archs_per_task=1, space="nb201",
                  size={{"C": 4, "N": 1}}, progress=False)  # warm: workers started, modules imported on every node
start = time.perf_counter()
score_distributed(archs, batch, ["naswot", "synflow"], on_rows=lambda r: None, archs_per_task=1, space="nb201",
                  size={{"C": 8, "N": 1}}, progress=False)
print(time.perf_counter() - start)
"""
    env = c.env(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", type=int, default=24)
    args = p.parse_args()
    print("load before:", uptime())
    folder = Path(tempfile.mkdtemp(prefix="hb", dir="/tmp"))
    try:
        data = make_tiny_cifar10(folder / "data")
        spec = write_spec(folder, data)
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1",
               "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        local = timed([sys.executable, "platform/sweep.py", str(spec), "--storage", str(folder / "local"),
                       "--num-cpus", "2", "--ray-temp-dir", str(folder / "r"), "--quiet"], env)

        start = time.perf_counter()
        with LocalCluster(folder / "c", workers=1, token=secrets.token_hex(16)) as c:
            up = time.perf_counter() - start
            job_env = c.env(PATH=env["PATH"], OMP_NUM_THREADS="1")
            cmd = [str(BIN / "ray"), "job", "submit", "--address", c.dashboard, "--working-dir", ".", "--",
                   "python", "platform/sweep.py", str(spec), "--storage", str(folder / "job"), "--quiet"]
            for _ in range(30):  # the head's job agent answers a few seconds after the cluster is up
                try:
                    job = timed(cmd, job_env)
                    break
                except RuntimeError as err:
                    if "No available agent" not in str(err):
                        raise
                    time.sleep(2)
            print(f"local {local:.1f} s, ray job submit {job:.1f} s (cluster start {up:.1f} s)", flush=True)
            two = score_seconds(c, args.archs)
        with LocalCluster(folder / "c1", workers=0, token=secrets.token_hex(16)) as c:
            one = score_seconds(c, args.archs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("\nsweep (2 trials x 2 epochs + proxy stage of 8 samples), command to results on disk:")
    print(f"  local  platform/sweep.py --num-cpus 2   {local:6.1f} s   1.00x")
    print(f"  ray job submit, two-node cluster        {job:6.1f} s   {job / local:.2f}x   (cluster start {up:.1f} s)")
    print(f"\nproxy scoring of {args.archs} architectures (naswot + synflow, C=8 N=1, one per task):")
    print(f"  one node (1 CPU)   {one:6.1f} s")
    print(f"  two nodes (2 CPUs) {two:6.1f} s   speed-up {one / two:.2f}x, parallel efficiency {one / (2 * two):.0%}")
    print("load after:", uptime())


if __name__ == "__main__":
    main()
