"""Unreadable Parquet files (junk, truncated, empty, damaged pages, a column of another type) in tables written by
`trainables.runs.store.write_partition`: the store and `analysis.load` raise one CorruptTableError naming the
file (or skip it with a warning under `skip_corrupt=True`), and `balenas report` writes what it can, lists what
it skipped, and leaves no report folder where nothing could be read. Reading never changes the run folder."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from _frames import make_frames

from analysis.load import CorruptTableError, SkippedFileWarning, load
from analysis.load import read_table as load_read_table
from balenas.commands.report import main as report_main
from trainables.runs import store

KINDS = ("junk", "truncated", "empty", "damaged", "misfit")


def write_store_run(run_dir: Path, frames: dict[str, pd.DataFrame]) -> Path:
    """A run folder written through the sweep's own store (one partition per trial) plus spec.yaml."""
    run_dir.mkdir(parents=True)
    (run_dir / "spec.yaml").write_text(yaml.safe_dump({"name": run_dir.name, "space": "nb201", "dataset": "cifar10",
                                                       "methods": {"balenas": {}, "darts": {}}, "seeds": [0, 1, 2]}))
    for table, frame in frames.items():
        for trial_id, part in frame.groupby("trial_id", sort=True):
            store.write_partition(run_dir, table, part, trial_id)
    return run_dir


def corrupt(path: Path, kind: str) -> None:
    """Damage a real partition file the way a disk, a copy or a hand edit would."""
    data = path.read_bytes()
    if kind == "junk":
        path.write_bytes(b"this is not a Parquet file\n" * 8)
    elif kind == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "damaged":  # a readable footer, but the first column's page header is garbage
        chunk = pq.ParquetFile(path).metadata.row_group(0).column(0)
        start = chunk.dictionary_page_offset or chunk.data_page_offset
        damaged = bytearray(data)
        for i in range(start, start + 8):
            damaged[i] ^= 0xFF
        path.write_bytes(bytes(damaged))
    elif kind == "misfit":  # a valid file whose `seed` column has a type the table's other files cannot take
        table = pq.read_table(path, partitioning=None)
        seeds = pa.array([f"seed {v}" for v in table.column("seed").to_pylist()])
        pq.write_table(table.set_column(table.schema.get_field_index("seed"), "seed", seeds), path)
    else:
        raise ValueError(kind)


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def part(run_dir: Path, table: str, trial_id: str) -> Path:
    return run_dir / table / f"trial_id={trial_id}" / "part.parquet"


@pytest.fixture(scope="module")
def frames():
    return make_frames(methods=("darts",), seeds=(0, 1, 2), failed=None)


@pytest.fixture
def run(tmp_path, frames):
    return write_store_run(tmp_path / "sweep", frames)


# ----- the store ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_store_names_the_unreadable_file_or_skips_it(run, frames, kind):
    bad = part(run, "epochs", "a1b2c_00001")
    corrupt(bad, kind)
    before = hashes(run)
    with pytest.raises(CorruptTableError) as info:
        store.read_table(run, "epochs")
    assert info.value.path == str(bad) and str(bad) in str(info.value) and info.value.reason
    assert isinstance(info.value, ValueError) and [f.path for f in info.value.files] == [str(bad)]
    if kind != "misfit":  # alone, a file with other column types is readable
        with pytest.raises(CorruptTableError, match="trial_id=a1b2c_00001"):
            store.read_partition(run, "epochs", "a1b2c_00001")
    skipped: list = []
    rest = store.read_table(run, "epochs", skipped=skipped)
    assert [s.path for s in skipped] == [str(bad)]
    assert sorted(rest["trial_id"].unique()) == ["a1b2c_00000", "a1b2c_00002"]
    assert len(rest) == len(frames["epochs"][frames["epochs"]["trial_id"] != "a1b2c_00001"])
    assert hashes(run) == before


def test_one_error_lists_every_unreadable_file_and_survives_pickling(run):
    for trial_id, kind in (("a1b2c_00000", "junk"), ("a1b2c_00002", "truncated")):
        corrupt(part(run, "trials", trial_id), kind)
    with pytest.raises(CorruptTableError) as info:
        store.read_table(run, "trials")
    paths = [str(part(run, "trials", t)) for t in ("a1b2c_00000", "a1b2c_00002")]
    assert [f.path for f in info.value.files] == paths and all(p in str(info.value) for p in paths)
    again = pickle.loads(pickle.dumps(info.value))
    assert again.path == paths[0] and str(again) == str(info.value)


def test_a_bad_filter_is_not_blamed_on_a_file(run):
    with pytest.raises(pa.ArrowInvalid, match="nope"):
        store.read_table(run, "epochs", filters=[("nope", "==", 1)])


def test_an_unreadable_unpartitioned_table(tmp_path):
    path = store.write_table(tmp_path / "run", "summary", pd.DataFrame({"a": [1, 2]}))
    corrupt(Path(str(path)), "truncated")
    with pytest.raises(CorruptTableError, match="summary/part.parquet"):
        store.read_table(tmp_path / "run", "summary")
    skipped: list = []
    assert store.read_table(tmp_path / "run", "summary", skipped=skipped).empty and len(skipped) == 1


def test_a_write_that_must_widen_an_unreadable_partition_names_it(run):
    bad = part(run, "trials", "a1b2c_00001")
    corrupt(bad, "junk")
    with pytest.raises(CorruptTableError, match="trial_id=a1b2c_00001"):
        store.write_partition(run, "trials", pd.DataFrame({"method": ["darts"], "new_column": [1.0]}), "a1b2c_00009")


# ----- analysis.load --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_load_raises_naming_the_file(run, kind):
    bad = part(run, "selections", "a1b2c_00002")
    corrupt(bad, kind)
    before = hashes(run)
    with pytest.raises(CorruptTableError) as info:
        load(run)
    assert info.value.path == str(bad) and str(bad) in str(info.value)
    with pytest.raises(CorruptTableError, match="trial_id=a1b2c_00002"):
        load(run, filters={"method": "darts"})  # the filter's column check reads footers too
    with pytest.raises(CorruptTableError, match="trial_id=a1b2c_00002"):
        load_read_table(run / "selections")
    assert hashes(run) == before


@pytest.mark.parametrize("kind", ["junk", "damaged", "misfit"])
def test_load_skips_with_a_warning_naming_each_file(run, frames, kind):
    bad = [part(run, "selections", "a1b2c_00002"), part(run, "epochs", "a1b2c_00000")]
    for path in bad:
        corrupt(path, kind)
    with pytest.warns(SkippedFileWarning) as caught:
        tables = load(run, skip_corrupt=True)
    messages = [str(w.message) for w in caught if issubclass(w.category, SkippedFileWarning)]
    assert sorted(s.path for s in tables.skipped) == sorted(map(str, bad))
    for path in bad:
        assert sum(str(path) in m for m in messages) == 1
    assert sorted(tables.selections["trial_id"].unique()) == ["a1b2c_00000", "a1b2c_00001"]
    assert sorted(tables.epochs["trial_id"].unique()) == ["a1b2c_00001", "a1b2c_00002"]
    assert len(tables.trials) == len(frames["trials"])  # untouched tables are whole


def test_a_table_with_only_unreadable_files_is_an_empty_frame_with_a_note(run):
    for trial_id in ("a1b2c_00000", "a1b2c_00001", "a1b2c_00002"):
        corrupt(part(run, "samples", trial_id), "junk")
    with pytest.warns(SkippedFileWarning):
        tables = load(run, skip_corrupt=True)
    assert tables.samples.empty and "arch" in tables.samples.columns and len(tables.skipped) == 3
    assert any("'samples' has no readable Parquet files" in n for n in tables.notes)


# ----- balenas report -------------------------------------------------------------------------------------
SECTIONS = ("## Trials", "## Results", "### argmax", "## Plots", "## Environment", "## Spec")


def test_report_writes_what_it_can_and_lists_what_it_skipped(run, tmp_path, capsys):
    bad = {part(run, "epochs", "a1b2c_00001"): "junk", part(run, "selections", "a1b2c_00000"): "damaged",
           part(run, "samples", "a1b2c_00002"): "misfit"}
    for path, kind in bad.items():
        corrupt(path, kind)
    before = hashes(run)
    out = tmp_path / "out"
    assert report_main([str(run), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    text = (out / "report.md").read_text()
    for section in (*SECTIONS, "## Skipped files"):
        assert section in text, section
    skipped = text.split("## Skipped files", 1)[1].split("\n## ", 1)[0]
    assert "3 Parquet file(s) could not be read" in skipped
    for path in bad:
        assert f"`{path}`" in skipped
        assert f"warning: skipped unreadable file {path}:" in captured.err
    assert "Parquet magic bytes not found" in skipped and "column 'seed' is string" in skipped
    assert "3 unreadable file(s) left out of the report" in captured.err
    assert f"report written to {out / 'report.md'}" in captured.out
    assert hashes(run) == before


def test_a_report_with_no_readable_table_exits_2_and_leaves_no_folder(run, capsys):
    bad = sorted(run.glob("*/trial_id=*/part.parquet"))
    for path in bad:
        corrupt(path, "truncated")
    before = hashes(run)
    assert report_main([str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nothing to report, no table could be read:") and str(bad[0]) in err
    assert not (run / "report").exists()
    assert hashes(run) == before


def training_run(run_dir: Path, n: int = 2) -> Path:
    """A training run folder (`balenas train`): spec.yaml and a `final` table."""
    run_dir.mkdir(parents=True)
    (run_dir / "spec.yaml").write_text(yaml.safe_dump({"name": run_dir.name, "protocol": "darts-cifar"}))
    for i in range(n):
        row = {"arch": f"arch-{i}", "seed": 0, "space": "darts", "dataset": "cifar10", "protocol": "darts-cifar",
               "status": "TERMINATED", "test_error": 2.5 + i, "test_acc": 97.5 - i, "params": 3.3e6,
               "selected_by": json.dumps([{"method": "balenas", "rule": "argmax", "search_seed": i}]),
               "trial_label": f"arch-{i}/seed=0", "error": None}
        store.write_partition(run_dir, "final", pd.DataFrame([row]), f"t_{i:05d}")
    return run_dir


def test_report_of_a_training_run_with_an_unreadable_final_partition(tmp_path, capsys):
    run = training_run(tmp_path / "train")
    bad = part(run, "final", "t_00001")
    corrupt(bad, "junk")
    before = hashes(run)
    out = tmp_path / "out"
    assert report_main([str(run), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "## Final training" in text and "## Spec" in text
    assert f"`{bad}`" in text.split("## Skipped files", 1)[1]
    assert str(bad) in capsys.readouterr().err
    assert hashes(run) == before


def test_a_training_run_whose_final_table_is_unreadable_exits_2(tmp_path, capsys):
    run = training_run(tmp_path / "train", n=1)
    bad = part(run, "final", "t_00000")
    corrupt(bad, "damaged")
    before = hashes(run)
    assert report_main([str(run)]) == 2
    assert str(bad) in capsys.readouterr().err
    assert not (run / "report").exists()
    assert hashes(run) == before


def test_a_report_that_fails_midway_removes_the_folder_it_created(run, monkeypatch, capsys):
    from analysis import report as report_mod

    def boom(*args, **kwargs):
        raise ValueError("plotting failed")

    monkeypatch.setattr(report_mod.plots_mod, "all_plots", boom)
    before = hashes(run)
    assert report_main([str(run)]) == 2
    assert "plotting failed" in capsys.readouterr().err
    assert not (run / "report").exists() and hashes(run) == before
