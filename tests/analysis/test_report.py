"""The report command end to end: `balenas report RUN_DIR ...` through main(argv)."""

from __future__ import annotations

import contextlib
import io
import re

import pytest
from _frames import make_frames, make_run, write_run

from balenas.commands.report import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs") / "sweep_a", balenas_lambdas=(0.1,))[0]


@pytest.fixture(scope="module")
def report(run_dir, tmp_path_factory):
    """One report of the full sweep (with a failed trial): (out folder, printed text)."""
    out = tmp_path_factory.mktemp("report")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([str(run_dir), "--out", str(out)]) == 0
    return out, printed.getvalue()


def test_report_end_to_end(report):
    out, printed = report
    assert "| Method | CIFAR-10 valid" in printed and "| darts |" in printed
    assert f"report written to {out / 'report.md'}" in printed
    text = (out / "report.md").read_text()
    for section in ("## Trials", "## Results", "### argmax", "### proxy:naswot", "### rank:naswot+synflow",
                    "## Plots", "## Environment", "## Spec"):
        assert section in text, section
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images == ["op_probs_balenas.png", "op_probs_darts.png", "accuracy_vs_epoch.png", "posterior_std.png",
                      "proxy_vs_accuracy.png", "search_cost.png"]
    for name in images:
        assert (out / name).is_file() and (out / name).stat().st_size > 1000
    for name in re.findall(r"\]\((table_[^)]+)\)", text):
        assert (out / name).is_file()
    assert "name: sweep_a" in text  # the spec
    assert "| 2.13.0 | 2.60.0 | cpu |" in text  # library versions from the trials table
    assert "Skipped" not in text


def test_failed_trials_are_reported_not_crashed_on(report):
    out, _ = report
    text = (out / "report.md").read_text()
    assert "**1 trial(s) did not finish**" in text
    assert "ERROR" in text and "RuntimeError: CUDA out of memory. Tried to allocate 2 GiB" in text
    assert "more traceback" not in text  # first line of the error only


def test_default_out_is_inside_the_first_run_and_plots_skip_with_a_note(tmp_path, capsys):
    frames = make_frames(methods=("darts",), proxies=False, failed=None, seed=9)
    run = write_run(tmp_path / "darts_only", frames)
    assert main([str(run)]) == 0
    text = (run / "report" / "report.md").read_text()
    assert "_Skipped: no posterior_std_mean in the epochs table (no BaLeNAS trial)._" in text
    assert "_Skipped: no samples table (the sweep ran no proxy stage)._" in text
    assert "argmax rule derived from the trials table" in text
    assert "no benchmark table given" in text


def test_several_runs_and_a_benchmark(run_dir, tmp_path, shared_data, capsys):
    other, _ = make_run(tmp_path / "sweep_b", seed=11, proxies=False)
    out = tmp_path / "both"
    bench = shared_data / "nb201" / "nb201_merged.csv"
    assert main([str(run_dir), str(other), "--out", str(out), "--benchmark", str(bench)]) == 0
    printed = capsys.readouterr().out
    assert "| optimum (benchmark table) | 91.61 | 94.37 | – | 73.51 | – | 47.31 |" in printed
    text = (out / "report.md").read_text()
    assert "# Sweep report: sweep_a, sweep_b" in text and "### sweep_b" in text


def test_bad_arguments_are_one_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    run = write_run(tmp_path / "r", make_frames(proxies=False, seed=12))
    assert main([str(run), "--benchmark", str(tmp_path / "nope.csv")]) == 2
    assert "benchmark table not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([])
