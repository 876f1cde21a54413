"""Convert HELP's NAS-Bench-201 latency files into the packaged `data/latency.parquet` (run once; kept for the record).

Source: github.com/HayeonLee/HELP (MIT), folder `data/nasbench201/`: `str_arch2idx.pt` (dict architecture string
-> index) and `latency/<device>.pt` (a list of 15,625 latencies in ms, position = that index). The `.pt` files
are torch zip archives whose only pickle, `<name>/data.pkl`, holds a plain list or dict. They are read without
torch and without running pickled code: the zip member is unpickled by `_PlainUnpickler`, which resolves no
globals at all (a file that names any class or function, or a tensor storage, is refused).

Checks, all fatal: the index map is one to one between 0..15624 and the strings, every string is already
canonical (`encoding.canonical`) and the strings are exactly `all_architectures()`; the index equals the packaged
NB201 table's `nb201_index` for every string; every device file has 15,625 finite positive numbers; the values
HW-NAS-Bench publishes in its README / example notebook (`HWNASBENCH_PUBLISHED`) equal HELP's to the last digit.

    python -m search_spaces.nb201.convert_latency HELP/data/nasbench201 search_spaces/nb201/data/latency.parquet \
        --commit 45f70eb92d0d735970a33b608d1544ad3c52f285
"""

from __future__ import annotations

import argparse
import io
import json
import math
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from search_spaces.nb201.encoding import all_architectures, canonical
from search_spaces.nb201.latency import DEVICES, HELP_REPO, HWNASBENCH_REPO, LATENCY_FILE

NUM_ARCHS = 15625
NB201_TABLE = LATENCY_FILE.parent / "nb201.parquet"

#: HW-NAS-Bench's own published numbers (github.com/GATECH-EIC/HW-NAS-Bench at 393bb8a02554dcd28e091fbbdb4d7aefe590018a,
#: README.md and example.ipynb, "HW_metrics ... for No.<i> @ cifar10": `fpga_latency`, `eyeriss_latency`,
#: `pixel3_latency`, `raspi4_latency`, ms). Their HW-NAS-Bench-v1_0.pickle is not in the stored snapshot.
#: device -> {NB201 index: latency}
HWNASBENCH_PUBLISHED: dict[str, dict[int, float]] = {
    "fpga": {0: 2.57296, 1: 5.31536, 2: 5.28656},
    "eyeriss": {0: 3.645620000000001, 1: 7.577780000000003, 2: 10.526900000000001},
    "pixel3": {0: 3.6058499999999998, 1: 17.2381, 2: 15.723},
    "raspi4": {0: 10.481976820010459, 1: 54.77739761998237, 2: 50.40940375998616},
}


class _PlainUnpickler(pickle.Unpickler):
    """Builds containers, numbers and strings only: no global may be loaded, no persistent id resolved."""

    def __init__(self, file, where: str):
        super().__init__(file)
        self._where = where

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{self._where}: refusing global {module}.{name} (a plain list/dict is expected)")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"{self._where}: refusing persistent id {pid!r} (a tensor storage; a plain "
                                     f"list/dict is expected)")


def read_pt(path: Path | str) -> Any:
    """A torch-saved plain list/dict, read from the zip archive's `data.pkl` (or a bare pickle) without torch."""
    path = Path(path)
    raw = path.read_bytes()
    if zipfile.is_zipfile(io.BytesIO(raw)):
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            members = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(members) != 1:
                raise ValueError(f"{path}: expected one data.pkl in the torch archive, found {members}")
            raw = z.read(members[0])
    return _PlainUnpickler(io.BytesIO(raw), str(path)).load()


def read_index(help_dir: Path) -> dict[str, int]:
    """`str_arch2idx.pt`, checked: canonical strings, exactly the NB201 space, indices 0..15624 one to one."""
    path = help_dir / "str_arch2idx.pt"
    mapping = read_pt(path)
    if not isinstance(mapping, dict) or len(mapping) != NUM_ARCHS:
        raise ValueError(f"{path}: expected a dict of {NUM_ARCHS} architectures, got {type(mapping).__name__} "
                         f"of {len(mapping) if hasattr(mapping, '__len__') else '?'}")
    not_canonical = [a for a in mapping if canonical(a) != a]
    if not_canonical:
        raise ValueError(f"{path}: {len(not_canonical)} non-canonical strings, e.g. {not_canonical[:3]}")
    if set(mapping) != set(all_architectures()):
        raise ValueError(f"{path}: the strings are not the NB201 space")
    if sorted(mapping.values()) != list(range(NUM_ARCHS)):
        raise ValueError(f"{path}: indices are not a permutation of 0..{NUM_ARCHS - 1}")
    return mapping


def check_against_nb201(mapping: dict[str, int], table: Path = NB201_TABLE) -> None:
    """HELP's index must be NAS-Bench-201's index (the packaged NB201 table's `nb201_index`) for every string."""
    ref = pd.read_parquet(table, columns=["arch", "nb201_index"])
    ours = dict(zip(ref["arch"], ref["nb201_index"].astype(int)))
    wrong = [(a, i, ours.get(a)) for a, i in mapping.items() if ours.get(a) != i]
    if wrong:
        raise ValueError(f"HELP's index differs from {table.name}'s nb201_index for {len(wrong)} architectures, "
                         f"e.g. {wrong[:3]}")


def read_device(help_dir: Path, stem: str) -> list[float]:
    path = help_dir / "latency" / f"{stem}.pt"
    values = read_pt(path)
    if not isinstance(values, list) or len(values) != NUM_ARCHS:
        raise ValueError(f"{path}: expected a list of {NUM_ARCHS} latencies")
    bad = [(i, v) for i, v in enumerate(values)
           if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0]
    if bad:
        raise ValueError(f"{path}: {len(bad)} entries are not finite positive numbers, e.g. {bad[:3]}")
    return [float(v) for v in values]


def check_hwnasbench(latencies: dict[str, list[float]]) -> None:
    for name, published in HWNASBENCH_PUBLISHED.items():
        for index, value in published.items():
            if latencies[name][index] != value:
                raise ValueError(f"HELP's {name}.pt[{index}] = {latencies[name][index]!r} but HW-NAS-Bench publishes "
                                 f"{value!r}")


def convert(help_dir: Path | str, out: Path | str, commit: str, compression_level: int = 19) -> pd.DataFrame:
    """Read, check and write the table (zstd at `compression_level`); returns it."""
    help_dir = Path(help_dir)
    mapping = read_index(help_dir)
    check_against_nb201(mapping)
    latencies = {d.name: read_device(help_dir, d.help_file) for d in DEVICES}
    check_hwnasbench(latencies)
    by_index = sorted(mapping, key=mapping.__getitem__)  # row i = NB201 index i
    frame = pd.DataFrame({"arch": by_index, "nb201_index": np.arange(NUM_ARCHS, dtype=np.int32)})
    for d in DEVICES:
        frame[d.column] = np.asarray(latencies[d.name], dtype=np.float32)
    meta = {
        "source": f"github.com/{HELP_REPO}", "commit": commit, "licence": "MIT", "unit": "ms",
        "files": "data/nasbench201/latency/<help_file>.pt, data/nasbench201/str_arch2idx.pt",
        "hw_nas_bench_check": f"github.com/{HWNASBENCH_REPO} README/example.ipynb values for indices 0-2",
        "devices": [{"name": d.name, "column": d.column, "help_file": d.help_file, "hardware": d.hardware,
                     "batch_size": d.batch_size, "source": d.source} for d in DEVICES],
    }
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"balenas.latency": json.dumps(meta)})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out, compression="zstd", compression_level=compression_level)
    return frame


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("help_dir", type=Path, help="HELP's data/nasbench201 folder")
    parser.add_argument("out", type=Path, nargs="?", default=LATENCY_FILE)
    parser.add_argument("--commit", required=True, help="the HELP commit the files come from")
    args = parser.parse_args(argv)
    frame = convert(args.help_dir, args.out, args.commit)
    print(f"wrote {args.out}: {len(frame)} rows, {len(DEVICES)} devices, {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
