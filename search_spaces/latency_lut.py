"""Latency lookup tables measured on the user's own device, generic over spaces.

A space that can be timed part by part implements two methods (NB201 and DARTS do):

- `latency_parts(num_classes, image_size, **size) -> list[LatencyPart]`: every candidate operation at every
  position where its input shape differs (NB201: per stage; DARTS: per cell type, stage and stride), plus the
  fixed parts (stem, reduction blocks, a cell's preprocessing and joins, head), each with the module to time
  and its per-image input shape(s);
- `latency_counts(arch, num_classes, image_size, *, live_only=False, **size) -> dict[str, int]`: how many
  times the derived network of `arch` runs each part; `live_only` counts as a graph compiler runs it (parts
  whose result is unused or constant removed).

`measure_parts` times every part (warm-up, repeats, median) with torch or onnxruntime, and the backend's empty
call; the table predicts an architecture's latency as one call plus `sum(count * (median - call))`
(`LatencyTable.predict`); `validate` measures whole sampled
networks end to end with the same timer and reports Spearman and mean absolute percentage error. The clock is
injected (`clock=`), so tests can run the whole path on a deterministic fake timer.

Written by hand because no library times a network part by part from a search space's description; timing
itself is the standard recipe (warm-up, `perf_counter`, CUDA synchronisation, median of repeats).
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from search_spaces.space import Add, LatencyPart, SearchSpace, get_space

__all__ = ["Add", "LatencyPart", "LatencyTable", "measure_parts", "measure_networks", "validate",
           "random_architectures", "decomposition", "Timer"]

BACKENDS = ("torch", "onnxruntime")
#: backends that compile the whole graph, removing computations whose result is unused or constant
GRAPH_COMPILERS = frozenset({"onnxruntime"})
#: the part that times an empty call of the backend: every part's median includes one such call, which a whole
#: network pays once (onnxruntime's session.run costs ~10 us, as much as a small op at batch 1)
OVERHEAD = "call_overhead"
#: Parquet schema-metadata key holding the table's settings (JSON).
META_KEY = b"balenas_lut"
LUT_COLUMNS = ["part", "kind", "ms", "ms_q25", "ms_q75", "repeats", "input_shapes"]

Clock = Callable[[], float]


def decomposition(space: SearchSpace) -> tuple[Callable[..., list[LatencyPart]], Callable[..., dict[str, int]]]:
    """The space's (`latency_parts`, `latency_counts`), or a ValueError naming the space."""
    parts, counts = getattr(space, "latency_parts", None), getattr(space, "latency_counts", None)
    if not (callable(parts) and callable(counts)):
        raise ValueError(f"space {space.name!r} has no latency decomposition (latency_parts/latency_counts); "
                         "spaces with one: " + ", ".join(n for n in _spaces_with_parts()))
    return parts, counts


def _spaces_with_parts() -> list[str]:
    from search_spaces.space import available_spaces

    return [n for n in available_spaces() if callable(getattr(get_space(n), "latency_parts", None))]


class Timer:
    """Times callables: `warmup` untimed calls of each, then `repeats` rounds that time every callable once.

    Rounds interleave the callables (part 1, part 2, ..., part 1, ...) instead of timing one part `repeats`
    times in a row: a part then runs with caches holding the other parts' data, as inside a network, and a slow
    spell of the machine (another process) spreads over all parts instead of inflating a few. On CUDA the device
    is synchronised before each clock reading (kernels run asynchronously)."""

    def __init__(self, device: str = "cpu", *, warmup: int = 10, repeats: int = 30, clock: Clock | None = None):
        if int(warmup) < 0 or int(repeats) < 1:
            raise ValueError(f"warmup must be >= 0 and repeats >= 1, got warmup={warmup}, repeats={repeats}")
        self.device, self.warmup, self.repeats = str(device), int(warmup), int(repeats)
        self.clock = clock or time.perf_counter
        self._sync = torch.cuda.synchronize if self.device.startswith("cuda") else (lambda: None)

    def times_ms(self, runs: Sequence[Callable[[], Any]], progress=None) -> list[list[float]]:
        """Per callable, its `repeats` times in ms; `progress` (a tqdm-like bar or None) advances per round."""
        for run in runs:
            for _ in range(self.warmup):
                run()
        out: list[list[float]] = [[] for _ in runs]
        for _ in range(self.repeats):
            for times, run in zip(out, runs):
                self._sync()
                start = self.clock()
                run()
                self._sync()
                times.append((self.clock() - start) * 1e3)
            if progress is not None:
                progress.update(1)
        return out


def runner(module: nn.Module, inputs: Sequence[torch.Tensor], backend: str, device: str,
           threads: int | None = None) -> Callable[[], Any]:
    """A no-argument callable that runs one forward pass of `module` on `inputs` with `backend`."""
    module = module.eval().to(device)
    inputs = [x.to(device) for x in inputs]
    if backend == "torch":
        def run():
            with torch.inference_mode():
                return module(*inputs)
        return run
    if backend == "onnxruntime":
        from search_spaces.onnx_export import session, to_onnx_bytes

        names = [f"input{i}" for i in range(len(inputs))]
        sess = session(to_onnx_bytes(module, inputs, input_names=names, dynamic_batch=False), device,
                       threads=threads)
        kept = {i.name for i in sess.get_inputs()}  # an input the graph does not read (zeros_like) is dropped
        feed = {n: x.detach().cpu().numpy() for n, x in zip(names, inputs) if n in kept}
        return lambda: sess.run(None, feed)
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def _inputs(shapes: Iterable[Sequence[int]], batch: int, seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, *shape, generator=generator) for shape in shapes]


def _summary(times: list[float]) -> dict[str, float]:
    q25, q50, q75 = np.percentile(times, [25, 50, 75])
    return {"ms": float(statistics.median(times)), "ms_q25": float(q25), "ms_q75": float(q75)}


def _settings(space: SearchSpace, size: Mapping[str, Any], *, dataset: str, num_classes: int, image_size: int,
              device: str, batch: int, backend: str, timer: Timer, threads: int | None) -> dict[str, Any]:
    out = {"space": space.name, "size": dict(size), "dataset": dataset, "num_classes": num_classes,
           "image_size": image_size, "device": device, "batch": batch, "backend": backend,
           "warmup": timer.warmup, "repeats": timer.repeats, "torch": torch.__version__,
           "threads": threads if threads is not None else torch.get_num_threads(),
           "machine": platform.processor() or platform.machine(), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if device.startswith("cuda") and torch.cuda.is_available():
        out["device_name"] = torch.cuda.get_device_name(device)
    if backend == "onnxruntime":
        from search_spaces.onnx_export import require_onnx

        out["onnxruntime"] = require_onnx()[1].__version__
    return out


@dataclass
class LatencyTable:
    """Measured medians per part and the settings they were measured with; predicts whole networks."""

    rows: Any  # pandas.DataFrame with LUT_COLUMNS
    settings: dict[str, Any]

    @property
    def ms(self) -> dict[str, float]:
        return dict(zip(self.rows["part"], self.rows["ms"].astype(float)))

    def predict(self, arch: str, space: SearchSpace | None = None) -> float:
        """Predicted latency (ms) of `arch`: over the parts its network runs, count x (median - call overhead),
        plus one call overhead. For a graph-compiling backend (onnxruntime) the space counts only live parts."""
        space = space or get_space(self.settings["space"])
        _, counts = decomposition(space)
        ms = self.ms
        s = self.settings
        used = counts(space.canonical(arch), s["num_classes"], s["image_size"], **s["size"],
                      live_only=s["backend"] in GRAPH_COMPILERS)
        missing = sorted(k for k in used if k not in ms)
        if missing:
            raise ValueError(f"lookup table lacks part(s) {', '.join(missing[:5])} used by {arch!r} (measured for "
                             f"space {self.settings['space']!r} at size {self.settings['size']})")
        overhead = ms.get(OVERHEAD, 0.0)
        return overhead + float(sum(n * max(ms[k] - overhead, 0.0) for k, n in used.items()))

    def write(self, path: Path | str) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(self.rows[LUT_COLUMNS], preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[META_KEY] = json.dumps(self.settings, sort_keys=True).encode()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.replace_schema_metadata(meta), path)
        return path

    @classmethod
    def read(cls, path: Path | str) -> LatencyTable:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"latency lookup table not found: {path}")
        try:
            table = pq.read_table(path)
        except (OSError, ValueError, pa.ArrowException) as err:
            raise ValueError(f"{path}: not a Parquet latency lookup table ({type(err).__name__}: {err})") from None
        meta = (table.schema.metadata or {}).get(META_KEY)
        missing = [c for c in LUT_COLUMNS if c not in table.column_names]
        if meta is None or missing:
            raise ValueError(f"{path}: not a latency lookup table written by `balenas latency measure` "
                             f"({'no settings' if meta is None else 'missing columns ' + ', '.join(missing)})")
        return cls(table.to_pandas(), json.loads(meta))


def measure_parts(space: SearchSpace | str, size: Mapping[str, Any] | None = None, *, dataset: str = "cifar10",
                  num_classes: int | None = None, device: str = "cpu", batch: int = 1, backend: str = "torch",
                  warmup: int = 10, repeats: int = 30, clock: Clock | None = None, threads: int | None = None,
                  progress: bool = True, seed: int = 0) -> LatencyTable:
    """Time every part of the space's decomposition; the lookup table of their medians.

    Args:
        space: a space (or its name) with `latency_parts`/`latency_counts`.
        size: the network size keys (default: the space's `proxy_size`).
        dataset: sets the classes and the input resolution.
        device: 'cpu' or 'cuda[:i]'; backend: 'torch' or 'onnxruntime'.
        batch: images per forward pass.
        warmup, repeats: untimed and timed runs of each part; the median of the timed ones is kept.
        clock: seconds as a float (default `time.perf_counter`); tests pass a fake one.
        threads: intra-op threads of onnxruntime (torch uses its own setting).
    """
    from search_spaces.costs import dataset_shape, split_size

    space = get_space(space) if isinstance(space, str) else space
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if int(batch) < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    parts_of, _ = decomposition(space)
    classes, image_size = dataset_shape(dataset, num_classes)
    size = split_size(space, size)
    timer = Timer(device, warmup=warmup, repeats=repeats, clock=clock)
    parts = parts_of(classes, image_size, **size)
    parts.append(LatencyPart(OVERHEAD, "overhead", nn.Identity, parts[0].input_shapes[:1]))
    runs = []
    for part in parts:
        torch.manual_seed(seed)
        runs.append(runner(part.make(), _inputs(part.input_shapes, batch, seed), backend, device, threads))
    with _bar(progress, timer.repeats, f"timing {len(parts)} {space.name} parts ({backend}, {device}, batch {batch})",
              "round") as bar:
        times = timer.times_ms(runs, bar)
    rows = [{"part": part.key, "kind": part.kind, **_summary(t), "repeats": len(t),
             "input_shapes": json.dumps([list(s) for s in part.input_shapes])} for part, t in zip(parts, times)]
    import pandas as pd

    settings = _settings(space, size, dataset=dataset, num_classes=classes, image_size=image_size, device=device,
                         batch=int(batch), backend=backend, timer=timer, threads=threads)
    return LatencyTable(pd.DataFrame(rows, columns=LUT_COLUMNS), settings)


def measure_networks(space: SearchSpace | str, archs: Sequence[str], table: LatencyTable, *,
                     clock: Clock | None = None, seed: int = 0, progress: bool = False) -> list[float]:
    """Median end-to-end latency (ms) of each architecture's derived network, timed as `table`'s parts were
    (same backend, device, batch, warm-up and repeats; the networks interleaved round by round)."""
    from search_spaces.costs import build_network

    s = table.settings
    space = get_space(space) if isinstance(space, str) else space
    runs = []
    for arch in archs:
        torch.manual_seed(seed)
        model, image_size = build_network(space, arch, s["size"], s["dataset"], num_classes=s["num_classes"])
        inputs = _inputs([(3, image_size, image_size)], s["batch"], seed)
        runs.append(runner(model, inputs, s["backend"], s["device"], s.get("threads")))
    timer = Timer(s["device"], warmup=s["warmup"], repeats=s["repeats"], clock=clock)
    with _bar(progress, timer.repeats, f"timing {len(runs)} whole networks", "round") as bar:
        return [_summary(t)["ms"] for t in timer.times_ms(runs, bar)]


def random_architectures(space: SearchSpace, k: int, seed: int = 0) -> list[str]:
    """`k` distinct architectures drawn by discretising random probabilities (uniform draws normalised per
row; any space; NB201: uniform ops)."""
    rng = np.random.default_rng(seed)  # numpy: thousands of tiny draws, no torch op overhead
    out: dict[str, None] = {}
    for _ in range(50 * k):
        draws = {g: rng.random(shape) for g, shape in space.arch_shapes.items()}
        probs = {g: torch.from_numpy(d / d.sum(-1, keepdims=True)) for g, d in draws.items()}
        out.setdefault(space.canonical(space.discretize(probs)))
        if len(out) == k:
            break
    return list(out)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (scipy's, with its tie handling)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def validate(table: LatencyTable, k: int, *, seed: int = 0, clock: Clock | None = None,
             progress: bool = True, archs: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure `k` sampled architectures end to end; the table's Spearman and mean absolute percentage error
    against them, with the per-architecture rows (arch, predicted_ms, measured_ms)."""
    space = get_space(table.settings["space"])
    archs = list(archs) if archs is not None else random_architectures(space, k, seed)
    measured = measure_networks(space, archs, table, clock=clock, seed=seed, progress=progress)
    rows = [{"arch": arch, "predicted_ms": table.predict(arch, space), "measured_ms": ms}
            for arch, ms in zip(archs, measured)]
    pred = np.array([r["predicted_ms"] for r in rows])
    meas = np.array([r["measured_ms"] for r in rows])
    mape = float(np.mean(np.abs(pred - meas) / np.abs(meas)) * 100) if len(rows) else math.nan
    rho = spearman(pred, meas) if len(rows) > 2 else math.nan
    return {"spearman": rho, "mape_pct": mape, "n": len(rows), "rows": rows}


def _bar(enabled: bool, total: int, desc: str, unit: str):
    """A tqdm bar (a context manager), or a no-op context yielding None when progress is off."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit)
