"""A folder on any pyarrow filesystem: local paths, `file://`, `s3://`, `gs://`, ... or a filesystem object.

The results store and the sweep driver address the run folder through this one type, so a cluster without a
shared disk can keep its results in object storage. `location(x)` accepts a path, a URI (opened by
`pyarrow.fs.FileSystem.from_uri`), or a `Folder` (any `pyarrow.fs.FileSystem` plus a path in it, e.g. a
`SubTreeFileSystem`). Why a small type of our own: pyarrow gives the filesystems but no path object that
carries its filesystem; `fsspec`'s would add a dependency for what is a dozen lines here.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(location: object) -> bool:
    """`scheme://...` (s3://, gs://, file://, ...) rather than a path."""
    return isinstance(location, str) and bool(_URI.match(location))


@dataclass(frozen=True)
class Folder:
    """`path` inside `fs` (no trailing slash); `/` joins names, like pathlib."""

    fs: pafs.FileSystem
    path: str

    def __truediv__(self, name: str) -> Folder:
        return Folder(self.fs, f"{self.path.rstrip('/')}/{name}" if self.path else str(name))

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> Folder:
        return Folder(self.fs, self.path.rstrip("/").rsplit("/", 1)[0] if "/" in self.path.strip("/") else "/")

    def local_path(self) -> Path | None:
        """The same folder as a local path where the filesystem is the local disk (also under a SubTree)."""
        fs, path = self.fs, self.path
        while isinstance(fs, pafs.SubTreeFileSystem):
            path = f"{fs.base_path.rstrip('/')}/{path.lstrip('/')}"
            fs = fs.base_fs
        return Path(path) if isinstance(fs, pafs.LocalFileSystem) else None

    def __str__(self) -> str:
        local = self.local_path()
        if local is not None and isinstance(self.fs, pafs.LocalFileSystem):
            return str(local)
        return f"{self.fs.type_name}://{self.path.lstrip('/')}" if self.fs.type_name != "local" else str(local)

    def _type(self) -> pafs.FileType:
        return self.fs.get_file_info(self.path).type

    def exists(self) -> bool:
        return self._type() != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self._type() == pafs.FileType.File

    def is_dir(self) -> bool:
        return self._type() == pafs.FileType.Directory

    def mkdir(self) -> None:
        self.fs.create_dir(self.path, recursive=True)

    def read_text(self) -> str:
        with self.fs.open_input_stream(self.path) as f:
            return f.read().decode()

    def write_text(self, text: str) -> None:
        self.write_atomic(lambda tmp: _write_bytes(self.fs, tmp, text.encode()))

    def write_atomic(self, write: Callable[[str], None]) -> None:
        """`write(tmp)` to a hidden temporary file beside this path (a path in `fs`), then move it over this
        path: a rename on local disks (atomic); on object stores the move creates the object in one step, so
        readers never see half a file there either. The temporary file is removed on failure."""
        self.parent.mkdir()
        tmp = (self.parent / f".{self.name}.{uuid.uuid4().hex}.tmp").path
        try:
            write(tmp)
            self.fs.move(tmp, self.path)
        finally:
            if self.fs.get_file_info(tmp).type != pafs.FileType.NotFound:
                self.fs.delete_file(tmp)

    def files(self) -> list[Folder]:
        """Every file below this folder (recursive), sorted; none when the folder does not exist."""
        infos = self.fs.get_file_info(pafs.FileSelector(self.path, recursive=True, allow_not_found=True))
        return sorted((Folder(self.fs, i.path) for i in infos if i.type == pafs.FileType.File),
                      key=lambda f: f.path)

    def iterdir(self) -> Iterator[Folder]:
        infos = self.fs.get_file_info(pafs.FileSelector(self.path, recursive=False, allow_not_found=True))
        return iter(sorted((Folder(self.fs, i.path) for i in infos), key=lambda f: f.path))

    def relative_parts(self, child: Folder) -> tuple[str, ...]:
        return tuple(p for p in child.path[len(self.path.rstrip("/")):].split("/") if p)


def _write_bytes(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    with fs.open_output_stream(path) as f:
        f.write(data)


def location(where: str | os.PathLike | Folder) -> Folder:
    """A `Folder` from a path, a URI or a Folder; a URI pyarrow cannot open is a ValueError naming it."""
    if isinstance(where, Folder):
        return where
    text = os.fspath(where)
    if is_uri(text):
        try:
            fs, path = pafs.FileSystem.from_uri(text)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as err:
            raise ValueError(f"storage {text!r}: pyarrow cannot open this URI ({err})") from None
        return Folder(fs, path.rstrip("/"))
    return Folder(pafs.LocalFileSystem(), str(Path(text).expanduser().resolve()))


_locks: dict[str, threading.Lock] = {}


def process_lock(folder: Folder) -> threading.Lock:
    """One lock per folder in this process (the file lock of local disks has no equivalent on object stores)."""
    return _locks.setdefault(f"{folder.fs.type_name}:{folder.path}", threading.Lock())
