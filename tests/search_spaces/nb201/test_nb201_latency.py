"""The packaged NB201 latency table (HELP's files, converted by search_spaces/nb201/convert_latency.py)."""

import json
import pickle

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from search_spaces.nb201 import all_architectures, canonical
from search_spaces.nb201.convert_latency import HWNASBENCH_PUBLISHED, NB201_TABLE, convert, read_pt
from search_spaces.nb201.latency import DEVICES, LATENCY_FILE, LatencyTable, latency_table

HELP_COMMIT = "45f70eb92d0d735970a33b608d1544ad3c52f285"

# Read by hand from github.com/HayeonLee/HELP at HELP_COMMIT: data/nasbench201/latency/<file>.pt [index], with the
# string that data/nasbench201/str_arch2idx.pt maps to that index. (our device, HELP file, index, string, value)
SOURCE_VALUES = [
    ("titanx_b256", "titanx_256.pt", 7777,
     "|nor_conv_3x3~0|+|skip_connect~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|",
     23.043217658996582),
    ("pixel2", "pixel2.pt", 12345,
     "|skip_connect~0|+|avg_pool_3x3~0|none~1|+|nor_conv_1x1~0|skip_connect~1|avg_pool_3x3~2|", 9),
    ("gold_6226", "gold_6226.pt", 15624,
     "|nor_conv_1x1~0|+|none~0|nor_conv_1x1~1|+|none~0|nor_conv_1x1~1|nor_conv_1x1~2|", 11.170949935913086),
    ("fpga", "fpga.pt", 9876,
     "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|nor_conv_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|", 5.72496),
    ("eyeriss", "eyeriss.pt", 4321,
     "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|nor_conv_1x1~1|none~2|", 1.9253),
    ("samsung_s7", "samsung_s7.pt", 100,
     "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|", 29),
    ("1080ti_b1", "1080ti_1.pt", 3000,
     "|nor_conv_1x1~0|+|skip_connect~0|skip_connect~1|+|none~0|avg_pool_3x3~1|none~2|", 7.143092155456543),
    ("raspi4", "raspi4.pt", 11111,
     "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_1x1~2|",
     17.632114139996702),
]
# NB201 index 0 (HW-NAS-Bench's README shows its arch_str for No.0)
ARCH0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


@pytest.fixture(scope="module")
def table() -> LatencyTable:
    return latency_table()


def test_shipped_file_is_small_and_float32(table):
    assert LATENCY_FILE.stat().st_size < 3 * 2 ** 20
    assert len(table) == 15625
    assert table.devices() == [d.name for d in DEVICES] and len(DEVICES) == 27
    for d in DEVICES:
        col = table.frame[d.column]
        assert col.dtype == np.float32, d.column
        assert np.isfinite(col).all() and (col > 0).all(), d.column


def test_rows_map_one_to_one_onto_canonical_strings(table):
    archs = table.frame["arch"].tolist()
    assert len(set(archs)) == 15625 and set(archs) == set(all_architectures())
    assert all(canonical(a) == a for a in archs)
    # the index HELP used is NAS-Bench-201's: same index per string as the packaged NB201 table
    nb201 = pd.read_parquet(NB201_TABLE, columns=["arch", "nb201_index"])
    ref = dict(zip(nb201["arch"], nb201["nb201_index"].astype(int)))
    assert sorted(table.frame["nb201_index"]) == list(range(15625))
    assert all(ref[a] == i for a, i in zip(archs, table.frame["nb201_index"]))
    assert archs[0] == ARCH0
    # every device column is one value per row, so each device maps the 15,625 strings one to one
    for d in DEVICES:
        series = table.column(d.name)
        assert series.index.is_unique and len(series) == 15625 and not series.isna().any()


@pytest.mark.parametrize("name, help_file, index, arch, value", SOURCE_VALUES)
def test_values_match_source_by_index_and_by_string(table, name, help_file, index, arch, value):
    frame = table.frame
    row = frame.index[frame["nb201_index"] == index]
    assert len(row) == 1
    assert frame.at[row[0], "arch"] == arch
    by_index = float(frame.at[row[0], f"latency_{name}_ms"])
    assert by_index == pytest.approx(value, rel=1e-6)
    assert table.latency(arch, name) == by_index
    assert table.column(name)[arch] == np.float32(by_index)


@pytest.mark.parametrize("name", sorted(HWNASBENCH_PUBLISHED))
def test_hw_nas_bench_values(table, name):
    # HW-NAS-Bench (README / example.ipynb, CIFAR-10) numbers for NB201 indices 0..2 equal HELP's
    for index, value in HWNASBENCH_PUBLISHED[name].items():
        arch = table.frame.loc[table.frame["nb201_index"] == index, "arch"].item()
        assert table.latency(arch, name) == pytest.approx(value, rel=1e-6)


def test_latency_canonicalises_and_rejects(table):
    assert table.latency("  " + ARCH0 + "\n", "fpga") == pytest.approx(2.57296, rel=1e-6)
    with pytest.raises(ValueError, match="known devices: 1080ti_b1, .*eyeriss"):
        table.latency(ARCH0, "jetson")
    with pytest.raises(ValueError, match="known devices"):
        table.column("titanx_256")  # HELP's file name, not ours
    with pytest.raises(ValueError, match="unknown op"):
        table.latency("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "fpga")


def test_provenance_in_schema_metadata():
    meta = json.loads(pq.read_schema(LATENCY_FILE).metadata[b"balenas.latency"])
    assert meta["commit"] == HELP_COMMIT and meta["unit"] == "ms" and meta["licence"] == "MIT"
    assert [d["column"] for d in meta["devices"]] == [d.column for d in DEVICES]


# ----- the converter, on a synthetic HELP folder --------------------------------------------------------------------
def _synthetic_help(root, bad_device=None):
    archs = pd.read_parquet(NB201_TABLE, columns=["arch", "nb201_index"])
    mapping = {a: int(i) for a, i in zip(archs["arch"], archs["nb201_index"])}
    torch.save(mapping, root / "str_arch2idx.pt")
    (root / "latency").mkdir()
    rng = np.random.default_rng(0)
    for d in DEVICES:
        values = (rng.random(15625) * 10 + 1).tolist()
        for index, value in HWNASBENCH_PUBLISHED.get(d.name, {}).items():
            values[index] = value
        if d.name == bad_device:
            values[5] = float("nan")
        torch.save(values, root / "latency" / f"{d.help_file}.pt")
    return mapping


def test_convert_synthetic(tmp_path):
    mapping = _synthetic_help(tmp_path)
    out = tmp_path / "lat.parquet"
    frame = convert(tmp_path, out, "0" * 40, compression_level=1)
    t = latency_table(out)
    arch = next(a for a, i in mapping.items() if i == 777)
    for d in DEVICES[::5]:
        source = read_pt(tmp_path / "latency" / f"{d.help_file}.pt")
        assert t.latency(arch, d.name) == pytest.approx(source[777], rel=1e-6)
    assert frame["nb201_index"].tolist() == list(range(15625))


def test_convert_refuses_bad_values(tmp_path):
    _synthetic_help(tmp_path, bad_device="pixel2")
    with pytest.raises(ValueError, match="pixel2.pt: 1 entries are not finite"):
        convert(tmp_path, tmp_path / "x.parquet", "0" * 40)


def test_read_pt_runs_no_code(tmp_path):
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps([print]))  # names a global: refused, not called
    with pytest.raises(pickle.UnpicklingError, match="refusing global [A-Za-z_.]*print"):
        read_pt(evil)
    tensor = tmp_path / "tensor.pt"
    torch.save([torch.zeros(2)], tensor)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        read_pt(tensor)
