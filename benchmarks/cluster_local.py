"""`ray up` / `ray submit` / `ray rsync-down` / `ray down` with platform/cluster-local.yaml, run for real on 127.0.0.1.

    python benchmarks/cluster_local.py [--data-root DIR] [--keep]

What it does (everything it starts or writes lives in one temp folder T, removed at the end unless --keep):
  1. sshd: installs openssh-server + rsync from Debian's packages if missing (root + apt-get only), makes a
     throwaway host key and client key pair, and runs `/usr/sbin/sshd -D -p 22 -o ...` on 127.0.0.1 only
     (Ray's cluster launcher has no SSH-port setting, so port 22 must be free). The sshd gives its sessions
     HOME=T/home, so the "remote" host's `~` (the checkout, ~/ray_bootstrap_config.yaml, ~/results) is T/home.
  2. T/home/.bash_profile is the host's environment: PATH (a venv made from this Python with the system's
     site-packages, where the YAML's `pip install -e .` goes), BALENAS_DATA_ROOT, and RAY_ADDRESS (on a shared
     host `--address auto` would otherwise pick whichever Ray this machine last started). Its `ray` is a shim
     whose `ray stop` (run by `ray up` and `ray down` on the head) stops only this cluster's processes
     (command lines naming T) instead of every Ray process on the machine.
  3. Runs the README's commands with HOME=T/client (so `~/.ray/auth_token`, the SSH key of the YAML's `auth`,
     are throwaway ones) on a copy of the YAML whose ports are free ones and whose temp dir is T/ray:
     ray up -y, ray submit ... platform/sweep.py -- SPEC --address auto --storage ~/results, ray rsync-down,
     ray down -y; then reads the fetched Parquet tables and prints timings and row counts.
It stops only what it started: sshd (its pid), this cluster's Ray processes (pids whose command line names T).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
YAML = ROOT / "platform" / "cluster-local.yaml"
RAY_CURRENT = Path("/tmp/ray/ray_current_cluster")

TINY_SPEC = """name: tiny
space: nb201
dataset: cifar10
methods:
  darts-v1: {}
seeds: [0, 1]
search: {epochs: 1, batch_size: 16, C: 4, N: 1, steps_per_epoch: 2, train_size: 256}
resources: {cpu: 1, gpu: 0}
checkpoint: {frequency: 1, num_to_keep: 1}
proxies: {samples: 4, names: [naswot], batch_size: 16, C: 4, N: 1}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Skip(RuntimeError):
    """sshd cannot be started here; the message says why."""


def ensure_sshd() -> None:
    """openssh-server and rsync from Debian's packages when missing (needs root and apt-get)."""
    if Path("/usr/sbin/sshd").exists() and shutil.which("rsync"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Skip("sshd/rsync missing and cannot be installed (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-q", "openssh-server", "rsync"]):
        if subprocess.run(cmd, env=env, capture_output=True).returncode:
            raise Skip(f"`{' '.join(cmd)}` failed")


def local_yaml(tmp: Path, ports: dict[int, int]) -> Path:
    """The repository's YAML with this run's ports, temp dir and cluster name (nothing else changes)."""
    text = YAML.read_text()
    for old, new in ports.items():
        text = re.sub(rf"(?<=[=:]){old}\b", str(new), text)
    text = text.replace("/tmp/balenas-ray", str(tmp / "ray"))
    # ssh expands `~` in `-i` from the passwd home, not $HOME: the throwaway key by its absolute path
    text = text.replace("ssh_private_key: ~/.ssh/id_ed25519", f"ssh_private_key: {tmp}/client/.ssh/id_ed25519")
    text = text.replace("cluster_name: balenas-local", f"cluster_name: balenas-local-{tmp.name}")
    out = tmp / "cluster-local.yaml"
    out.write_text(text)
    return out


def host_environment(tmp: Path, gcs_port: int, data_root: str | None) -> None:
    """T/home (the host's ~): .bash_profile with PATH/RAY_ADDRESS/BALENAS_DATA_ROOT, and the `ray stop` shim."""
    home, bin_ = tmp / "home", tmp / "bin"
    home.mkdir()
    bin_.mkdir()
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp / "venv")], check=True)
    real_ray = Path(sys.executable).parent / "ray"
    shim = bin_ / "ray"
    shim.write_text(f"""#!/bin/bash
# `ray stop` on this shared host stops only the cluster under {tmp} (Ray's own `ray stop` stops every Ray)
if [ "$1" = stop ]; then
  pids=$(pgrep -f -- "{tmp}/ray|{tmp}/venv/bin/python" | grep -vx "$$")
  [ -n "$pids" ] && kill $pids 2>/dev/null; sleep 2
  pids=$(pgrep -f -- "{tmp}/ray|{tmp}/venv/bin/python" | grep -vx "$$")
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null
  exit 0
fi
exec {tmp}/venv/bin/python {real_ray} "$@"
""")
    shim.chmod(0o755)
    lines = [f"export PATH={bin_}:{tmp}/venv/bin:$PATH", f"export RAY_ADDRESS=127.0.0.1:{gcs_port}",
             "export OMP_NUM_THREADS=1"]
    if data_root:
        lines.append(f"export BALENAS_DATA_ROOT={data_root}")
    (home / ".bash_profile").write_text("\n".join(lines) + "\n")
    (home / ".bashrc").write_text("")


def start_sshd(tmp: Path) -> subprocess.Popen:
    if not port_free(22):
        raise Skip("port 22 is taken (Ray's cluster launcher has no SSH port setting)")
    client = tmp / "client"
    (client / ".ssh").mkdir(parents=True)
    key = client / ".ssh" / "id_ed25519"
    for path in (key, tmp / "host_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    shutil.copy(key.with_suffix(".pub"), tmp / "authorized_keys")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
    cmd = ["/usr/sbin/sshd", "-D", "-e", "-p", "22", "-h", str(tmp / "host_key"),
           "-o", "ListenAddress=127.0.0.1", "-o", f"AuthorizedKeysFile={tmp}/authorized_keys",
           "-o", "PermitRootLogin=prohibit-password", "-o", "PasswordAuthentication=no", "-o", "UsePAM=no",
           "-o", "StrictModes=no", "-o", f"PidFile={tmp}/sshd.pid", "-o", "MaxStartups=100",
           "-o", "MaxSessions=100", "-o", f"SetEnv=HOME={tmp}/home"]
    with open(tmp / "sshd.log", "w") as sshd_log:
        sshd = subprocess.Popen(cmd, stdout=sshd_log, stderr=subprocess.STDOUT)
    for _ in range(50):
        if sshd.poll() is not None:
            raise Skip(f"sshd exited: {(tmp / 'sshd.log').read_text()[-500:]}")
        if not port_free(22):
            return sshd
        time.sleep(0.1)
    raise Skip("sshd did not listen on 127.0.0.1:22")


def run_step(name: str, cmd: list[str], env: dict, timings: dict, log: Path, timeout: float = 900) -> None:
    print(f"[{name}] {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    with open(log, "a") as out:
        out.write(f"\n===== {name}: {' '.join(cmd)}\n")
        out.flush()
        rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout).returncode
    timings[name] = time.perf_counter() - t0
    print(f"[{name}] rc={rc} {timings[name]:.1f}s", flush=True)
    if rc:
        raise RuntimeError(f"step {name!r} failed (rc {rc}); see {log}:\n" + log.read_text()[-3000:])


def table_rows(run: Path) -> dict[str, int]:
    """Rows per Parquet table of a fetched run folder (a table is a folder, partitioned by trial_id)."""
    rows: dict[str, int] = {}
    for path in sorted(run.rglob("*.parquet")):
        table = path.relative_to(run).parts[0]
        rows[table] = rows.get(table, 0) + pq.read_metadata(path).num_rows
    return rows


# the tiny spec's 2 trials x 1 epoch, each scoring 4 sampled architectures
EXPECTED_ROWS = {"trials": 2, "epochs": 2, "samples": 8}


def stop_cluster_processes(tmp: Path) -> int:
    """Kill (by pid) whatever is left of this cluster: processes whose command line names T/ray or T's venv."""
    pattern = f"{tmp}/ray|{tmp}/venv/bin/python"
    out = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True).stdout.split()
    pids = [int(p) for p in out if int(p) != os.getpid()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=os.environ.get("BALENAS_DATA_ROOT"),
                   help="a folder holding cifar-10-batches-py on the host (default: $BALENAS_DATA_ROOT)")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (logs, fetched results)")
    args = p.parse_args(argv)
    try:
        ensure_sshd()
    except Skip as e:
        print(f"SKIP: {e}")
        return 77
    had_current = RAY_CURRENT.read_text() if RAY_CURRENT.exists() else None
    tmp = Path(tempfile.mkdtemp(prefix="bnl_", dir="/tmp"))  # short: Ray's socket paths live under it
    log = tmp / "commands.log"
    ports = {6390: free_port(), 8086: free_port(), 8087: free_port(), 10011: free_port(), 8275: free_port(),
             52375: free_port(), 52376: free_port(), 52377: free_port(), 52378: free_port()}
    timings: dict[str, float] = {}
    sshd = None
    up = False
    env = {**os.environ, "HOME": str(tmp / "client"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for key in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(key, None)
    try:
        sshd = start_sshd(tmp)
        host_environment(tmp, ports[6390], args.data_root)
        config = local_yaml(tmp, ports)
        (tmp / "home" / "tiny.yaml").write_text(TINY_SPEC)
        run_step("ray get-auth-token", ["ray", "get-auth-token", "--generate"], env, timings, log)
        up = True
        run_step("ray up", ["ray", "up", "-y", str(config)], env, timings, log)
        run_step("ray submit", ["ray", "submit", str(config), "platform/sweep.py", "--", "~/tiny.yaml",
                                "--address", "auto", "--storage", "~/results"], env, timings, log)
        fetched = tmp / "fetched"
        run_step("ray rsync-down", ["ray", "rsync-down", str(config), "~/results/tiny", f"{fetched}/"],
                 env, timings, log)
        rows = table_rows(fetched / "tiny")
        run_step("ray down", ["ray", "down", "-y", str(config)], env, timings, log)
        up = False
        trials = pd.read_parquet(fetched / "tiny" / "trials")
        wrong = {t: (rows.get(t, 0), n) for t, n in EXPECTED_ROWS.items() if rows.get(t, 0) != n}
        print("\n== summary ==")
        print(f"command: python benchmarks/cluster_local.py   load: {os.getloadavg()}")
        for name, seconds in timings.items():
            print(f"  {name:<18} {seconds:7.1f} s")
        for table, n in rows.items():
            print(f"  table {table:<12} {n:4d} rows")
        print(f"  trials: {sorted(trials['trial_label'])}")
        if wrong:
            print(f"FAILED: rows (got, expected) per table: {wrong}")
            return 1
        return 0
    finally:
        if up:
            try:
                subprocess.run(["ray", "down", "-y", str(tmp / "cluster-local.yaml")], cwd=ROOT, env=env,
                               capture_output=True, timeout=300)
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                print(f"cleanup: ray down failed: {e}")
        left = stop_cluster_processes(tmp)
        if left:
            print(f"cleanup: killed {left} leftover processes of this cluster")
        if sshd is not None:
            sshd.terminate()
            sshd.wait(timeout=10)
        for state in Path("/tmp/ray").glob(f"cluster-balenas-local-{tmp.name}*"):
            state.unlink()
        now = RAY_CURRENT.read_text() if RAY_CURRENT.exists() else None
        if now != had_current:
            print(f"WARNING: /tmp/ray/ray_current_cluster changed ({had_current!r} -> {now!r}); restoring")
            if had_current is None:
                RAY_CURRENT.unlink()
            else:
                RAY_CURRENT.write_text(had_current)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
