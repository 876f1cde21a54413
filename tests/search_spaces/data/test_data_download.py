"""Missing CIFAR data download themselves: against a throwaway HTTP server on 127.0.0.1 serving tiny tarballs in
the official layouts (the URL and checksum table are the test's), never the internet."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import make_tiny_cifar10
from tiny_data_formats import make_tiny_cifar100

from search_spaces.data import download, load_split
from search_spaces.data.download import Archive, DownloadError

REPO = Path(__file__).resolve().parents[3]


def official_tarball(dataset: str, work: Path) -> bytes:
    """A tiny archive laid out like the official one (`cifar-10-batches-py/...` or `cifar-100-python/...`)."""
    src = work / f"src-{dataset}"
    if dataset == "cifar10":
        make_tiny_cifar10(src, n_train_per_batch=8, n_test=12, batches=5)
        folder = "cifar-10-batches-py"
    else:
        make_tiny_cifar100(src, n_train=10, n_test=12)
        folder = "cifar-100-python"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(src / folder, arcname=folder)
    return buffer.getvalue()


class Server:
    """Serves `files` (name -> bytes); `mode` 'ok', 'truncate' (half the bytes, then the connection closes) or
    'slow' (a pause before the body, so concurrent fetchers overlap); counts GET requests per name."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.mode = "ok"
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                name = self.path.rsplit("/", 1)[-1]
                server.hits[name] = server.hits.get(name, 0) + 1
                body = server.files.get(name)
                if body is None:
                    self.send_error(404, "not here")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "slow":
                    time.sleep(1.0)
                if server.mode == "truncate":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def sources_for(server: Server, dataset: str, body: bytes, md5: str | None = None) -> dict[str, Archive]:
    """The download table pointing at `server` (as SOURCES points at the official site)."""
    official = download.SOURCES[dataset]
    server.files[official.filename] = body
    return {dataset: Archive(official.name, f"{server.url}/{official.filename}",
                             md5 or hashlib.md5(body).hexdigest(), official.folder, official.marker)}


@pytest.fixture
def use_sources(monkeypatch):
    monkeypatch.delenv("BALENAS_DOWNLOAD_MIRROR", raising=False)  # conftest's guard against real downloads

    def install(table: dict[str, Archive]) -> None:
        monkeypatch.setattr(download, "SOURCES", table)
    return install


def leftovers(root: Path) -> list[str]:
    """What a failed download left under root, ignoring the (empty) lock file that serialises fetchers."""
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock")) if root.exists() else []


@pytest.mark.parametrize("dataset, split, n", [("cifar10", "test", 12), ("cifar100", "train", 10)])
def test_a_clean_download_once_then_read_from_the_folder(tmp_path, server, use_sources, dataset, split, n):
    table = sources_for(server, dataset, official_tarball(dataset, tmp_path))
    use_sources(table)
    root = tmp_path / "cache"
    assert len(load_split(dataset, root, split)) == n
    assert leftovers(root) == [table[dataset].folder]  # extracted and renamed; archive and temp folder gone
    assert len(load_split(dataset, root, split)) == n
    assert server.hits == {table[dataset].filename: 1}


def test_a_corrupted_archive_is_an_error_and_leaves_the_cache_untouched(tmp_path, server, use_sources):
    body = bytearray(official_tarball("cifar10", tmp_path))
    good_md5 = hashlib.md5(body).hexdigest()
    body[len(body) // 2] ^= 0xFF
    table = sources_for(server, "cifar10", bytes(body), md5=good_md5)
    use_sources(table)
    root = tmp_path / "cache"
    with pytest.raises(DownloadError) as info:
        load_split("cifar10", root, "test")
    text = str(info.value)
    assert "checksum mismatch" in text and table["cifar10"].url in text
    assert str(root / "cifar-10-batches-py") in text and "by hand" in text and "tar xzf" in text
    assert leftovers(root) == []


def test_a_truncated_transfer_fails_and_the_next_call_starts_clean(tmp_path, server, use_sources):
    table = sources_for(server, "cifar10", official_tarball("cifar10", tmp_path))
    use_sources(table)
    root = tmp_path / "cache"
    server.mode = "truncate"
    with pytest.raises(DownloadError, match=r"(ended after \d+ of \d+ bytes|could not reach).*cifar-10-python") as info:
        load_split("cifar10", root, "test")
    assert str(root / "cifar-10-batches-py") in str(info.value)
    assert leftovers(root) == []
    server.mode = "ok"
    assert len(load_split("cifar10", root, "test")) == 12
    assert server.hits["cifar-10-python.tar.gz"] == 2


def test_an_http_error_names_the_status_and_the_url(tmp_path, server, use_sources):
    table = sources_for(server, "cifar10", b"")
    del server.files["cifar-10-python.tar.gz"]
    use_sources(table)
    with pytest.raises(DownloadError, match=r"HTTP error 404.*127\.0\.0\.1.*cifar-10-python\.tar\.gz"):
        load_split("cifar10", tmp_path / "cache", "test")
    assert leftovers(tmp_path / "cache") == []


def _refused_url() -> str:
    with socket.socket() as s:  # a port nobody listens on: the connection is refused, as offline
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_offline_gives_the_url_the_path_and_the_manual_steps(tmp_path, use_sources, monkeypatch):
    url = _refused_url()
    monkeypatch.setenv("BALENAS_DOWNLOAD_MIRROR", url)  # the mirror setting replaces the official base URL
    root = tmp_path / "cache"
    with pytest.raises(DownloadError) as info:
        load_split("cifar10", root, "test")
    text = str(info.value)
    assert f"{url}/cifar-10-python.tar.gz" in text and "could not reach" in text
    assert str(root / "cifar-10-batches-py") in text and download.SOURCES["cifar10"].url in text
    assert leftovers(root) == []


_FETCH = """
import sys
from search_spaces.data.download import Archive, fetch
url, md5, root = sys.argv[1:]
fetch("cifar10", root, sources={"cifar10": Archive("CIFAR-10", url, md5, "cifar-10-batches-py", "test_batch")},
      progress=False)
"""


def test_two_concurrent_fetchers_download_once(tmp_path, server):
    table = sources_for(server, "cifar10", official_tarball("cifar10", tmp_path))
    server.mode = "slow"
    root = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("BALENAS_DOWNLOAD_MIRROR", None)
    args = [sys.executable, "-c", _FETCH, table["cifar10"].url, table["cifar10"].md5, str(root)]
    procs = [subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert server.hits == {"cifar-10-python.tar.gz": 1}
    assert len(load_split("cifar10", root, "test", download=False)) == 12
