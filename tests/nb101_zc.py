"""A small NB101 table from real published numbers: the 500 NB101 architectures NASLib / NAS-Bench-Suite-Zero
published with zero-cost scores and accuracies (../shared/data/zero_cost/zc_nasbench101_small.json)."""

from __future__ import annotations

import ast
import collections
import json
from pathlib import Path

import numpy as np
import pytest

from search_spaces.nb1shot1.nb101.benchmark import convert
from search_spaces.nb1shot1.nb101.graph import CONV1X1, CONV3X3, MAXPOOL3X3, canonical_spec
from search_spaces.nb1shot1.nb101.records import encode_record
from search_spaces.nb1shot1.nb101.tfrecord import write_records

NASLIB_OPS = {0: "input", 1: "output", 2: MAXPOOL3X3, 3: CONV1X1, 4: CONV3X3}  # NASLib's all_ops order


def zc_entries(shared_data: Path) -> list[tuple[np.ndarray, list[int], dict]]:
    """(matrix, NASLib op codes, published values) per sample; skips the test when the file is absent."""
    path = shared_data / "zero_cost" / "zc_nasbench101_small.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    data = json.loads(path.read_text())["nasbench101"]["cifar10"]
    out = []
    for key, value in data.items():
        k = ast.literal_eval(key)
        out.append((np.array(k[:49]).reshape(7, 7), list(k[49:]), value))
    return out


def zc_groups(entries) -> tuple[dict[str, list[dict]], dict[str, tuple]]:
    """Samples grouped by NB101 cell hash (many samples are the same pruned cell), and each cell's spec."""
    groups: dict[str, list[dict]] = collections.defaultdict(list)
    cells = {}
    for m, codes, v in entries:
        pm, pops, h = canonical_spec(m, [NASLIB_OPS[c] for c in codes])
        groups[h].append(v)
        cells[h] = (pm, pops)
    return groups, cells


def zc_table(shared_data: Path, out_dir: Path) -> Path:
    """A converted NB101 Parquet table of the published cells: each cell's repeats are its distinct published
    validation accuracies (test accuracy the same: NASLib publishes one), 108 epochs."""
    groups, cells = zc_groups(zc_entries(shared_data))
    records = []
    for h, g in groups.items():
        pm, pops = cells[h]
        reps = sorted({v["val_accuracy"] / 100 for v in g})
        reps = (reps * 3)[:3]
        for acc in reps:
            ev = {"current_epoch": 108.0, "validation_accuracy": acc, "test_accuracy": acc, "train_accuracy": 1.0,
                  "training_time": 1000.0}
            records.append(encode_record(h, 108, pm, pops, int(g[0]["params"] * 1e6), [ev, ev, ev]))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_records(out_dir / "zc.tfrecord", records)
    convert(out_dir / "zc.tfrecord", out_dir / "zc.parquet", check_hashes=True)
    return out_dir / "zc.parquet"
