"""The prepared device check: one command, at most ~9 minutes on one H100/H200, every figure the GPU decides.

    python benchmarks/gpu_check.py --out OUT --data DATA            # on the GPU machine (--device auto -> cuda)
    python benchmarks/gpu_check.py --out /tmp/gc --device cpu --tiny  # the CPU mode CI runs (seconds)

`--data DATA` (optional) holds at least one CIFAR-10 python batch (`data_batch_*`, found anywhere below DATA;
one batch is 30 MB) and optionally an NB201 table (`nb201*.csv` / `nb201*.parquet`; default: the table packaged
with the project); without CIFAR-10 files, random CIFAR-shaped data are used for timing (pixel values do not
change the time) and the search section says so.
The upload recipe (<= 64 MiB with the repository) is in benchmarks/README.md, section "GPU".

Sections run in priority order, each timed and with its own time slice; a failing section is recorded with
its error and the others go on; gpu_check.json is rewritten after every section (a killed run keeps what it
had), gpu_check.md at the end and after every section. Sections:

- environment: GPU, driver, torch, CUDA, cuDNN, packages;
- host_syncs: every method's search step under `torch.cuda.set_sync_debug_mode("error")` (CUDA) or the
  Python-level probe `trainables.runs.host_sync` (CPU); methods that sync by design say so;
- cuda_tests: `pytest -m cuda tests/cuda` (CUDA only);
- iteration: NB201 supernet search iteration (C=16, N=5, batch 64) of darts-v1, balenas, gdas in eager fp32,
  bf16 autocast, channels_last (+bf16), with each setting's first-step loss next to eager fp32's; the fastest
  setting per method is named;
- naswot: NASWOT archs/s at batch 64 and 128;
- search: a paper-scale BaLeNAS NB201 search, as many epochs as fit its slice, projected to 50 epochs of
  NB201's 25,000-image search split;
- packed: trials packed on one GPU: a Tune sweep with gpu 1, 0.5, 0.25, 0.125 (1, 2, 4, 8 concurrent
  searches; subprocesses when Ray is not installed), aggregate iterations per second;
- darts_iteration / darts_cifar: the DARTS space's DARTS-V1 iteration and final training's s/epoch of
  `darts-cifar`, once `search_spaces.darts` / `trainables.train` exist (else "skipped: not available");
- compile: the same iteration under torch.compile and CUDA graphs (torch.compile "reduce-overhead"), last
  because compilation time is unbounded; the fastest setting per method over both sections is named.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: the checkout is the package root
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_methods  # noqa: E402
from search_spaces.data.device import DeviceDataset  # noqa: E402
from trainables.methods import available_methods, get_method  # noqa: E402
from trainables.runs.host_sync import count_host_syncs  # noqa: E402
from trainables.search.loop import SearchRun, resolve_device  # noqa: E402

PAPER = {"C": 16, "N": 5, "batch": 64}
TINY = {"C": 2, "N": 1, "batch": 8}
#: NB201's CIFAR-10 search split has 25,000 images per half; a paper search runs 50 epochs (Dong & Yang 2020)
SEARCH_IMAGES, SEARCH_EPOCHS = 25_000, 50
ITERATION_METHODS = ("darts-v1", "balenas", "gdas")
EAGER_SETTINGS: dict[str, dict[str, Any]] = {
    "eager fp32": {"channels_last": False},
    "bf16 autocast": {"channels_last": False, "amp": True},
    "channels_last": {"channels_last": True},
    "channels_last + bf16": {"channels_last": True, "amp": True},
}
#: timed last (section "compile"): compilation time is unbounded, so it must not eat the other sections' time
COMPILE_SETTINGS: dict[str, dict[str, Any]] = {
    "torch.compile": {"channels_last": False, "compile": "default"},
    "CUDA graphs (compile reduce-overhead)": {"channels_last": False, "compile": "reduce-overhead"},
}
SETTINGS = {**EAGER_SETTINGS, **COMPILE_SETTINGS}


# ----- the report ---------------------------------------------------------------------------------------------
class Report:
    """Sections with status, seconds and results; the JSON is rewritten after each section."""

    def __init__(self, out: Path, deadline: float):
        self.out, self.deadline = out, deadline
        self.data: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "sections": {}}
        out.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run_section(self, name: str, slice_s: float, body: Callable[[dict[str, Any]], None]) -> None:
        """Run `body(results)`; an exception is caught and recorded, `Skipped` marks a section that does not
        apply. A section with under 5 s of the overall budget left is skipped."""
        entry: dict[str, Any] = {"status": "running", "slice_s": round(min(slice_s, max(self.left(), 0)), 1)}
        results: dict[str, Any] = {}
        entry["results"] = results
        self.data["sections"][name] = entry
        start = time.monotonic()
        print(f"[gpu_check] {name} (slice {entry['slice_s']} s) ...", flush=True)
        try:
            if self.left() < 5:
                raise Skipped("out of time: the check's overall budget is spent")
            body(results)
            entry["status"] = "ok"
        except Skipped as e:
            entry["status"] = f"skipped: {e}"
        except Exception as e:  # noqa: BLE001 - one failing section must not lose the others
            entry["status"] = "failed"
            entry["error"] = f"{type(e).__name__}: {e}"
            entry["traceback"] = traceback.format_exc()[-4000:]
        entry["seconds"] = round(time.monotonic() - start, 2)
        print(f"[gpu_check] {name}: {entry['status']} in {entry['seconds']} s", flush=True)
        self.write()

    def write(self) -> None:
        self.data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        tmp = self.out / "gpu_check.json.tmp"
        tmp.write_text(json.dumps(self.data, indent=2, default=str))
        os.replace(tmp, self.out / "gpu_check.json")
        (self.out / "gpu_check.md").write_text(markdown(self.data))


class Skipped(Exception):
    """A section that does not apply here (no CUDA, module not there, out of time)."""


def markdown(data: dict[str, Any]) -> str:
    lines = [f"# GPU check ({data['started']} to {data.get('finished', '?')})", ""]
    args = data.get("args", {})
    if args:
        lines += ["`" + " ".join(f"--{k}={v}" for k, v in args.items()) + "`", ""]
    for name, entry in data["sections"].items():
        lines.append(f"## {name}: {entry['status']} ({entry.get('seconds', '?')} s of a {entry['slice_s']} s slice)")
        lines.append("")
        if "error" in entry:
            lines += ["```", entry["error"], "```", ""]
        for key, value in entry["results"].items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                cols = list(dict.fromkeys(k for row in value for k in row))
                lines += [f"**{key}**", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                lines += ["| " + " | ".join(_fmt(row.get(c, "")) for c in cols) + " |" for row in value]
                lines.append("")
            else:
                lines.append(f"- {key}: {_fmt(value)}")
        lines.append("")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return str(v)


# ----- data ---------------------------------------------------------------------------------------------------
def random_splits(n: int, device: torch.device, seed: int = 0) -> dict[str, DeviceDataset]:
    return {name: split.to(device) for name, split in bench_methods.random_splits(n, seed=seed).items()}


def cifar_splits(data: Path | None, device: torch.device) -> tuple[dict[str, DeviceDataset], str] | None:
    """Halves of whatever CIFAR-10 training batches lie below `data` (first half: search-train)."""
    if data is None:
        return None
    files = sorted(p for p in data.rglob("data_batch_*") if p.is_file())
    if not files:
        return None
    from search_spaces.data.datasets import DATASETS
    from search_spaces.data.readers import _images_labels

    parts = [_images_labels(p, "labels", 32) for p in files]
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts])).long()
    spec = DATASETS["cifar10"]
    half = len(labels) // 2
    splits = {name: DeviceDataset(images[sl].contiguous(), labels[sl], spec.mean, spec.std, 10, name).to(device)
              for name, sl in (("search-train", slice(0, half)), ("search-valid", slice(half, 2 * half)))}
    return splits, f"CIFAR-10 {', '.join(p.name for p in files)} ({len(labels)} images, halves of {half})"


def nb201_table(data: Path | None) -> Path | None:
    if data is None:
        return None
    found = sorted(p for pattern in ("nb201*.parquet", "nb201*.csv") for p in data.rglob(pattern))
    return found[0] if found else None


# ----- timing -------------------------------------------------------------------------------------------------
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_run(device: torch.device, size: dict[str, int], method: str, splits, **extra) -> SearchRun:
    config = {"method": method, "C": size["C"], "N": size["N"], "batch_size": size["batch"], "epochs": 10_000,
              "device": str(device), "seed": 0, **extra}
    return SearchRun(config, splits=splits)


def step_indices(run: SearchRun, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    B = run.cfg.batch_size
    return (torch.randint(0, len(run.train), (B,), generator=generator, device=run.device),
            torch.randint(0, len(run.valid), (B,), generator=generator, device=run.device))


def time_iterations(run: SearchRun, warmup: int, budget_s: float, max_steps: int) -> dict[str, Any]:
    """Seconds per search iteration (`SearchRun.step`), after `warmup` steps, for up to `budget_s` seconds."""
    g = torch.Generator(device=run.device).manual_seed(1)
    interval = max(int(run.distribution.update_interval), 1)
    t0 = time.perf_counter()
    first_loss = None
    for i in range(warmup):
        loss, *_ = run.step(*step_indices(run, g), 0.025, interval)
        if i == 0:
            first_loss = float(loss)  # a sync outside the timed part: the setting's first-step loss
    synchronize(run.device)
    warmup_s = time.perf_counter() - t0
    steps, start = 0, time.perf_counter()
    while steps < max_steps and (steps < 3 or time.perf_counter() - start < budget_s):  # at least 3 unless capped
        run.step(*step_indices(run, g), 0.025, interval)
        steps += 1
        if steps in (3, 10, 30, 100):
            synchronize(run.device)
    synchronize(run.device)
    return {"s_per_iteration": (time.perf_counter() - start) / steps, "timed_steps": steps,
            "warmup_s": round(warmup_s, 2), "first_step_loss": first_loss}


# ----- sections -----------------------------------------------------------------------------------------------
def environment(res: dict[str, Any], device: torch.device) -> None:
    res.update({"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
                "cuda_runtime": torch.version.cuda, "device": str(device), "cpu_count": os.cpu_count(),
                "torch_threads": torch.get_num_threads(), "load_1min": os.getloadavg()[0]})
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        res.update({"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                    "multiprocessors": props.multi_processor_count, "capability": f"{props.major}.{props.minor}",
                    "cudnn": torch.backends.cudnn.version(), "bf16_supported": torch.cuda.is_bf16_supported()})
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
            res["nvidia_smi"] = out.stdout.strip() or out.stderr.strip()
    for pkg in ("ray", "pydantic", "numpy", "pandas", "pyarrow", "triton"):
        try:
            res[f"version_{pkg}"] = __import__(pkg).__version__
        except ImportError:
            res[f"version_{pkg}"] = "not installed"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        res["git_commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                           text=True, timeout=10).stdout.strip() or "unknown"


def host_syncs(res: dict[str, Any], device: torch.device, size: dict[str, int], splits, tiny: bool) -> None:
    """Each method's step on `device`: under the CUDA sync debug mode (error) or the CPU probe."""
    rows = []
    methods = ITERATION_METHODS if tiny else available_methods()  # CI: tests/trainables/test_host_syncs.py has all
    variants = [(m, {}) for m in methods] + [("balenas", {"amp": True, "channels_last": True})]
    for method, extra in variants:
        by_design = int(getattr(get_method(method), "host_syncs_per_step", 0))
        run = make_run(device, size, method, splits, **extra)
        interval = max(int(run.distribution.update_interval), 1)
        g = torch.Generator(device=device).manual_seed(2)
        run.step(*step_indices(run, g), 0.025, interval)  # lazy optimizer state, cuDNN autotuning
        synchronize(device)
        row: dict[str, Any] = {"method": method, "setting": json.dumps(extra) if extra else "default",
                               "syncs_by_design": by_design}
        steps = 2 * interval
        if device.type == "cuda":
            mode = "warn" if by_design else "error"
            import warnings
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode(mode)
                try:
                    for _ in range(steps):
                        run.step(*step_indices(run, g), 0.025, interval)
                    row["result"] = "no sync" if not by_design else "ran (syncs counted)"
                except RuntimeError as e:
                    row["result"] = f"SYNC: {e}"[:300]
                finally:
                    torch.cuda.set_sync_debug_mode("default")
            found = [w for w in caught if "synchroniz" in str(w.message)]
            row["syncs_per_step"] = len(found) / steps
        else:
            with count_host_syncs() as calls:
                for _ in range(steps):
                    run.step(*step_indices(run, g), 0.025, interval)
            row["syncs_per_step"] = sum(calls.values()) / steps
            row["result"] = "python-level probe: " + (", ".join(f"{n} at {f}:{ln}" for n, f, ln in calls) or "none")
        row["ok"] = row["syncs_per_step"] <= by_design and not str(row["result"]).startswith("SYNC")
        rows.append(row)
    res["steps"] = rows
    res["all_ok"] = all(r["ok"] for r in rows)


def cuda_tests(res: dict[str, Any], device: torch.device, timeout_s: float) -> None:
    if device.type != "cuda":
        raise Skipped("no CUDA device: the cuda-marked tests would all skip")
    junit = Path(tempfile.mkdtemp(prefix="gpu_check_")) / "cuda.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", str(ROOT / "tests" / "cuda"),
           f"--junitxml={junit}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=ROOT, env=env)
    res["returncode"] = out.returncode
    res["tail"] = (out.stdout + out.stderr)[-3000:]
    if junit.is_file():
        import xml.etree.ElementTree as ET
        suite = ET.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        res.update({k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")})
    if out.returncode not in (0, 5):
        raise RuntimeError(f"pytest -m cuda exited {out.returncode}: {out.stdout[-500:]}")


def iteration(res: dict[str, Any], report: Report, device: torch.device, size: dict[str, int], splits,
              slice_s: float, tiny: bool, settings: dict[str, dict[str, Any]], before: list[dict[str, Any]]) -> None:
    """Per method x setting: s / iteration; with `before` (the eager section's rows), ratios to eager fp32 and
    the fastest setting per method over all rows."""
    rows, end = [], time.monotonic() + slice_s
    cells = [(m, s) for s in settings for m in ITERATION_METHODS]
    for n, (method, setting) in enumerate(cells):
        extra = settings[setting]
        row: dict[str, Any] = {"method": method, "setting": setting}
        rows.append(row)
        res["table"] = rows
        left = end - time.monotonic()
        if extra.get("compile") and device.type != "cuda" and tiny:
            row["result"] = "skipped: torch.compile on the CPU takes many minutes of C++ compilation"
            continue
        if extra.get("compile") == "reduce-overhead" and device.type != "cuda":
            row["result"] = "n/a: CUDA graphs need CUDA"
            continue
        if extra.get("amp") and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            row["result"] = "n/a: no bf16 on this GPU"
            continue
        if extra.get("compile") and method == "gdas":
            row["result"] = "n/a: GDAS's sparse forward (sampled ops only) stays eager"
            continue
        if left < (20 if extra.get("compile") else 3):
            row["result"] = "skipped: out of the section's time"
            continue
        try:
            run = make_run(device, size, method, splits, **extra)
            per_cell = max(1.0, left / max(len(cells) - n, 1))
            row.update(time_iterations(run, warmup=3 if extra.get("compile") else 2, budget_s=per_cell,
                                       max_steps=5 if tiny else 200))
            row["result"] = "ok"
            del run
        except Exception as e:  # noqa: BLE001 - a setting that fails is a result too
            row["result"] = f"failed: {type(e).__name__}: {e}"[:400]
        report.write()
    res["fastest"] = summarise(list(before) + rows)


def summarise(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Adds each row's ratio and loss difference to its method's eager fp32 row; names the fastest setting."""
    fastest = {}
    for method in ITERATION_METHODS:
        ok = [r for r in rows if r["method"] == method and r.get("result") == "ok"]
        ref = next((r for r in ok if r["setting"] == "eager fp32"), None)
        for r in ok:
            if ref is not None:
                r["x eager fp32"] = round(r["s_per_iteration"] / ref["s_per_iteration"], 3)
                if r["first_step_loss"] is not None and ref["first_step_loss"] is not None:
                    r["loss - eager loss"] = r["first_step_loss"] - ref["first_step_loss"]
        if ok:
            best = min(ok, key=lambda r: r["s_per_iteration"])
            fastest[method] = f"{best['setting']} ({best['s_per_iteration'] * 1e3:.1f} ms)"
    return fastest


def naswot(res: dict[str, Any], device: torch.device, size: dict[str, int], slice_s: float, tiny: bool) -> None:
    from search_spaces.nb201.encoding import all_architectures
    from trainables.proxy_stage.selection import score_architectures

    archs = all_architectures()
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(archs), generator=g).tolist()
    batches = (8, 16) if tiny else (64, 128)
    net = {"C": size["C"], "N": size["N"]}
    rows = []
    for batch in batches:
        x = torch.randn(batch, 3, 32, 32, generator=g)
        y = torch.randint(0, 10, (batch,), generator=g)
        for channels_last in (False, True):
            score_architectures([archs[order[0]]], x, y, ["naswot"], space="nb201", size=net, device=device,
                                channels_last=channels_last)  # warm-up
            synchronize(device)
            start, n = time.perf_counter(), 0
            while n < (4 if tiny else 2000) and (n < 2 or time.perf_counter() - start < slice_s / 4):
                chunk = [archs[order[(1 + n + i) % len(archs)]] for i in range(4)]
                scored = score_architectures(chunk, x, y, ["naswot"], space="nb201", size=net, device=device,
                                             channels_last=channels_last)
                n += len(scored)
            synchronize(device)
            elapsed = time.perf_counter() - start
            errors = sum(1 for r in scored if r.get("naswot") is None)
            rows.append({"batch": batch, "channels_last": channels_last, "archs": n,
                         "archs_per_s": n / elapsed, "whole_space_min": len(archs) / (n / elapsed) / 60,
                         "errors_in_last_chunk": errors})
    res["table"] = rows


def search(res: dict[str, Any], device: torch.device, size: dict[str, int], data: Path | None, slice_s: float,
           tiny: bool, settings: dict[str, Any]) -> None:
    """BaLeNAS on NB201 at paper scale for as many epochs as fit, projected to 50 epochs of 25,000 images."""
    loaded = cifar_splits(data, device)
    if loaded is None:
        splits, res["data"] = random_splits(512 if tiny else 5000, device), "random CIFAR-shaped data (no --data)"
    else:
        splits, res["data"] = loaded
    table = nb201_table(data)
    extra = dict(settings)
    extra["benchmark"] = str(table) if table is not None else "nb201"  # else the table packaged with the project
    res["settings"] = extra
    run = make_run(device, size, "balenas", splits, steps_per_epoch=4 if tiny else None, epochs=SEARCH_EPOCHS,
                   **extra)
    start, rows = time.perf_counter(), []
    max_epochs = 3 if tiny else SEARCH_EPOCHS
    while len(rows) < max_epochs and (not rows or time.perf_counter() - start + rows[-1]["epoch_time_s"] < slice_s):
        row = run.run_epoch()
        keep = ("epoch", "steps", "epoch_time_s", "train_acc", "valid_acc", "genotype")
        rows.append({k: v for k, v in row.items() if k in keep or (k.startswith("bench_") and "200" in k)})
        res["epochs"] = rows
    warm = rows[1:] or rows
    per_step = statistics.median(r["epoch_time_s"] / r["steps"] for r in warm)
    steps_full = math.ceil(SEARCH_IMAGES / size["batch"])
    res["s_per_iteration"] = per_step
    res["projected_50_epochs_min"] = per_step * steps_full * SEARCH_EPOCHS / 60
    res["projection"] = (f"{per_step * 1e3:.1f} ms/iteration x {steps_full} iterations/epoch x {SEARCH_EPOCHS} "
                         "epochs (per-step time includes the end-of-epoch work spread over this subset's steps)")
    res["goal_10_min_met"] = res["projected_50_epochs_min"] <= 10


def _packed_worker(spec: str) -> None:
    """One packed search in its own process (used when Ray is not installed): prints its epoch rows as JSON."""
    args = json.loads(spec)
    device = resolve_device(args["device"])
    run = make_run(device, args["size"], args["method"], random_splits(args["n"], device), **args["extra"])
    rows = [run.run_epoch() for _ in range(args["epochs"])]
    print(json.dumps([{"steps": r["steps"], "epoch_time_s": r["epoch_time_s"]} for r in rows]))


def _rate(epochs: list[dict[str, Any]]) -> float:
    warm = epochs[1:] or epochs
    return statistics.median(r["steps"] / r["epoch_time_s"] for r in warm)


def packed(res: dict[str, Any], device: torch.device, size: dict[str, int], fractions: list[float], slice_s: float,
           tiny: bool) -> None:
    steps, epochs = (2, 2) if tiny else (20, 6)
    common = {"device": "auto" if device.type == "cuda" else "cpu", "size": size, "method": "darts-v1",
              "extra": {"steps_per_epoch": steps}, "n": size["batch"] * steps, "epochs": epochs}
    try:
        import ray  # noqa: F401
        from ray import tune  # noqa: F401
        how = "ray"
    except ImportError:
        how = "subprocesses"
    res["how"] = ("a real Tune sweep (SearchTrainable, tune.with_resources)" if how == "ray" else
                  "Ray is not installed here: concurrent subprocesses, one search each")
    rows, end = [], time.monotonic() + slice_s
    for frac in fractions:
        if time.monotonic() > end - 5:
            rows.append({"gpu_per_trial": frac, "result": "skipped: out of the section's time"})
            continue
        n = max(1, round(1 / frac))
        t0 = time.perf_counter()
        per_trial = (_packed_tune if how == "ray" else _packed_subprocesses)(n, frac, common, device,
                                                                            end - time.monotonic())
        wall = time.perf_counter() - t0
        rates = [_rate(e) for e in per_trial]
        rows.append({"gpu_per_trial": frac, "trials": n, "aggregate_it_per_s": sum(rates),
                     "per_trial_it_per_s": statistics.mean(rates), "wall_s": round(wall, 1)})
        res["table"] = rows
    ones = [r for r in rows if r.get("trials") == 1]
    for r in rows:
        if ones and "aggregate_it_per_s" in r:
            r["x one trial"] = round(r["aggregate_it_per_s"] / ones[0]["aggregate_it_per_s"], 2)
    res["table"] = rows


def _packed_subprocesses(n, frac, common, device, timeout_s) -> list[list[dict[str, Any]]]:
    procs = []
    for seed in range(n):
        spec = json.dumps({**common, "extra": {**common["extra"], "seed": seed}})
        procs.append(subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--packed-worker", spec],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT))
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=max(timeout_s, 10))
        if p.returncode != 0:
            raise RuntimeError(f"packed worker failed ({p.returncode}): {stderr[-800:]}")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return results


def _packed_tune(n, frac, common, device, timeout_s) -> list[list[dict[str, Any]]]:
    import ray
    from ray import tune

    from trainables.search.config import parse_config
    from trainables.search.trainable import SearchTrainable

    class PackedTrainable(SearchTrainable):
        def build_run(self, search_config):
            dev = resolve_device(search_config["device"])
            return SearchRun(search_config, splits=random_splits(common["n"], dev))

    trials = []
    for seed in range(n):
        cfg = parse_config({"method": common["method"], "C": common["size"]["C"], "N": common["size"]["N"],
                            "batch_size": common["size"]["batch"], "epochs": common["epochs"],
                            "device": common["device"], "seed": seed, **common["extra"]}).model_dump()
        trials.append({"label": f"packed/seed={seed}", "method": common["method"], "seed": seed, "hp": {},
                       "search": cfg})
    if not ray.is_initialized():
        gpus = torch.cuda.device_count() if device.type == "cuda" else 0
        # the workers import this checkout's `benchmarks` (not an installed package) for the trainable's helpers
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        ray.init(num_cpus=max(os.cpu_count() or 1, 1), num_gpus=gpus, include_dashboard=False,
                 log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    resources = {"cpu": 1, "gpu": frac} if device.type == "cuda" else {"cpu": frac}
    tuner = tune.Tuner(tune.with_resources(PackedTrainable, resources),
                       param_space={"trial": tune.grid_search(trials)},
                       run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="gpu_check_tune_"),
                                                 name=f"gpu{frac}", stop={"training_iteration": common["epochs"]},
                                                 verbose=0))
    grid = tuner.fit()
    per_trial = []
    for result in grid:
        if result.error is not None:
            raise RuntimeError(f"trial failed: {result.error}")
        df = result.metrics_dataframe
        per_trial.append(df[["steps", "epoch_time_s"]].to_dict("records"))
    return per_trial


def darts_iteration(res: dict[str, Any], device: torch.device, slice_s: float, tiny: bool) -> None:
    from search_spaces.space import available_spaces, get_space
    from trainables.search.config import parse_config

    if "darts" not in available_spaces():
        raise Skipped("not available: the DARTS space (search_spaces.darts) is not registered in this checkout")
    size = dict(getattr(get_space("darts"), "search_size", {}))
    if tiny:
        size.update({"C": 2, "layers": 3})
    batch = 8 if tiny else 64
    config = {"space": "darts", "method": "darts-v1", "batch_size": batch, "epochs": 10_000, "device": str(device),
              **size}
    try:
        parse_config(config)
    except ValueError as e:
        raise Skipped(f"not available: the search config does not take the DARTS space's size keys yet ({e})") from None
    run = SearchRun(config, splits=random_splits(batch * 4, device))
    res["search_size"] = size
    res.update(time_iterations(run, warmup=1 if tiny else 2, budget_s=slice_s / 2, max_steps=1 if tiny else 100))


def darts_cifar(res: dict[str, Any], device: torch.device, timeout_s: float, tiny: bool) -> None:
    script = ROOT / "benchmarks" / "bench_train.py"
    try:
        import trainables.train  # noqa: F401
    except ImportError as e:
        raise Skipped(f"not available: final training (trainables.train) does not import here ({e})") from None
    if not script.is_file():
        raise Skipped("not available: benchmarks/bench_train.py is not in this checkout")
    if tiny:
        raise Skipped("--tiny: the full-size darts-cifar network is not run in the CPU mode")
    cmd = [sys.executable, str(script), "--protocols", "darts-cifar", "--device", str(device), "--steps", "5"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    res["command"] = " ".join(cmd[1:])
    res["output"] = (out.stdout + out.stderr)[-3000:]
    if out.returncode != 0:
        raise RuntimeError(f"bench_train.py exited {out.returncode}")


# ----- main ---------------------------------------------------------------------------------------------------
SECTIONS = ("environment", "host_syncs", "cuda_tests", "iteration", "naswot", "search", "packed",
            "darts_iteration", "darts_cifar", "compile")
#: seconds per section at full size: 540 s in all (9 minutes); scaled to --budget-s
SLICES = {"environment": 10, "host_syncs": 30, "cuda_tests": 60, "iteration": 70, "naswot": 40, "search": 80,
          "packed": 110, "darts_iteration": 20, "darts_cifar": 40, "compile": 80}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="folder for gpu_check.json and gpu_check.md (required)")
    parser.add_argument("--data", default=None, help="folder with CIFAR-10 data_batch_* (and nb201*.csv/parquet)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cuda, cuda:N or cpu")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes and few steps (the CPU mode CI runs)")
    parser.add_argument("--budget-s", type=float, default=None, help="overall seconds (default 540; --tiny 60)")
    parser.add_argument("--sections", nargs="*", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--fractions", nargs="*", type=float, default=[1, 0.5, 0.25, 0.125],
                        help="GPU share per packed trial")
    parser.add_argument("--packed-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.packed_worker is not None:
        _packed_worker(args.packed_worker)
        return {}
    if args.out is None:
        parser.error("the following arguments are required: --out")
    for f in args.fractions:
        if not 0 < f <= 1:
            raise SystemExit(f"--fractions: each share must be in (0, 1], got {f}")
    data = Path(args.data) if args.data else None
    if data is not None and not data.is_dir():
        raise SystemExit(f"--data {data}: not a folder")
    device = resolve_device(args.device)
    size = TINY if args.tiny else PAPER
    budget = args.budget_s if args.budget_s is not None else (60.0 if args.tiny else 540.0)
    scale = budget / sum(SLICES.values())
    slices = {k: v * scale for k, v in SLICES.items()}
    report = Report(Path(args.out), time.monotonic() + budget)
    report.data["args"] = {k: v for k, v in vars(args).items() if k != "packed_worker"}
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 in the eager row
    splits = random_splits(size["batch"] * 8, device)

    steps: dict[str, Callable[[dict[str, Any]], None]] = {
        "environment": lambda r: environment(r, device),
        "host_syncs": lambda r: host_syncs(r, device, {**TINY, "batch": 16 if device.type == "cuda" else 8},
                                           splits, args.tiny),
        "cuda_tests": lambda r: cuda_tests(r, device, min(slices["cuda_tests"], report.left())),
        "iteration": lambda r: iteration(r, report, device, size, splits, slices["iteration"], args.tiny,
                                         EAGER_SETTINGS, []),
        "compile": lambda r: iteration(r, report, device, size, splits, min(slices["compile"], report.left()),
                                       args.tiny, COMPILE_SETTINGS, _section_rows(report, "iteration")),
        "naswot": lambda r: naswot(r, device, size, slices["naswot"], args.tiny),
        "search": lambda r: search(r, device, size, data, slices["search"], args.tiny, _best_search_setting(report)),
        "packed": lambda r: packed(r, device, size, args.fractions, slices["packed"], args.tiny),
        "darts_iteration": lambda r: darts_iteration(r, device, slices["darts_iteration"], args.tiny),
        "darts_cifar": lambda r: darts_cifar(r, device, min(slices["darts_cifar"], report.left()), args.tiny),
    }
    for name in SECTIONS:
        if name in args.sections:
            report.run_section(name, slices[name], steps[name])
    with contextlib.suppress(ImportError):
        import ray
        if ray.is_initialized():
            ray.shutdown()
    report.write()
    print(f"[gpu_check] wrote {Path(args.out) / 'gpu_check.json'} and gpu_check.md", flush=True)
    return report.data


def _section_rows(report: Report, name: str) -> list[dict[str, Any]]:
    return report.data["sections"].get(name, {}).get("results", {}).get("table", [])


def _best_search_setting(report: Report) -> dict[str, Any]:
    """The fastest setting the iteration section found for balenas, else the default config."""
    ok = [r for r in _section_rows(report, "iteration") if r["method"] == "balenas" and r.get("result") == "ok"]
    if not ok:
        return {}
    return dict(SETTINGS[min(ok, key=lambda r: r["s_per_iteration"])["setting"]])


if __name__ == "__main__":
    main()
