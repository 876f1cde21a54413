"""A `benchmark:` file that is not its space's benchmark table is refused before Ray starts (issue 21, item 2).

Each benchmark reader (NB201 Parquet and CSV, NB101 Parquet, NB301 zero-cost JSON) raises one
`BenchmarkFileError` (a ValueError) naming the file and what is wrong: not its format, truncated, a column
missing, another benchmark's table. `balenas sweep` and `balenas train` open (NB101: inspect) the file in their
path check, so a bad file is exit status 2 with one `error: benchmark: PATH: ...` line, no run folder, no Ray,
and the file and any run folder already there are left as they were."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from balenas import cli
from search_spaces.benchmarks import BenchmarkFileError, builtin_table, check_benchmark, open_benchmark
from search_spaces.darts import DARTS_V2

NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
NB1SHOT1_ARCH = "1:maxpool3x3~0|maxpool3x3~0+1|maxpool3x3~0+1|maxpool3x3~0+1|out~0+1"
TINY = {"epochs": 1, "steps_per_epoch": 1, "batch_size": 16, "eval_size": 16}


# ----- bad files, one maker each ---------------------------------------------------------------------------
def text_file(path: Path) -> Path:
    path.write_text("this is not a table\n")
    return path


def truncated_nb201(path: Path) -> Path:
    data = builtin_table("nb201").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def nb201_missing_column(path: Path) -> Path:
    table = pq.read_table(builtin_table("nb201"))  # the metadata still lists the dropped column
    pq.write_table(table.drop_columns(["bench_cifar10_test_12ep"]), path)
    return path


def nb201_without_metadata(path: Path) -> Path:
    pq.write_table(pq.read_table(builtin_table("nb201")).replace_schema_metadata(None), path)
    return path


def nb201_table(path: Path) -> Path:
    path.write_bytes(builtin_table("nb201").read_bytes())
    return path


def nb101_like(path: Path, columns=("cell", "module_hash", "epochs")) -> Path:
    """A Parquet file with the NB101 converter's metadata but only `columns`."""
    meta = json.dumps({"format": "balenas-nb101-table", "version": 1, "source": "test"}).encode()
    table = pa.table({c: pa.array([0], pa.int32()) for c in columns})
    pq.write_table(table.replace_schema_metadata({b"balenas.nb101": meta}), path)
    return path


def csv_without_key(path: Path) -> Path:
    path.write_text("arch,cifar10_test_acc_200ep\n|x|,93.1\n")
    return path


def csv_not_numeric(path: Path) -> Path:
    path.write_text(f"arch_str,cifar10_test_acc_200ep\n{NB201_ARCH},high\n")
    return path


def csv_bad_arch(path: Path) -> Path:
    path.write_text("arch_str,cifar10_test_acc_200ep\n|conv_9x9~0|,93.1\n")
    return path


def nb301_json(path: Path, rows=None) -> Path:
    compact = json.dumps(DARTS_V2.to_compact()).replace("[", "(").replace("]", ")")  # NASLib's key: tuples
    rows = {compact: {"val_accuracy": 93.5, "params": 1.2}} if rows is None else rows
    path.write_text(json.dumps({"nasbench301": {"cifar10": rows}}))
    return path


def nb301_truncated(path: Path) -> Path:
    text = nb301_json(path).read_text()
    path.write_text(text[: len(text) // 2])
    return path


def nb301_wrong_layout(path: Path) -> Path:
    path.write_text('{"nasbench201": {}}')
    return path


def nb301_entry_not_a_mapping(path: Path) -> Path:
    return nb301_json(path, {str(DARTS_V2.to_compact()): 93.5})


def nb301_no_accuracy(path: Path) -> Path:
    return nb301_json(path, {str(DARTS_V2.to_compact()): {"params": 1.2}})


def nb301_bad_key(path: Path) -> Path:
    return nb301_json(path, {"[[(0, 99)]]": {"val_accuracy": 93.5}})


# (benchmark, file name, maker, what the error says)
BAD_FILES = [
    ("nb201", "text.parquet", text_file, "not a readable Parquet benchmark table"),
    ("nb201", "half.parquet", truncated_nb201, "not a readable Parquet benchmark table"),
    ("nb201", "dropped.parquet", nb201_missing_column, "missing column(s) 'bench_cifar10_test_12ep'"),
    ("nb201", "plain.parquet", nb201_without_metadata, "without 'balenas.benchmark' metadata"),
    ("nb201", "nb101.parquet", nb101_like, "holds a 'nb101' table"),
    ("nb201", "nokey.csv", csv_without_key, "no 'arch_str' column"),
    ("nb201", "words.csv", csv_not_numeric, "could not convert string to float: 'high'"),
    ("nb201", "badarch.csv", csv_bad_arch, "row 1: bad arch_str '|conv_9x9~0|'"),
    ("nb101", "text.parquet", text_file, "not a readable Parquet NB101 table"),
    ("nb101", "nb201.parquet", nb201_table, "holds the 'nb201' benchmark table, not an NB101 table"),
    ("nb101", "short.parquet", nb101_like, "missing column(s) 'num_repeats'"),
    ("nb101", "nb101.tfrecord", text_file, "is a record file; convert it first"),
    ("nb301-zc", "half.json", nb301_truncated, "not a NASLib NB301 zero-cost file (JSONDecodeError"),
    ("nb301-zc", "nb201.json", nb301_wrong_layout, "not a NASLib NB301 zero-cost file (KeyError"),
    ("nb301-zc", "zc.parquet", nb201_table, "a Parquet file (the 'nb201' benchmark table), not NASLib's"),
    ("nb301-zc", "flat.json", nb301_entry_not_a_mapping, "is a float, not a mapping of values"),
    ("nb301-zc", "noacc.json", nb301_no_accuracy, "no genotype has a 'val_accuracy'"),
    ("nb301-zc", "badkey.json", nb301_bad_key, "bad genotype key"),
]


@pytest.mark.parametrize("name, file, make, needle", BAD_FILES, ids=[f"{b}-{f}" for b, f, _, _ in BAD_FILES])
def test_each_reader_raises_one_error_naming_the_file_and_the_problem(tmp_path, name, file, make, needle):
    path = make(tmp_path / file)
    for call in (open_benchmark, check_benchmark):
        with pytest.raises(BenchmarkFileError) as info:
            call(name, path)
        assert isinstance(info.value, ValueError)
        assert str(path) in str(info.value) and needle in str(info.value), str(info.value)


def test_good_files_pass_the_check(tmp_path):
    check_benchmark("nb201", nb201_table(tmp_path / "nb201.parquet"))
    check_benchmark("nb201", "nb201")  # the packaged table
    check_benchmark("nb301-zc", nb301_json(tmp_path / "zc.json"))
    assert len(open_benchmark("nb301-zc", tmp_path / "zc.json")) == 1
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        check_benchmark("nb201", tmp_path / "missing.parquet")


def test_real_tables_pass_the_spec_checks(tmp_path, shared_data, tiny_cifar10):
    """A converted NB101 table (of NASLib's published cells) and NASLib's NB301 sample pass the path checks of the
    spaces that read them."""
    from nb101_zc import zc_table

    from trainables.sweep.spec import check_spec_paths, validate_spec
    from trainables.train.spec import check_train_paths, validate_train_spec

    nb101 = zc_table(shared_data, tmp_path / "nb101")
    nb301 = shared_data / "zero_cost" / "zc_nasbench301_small.json"
    if not nb301.is_file():
        pytest.skip(f"{nb301} not found")
    for space, table in (("nb1shot1-1", nb101), ("darts", nb301), ("nb201", builtin_table("nb201"))):
        check_spec_paths(validate_spec(sweep_spec(space, tiny_cifar10, str(table))))
        check_train_paths(validate_train_spec(train_spec(space, tiny_cifar10, str(table))))


# ----- through the commands: refused before Ray, nothing created or changed ----------------------------------
def sweep_spec(space: str, data_root: Path, benchmark) -> dict:
    return {"name": "bad", "space": space, "dataset": "cifar10", "data_root": str(data_root), "download": False,
            "benchmark": benchmark, "methods": {"darts-v1": {}}, "search": {"epochs": 1}}


def train_spec(space: str, data_root: Path, benchmark) -> dict:
    common = {"name": "bad", "dataset": "cifar10", "data_root": str(data_root), "download": False,
              "benchmark": benchmark, "device": "cpu"}
    if space == "nb201":
        return {**common, "protocol": "nb201-12", "overrides": {**TINY, "size": {"C": 4, "N": 1}},
                "architectures": [NB201_ARCH]}
    if space == "darts":
        return {**common, "protocol": "darts-cifar", "overrides": {**TINY, "size": {"C": 4, "layers": 2}},
                "architectures": [str(DARTS_V2)]}
    return {**common, "space": space, "protocol": "nb201-12", "overrides": {**TINY, "size": {"C": 4, "N": 1}},
            "architectures": [NB1SHOT1_ARCH]}


SPEC = {"sweep": sweep_spec, "train": train_spec}
# (space, file name, maker, what the error says): each space's reader, and tables of another benchmark
BAD_SPECS = [
    ("nb201", "text.parquet", text_file, "not a readable Parquet benchmark table"),
    ("nb201", "dropped.parquet", nb201_missing_column, "missing column(s) 'bench_cifar10_test_12ep'"),
    ("nb201", "nb101.parquet", nb101_like, "holds a 'nb101' table"),
    ("nb201", "words.csv", csv_not_numeric, "could not convert string to float"),
    ("darts", "half.json", nb301_truncated, "JSONDecodeError"),
    ("darts", "nb201.parquet", nb201_table, "the 'nb201' benchmark table"),
    ("nb1shot1-1", "short.parquet", nb101_like, "missing column(s)"),
    ("nb1shot1-1", "nb201.parquet", nb201_table, "holds the 'nb201' benchmark table, not an NB101 table"),
]


@pytest.fixture
def no_ray(monkeypatch):
    """Ray may not start: a bad spec must be refused before it."""
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("ray.init called: the spec should have been refused before Ray starts")

    monkeypatch.setattr(ray, "init", refuse)


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def error_line(err: str) -> str:
    return next(line for line in err.splitlines() if line.startswith("error:"))


@pytest.mark.parametrize("command", ["sweep", "train"])
@pytest.mark.parametrize("space, file, make, needle", BAD_SPECS, ids=[f"{s}-{f}" for s, f, _, _ in BAD_SPECS])
def test_a_bad_benchmark_file_is_exit_2_before_ray(tmp_path, tiny_cifar10, no_ray, capsys, command, space, file,
                                                   make, needle):
    path = make(tmp_path / file)
    before = path.read_bytes()
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC[command](space, tiny_cifar10, str(path))))
    storage = tmp_path / "runs"
    assert cli.main([command, str(spec), "--storage", str(storage), "--quiet"]) == 2
    line = error_line(capsys.readouterr().err)
    assert line.startswith(f"error: benchmark: {path}") and needle in line, line
    assert f"space {space!r}" in line
    assert not storage.exists() and path.read_bytes() == before


@pytest.mark.parametrize("command", ["sweep", "train"])
def test_another_benchmarks_packaged_table_is_refused_at_validation(tmp_path, tiny_cifar10, no_ray, capsys, command):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC[command]("darts", tiny_cifar10, "nb201")))
    assert cli.main([command, str(spec), "--storage", str(tmp_path / "runs"), "--no-check-paths"]) == 2
    err = capsys.readouterr().err
    assert "benchmark: 'nb201' is the packaged table of benchmark 'nb201', but space 'darts' reads benchmark " \
           "'nb301-zc'" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["sweep", "train"])
def test_resume_with_a_bad_benchmark_leaves_the_run_folder_as_it_was(tmp_path, tiny_cifar10, no_ray, capsys,
                                                                    command):
    path = nb201_missing_column(tmp_path / "dropped.parquet")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC[command]("nb201", tiny_cifar10, str(path))))
    run = tmp_path / "runs" / "bad"
    (run / "epochs").mkdir(parents=True)
    (run / "spec.yaml").write_text("stored spec\n")
    (run / "epochs" / "part.parquet").write_bytes(b"rows")
    before = tree(run)
    assert cli.main([command, str(spec), "--storage", str(tmp_path / "runs"), "--resume"]) == 2
    assert error_line(capsys.readouterr().err).startswith(f"error: benchmark: {path}")
    assert tree(run) == before
