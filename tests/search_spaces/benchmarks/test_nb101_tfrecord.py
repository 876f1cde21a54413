"""TFRecord framing and CRC-32C: known vectors, package vs pure-Python, round trip, corruption detection."""

from __future__ import annotations

import struct

import pytest

from search_spaces.nb1shot1.nb101 import tfrecord as tfr


def test_crc32c_known_vectors():
    # RFC 3720 (iSCSI) appendix B.4 check values and the standard "123456789" check value.
    assert tfr.crc32c_python(b"123456789") == 0xE3069283
    assert tfr.crc32c_python(bytes(32)) == 0x8A9136AA
    assert tfr.crc32c_python(b"\xff" * 32) == 0x62A8AB43
    assert tfr.crc32c_python(bytes(range(32))) == 0x46DD794E
    assert tfr.crc32c(b"123456789") == 0xE3069283


def test_package_and_fallback_agree():
    import random

    rng = random.Random(0)
    for n in (0, 1, 7, 8, 9, 100, 1000):
        data = bytes(rng.getrandbits(8) for _ in range(n))
        assert tfr.crc32c(data) == tfr.crc32c_python(data)


def test_mask_matches_tensorflow_formula():
    crc = 0x12345678
    expected = ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF
    assert tfr.mask(crc) == expected
    # TensorFlow's record of an empty payload: length 0 -> these exact 16 bytes.
    framed = tfr.frame(b"")
    assert len(framed) == 16
    assert struct.unpack("<Q", framed[:8])[0] == 0
    assert struct.unpack("<I", framed[8:12])[0] == tfr.mask(tfr.crc32c_python(bytes(8)))
    assert struct.unpack("<I", framed[12:16])[0] == tfr.mask(tfr.crc32c_python(b""))


def test_round_trip_offsets(tmp_path):
    payloads = [b"a", b"", b"hello world" * 50, bytes(range(256))]
    path = tmp_path / "x.tfrecord"
    assert tfr.write_records(path, payloads) == 4
    got = list(tfr.iter_records(path))
    assert [d for _, d in got] == payloads
    offsets, pos = [], 0
    for p in payloads:
        offsets.append(pos)
        pos += 16 + len(p)
    assert [o for o, _ in got] == offsets


@pytest.mark.parametrize("where", ["data", "length_crc"])
def test_corruption_names_file_and_offset(tmp_path, where):
    path = tmp_path / "bad.tfrecord"
    tfr.write_records(path, [b"first record", b"second record", b"third"])
    raw = bytearray(path.read_bytes())
    second = 16 + len(b"first record")
    flip = second + (12 + 3 if where == "data" else 9)
    raw[flip] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(tfr.RecordError) as err:
        list(tfr.iter_records(path))
    assert err.value.offset == second
    assert str(path) in str(err.value) and f"offset {second}" in str(err.value)
    assert "CRC" in str(err.value)
    # without verification the damaged data comes through (proves the check is what caught it)
    assert len(list(tfr.iter_records(path, verify=False))) == 3


def test_truncated_file(tmp_path):
    path = tmp_path / "short.tfrecord"
    tfr.write_records(path, [b"abc", b"defgh"])
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(tfr.RecordError, match="truncated"):
        list(tfr.iter_records(path))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.tfrecord"):
        list(tfr.iter_records(tmp_path / "nope.tfrecord"))


def test_reader_works_without_the_crc_package(tmp_path, monkeypatch):
    path = tmp_path / "x.tfrecord"
    tfr.write_records(path, [b"abc" * 100, b"xyz"])
    monkeypatch.setattr(tfr, "_gcrc", None)  # as if google-crc32c were not installed
    assert [d for _, d in tfr.iter_records(path)] == [b"abc" * 100, b"xyz"]
    raw = bytearray(path.read_bytes())
    raw[20] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(tfr.RecordError, match="offset 0"):
        list(tfr.iter_records(path))
