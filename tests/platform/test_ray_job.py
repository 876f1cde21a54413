"""The cluster path, run for real: `ray job submit` against a two-node Ray cluster with token authentication.

The cluster (tests/platform/local_cluster.py) is a head with the dashboard plus one worker node, one CPU
each, on this host, in a process of its own; every client presents its token through RAY_AUTH_TOKEN. The
trials table records the node of each trial and the samples table the node of each scored row, so the
tests see that the work was spread. The reference for "same result" is `run_search` without Ray.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import make_tiny_cifar10
from local_cluster import LocalCluster

from trainables.search.loop import run_search
from trainables.sweep.spec import validate_spec

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.heavy  # multi-node Ray clusters on this machine: `python -m pytest -m heavy`


def _cluster():
    folder = Path(tempfile.mkdtemp(prefix="hc", dir="/tmp"))  # short: Ray's unix sockets live under it
    try:
        with LocalCluster(folder / "c", token=secrets.token_hex(16)) as c:
            c.data = make_tiny_cifar10(folder / "data")
            c.work = folder
            yield c
    finally:
        if not os.environ.get("KEEP_CLUSTER_LOGS"):  # set it to read the nodes' logs after a failure
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    yield from _cluster()


@pytest.fixture
def fresh_cluster():
    """A cluster of its own: losing a node must not depend on what earlier tests left running."""
    yield from _cluster()


def write_spec(c: LocalCluster, name: str, epochs: int = 2, seeds: int = 2, **extra) -> Path:
    spec = {"name": name, "space": "nb201", "dataset": "cifar10", "data_root": str(c.data),
            "methods": {"darts-v1": {}}, "seeds": list(range(seeds)),
            "search": {"epochs": epochs, "batch_size": 8, "C": 4, "N": 1, "steps_per_epoch": 2},
            "resources": {"cpu": 1, "gpu": 0}, "checkpoint": {"frequency": 1}, **extra}
    path = c.work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def client_env(c: LocalCluster, **extra: str) -> dict[str, str]:
    return c.env(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", OMP_NUM_THREADS="1", **extra)


def ray_job(c: LocalCluster, *args: str, env: dict | None = None, timeout: float = 240):
    return subprocess.run([str(BIN / "ray"), "job", *args], cwd=REPO, env=env or client_env(c),
                          capture_output=True, text=True, timeout=timeout)


def submit(c: LocalCluster, spec: Path, *extra: str, wait: bool = True, env: dict | None = None):
    """`ray job submit ... -- python platform/sweep.py SPEC`; retried while the head's job agent is not up yet
    (Ray answers "No available agent to submit job, please try again later" for a while after start)."""
    args = ["submit", "--address", c.dashboard, "--working-dir", "."]
    if not wait:
        args.append("--no-wait")
    for _ in range(30):
        out = ray_job(c, *args, "--", "python", "platform/sweep.py", str(spec), "--storage",
                      str(c.work / "runs"), "--quiet", *extra, env=env)
        if "No available agent" not in out.stdout + out.stderr:
            return out
        time.sleep(2)
    return out


def reference_genotypes(spec_path: Path) -> dict[int, list[str]]:
    """Per seed, the genotype of every epoch of an unbroken run without Ray (one thread, as in the trials)."""
    spec = validate_spec(yaml.safe_load(spec_path.read_text()))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {t.seed: [r["genotype"] for r in run_search(t.search)] for t in spec.trials()}
    finally:
        torch.set_num_threads(threads)


def assert_every_row_once(run_dir: Path, spec_path: Path) -> pd.DataFrame:
    trials = pd.read_parquet(run_dir / "trials")
    epochs = pd.read_parquet(run_dir / "epochs")
    spec = validate_spec(yaml.safe_load(spec_path.read_text()))
    assert len(trials) == len(spec.trials()) and set(trials["status"]) == {"TERMINATED"}, trials
    assert sorted(zip(epochs["trial_id"], epochs["epoch"])) == sorted(
        (t, e) for t in trials["trial_id"] for e in range(1, spec.epochs + 1))
    reference = reference_genotypes(spec_path)
    for row in trials.itertuples():
        got = epochs[epochs["trial_id"] == row.trial_id].sort_values("epoch")["genotype"].tolist()
        assert got == reference[row.seed], row.trial_id
        assert row.final_genotype == reference[row.seed][-1]
    return trials


def test_ray_job_submit_runs_a_sweep_on_both_nodes_with_token_auth(cluster):
    proxies = {"samples": 4, "names": ["naswot"], "batch_size": 8, "C": 4, "N": 1, "archs_per_task": 1}
    spec = write_spec(cluster, "job", proxies=proxies)  # two trials for two nodes of one CPU each
    done = submit(cluster, spec)
    assert done.returncode == 0 and "succeeded" in done.stdout + done.stderr, done.stdout[-4000:] + done.stderr

    run_dir = cluster.work / "runs" / "job"
    trials = assert_every_row_once(run_dir, spec)
    nodes = {cluster.info["head_node_id"], *cluster.info["worker_node_ids"]}
    assert set(trials["node_id"]) == nodes
    samples = pd.read_parquet(run_dir / "samples")
    assert len(samples) == 2 * 4 and not samples.duplicated(["trial_id", "sample"]).any()
    assert set(samples["node_id"]) == nodes  # one architecture per task, spread over both nodes
    assert samples["naswot"].notna().all()


def test_a_wrong_or_missing_token_is_refused_with_one_clear_error(cluster):
    spec = write_spec(cluster, "refused")
    wrong = submit(cluster, spec, env=client_env(cluster, RAY_AUTH_TOKEN="not-the-token"))
    assert wrong.returncode != 0 and "token" in (wrong.stdout + wrong.stderr).lower()
    missing = {k: v for k, v in client_env(cluster).items() if k != "RAY_AUTH_TOKEN"}
    for env in (client_env(cluster, RAY_AUTH_TOKEN="not-the-token"), missing):
        driver = subprocess.run([sys.executable, "platform/sweep.py", str(spec), "--storage",
                                 str(cluster.work / "x"), "--address", cluster.address, "--quiet"], cwd=REPO,
                                capture_output=True, text=True, env=env, timeout=120)
        assert driver.returncode == 2, driver.stderr[-3000:]
        last = driver.stderr.strip().splitlines()[-1]
        assert last.startswith("error: --address") and cluster.address in last and "RAY_AUTH_TOKEN" in last
    assert not (cluster.work / "x" / "refused" / "trials").exists()


def test_an_unreachable_address_is_named_before_any_trial(cluster, tmp_path):
    spec = write_spec(cluster, "nowhere")
    out = subprocess.run([sys.executable, "platform/sweep.py", str(spec), "--storage", str(tmp_path),
                          "--address", "127.0.0.1:9"], cwd=REPO, capture_output=True, text=True,
                         env=client_env(cluster), timeout=120)
    assert out.returncode == 2 and "127.0.0.1:9" in out.stderr.strip().splitlines()[-1], out.stderr[-2000:]


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(what)


def _epochs_of(run_dir: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(run_dir / "epochs")
    except (FileNotFoundError, OSError, ValueError):  # not written yet, or a partition mid-replace
        return pd.DataFrame(columns=["trial_id", "epoch"])


def _job_id(submitted) -> str:
    for word in (submitted.stdout + submitted.stderr).replace("'", " ").split():
        if word.startswith("raysubmit_"):
            return word
    raise AssertionError(submitted.stdout + submitted.stderr)


def _wait_job(c: LocalCluster, job: str, timeout: float = 240) -> str:
    def status():  # the CLI's words for the final states (`ray job status` logs them, partly on stderr)
        out = ray_job(c, "status", "--address", c.dashboard, job)
        text = (out.stdout + out.stderr).lower()
        return next((state for word, state in (("succeeded", "SUCCEEDED"), ("failed", "FAILED"),
                                                ("was stopped", "STOPPED")) if f"' {word}" in text), None)
    return _wait_for(status, timeout, f"job {job} did not end")


def test_a_stopped_job_resubmitted_with_resume_loses_and_repeats_nothing(cluster):
    # enough epochs that the job cannot finish between the first rows and the stop on a quiet machine
    # (with 4 it did: all 8 rows were written while `ray job stop` took effect)
    epochs = 16
    spec = write_spec(cluster, "stopped", epochs=epochs)
    job = _job_id(submit(cluster, spec, wait=False))
    run_dir = cluster.work / "runs" / "stopped"
    _wait_for(lambda: len(_epochs_of(run_dir)) >= 2, 180, "no epochs before stopping the job")
    assert ray_job(cluster, "stop", "--address", cluster.dashboard, job).returncode == 0
    assert _wait_job(cluster, job) == "STOPPED"
    assert len(_epochs_of(run_dir)) < 2 * epochs  # stopped part-way: the resume below has work left

    done = submit(cluster, spec, "--resume")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr
    assert_every_row_once(run_dir, spec)


def test_losing_the_worker_node_retries_its_trial_on_the_head_from_its_checkpoint(fresh_cluster):
    cluster = fresh_cluster
    # enough epochs that no trial can finish between its first checkpoint and the node's loss on a quiet machine
    # (with 6, both trials had finished on the worker before `remove-worker` took effect)
    spec = write_spec(cluster, "lost", epochs=24, failure={"max_failures": 3})
    job = _job_id(submit(cluster, spec, wait=False))
    run_dir = cluster.work / "runs" / "lost"

    # both trials (one per node) have a checkpoint and neither has finished: the worker's trial is mid-way
    _wait_for(lambda: len({p.parent for p in run_dir.glob("*/checkpoint_*")}) == 2, 180, "no checkpoints")
    cluster.command("remove-worker")
    try:
        assert _wait_job(cluster, job, timeout=300) == "SUCCEEDED"
        trials = assert_every_row_once(run_dir, spec)
        assert set(trials["node_id"]) == {cluster.info["head_node_id"]}  # all ended on the head
        assert trials["num_failures"].sum() >= 1  # the worker's trial failed over
    finally:
        cluster.command("add-worker")

