"""Convert the official NAS-Bench-201 file (or the shared CSV) into the compact NB201 table.

The official file (NAS-Bench-201-v1_0-e61699.pth / v1_1-096897.pth) is a torch-saved dict:
`meta_archs` (list of architecture strings), `arch2infos` (index -> {'full': ArchResults state (200 epochs),
'less': ArchResults state (12 epochs)}), `evaluated_indexes`. Results are read through nas_201_api's own
`ArchResults.create_from_state_dict(...).get_metrics(dataset, setname, is_random=False)` (mean over trials),
with the set names of its documentation: cifar10-valid 'x-valid' / 'ori-test', cifar10 'ori-test',
cifar100 and ImageNet16-120 'x-valid' / 'x-test'.

Loading it: torch >= 2.6 defaults to weights_only=True, which refuses any Python object the file might hold
beyond containers, numbers and tensors. We try exactly that first (plus numpy scalars, which are inert);
if the file needs more, a full unpickle would run code from the file, so it is only done when the caller
says `trust_pickle=True` (CLI: --trust-pickle) for a file from a trusted source.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import torch

from search_spaces.benchmarks.base import Metric
from search_spaces.nb201.benchmark import OFFICIAL_FILE_HELP, NB201Benchmark
from search_spaces.nb201.encoding import canonical

log = logging.getLogger(__name__)

# (NB201 data set, nas_201_api set name, our split)
OFFICIAL_METRICS: tuple[tuple[str, str, str], ...] = (
    ("cifar10-valid", "x-valid", "valid"),
    ("cifar10-valid", "ori-test", "test"),
    ("cifar10", "ori-test", "test"),
    ("cifar100", "x-valid", "valid"),
    ("cifar100", "x-test", "test"),
    ("ImageNet16-120", "x-valid", "valid"),
    ("ImageNet16-120", "x-test", "test"),
)
HP_KEYS = ("full", "less")  # arch2infos[i] keys: hp '200' and hp '12'
PARAMS_DATASETS = ("cifar10", "cifar10-valid")  # params_M with the 10-class head


class UntrustedPickleError(RuntimeError):
    """The file needs a full unpickle and the caller has not said it trusts the file."""


def _numpy_safe_globals() -> list:
    core = getattr(np, "_core", None) or np.core
    scalar = core.multiarray.scalar
    globals_ = [np.dtype, (scalar, "numpy.core.multiarray.scalar"), (scalar, "numpy._core.multiarray.scalar")]
    globals_ += [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)]
    return globals_


def _weights_only_reason(err: Exception) -> str:
    """The specific refusal in torch's long weights_only message (e.g. 'Unsupported global: GLOBAL x.Y ...')."""
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].split("Check the documentation", 1)[0]
    text = " ".join(text.split())
    return text.split(". Please use")[0][:300] or type(err).__name__


def load_official(path: Path | str, trust_pickle: bool = False) -> dict:
    """The official file's dict: weights_only first, a full unpickle only with `trust_pickle=True`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"official NB201 file not found: {path}. {OFFICIAL_FILE_HELP}")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = _weights_only_reason(err)
        if not trust_pickle:
            raise UntrustedPickleError(
                f"{path} cannot be loaded with torch.load(weights_only=True): {reason}. It holds Python "
                f"objects beyond containers, numbers and tensors (or it is damaged); rebuilding them takes a "
                f"full unpickle, which executes code named in the file. If this is the official NB201 release "
                f"from a source you trust, pass trust_pickle=True (command line: --trust-pickle).") from err
        log.warning("%s: weights_only load failed (%s); unpickling fully because trust_pickle=True", path, reason)
        try:
            data = torch.load(path, map_location="cpu", weights_only=False)
        except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ModuleNotFoundError) as err2:
            raise ValueError(f"{path}: cannot read the NB201 file ({type(err2).__name__}: {err2})") from err2
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{path}: cannot read the NB201 file ({type(err).__name__}: {err})") from err
    missing = [k for k in ("meta_archs", "arch2infos") if not isinstance(data, dict) or k not in data]
    if missing:
        raise ValueError(f"{path}: not an NB201 benchmark file (missing {missing})")
    return data


def convert_official(data: dict, source: str = "official NB201 file", progress: bool = True) -> NB201Benchmark:
    """Build the NB201 table from the official dict through nas_201_api's ArchResults."""
    from nas_201_api import ArchResults  # optional dependency (nas-bench-201), only needed here
    from tqdm import tqdm

    meta_archs, arch2infos = data["meta_archs"], data["arch2infos"]
    indexes = sorted(int(i) for i in arch2infos)
    keys = [canonical(meta_archs[i]) for i in indexes]
    n = len(indexes)
    metrics: dict[Metric, np.ndarray] = {}
    params = np.full(n, np.nan)
    for row, index in enumerate(tqdm(indexes, desc=f"converting {source}", unit="arch", disable=not progress,
                                     mininterval=2.0)):
        info = arch2infos[index]
        for hp_key in HP_KEYS:
            if hp_key not in info:
                continue
            results = ArchResults.create_from_state_dict(info[hp_key])
            names = results.get_dataset_names()
            for dataset, set_name, split in OFFICIAL_METRICS:
                if dataset not in names:
                    continue
                try:
                    acc = results.get_metrics(dataset, set_name, is_random=False)["accuracy"]
                except KeyError:  # this trial set was not evaluated on `set_name`
                    continue
                epochs = int(results.get_total_epoch(dataset))
                metrics.setdefault((dataset, split, epochs), np.full(n, np.nan))[row] = float(acc)
            if hp_key == "full" and np.isnan(params[row]):
                for dataset in PARAMS_DATASETS:
                    if dataset in names:
                        params[row] = float(results.get_compute_costs(dataset)["params"])
                        break
    if not metrics:
        raise ValueError(f"{source}: no accuracies found for any of {[m[:2] for m in OFFICIAL_METRICS]}")
    extras = {"params_M": params, "nb201_index": np.asarray(indexes, dtype=np.float64)}
    return NB201Benchmark(keys, metrics, extras, source=source)


def convert_source(src: Path | str, trust_pickle: bool = False, progress: bool = True) -> NB201Benchmark:
    """The NB201 table from the shared CSV (by suffix .csv) or the official .pth file."""
    src = Path(src).expanduser()
    if not src.is_file():
        raise FileNotFoundError(f"NB201 source not found: {src}. {OFFICIAL_FILE_HELP}")
    if src.suffix.lower() == ".csv":
        return NB201Benchmark.from_csv(src)
    return convert_official(load_official(src, trust_pickle=trust_pickle), source=src.name, progress=progress)
