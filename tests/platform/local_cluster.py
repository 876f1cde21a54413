"""A multi-node Ray cluster on 127.0.0.1 in its own process, for tests and benchmarks of the cluster path.

`python tests/platform/local_cluster.py FOLDER [--workers N] [--token TOKEN]` starts a head node (with the
dashboard, so `ray job submit` works) and N worker nodes of one CPU each, all with temporary folders under
FOLDER, writes `FOLDER/cluster.json` (GCS and dashboard addresses, node ids) and then obeys lines on stdin:
`remove-worker` (kill the first worker node's processes, like a lost machine), `add-worker`, `quit`.
End of stdin also shuts it down. `LocalCluster` is the context manager that runs it.

Why a separate process: `ray.cluster_utils.Cluster` starts the nodes as children of the process that
makes them, and would register itself as this machine's "current" cluster (/tmp/ray/ray_current_cluster, which
a plain `ray.init()` of any other user joins; here the registration goes to the cluster's own temp folder,
where Ray's job supervisor looks for it); in a process of its own
its nodes die with it (Ray's reaper) and the caller's Ray state (e.g. pytest's local Ray) is untouched.
Token authentication: with `--token`, every node runs with RAY_AUTH_MODE=token and that RAY_AUTH_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(folder: Path, workers: int, dashboard_port: int) -> None:
    import ray
    import ray._private.utils
    from ray.cluster_utils import Cluster

    common = {"num_cpus": 1, "temp_dir": str(folder / "ray"), "object_store_memory": 80 * 1024 ** 2}
    # the address file goes to this cluster's temp folder, never /tmp/ray (this machine's "current" cluster):
    # Ray's job supervisor resolves the driver's RAY_ADDRESS ("auto") from the file in its node's temp folder
    write_address = ray._private.utils.write_ray_address
    ray._private.utils.write_ray_address = lambda address, temp_dir=None: write_address(address, common["temp_dir"])
    cluster = Cluster(initialize_head=True, head_node_args={
        **common, "include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": dashboard_port,
        "dashboard_agent_listen_port": free_port(),  # not the default 52365: other clusters on this host
        "resources": {"head": 1}})

    def add_worker():
        return cluster.add_node(**common, dashboard_agent_listen_port=free_port(),
                                resources={"worker": 1})

    nodes = [add_worker() for _ in range(workers)]
    cluster.wait_for_nodes()

    def describe():
        return {"gcs_address": cluster.address, "dashboard": f"http://127.0.0.1:{dashboard_port}",
                "head_node_id": cluster.head_node.node_id, "worker_node_ids": [n.node_id for n in nodes],
                "pid": os.getpid()}

    out = folder / "cluster.json"
    out.write_text(json.dumps(describe()))
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "remove-worker" and nodes:
                cluster.remove_node(nodes.pop(0), allow_graceful=False)
            elif command == "add-worker":
                nodes.append(add_worker())
                cluster.wait_for_nodes()
            elif command == "quit":
                break
            out.write_text(json.dumps(describe()))
            print("ok", flush=True)
    finally:
        cluster.shutdown()
        ray.shutdown()


class LocalCluster:
    """`with LocalCluster(folder, token=...) as c:` a head + workers on 127.0.0.1 (see module doc)."""

    def __init__(self, folder: str | os.PathLike, *, workers: int = 1, token: str | None = None,
                 timeout: float = 90):
        self.folder, self.workers, self.token, self.timeout = Path(folder), workers, token, timeout
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a client of this cluster (the token presented when auth is on)."""
        env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
        env["RAY_AUTH_MODE"] = "token" if self.token else "disabled"
        if self.token:
            env["RAY_AUTH_TOKEN"] = self.token
        env.update(extra)
        return env

    def __enter__(self) -> LocalCluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "cluster.json").unlink(missing_ok=True)
        self.log = open(self.folder / "cluster.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, str(self.folder), "--workers", str(self.workers),
             "--dashboard-port", str(free_port())], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True, env=self.env())
        deadline = time.monotonic() + self.timeout
        while not (self.folder / "cluster.json").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"local cluster did not start; see {self.folder / 'cluster.log'}")
            time.sleep(0.2)
        self.info = json.loads((self.folder / "cluster.json").read_text())
        return self

    def command(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "ok":
            raise RuntimeError(f"local cluster: {line!r} failed; see {self.folder / 'cluster.log'}")
        self.info = json.loads((self.folder / "cluster.json").read_text())

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (subprocess.TimeoutExpired, BrokenPipeError, OSError):
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        self.proc = None

    @property
    def dashboard(self) -> str:
        return self.info["dashboard"]

    @property
    def address(self) -> str:
        return self.info["gcs_address"]


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("folder", type=Path)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--dashboard-port", type=int, default=8265)
    a = p.parse_args()
    serve(a.folder, a.workers, a.dashboard_port)
