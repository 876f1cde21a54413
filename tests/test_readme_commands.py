"""The README's two set-up commands stay runnable and in step with CI, and need nothing from ../shared."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [line.strip() for block in blocks[:2] for line in block.splitlines() if line.strip()]


def _ci_lines() -> set[str]:
    return {line.strip().replace('"', "") for line in (ROOT / ".ci" / "run").read_text().splitlines()}


def test_ci_runs_the_readme_test_command():
    main_cmd, test_cmd = _readme_commands()[:2]
    ci_lines = _ci_lines()
    for step in test_cmd.split("&&"):
        step = step.strip().replace('"', "")
        assert step in ci_lines, f"README test step {step!r} is not in .ci/run"
    assert "torch==2.13.0 torchvision==0.28.0" in main_cmd


def test_main_command_runs_an_existing_sweep_spec_that_needs_no_paths():
    main_cmd = _readme_commands()[0]
    assert "shared" not in main_cmd
    spec = re.search(r"balenas sweep (\S+)", main_cmd).group(1)
    loaded = yaml.safe_load((ROOT / spec).read_text())
    assert loaded["name"] == "quickstart" and loaded["methods"]
    assert "data_root" not in loaded and "benchmark" not in loaded  # user cache / env; packaged NB201 table
    assert "shared" not in (ROOT / spec).read_text()


def test_ci_points_the_tests_at_the_shared_data():
    text = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^export BALENAS_DATA_ROOT=.*cifar10", text, flags=re.M)
    assert re.search(r"^export BALENAS_SHARED_DATA", text, flags=re.M)


def test_product_files_never_refer_to_the_shared_folder():
    product = [ROOT / "README.md", ROOT / "platform" / "cluster.yaml", *sorted((ROOT / "platform").glob("*.py")),
               *sorted((ROOT / "platform" / "sweeps").glob("*.yaml")), *sorted((ROOT / "balenas").rglob("*.py"))]
    for path in product:
        for line in path.read_text().splitlines():
            if "../shared" in line and "BALENAS_" not in line and "never refer" not in line:  # the dev-machine note
                raise AssertionError(f"{path.relative_to(ROOT)} refers to ../shared: {line.strip()}")
