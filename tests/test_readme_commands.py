"""The README's two set-up commands stay runnable and in step with CI."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return [line.strip() for block in blocks[:2] for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_test_command():
    main_cmd, test_cmd = _readme_commands()[:2]
    ci_lines = {line.strip().replace('"', "") for line in (ROOT / ".ci" / "run").read_text().splitlines()}
    for step in test_cmd.split("&&"):
        step = step.strip().replace('"', "")
        assert step in ci_lines, f"README test step {step!r} is not in .ci/run"
    assert "torch==2.13.0 torchvision==0.28.0" in main_cmd


def test_main_command_runs_an_existing_sweep_spec():
    main_cmd = _readme_commands()[0]
    spec = re.search(r"platform/sweep\.py (\S+)", main_cmd).group(1)
    loaded = yaml.safe_load((ROOT / spec).read_text())
    assert loaded["name"] == "quickstart" and loaded["methods"]
