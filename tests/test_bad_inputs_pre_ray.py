"""Nothing accepted that fails later: `balenas sweep` and `balenas train` refuse bad input before Ray starts
(`ray.init` raises here), with exit status 2 and a first error line naming the field, path or value, and
leave every file that was there as it was: a spec that is not UTF-8, a storage scheme pyarrow cannot open, an
object store that refuses the credentials or does not answer, a file where the results folder belongs, a folder
that takes no files, a run folder whose name is taken, --resume of a run that is not there, and a DARTS genotype
whose concat is a huge range."""

from __future__ import annotations

import http.server
import os
import socket
import threading
from pathlib import Path

import pytest
import yaml

from balenas import cli
from trainables.runs import tuner

DARTS_CELL = ("[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
              "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)]")
NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(autouse=True)
def no_ray(monkeypatch):
    """Ray must not start: any `ray.init` fails the test (and no Ray of another test is taken as running)."""
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("Ray started although the input is bad")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)


def sweep_spec(folder: Path, data_root: Path, name: str = "t") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "space": "nb201", "dataset": "cifar10", "data_root": str(data_root),
                                    "methods": {"darts-v1": {}}, "search": {"epochs": 1, "C": 4, "N": 1}}))
    return path


def train_spec(folder: Path, data_root: Path, name: str = "t", **extra) -> Path:
    path = folder / f"train_{name}.yaml"
    data = {"name": name, "protocol": "nb201-12", "dataset": "cifar10-valid", "data_root": str(data_root),
            "architectures": [NB201_ARCH], "seeds": [0], **extra}
    path.write_text(yaml.safe_dump(data, width=100_000))
    return path


def spec_file(command: str, folder: Path, data_root: Path, name: str = "t") -> Path:
    return (sweep_spec if command == "sweep" else train_spec)(folder, data_root, name)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file and folder below `root` (relative path -> bytes, None for a folder)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def run(argv: list[str], capsys) -> tuple[int, str]:
    """`balenas ARGV`: its exit status and its first `error:` line (stderr holds only log lines besides)."""
    status = cli.main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    return status, (errors[0] if errors else err)


# ----- the spec file ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["sweep", "train"])
def test_a_spec_that_is_not_utf8_is_one_error_naming_path_and_byte_offset(command, tmp_path, capsys):
    spec = tmp_path / "latin1.yaml"
    spec.write_bytes("name: caf\xe9\n".encode("latin-1"))  # 0xe9 at offset 9
    status = cli.main([command, str(spec), "--storage", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert status == 2
    kind = "sweep spec" if command == "sweep" else "training spec"
    assert err.splitlines()[0] == f"error: invalid {kind} {spec}:"
    assert "not UTF-8 text: byte 0xe9 at offset 9 (line 1, column 10)" in err
    assert "Traceback" not in err
    assert spec.read_bytes() == "name: caf\xe9\n".encode("latin-1") and not (tmp_path / "runs").exists()


def test_read_spec_text_names_the_offset_of_a_later_line(tmp_path):
    from trainables.runs.spec import SpecError, read_spec_text
    from trainables.train.spec import TrainSpecError

    spec = tmp_path / "s.yaml"
    spec.write_bytes("name: é\nspace: nb201".encode() + b"\x80\n")  # é is two bytes, one column
    with pytest.raises(TrainSpecError, match=r"byte 0x80 at offset 21 \(line 2, column 13\)") as info:
        read_spec_text(spec, TrainSpecError)
    assert info.value.problems[0][0] == "(encoding)" and str(spec) in str(info.value)
    with pytest.raises(FileNotFoundError, match="sweep spec not found"):
        read_spec_text(tmp_path / "missing.yaml", SpecError)
    (tmp_path / "ok.yaml").write_text("name: café\n", encoding="utf-8")
    assert read_spec_text(tmp_path / "ok.yaml") == "name: café\n"


# ----- the results folder ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["sweep", "train"])
def test_a_storage_scheme_pyarrow_cannot_open_is_named(command, tmp_path, tiny_cifar10, capsys):
    spec = spec_file(command, tmp_path, tiny_cifar10)
    before = snapshot(tmp_path)
    status, line = run([command, str(spec), "--storage", "foo://bucket/runs"], capsys)
    assert status == 2 and line.startswith("error: storage 'foo://bucket/runs': pyarrow cannot open")
    assert snapshot(tmp_path) == before


class _Deny(http.server.BaseHTTPRequestHandler):
    """An S3 endpoint that refuses every request (403 AccessDenied), as S3 does without valid credentials."""

    def _deny(self):
        body = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _deny

    def log_message(self, *args):
        pass


@pytest.fixture
def no_aws_credentials(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata look-up (it waits on timeouts)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.mark.parametrize("command", ["sweep", "train"])
def test_s3_without_credentials_is_one_error_before_ray(command, tmp_path, tiny_cifar10, no_aws_credentials,
                                                         capsys):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Deny)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"s3://bkt/runs?endpoint_override=127.0.0.1:{server.server_address[1]}&scheme=http&region=us-east-1"
        status, line = run([command, str(spec_file(command, tmp_path, tiny_cifar10)), "--storage", uri], capsys)
    finally:
        server.shutdown()
        server.server_close()
    assert status == 2
    assert line.startswith("error: storage s3://bkt/runs: cannot be read") and "ACCESS_DENIED" in line
    assert "credentials" in line


def test_a_store_that_does_not_answer_is_one_error_after_the_timeout(tmp_path, tiny_cifar10, no_aws_credentials,
                                                                     monkeypatch, capsys):
    monkeypatch.setattr(tuner, "STORAGE_TIMEOUT_S", 1.0)
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        uri = f"s3://bkt/runs?endpoint_override=127.0.0.1:{silent.getsockname()[1]}&scheme=http&region=us-east-1"
        status, line = run(["sweep", str(sweep_spec(tmp_path, tiny_cifar10)), "--storage", uri], capsys)
    assert status == 2
    assert line == f"error: storage {uri}: no answer within 1 s; check the address, the network and the credentials"


@pytest.mark.parametrize("command", ["sweep", "train"])
@pytest.mark.parametrize("below", ["", "sub"])
def test_a_file_where_the_results_folder_belongs_is_named(command, below, tmp_path, tiny_cifar10, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("someone's notes\n")
    storage = blocker / below if below else blocker
    spec = spec_file(command, tmp_path, tiny_cifar10)
    before = snapshot(tmp_path)
    status, line = run([command, str(spec), "--storage", str(storage)], capsys)
    assert status == 2
    where = "" if not below else f"{blocker} "
    assert line == f"error: storage {storage}: {where}is a file, not a folder"
    assert snapshot(tmp_path) == before


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder no file can be written in: a mode 0555 folder, or (as root, who writes there anyway) /sys."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/sys")):
        try:
            (candidate / ".try").touch()
        except OSError:
            return candidate
        (candidate / ".try").unlink()
    pytest.skip("no folder here refuses new files")


@pytest.mark.parametrize("command", ["sweep", "train"])
def test_a_folder_that_takes_no_files_is_refused_and_left_as_it_was(command, tmp_path, tiny_cifar10, capsys):
    read_only = _read_only_folder(tmp_path)
    spec = spec_file(command, tmp_path, tiny_cifar10)
    listing = sorted(os.listdir(read_only))
    try:
        status, line = run([command, str(spec), "--storage", str(read_only / "runs")], capsys)
    finally:
        (tmp_path / "read-only").chmod(0o755)
    assert status == 2
    assert line.startswith(f"error: storage {read_only / 'runs'}: cannot write in {read_only} (")
    assert sorted(os.listdir(read_only)) == listing  # no probe file, no run folder


@pytest.mark.parametrize("command, kind", [("sweep", "sweep"), ("train", "training")])
def test_a_taken_run_folder_name_is_refused_before_ray_and_kept(command, kind, tmp_path, tiny_cifar10, capsys):
    runs = tmp_path / "runs"
    (runs / "t" / "epochs").mkdir(parents=True)
    (runs / "t" / "spec.yaml").write_text("name: t  # the earlier run's spec\n")
    (runs / "t" / "epochs" / "part.parquet").write_bytes(b"PAR1 earlier results")
    before = snapshot(runs)
    status, line = run([command, str(spec_file(command, tmp_path, tiny_cifar10)), "--storage", str(runs)], capsys)
    assert status == 2
    assert line == (f"error: run folder {runs / 't'} already exists: pass --resume to finish that {kind}, or "
                    f"change `name` / --storage (a {kind} never overwrites another's results)")
    assert snapshot(runs) == before


@pytest.mark.parametrize("command, kind", [("sweep", "sweep"), ("train", "training")])
def test_resume_of_a_run_that_is_not_there_names_its_kind(command, kind, tmp_path, tiny_cifar10, capsys):
    runs = tmp_path / "runs"
    (runs / "t").mkdir(parents=True)  # a folder without spec.yaml: no run to resume
    (runs / "t" / "notes.txt").write_text("kept\n")
    before = snapshot(runs)
    status, line = run([command, str(spec_file(command, tmp_path, tiny_cifar10)), "--storage", str(runs),
                        "--resume"], capsys)
    assert status == 2
    assert line == (f"error: --resume: no {kind} to resume at {runs / 't'} (no spec.yaml); run without --resume "
                    f"to start it")
    assert snapshot(runs) == before
    status, line = run([command, str(spec_file(command, tmp_path, tiny_cifar10, "other")), "--storage",
                        str(tmp_path / "nowhere"), "--resume"], capsys)
    assert status == 2 and f"no {kind} to resume at {tmp_path / 'nowhere' / 'other'}" in line
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("command", ["sweep", "train"])
def test_good_storage_reaches_ray_with_nothing_created_by_the_check(command, tmp_path, tiny_cifar10, capsys):
    spec = spec_file(command, tmp_path, tiny_cifar10)
    before = snapshot(tmp_path)
    with pytest.raises(AssertionError, match="Ray started"):  # every check passed: the driver goes on to Ray
        cli.main([command, str(spec), "--storage", str(tmp_path / "runs" / "new")])
    assert snapshot(tmp_path) == before  # the storage check wrote only its probe, and removed it


def test_resuming_a_run_checks_that_its_folder_takes_files(tmp_path):
    run_dir = tmp_path / "runs" / "t"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.yaml").write_text("name: t\n")
    assert tuner.check_storage(tmp_path / "runs", "t", resume=True, kind="training").path == str(run_dir)
    assert sorted(os.listdir(run_dir)) == ["spec.yaml"]


# ----- a DARTS genotype in a training spec -----------------------------------------------------------------------
@pytest.mark.parametrize("concat", ["range(0, 30000000)", "range(0, 1000000000)"])
def test_a_huge_range_concat_is_refused_without_building_it(concat, tmp_path, tiny_cifar10, capsys):
    arch = f"Genotype(normal={DARTS_CELL}, normal_concat={concat}, reduce={DARTS_CELL}, reduce_concat=range(2, 6))"
    spec = tmp_path / "darts.yaml"
    spec.write_text(yaml.safe_dump({"name": "d", "protocol": "darts-cifar", "dataset": "cifar10",
                                    "data_root": str(tiny_cifar10), "architectures": [arch], "seeds": [0]},
                                   width=100_000))
    status = cli.main(["train", str(spec), "--storage", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.splitlines()[0] == f"error: invalid training spec {spec}:"
    assert "architectures.0" in err and f"normal_concat must be [2, 3, 4, 5] in the DARTS space, got {concat}" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["sweep", "train"])
@pytest.mark.parametrize("damage", ["truncated", "forbidden_global"])
def test_a_bad_data_batch_is_exit_2_naming_the_file(command, damage, tmp_path, capsys):
    """A truncated CIFAR batch or one whose pickle names a forbidden global: one error line naming the file, before
    Ray starts and before anything is unpickled (the data checks of search_spaces.data)."""
    import pickle

    from tests.conftest import make_tiny_cifar10

    data_root = tmp_path / "data"
    make_tiny_cifar10(data_root)
    batch = data_root / "cifar-10-batches-py" / "data_batch_1"
    if damage == "truncated":
        batch.write_bytes(batch.read_bytes()[: batch.stat().st_size // 2])
    else:
        batch.write_bytes(pickle.dumps(os.system, protocol=2))
    before = snapshot(tmp_path)
    spec = spec_file(command, tmp_path, data_root)
    code = cli.main([command, str(spec), "--storage", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert "data_batch_1" in err.splitlines()[0] or "data_batch_1" in err
    assert snapshot(tmp_path) == {**before, **{str(spec.relative_to(tmp_path)): spec.read_bytes()}}
