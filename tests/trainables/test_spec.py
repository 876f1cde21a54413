"""The sweep spec: valid specs expand into the right trials; malformed ones fail naming the field and value."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from trainables.sweep.spec import SpecError, check_spec_paths, expand_grid, load_spec, validate_spec

REPO = Path(__file__).resolve().parents[2]


def base_spec(data_root: Path) -> dict:
    return {"name": "t", "space": "nb201", "dataset": "cifar10", "data_root": str(data_root),
            "methods": {"balenas": {"arch_lr": [3.0e-4, 1.0e-3], "mc_samples": 1}, "darts-v1": {}},
            "seeds": [0, 1], "search": {"epochs": 2, "batch_size": 8, "C": 4, "N": 1, "steps_per_epoch": 2},
            "resources": {"cpu": 1, "gpu": 0}}


def test_valid_spec_expands_methods_grid_and_seeds_in_order(tiny_cifar10):
    spec = validate_spec(base_spec(tiny_cifar10))
    labels = [t.label for t in spec.trials()]
    assert labels == ["balenas[arch_lr=0.0003,mc_samples=1]/seed=0", "balenas[arch_lr=0.0003,mc_samples=1]/seed=1",
                      "balenas[arch_lr=0.001,mc_samples=1]/seed=0", "balenas[arch_lr=0.001,mc_samples=1]/seed=1",
                      "darts-v1/seed=0", "darts-v1/seed=1"]
    first = spec.trials()[0].search
    assert first["method_params"] == {"arch_lr": 3.0e-4, "mc_samples": 1}
    assert first["seed"] == 0 and first["epochs"] == 2 and first["data_root"] == str(tiny_cifar10)
    assert spec.epochs == 2


def test_grid_is_the_product_of_every_list_axis():
    grid = expand_grid("balenas", {"arch_lr": [1e-3, 2e-3, 3e-3], "mc_samples": [1, 2], "init_scale": 0.1})
    assert len(grid) == 6 and {g["init_scale"] for g in grid} == {0.1}
    assert grid[0] == {"arch_lr": 1e-3, "mc_samples": 1, "init_scale": 0.1}
    # a list of lists is an axis of list values (for list-valued settings such as betas)
    assert expand_grid("balenas", {"betas": [[0.5, 0.999]]}) == [{"betas": [0.5, 0.999]}]
    assert expand_grid("balenas", {"betas": [0.5, 0.999]}) == [{"betas": [0.5, 0.999]}]  # one value
    assert len(expand_grid("balenas", {"betas": [[0.5, 0.999], [0.9, 0.999]]})) == 2


def test_relative_paths_resolve_against_the_spec_folder(tmp_path, tiny_cifar10):
    folder = tmp_path / "specs" / "deep"
    folder.mkdir(parents=True)
    data = base_spec(tiny_cifar10)
    data["data_root"] = "../../data"  # tiny_cifar10 is tmp_path/data
    (folder / "s.yaml").write_text(yaml.safe_dump(data))
    spec = load_spec(folder / "s.yaml")
    assert Path(spec.data_root) == tiny_cifar10.resolve()


def test_quickstart_spec_is_valid(shared_data, monkeypatch):
    monkeypatch.setenv("BALENAS_DATA_ROOT", str(shared_data / "cifar10"))
    spec = load_spec(REPO / "platform" / "sweeps" / "quickstart.yaml")
    assert len(spec.trials()) == 6 and spec.proxies is not None
    assert spec.data_root is None and spec.benchmark == "nb201"  # no paths: env/cache and the packaged table


def _set(d: dict, dotted: str, value):
    *path, last = dotted.split(".")
    for p in path:
        d = d.setdefault(p, {})
    if value is _DELETE:
        del d[last]
    else:
        d[last] = value


_DELETE = object()

# (dotted key to set, value, text the error must contain: the field path and the bad value)
MALFORMED = [
    ("nmae", "x", "nmae"),
    ("name", "a b/c", "name"),
    ("space", "nb999", "space"),
    ("dataset", "mnist", "'mnist'"),
    ("download", "maybe", "download"),
    ("methods.dartz", {}, "methods.dartz"),
    ("methods.balenas.arch_lrr", 1e-3, "methods.balenas.arch_lrr"),
    ("methods.balenas.arch_lr", "fast", "methods.balenas.arch_lr"),
    ("methods.balenas.arch_lr", [], "methods.balenas.arch_lr"),
    ("methods.balenas.mc_samples", 0, "methods.balenas.mc_samples"),
    ("methods.balenas.betas", [0.5], "methods.balenas.betas"),  # a list-valued setting: one value, not a pair
    ("methods.balenas.beta1", 0.9, "methods.balenas.beta1: unknown hyper-parameter"),  # one name: betas
    ("methods.balenas.weight_step_sample", "yes", "methods.balenas.weight_step_sample"),
    ("seeds", [], "seeds"),
    ("seeds", [0, 0], "seeds"),
    ("seeds", ["zero"], "seeds.0"),
    ("search.epochs", 0, "search.epochs"),
    ("search.batch_sz", 8, "search.batch_sz"),
    ("search.seed", 3, "search.seed"),
    ("search.w_lr_min", 1.0, "w_lr_min"),
    ("search.device", "tpu", "search.device"),
    ("resources.gpu", -1, "resources.gpu"),
    ("resources.gpu", 1.5, "resources.gpu"),
    ("resources.cpu", 0, "resources.cpu"),
    ("resources.tpu", 1, "resources.tpu"),
    ("failure.max_failures", -5, "failure.max_failures"),
    ("checkpoint.frequency", 0, "checkpoint.frequency"),
    ("proxies", {"names": ["nope"]}, "proxies.names"),
    ("proxies", {"samples": 0}, "proxies.samples"),
    ("proxies", {"names": ["naswot", "synflow"], "combine": [["naswot", "snip"]]}, "proxies"),
]


@pytest.mark.parametrize("key,value,expected", MALFORMED, ids=[m[0] + "=" + repr(m[1])[:20] for m in MALFORMED])
def test_malformed_spec_is_rejected_naming_the_field(tiny_cifar10, key, value, expected):
    data = copy.deepcopy(base_spec(tiny_cifar10))
    _set(data, key, value)
    with pytest.raises(SpecError) as info:
        validate_spec(data)
    message = str(info.value)
    assert expected in message
    assert info.value.problems, "a SpecError lists its problems"


def test_cuda_device_without_gpu_resources_is_rejected(tiny_cifar10):
    data = base_spec(tiny_cifar10)
    data["search"]["device"] = "cuda"
    with pytest.raises(SpecError, match="resources.gpu"):
        validate_spec(data)


def test_bad_values_are_reported_with_the_value(tiny_cifar10):
    data = base_spec(tiny_cifar10)
    data["search"]["epochs"] = -3
    with pytest.raises(SpecError, match=r"search\.epochs.*-3"):
        validate_spec(data)


def test_yaml_that_is_not_a_mapping_is_rejected(tmp_path):
    (tmp_path / "s.yaml").write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="mapping"):
        load_spec(tmp_path / "s.yaml")


def test_missing_data_and_benchmark_name_the_path_and_where_to_get_them(tmp_path, tiny_cifar10):
    data = base_spec(tmp_path / "nowhere")
    data["download"] = False  # air-gapped: the error names the path and the manual steps instead
    spec = validate_spec(data)
    with pytest.raises(FileNotFoundError, match=r"data_root.*nowhere.*cifar-10.*download: false.*tar xzf"):
        check_spec_paths(spec)
    assert not (tmp_path / "nowhere").exists()
    data = base_spec(tiny_cifar10)
    data["benchmark"] = str(tmp_path / "missing.csv")
    with pytest.raises(FileNotFoundError, match=r"benchmark.*missing\.csv.*NAS-Bench-201"):
        check_spec_paths(validate_spec(data))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    load_spec(tmp_path / "s.yaml", check_paths=False)  # cluster runs: paths that exist only on the workers


def test_spec_round_trips_through_its_yaml(tiny_cifar10):
    spec = validate_spec(base_spec(tiny_cifar10))
    again = validate_spec(yaml.safe_load(spec.to_yaml()))
    assert [t.as_config() for t in again.trials()] == [t.as_config() for t in spec.trials()]


def test_each_grid_point_is_checked_once(tiny_cifar10, monkeypatch):
    """The spec checks a method's hyper-parameters once per grid point (not again per trial's search config);
    a search config checks them once and keeps the model, which the distribution then takes as it is."""
    from search_spaces.space import get_space
    from trainables.methods import make_distribution
    from trainables.methods.base import ArchDistribution
    from trainables.search.config import SearchConfig

    checked = []
    original = ArchDistribution.check_params.__func__
    spy = classmethod(lambda cls, params: checked.append((cls.name, dict(params))) or original(cls, params))
    monkeypatch.setattr(ArchDistribution, "check_params", spy)
    spec = validate_spec(base_spec(tiny_cifar10))  # balenas: 2 grid points, darts-v1: 1; x 2 seeds = 6 trials
    assert len(spec.trials()) == 6
    assert checked == [("balenas", {"arch_lr": 3.0e-4, "mc_samples": 1}),
                       ("balenas", {"arch_lr": 1.0e-3, "mc_samples": 1}), ("darts-v1", {})]
    checked.clear()
    cfg = SearchConfig(**spec.trials()[0].search)
    assert cfg.params.mc_samples == 1 and len(checked) == 1
    dist = make_distribution(cfg.method, get_space(cfg.space), cfg.params, num_valid=8)
    assert dist.params is cfg.params and len(checked) == 1


def test_the_proxy_stage_takes_the_validated_sweep(tiny_cifar10):
    from trainables.sweep.spec import proxy_stage, stored_proxy_stage

    data = {**base_spec(tiny_cifar10), "proxies": {"samples": 3, "names": ["naswot", "params"], "C": 4}}
    spec = validate_spec(data)
    stage = proxy_stage(spec, samples=5, names=None)
    assert (stage.space, stage.dataset, stage.download) == ("nb201", "cifar10", True)
    assert stage.data_root == str(tiny_cifar10)
    assert stage.benchmark == "nb201" and stage.size == {"C": 4, "N": 5}  # the space's packaged table by default
    assert stage.proxies.samples == 5 and stage.proxies.names == ["naswot", "params"]
    assert proxy_stage(spec).proxies is spec.proxies  # no override: the spec's validated section as it is
    stored = stored_proxy_stage(yaml.safe_load(spec.to_yaml()))
    assert stored == proxy_stage(spec)
    # a run folder's spec.yaml: the keys the stage reads, with the sweep spec's defaults for those left out
    minimal = stored_proxy_stage({"data_root": str(tiny_cifar10)}, names=["params"])
    assert (minimal.space, minimal.dataset, minimal.download, minimal.benchmark) == ("nb201", "cifar10", True, None)
    assert minimal.proxies.names == ["params"] and minimal.size == {"C": 16, "N": 5}
    with pytest.raises(SpecError, match=r"space: unknown search space.*\(got 'nb999'\)"):
        stored_proxy_stage({"space": "nb999"})
    with pytest.raises(ValueError, match=r"proxies\.samples: .*\(got 0\)"):
        stored_proxy_stage({}, samples=0)
