"""TFRecord files without TensorFlow: framing, masked CRC-32C, streaming reader and writer.

A record is `uint64 length (LE) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)`;
mask(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 mod 2^32 (TensorFlow's record_writer / crc32c.h).
CRC-32C (Castagnoli) comes from the `google-crc32c` package (C implementation, ~GB/s) when installed;
otherwise a table-driven pure-Python fallback keeps the reader correct, only ~1000x slower (2-3 MB/s here),
so a missing optional wheel never makes the benchmark unreadable.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

try:  # optional accelerator; the fallback below gives identical values
    import google_crc32c as _gcrc
except ImportError:  # pragma: no cover - depends on the environment
    _gcrc = None

_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_HEADER = struct.Struct("<QI")  # length, masked crc of the length
_FOOTER = struct.Struct("<I")


def _make_table() -> tuple[int, ...]:
    poly = 0x82F63B78  # Castagnoli polynomial, reflected
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_TABLE = _make_table()


def crc32c_python(data: bytes) -> int:
    """CRC-32C of `data`, table-driven pure Python (the fallback; also the test oracle for the package)."""
    crc = _U32
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ _U32


def crc32c(data: bytes) -> int:
    """CRC-32C of `data` (google-crc32c when installed, else the pure-Python table)."""
    if _gcrc is not None:
        return _gcrc.value(bytes(data))
    return crc32c_python(data)


def mask(crc: int) -> int:
    """TFRecord's CRC mask, so that CRCs of data containing CRCs stay well distributed."""
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


def masked_crc32c(data: bytes) -> int:
    return mask(crc32c(data))


class RecordError(ValueError):
    """A damaged or truncated record; `path` and `offset` (byte offset of the record's start) say where."""

    def __init__(self, path: Path | str, offset: int, problem: str):
        super().__init__(f"{path}: record at byte offset {offset}: {problem}")
        self.path, self.offset, self.problem = str(path), offset, problem


def iter_records(path: Path | str, verify: bool = True, buffer_size: int = 1 << 22) -> Iterator[tuple[int, bytes]]:
    """Yield (byte offset, data) of every record in a TFRecord file, checking both CRCs when `verify`.

    Streams with a large read buffer: memory stays at one record plus the buffer whatever the file size.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"TFRecord file not found: {path}")
    with open(path, "rb", buffering=buffer_size) as f:
        offset = 0
        while True:
            header = f.read(_HEADER.size)
            if not header:
                return
            if len(header) < _HEADER.size:
                raise RecordError(path, offset, f"truncated header ({len(header)} of {_HEADER.size} bytes)")
            length, length_crc = _HEADER.unpack(header)
            if verify and masked_crc32c(header[:8]) != length_crc:
                raise RecordError(path, offset, f"length CRC mismatch (stored {length_crc:#010x}, computed "
                                                f"{masked_crc32c(header[:8]):#010x}); the file is corrupted")
            body = f.read(length + _FOOTER.size)
            if len(body) < length + _FOOTER.size:
                raise RecordError(path, offset, f"truncated data ({len(body)} of {length + 4} bytes)")
            data = body[:length]
            if verify:
                (data_crc,) = _FOOTER.unpack_from(body, length)
                if masked_crc32c(data) != data_crc:
                    raise RecordError(path, offset, f"data CRC mismatch (stored {data_crc:#010x}, computed "
                                                    f"{masked_crc32c(data):#010x}); the file is corrupted")
            yield offset, data
            offset += _HEADER.size + length + _FOOTER.size


def frame(data: bytes) -> bytes:
    """One record's bytes in TFRecord framing."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def write_records(path: Path | str, records: Iterable[bytes]) -> int:
    """Write records as a TFRecord file; returns the number written."""
    n = 0
    with open(path, "wb") as f:
        for data in records:
            f.write(frame(data))
            n += 1
    return n
