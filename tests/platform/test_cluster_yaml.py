"""platform/cluster.yaml is a launchable Ray cluster config: Ray's JSON schema, Ray's own config preparation,
GPU workers, the project installed on every node, token authentication, and specs that fit its nodes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from trainables.sweep.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "platform" / "cluster.yaml"


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CLUSTER.read_text())


def test_matches_rays_cluster_schema(config):
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    prepared = prepare_config(config)  # what `ray up` does before launching: fill defaults, merge commands
    validate_config(prepared)


def test_schema_rejects_a_broken_variant(config):
    """The schema check above has teeth: a typo'd key or a fractional resource fails it."""
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    broken = json.loads(json.dumps(config))
    broken["available_node_types"]["worker_gpu"]["resources"]["GPU"] = 0.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    broken = json.loads(json.dumps(config))
    broken["setup_comands"] = []
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_node_types_a_cpu_head_and_autoscaled_gpu_workers(config):
    types = config["available_node_types"]
    assert config["provider"]["type"] == "aws"
    head = types[config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    gpu_types = {name: t for name, t in types.items() if t["resources"].get("GPU", 0) >= 1}
    assert gpu_types, "a worker node type with GPUs"
    for t in gpu_types.values():
        assert isinstance(t["resources"]["GPU"], int) and t["resources"]["CPU"] >= 1
        assert 1 <= t["max_workers"] <= config["max_workers"]
        assert t["node_config"]["InstanceType"].startswith(("g4dn", "g5", "g6", "p3", "p4", "p5"))


def test_every_node_gets_the_project_installed(config):
    mounts = config["file_mounts"]
    project = [remote for remote, local in mounts.items() if local == "."]
    assert len(project) == 1, "the checkout is mounted on every node"
    remote = project[0]
    installs = [c for c in config["setup_commands"] if re.search(r"pip install -e \.", c)]
    assert installs and all(f"cd {remote}" in c for c in installs)
    assert "pyproject.toml" in {p.name for p in REPO.iterdir()}  # what `pip install -e .` needs


def test_ray_starts_with_token_auth_and_a_private_dashboard(config):
    head = " ".join(config["head_start_ray_commands"])
    workers = " ".join(config["worker_start_ray_commands"])
    assert "ray start --head" in head and "--autoscaling-config=~/ray_bootstrap_config.yaml" in head
    assert "--address=$RAY_HEAD_IP:6379" in workers
    assert "RAY_AUTH_MODE=token" in head and "RAY_AUTH_MODE=token" in workers
    assert "0.0.0.0" not in head
    assert "~/.ray/auth_token" in config["file_mounts"]


def test_cluster_spec_fits_the_nodes_and_the_commands_name_real_files(config):
    spec = load_spec(REPO / "platform" / "sweeps" / "nb201_cifar10.yaml", check_paths=False)
    gpus = max(t["resources"].get("GPU", 0) for t in config["available_node_types"].values())
    cpus = max(t["resources"].get("CPU", 0) for t in config["available_node_types"].values())
    assert 0 < spec.resources.gpu <= gpus and spec.resources.cpu <= cpus
    assert spec.data_root is None and spec.benchmark == "nb201"  # node caches, packaged table
    text = CLUSTER.read_text()
    assert "../shared" not in text  # the product never depends on the development machines' folder
    for path in set(re.findall(r"platform/[\w/]+\.(?:py|yaml)", text)):
        assert (REPO / path).is_file(), path


LOCAL = REPO / "platform" / "cluster-local.yaml"
RAY_DEFAULT_PORTS = {"--port": 6379, "--dashboard-port": 8265, "--dashboard-agent-listen-port": 52365,
                     "--ray-client-server-port": 10001, "--metrics-export-port": None}


@pytest.mark.parametrize("path", [CLUSTER, LOCAL], ids=["cluster", "cluster-local"])
def test_rays_submit_driver_presents_the_token(path):
    """`ray submit` runs the driver in the head's login shell: setup must give it RAY_AUTH_MODE=token (a run of
    benchmarks/cluster_local.py was refused by the cluster without it)."""
    config = yaml.safe_load(path.read_text())
    assert any("RAY_AUTH_MODE=token" in c and "~/.bashrc" in c for c in config["setup_commands"])


def test_local_provider_config_is_launchable_and_keeps_off_rays_defaults():
    config = yaml.safe_load(LOCAL.read_text())
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(config, schema)
    validate_config(prepare_config(config))
    assert config["provider"]["type"] == "local" and config["max_workers"] == len(config["provider"]["worker_ips"])
    assert config["file_mounts"]["~/balenas"] == "."
    head = " ".join(config["head_start_ray_commands"])
    workers = " ".join(config["worker_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head and "RAY_AUTH_MODE=token" in workers and "0.0.0.0" not in head
    for flag, default in RAY_DEFAULT_PORTS.items():
        port = re.search(rf"{flag}=(\d+)", head)
        assert port and int(port.group(1)) != default, flag
    gcs = re.search(r"--port=(\d+)", head).group(1)
    assert f"--address=$RAY_HEAD_IP:{gcs}" in workers
    temp = re.search(r"--temp-dir=(\S+)", head).group(1)
    assert temp != "/tmp/ray" and f"--temp-dir={temp}" in workers


@pytest.mark.parametrize("path", sorted((REPO / "platform" / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_sweep_spec_is_valid(path):
    spec = load_spec(path, check_paths=False)
    assert spec.trials() and "../shared" not in path.read_text()


def test_the_latency_sweep_grids_three_budgets_on_two_devices():
    spec = load_spec(REPO / "platform" / "sweeps" / "nb201_latency.yaml", check_paths=False)
    trials = spec.trials()
    points = {(t.cost["device"], t.cost["budget"]) for t in trials}
    assert {d for d, _ in points} == {"pixel3", "fpga"} and len(points) == 6
    assert {t.method for t in trials} == {"balenas", "darts-v1", "unas"} and spec.dataset == "cifar100"
    assert len(trials) == 3 * 6 * len(spec.seeds) and len({t.label for t in trials}) == len(trials)
