"""Ground truth of a DARTS-space sweep comes from its benchmark (the NB301 zero-cost sample, `nb301-zc`), not
from CIFAR-10/NB201 preferences of analysis: the report's table and the proxy and accuracy plots show the NB301
validation accuracy of the architectures the sample holds.

The run is written by hand in the run-folder layout, with what the sweep's writers put there: epochs carry
`bench_cifar10_valid` where the argmax genotype is in the sample (the trainable records it), the samples carry no
ground truth (the proxy stage writes none), selections carry it (the proxy stage joins it).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from _frames import write_run
from scipy.stats import spearmanr

from analysis import frames as F
from analysis import load
from analysis import plots as P
from analysis import tables as T
from analysis.report import build_report
from search_spaces.darts import DARTS_V2, Genotype
from search_spaces.darts.genotype import COMPACT_OPS
from search_spaces.darts.published import PC_DARTS_CIFAR

COLUMN = "bench_cifar10_valid"


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def darts_frames(accuracy: dict[str, float], methods=("balenas", "darts"), seeds=(0, 1), epochs: int = 3,
                 samples: int = 10, seed: int = 0, samples_with_truth: bool = False) -> dict[str, pd.DataFrame]:
    """epochs/trials/samples/selections of a DARTS-space sweep on cifar10. Architectures come from `accuracy`
    (genotype -> NB301 accuracy; the sample) plus two published genotypes the sample lacks."""
    rng = np.random.default_rng(seed)
    inside = list(accuracy)
    outside = [str(DARTS_V2), str(PC_DARTS_CIFAR)]
    truth = {a: ({COLUMN: accuracy[a]} if a in accuracy else {}) for a in inside + outside}
    ep_rows, trial_rows, sample_rows, sel_rows = [], [], [], []
    k = 0
    for method in methods:
        for s in seeds:
            tid = f"d{k:04d}"
            k += 1
            base = {"trial_id": tid, "method": method, "seed": s}
            for e in range(1, epochs + 1):
                geno = inside[int(rng.integers(len(inside)))] if e > 1 else outside[0]
                probs = {c: _softmax(rng.normal(size=(14, 8))).tolist() for c in ("normal", "reduce")}
                ep_rows.append({**base, "epoch": e, "genotype": geno, "op_probs": json.dumps(probs),
                                "epoch_time_s": 1.0, "dataset": "cifar10", "space": "darts", **truth[geno]})
            final = ep_rows[-1]["genotype"]
            trial_rows.append({**base, "status": "TERMINATED", "final_genotype": final, "epochs_done": epochs,
                               "dataset": "cifar10", "space": "darts", **truth[final]})
            picks = [inside[int(i)] for i in rng.choice(len(inside), size=samples - 1, replace=False)] + outside[1:]
            rows = []
            for i, arch in enumerate(picks):
                acc = accuracy.get(arch, 90.0)
                rows.append({**base, "sample": i, "arch": arch, "naswot": acc * 10 + float(rng.normal(0, 2)),
                             "synflow": float(rng.normal(0, 1)), **(truth[arch] if samples_with_truth else {})})
            sample_rows += rows
            best = max(rows, key=lambda r: r["naswot"])
            sel_rows += [{**base, "rule": "argmax", "arch": final, **truth[final]},
                         {**base, "rule": "proxy:naswot", "arch": best["arch"], **truth[best["arch"]]}]
    return {"epochs": pd.DataFrame(ep_rows), "trials": pd.DataFrame(trial_rows), "samples": pd.DataFrame(sample_rows),
            "selections": pd.DataFrame(sel_rows)}


def _spec(name: str, benchmark=None) -> dict:
    return {"name": name, "space": "darts", "dataset": "cifar10", "benchmark": benchmark,
            "methods": {"balenas": {}, "darts": {}}, "seeds": [0, 1]}


@pytest.fixture(scope="module")
def nb301(shared_data):
    """(path of the shared NB301 sample, {genotype string: NB301 accuracy} of 40 of its architectures)."""
    path = shared_data / "zero_cost" / "zc_nasbench301_small.json"
    rows = json.loads(path.read_text())["nasbench301"]["cifar10"]
    return path, {str(Genotype.from_compact(k)): v["val_accuracy"] for k, v in list(rows.items())[:40]}


def _cell(values) -> str:
    values = pd.Series(values, dtype=float)
    return f"{values.mean():.2f} ± {values.std():.2f}"


def test_report_and_plots_show_the_nb301_accuracy(nb301, tmp_path):
    path, accuracy = nb301
    frames = darts_frames(accuracy)
    run = write_run(tmp_path / "darts_sweep", frames, spec=_spec("darts_sweep", str(path)))
    report = build_report(load(run), tmp_path / "report")
    text = report.path.read_text()

    # the results table: the benchmark's column, each method's mean ± std over seeds of the NB301 accuracies
    assert "| Method | NAS-Bench-301 valid | Seeds |" in report.main_table
    trials = frames["trials"]
    for method in ("balenas", "darts"):
        want = [accuracy[a] for a in trials.loc[trials["method"] == method, "final_genotype"]]
        assert f"| {method} | {_cell(want)} | 2 |" in report.main_table
    best = max(v["val_accuracy"] for v in json.loads(path.read_text())["nasbench301"]["cifar10"].values())
    assert f"| optimum (benchmark table) | {best:.2f} |" in report.main_table
    assert report.main_table in text

    plots = {p.name: p for p in report.plots}
    # the proxy plot: the sampled architectures of the sample, at their NB301 accuracy; the others are left out
    proxies = plots["proxies"]
    assert proxies.skipped is None and [p.name for p in proxies.paths] == ["proxy_vs_accuracy.png"]
    shown = proxies.data["proxy_vs_accuracy.png"]
    assert set(shown["column"]) == {COLUMN}
    naswot = shown[shown["proxy"] == "naswot"]
    s = frames["samples"]
    in_sample = s[s["arch"].isin(accuracy)]
    assert len(naswot) == len(in_sample) and not naswot["arch"].isin([str(DARTS_V2), str(PC_DARTS_CIFAR)]).any()
    np.testing.assert_allclose(naswot["accuracy"], naswot["arch"].map(accuracy), rtol=0, atol=0)
    want = spearmanr(in_sample["naswot"], in_sample["arch"].map(accuracy)).statistic
    note = next(n for n in proxies.notes if n.startswith("naswot"))
    assert float(re.search(r"ρ = (-?[0-9.]+)", note).group(1)) == pytest.approx(want, abs=5e-5)
    assert f"over {len(in_sample)} architectures" in note

    # the accuracy curve: the NB301 accuracy of each epoch's argmax genotype (NaN outside the sample)
    acc = plots["accuracy"]
    assert acc.skipped is None
    curve = acc.data["accuracy_vs_epoch.png"]
    assert set(curve["column"]) == {COLUMN}
    ep = frames["epochs"]
    for (config, epoch), group in ep[ep["genotype"].isin(accuracy)].groupby(["method", "epoch"]):
        got = curve[(curve["config"] == config) & (curve["epoch"] == epoch)]["mean"]
        np.testing.assert_allclose(got, group["genotype"].map(accuracy).mean())
    plots_text = text.split("## Plots")[1]
    assert "![proxies](proxy_vs_accuracy.png)" in plots_text and "![accuracy](accuracy_vs_epoch.png)" in plots_text
    assert "_Skipped: no ground-truth" not in plots_text and "_Skipped: the samples table" not in plots_text


def test_proxy_plot_of_a_darts_run_without_a_benchmark_file_uses_the_benchmark_column(tmp_path):
    """No shared data needed: samples that carry the NB301 column themselves are plotted against it."""
    rng = np.random.default_rng(4)
    def cell():
        return [(int(source), int(rng.integers(0, len(COMPACT_OPS)))) for node in range(4)
                for source in rng.choice(node + 2, size=2, replace=False)]

    genotypes = sorted({str(Genotype.from_compact([cell(), cell()])) for _ in range(60)}
                       - {str(DARTS_V2), str(PC_DARTS_CIFAR)})
    accuracy = {g: float(rng.uniform(91, 94.5)) for g in genotypes}
    frames = darts_frames(accuracy, samples=8, samples_with_truth=True, seed=2)
    t = load(write_run(tmp_path / "darts_gt", frames, spec=_spec("darts_gt")))
    plot = P.proxy_vs_accuracy(t, tmp_path / "out")
    assert plot.skipped is None
    shown = plot.data["proxy_vs_accuracy.png"]
    assert set(shown["column"]) == {COLUMN}
    np.testing.assert_allclose(shown["accuracy"], shown["arch"].map(accuracy))
    rows = T.paper_rows(t)
    assert list(zip(rows["group"], rows["split"])) == [("NAS-Bench-301", "valid")] * 2


def test_the_column_is_the_benchmarks_choice():
    frame = pd.DataFrame({"bench_cifar10_valid": [92.0], "bench_cifar10_test": [93.0],
                          "bench_cifar10_valid_test": [91.0], "bench_nb101_test": [90.0]})
    assert F.test_column(frame, "cifar10", "darts") == "bench_cifar10_valid"  # NB301: its validation accuracy
    assert F.test_column(frame, "cifar10", "nb201") == "bench_cifar10_test"
    # NB201's CIFAR-10 test column falls back to the 25k-trained model, as the benchmark's report column says
    assert F.test_column(frame.drop(columns="bench_cifar10_test"), "cifar10", "nb201") == "bench_cifar10_valid_test"
    assert F.test_column(frame, "cifar100", "nb201") is None
    assert F.test_column(frame, "cifar10", "nb1shot1-2") == "bench_nb101_test"
    assert F.test_column(frame, "cifar10", "unknown-space") == "bench_cifar10_test"  # Benchmark's generic rule
    assert F.test_column(frame, None, "nb201") is None  # NB201's rule needs the data set
    assert F.column_title("darts", "bench_cifar10_valid") == "NAS-Bench-301 valid"
    assert F.column_title(None, "bench_x_test") == "bench_x_test"


def test_space_and_dataset_come_from_trials_then_spec():
    samples = pd.DataFrame({"run": ["a", "a", "b"], "trial_id": ["1", "2", "3"]})
    trials = pd.DataFrame({"run": ["a"], "trial_id": ["1"], "space": ["darts"], "dataset": ["cifar10"]})
    specs = {"a": {"space": "nb201", "dataset": "cifar100"}, "b": {"space": "nb1shot1-1"}}
    out = F.fill_run_columns(samples, trials, specs)
    assert list(out["space"]) == ["darts", "nb201", "nb1shot1-1"]
    assert list(out["dataset"][:2]) == ["cifar10", "cifar100"] and pd.isna(out["dataset"].iloc[2])
    assert T.run_space(pd.DataFrame({"x": [1]})) is None  # analysis has no default space
