"""Fetch a missing data set once per node: official URL, md5 check, atomic extraction, a file lock.

`fetch(dataset, root)` downloads the official archive into a temporary folder under `root` (with a tqdm
progress bar), checks its md5 against the published one, extracts it there and renames the data folder into
place: a crash or an error leaves no half-written data set behind, and the temporary folder is removed.
A file lock (`filelock`) in `root` makes concurrent trials on one node download once; the others wait and
find the folder. Any failure raises `DownloadError` naming the URL, the expected path and the manual steps.

Only CIFAR-10 and CIFAR-100 have an official direct URL (https://www.cs.toronto.edu/~kriz/cifar.html; the md5
sums are the ones published there). `$BALENAS_DOWNLOAD_MIRROR` replaces the official base URL (an internal
mirror holding the same archive names); `SOURCES` is a plain table so tests can point it at a local server.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)

MIRROR_ENV = "BALENAS_DOWNLOAD_MIRROR"
OFFICIAL_BASE = "https://www.cs.toronto.edu/~kriz/"
_CHUNK = 1 << 20
# tarfile's "data" filter (Python >= 3.10.12 / 3.11.4) refuses links and paths outside the target folder
_SAFE_EXTRACT = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


@dataclass(frozen=True)
class Archive:
    """One downloadable data set: its archive, the archive's md5 and the folder (with a marker file) inside."""

    name: str  # readable name for messages
    url: str
    md5: str
    folder: str  # top-level folder inside the archive, e.g. cifar-10-batches-py
    marker: str  # a file in `folder` whose presence means "extracted"

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    def resolved_url(self) -> str:
        """The URL to fetch: the official one, or the same archive name under $BALENAS_DOWNLOAD_MIRROR."""
        mirror = os.environ.get(MIRROR_ENV)
        return f"{mirror.rstrip('/')}/{self.filename}" if mirror else self.url


SOURCES: dict[str, Archive] = {
    "cifar10": Archive("CIFAR-10", OFFICIAL_BASE + "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                       "cifar-10-batches-py", "test_batch"),
    "cifar100": Archive("CIFAR-100", OFFICIAL_BASE + "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                        "cifar-100-python", "test"),
}


class DownloadError(RuntimeError):
    """A data set could not be fetched; the message says what was tried and how to place the files by hand."""


def manual_steps(archive: Archive, root: Path) -> str:
    return (f"To place it by hand: download {archive.url} (md5 {archive.md5}), then "
            f"`tar xzf {archive.filename} -C {root}` so that {root / archive.folder} exists; or point "
            f"data_root / $BALENAS_DATA_ROOT at a folder that already holds '{archive.folder}'.")


def is_present(archive: Archive, root: Path) -> bool:
    return (root / archive.folder / archive.marker).is_file()


def fetch(dataset: str, root: Path | str, *, sources: dict[str, Archive] | None = None, progress: bool = True,
          timeout: float = 60.0, lock_timeout: float = 3600.0) -> Path:
    """`root/<folder>` of `dataset`, downloaded and extracted first if missing (once per node: file lock)."""
    table = SOURCES if sources is None else sources
    if dataset not in table:
        raise KeyError(f"no download source for {dataset!r}; downloadable: {', '.join(table)}")
    archive = table[dataset]
    root = Path(root).expanduser()
    target = root / archive.folder
    if is_present(archive, root):
        return target
    url = archive.resolved_url()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(f"cannot create the data folder {root} for {archive.name}: {err}. "
                            f"{manual_steps(archive, root)}") from err
    lock = FileLock(str(root / f".{archive.folder}.lock"), timeout=lock_timeout)
    try:
        with lock:
            if is_present(archive, root):  # another process finished while we waited
                log.info("%s: found %s (fetched by another process)", archive.name, target)
                return target
            if target.exists():
                raise DownloadError(f"{target} exists but lacks {archive.marker}: an incomplete copy that is not "
                                    f"ours to delete; remove it and retry. {manual_steps(archive, root)}")
            _download_and_extract(archive, url, root, progress=progress, timeout=timeout)
    except Timeout as err:
        raise DownloadError(f"waited {lock_timeout:.0f} s for another process downloading {archive.name} into "
                            f"{root} (lock {lock.lock_file}). {manual_steps(archive, root)}") from err
    return target


def _download_and_extract(archive: Archive, url: str, root: Path, *, progress: bool, timeout: float) -> None:
    work = Path(tempfile.mkdtemp(prefix=f".{archive.folder}.part-", dir=root))
    try:
        log.info("%s not found under %s: downloading %s", archive.name, root, url)
        path = work / archive.filename
        digest = _download(url, path, progress=progress, timeout=timeout, label=archive.filename,
                           help_text=f"{archive.name} to {root / archive.folder}. {manual_steps(archive, root)}")
        if digest != archive.md5:
            raise DownloadError(f"checksum mismatch for {url}: md5 {digest}, expected {archive.md5} (a corrupted "
                                f"or different file); nothing was kept under {root}. "
                                f"{manual_steps(archive, root)}")
        extracted = work / "extracted"
        try:
            with tarfile.open(path, "r:*") as tar:
                tar.extractall(extracted, **_SAFE_EXTRACT)
        except (tarfile.TarError, OSError, EOFError) as err:
            raise DownloadError(f"cannot extract {url} ({err}); nothing was kept under {root}. "
                                f"{manual_steps(archive, root)}") from err
        if not (extracted / archive.folder / archive.marker).is_file():
            raise DownloadError(f"{url} does not hold {archive.folder}/{archive.marker}; nothing was kept under "
                                f"{root}. {manual_steps(archive, root)}")
        try:
            os.replace(extracted / archive.folder, root / archive.folder)
        except OSError as err:
            if not is_present(archive, root):  # else: another node on a shared filesystem finished first
                raise DownloadError(f"cannot move the extracted {archive.folder} into {root} ({err}). "
                                    f"{manual_steps(archive, root)}") from err
        log.info("%s ready in %s", archive.name, root / archive.folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _download(url: str, path: Path, *, progress: bool, timeout: float, label: str, help_text: str) -> str:
    """Stream `url` into `path` (a `.part` file renamed when complete); returns the md5 of the bytes."""
    from tqdm.auto import tqdm

    part = path.with_name(path.name + ".part")
    md5 = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                      disable=not progress) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    md5.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise DownloadError(f"transfer of {url} ended after {received} of {total} bytes; nothing was "
                                    f"kept. Could not download {help_text}")
    except urllib.error.HTTPError as err:
        raise DownloadError(f"HTTP error {err.code} ({err.reason}) for {url}. Could not download {help_text}") from err
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:  # offline, refused, cut
        reason = getattr(err, "reason", err)
        raise DownloadError(f"could not reach {url} ({reason}). Could not download {help_text}") from err
    os.replace(part, path)
    return md5.hexdigest()
