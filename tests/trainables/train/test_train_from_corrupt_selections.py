"""`balenas train` with `from:` a search sweep whose `selections` table has an unreadable partition: one error
(exit status 2) that names the file, and the sweep folder is left as it was."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from balenas import cli
from trainables.runs import store

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def sweep_with_selections(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(yaml.safe_dump({"name": folder.name, "space": "nb201"}))
    for i in range(3):
        rows = pd.DataFrame([{"method": "balenas", "seed": i, "rule": "argmax", "arch": ARCH}])
        store.write_partition(folder, "selections", rows, f"a_{i:05d}")
    return folder


@pytest.mark.parametrize("kind", ["junk", "damaged"])
def test_from_a_sweep_with_an_unreadable_selections_file_names_it(tmp_path, capsys, kind):
    sweep = sweep_with_selections(tmp_path / "search")
    bad = sweep / "selections" / "trial_id=a_00001" / "part.parquet"
    if kind == "junk":
        bad.write_bytes(b"not Parquet at all\n" * 8)
    else:  # a readable footer over a garbled page header: found only when the rows are read
        data = bytearray(bad.read_bytes())
        chunk = pq.ParquetFile(bad).metadata.row_group(0).column(0)
        start = chunk.dictionary_page_offset or chunk.data_page_offset
        for i in range(start, start + 8):
            data[i] ^= 0xFF
        bad.write_bytes(bytes(data))
    before = hashes(sweep)
    spec = tmp_path / "train.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "from_corrupt", "protocol": "nb201-12", "dataset": "cifar10-valid", "data_root": str(tmp_path),
        "seeds": [0], "device": "cpu", "resources": {"cpu": 1, "gpu": 0},
        "from": {"sweep": str(sweep), "rule": "argmax"}}))
    assert cli.main(["train", str(spec), "--storage", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "unreadable Parquet file" in err, err
    assert hashes(sweep) == before
    assert not (tmp_path / "runs").exists()
