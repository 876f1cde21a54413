"""Load the data sets' pickle batches without letting the file run code, and check them without loading.

CIFAR and NB201's ImageNet16 batches are pickled dicts of lists and numpy arrays. A plain `pickle.load`
would import and call whatever the file names, so a tampered batch could run arbitrary code; this
unpickler resolves only the handful of globals that numpy needs to rebuild an array (and `_codecs.encode`,
which protocol-2 pickles written by Python 3 use for raw bytes). Anything else is refused with an error
naming the file.

`scan_pickle` checks a file the same way without unpickling it (nothing is imported, called or built): it
walks the opcodes over a memory map, skipping the payloads (the pixel arrays) by their declared lengths, and
refuses a file that is not a pickle, is truncated (a payload or the stream running past the end of the file,
no STOP) or names a global outside `ALLOWED_GLOBALS` (GLOBAL, INST, or STACK_GLOBAL on strings tracked
through the stack and memo; extension codes, persistent ids and out-of-band buffers too). The commands run it
before Ray starts (`prepare_dataset`), so a bad batch is reported in seconds instead of inside every trial.
"""

from __future__ import annotations

import codecs
import mmap
import pickle
import pickletools
import re
from pathlib import Path
from typing import Any

from search_spaces.data.errors import DataCheckError

# (module, name) pairs a numpy array / scalar pickle refers to; numpy 2 moved numpy.core to numpy._core.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
})


class PickleFileError(DataCheckError):
    """A pickle file that is corrupt, not the expected layout, or asks for a forbidden global."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only resolves the numpy reconstruction globals in `ALLOWED_GLOBALS`."""

    def __init__(self, file, path: Path | str, **kwargs):
        super().__init__(file, **kwargs)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise PickleFileError(
                f"{self._path}: refusing to load global {module}.{name} from a data pickle (only numpy "
                f"array reconstruction is allowed; a data batch never needs more, so the file is not a "
                f"plain CIFAR/ImageNet16 batch and may be malicious)")
        return super().find_class(module, name)


def load_pickle(path: Path | str) -> Any:
    """Unpickle `path` with `RestrictedUnpickler` (latin1 decoding reads Python 2 batches, as xautodl does).

    Raises FileNotFoundError for a missing file and PickleFileError (a ValueError) naming the file for a
    corrupt one or one that asks for anything beyond numpy arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pickle file not found: {path}")
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, path, encoding="latin1").load()
    except PickleFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            ImportError, UnicodeDecodeError, MemoryError, OverflowError, LookupError) as err:
        raise PickleFileError(f"{path}: corrupt or unreadable pickle ({type(err).__name__}: {err})") from err


def load_batch_dict(path: Path | str, required: tuple[str, ...]) -> dict[str, Any]:
    """A pickled batch dict with its keys as str (Python 2 batches may use bytes keys) and `required` present."""
    record = load_pickle(path)
    if not isinstance(record, dict):
        raise PickleFileError(f"{path}: expected a pickled dict, got {type(record).__name__}")
    record = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in record.items()}
    missing = [k for k in required if k not in record]
    if missing:
        raise PickleFileError(f"{path}: batch dict lacks key(s) {missing}; has {sorted(map(str, record))}")
    return record


# ----- the scan: opcodes only, nothing unpickled ------------------------------------------------------------------
_UNKNOWN = object()  # a stack value the scan does not track (anything but a short string)
_MARK = pickletools.markobject
#: longest string payload the scan decodes; module and attribute names are far shorter, so a longer string
#: reaching STACK_GLOBAL is refused like an untracked value
_NAME_LIMIT = 1024
_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE",
               "BINUNICODE8"}
_REFUSED_OPS = {
    "EXT1": "an extension code (a global named through copyreg's registry)",
    "EXT2": "an extension code (a global named through copyreg's registry)",
    "EXT4": "an extension code (a global named through copyreg's registry)",
    "PERSID": "a persistent id", "BINPERSID": "a persistent id",
    "NEXT_BUFFER": "an out-of-band buffer", "READONLY_BUFFER": "an out-of-band buffer",
}
#: runs of small-int pushes (label lists), skipped by one regex match each: BININT1 and BININT2
_INT1_RUN = re.compile(rb"(?:K[\x00-\xff])+")
_INT2_RUN = re.compile(rb"(?:M[\x00-\xff]{2})+")


def _opcode_table() -> dict[int, tuple]:
    """byte -> (name, argument length or pickletools' length kind, argument type name, items popped below a mark
    (None: no mark popped), items popped, whether it pushes a mark, items pushed)."""
    table = {}
    for op in pickletools.opcodes:
        before, after = op.stack_before, op.stack_after
        below_mark = before.index(_MARK) if _MARK in before else None
        table[op.code.encode("latin1")[0]] = (op.name, None if op.arg is None else op.arg.n,
                                               op.arg.name if op.arg is not None else None, below_mark,
                                               len(before), after == [_MARK], len(after))
    return table


_OPCODES = _opcode_table()
_LENGTH_PREFIX = {pickletools.TAKEN_FROM_ARGUMENT1: (1, False), pickletools.TAKEN_FROM_ARGUMENT4: (4, True),
                  pickletools.TAKEN_FROM_ARGUMENT4U: (4, False), pickletools.TAKEN_FROM_ARGUMENT8U: (8, False)}


def _decode_string(name: str, raw: bytes) -> str | object:
    """The str the unpickler (encoding='latin1') makes of a string opcode's payload; _UNKNOWN when it fails."""
    try:
        if name == "STRING":
            if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b'"', b"'"):
                return _UNKNOWN
            return codecs.escape_decode(raw[1:-1])[0].decode("latin1")
        if name in ("BINSTRING", "SHORT_BINSTRING"):
            return raw.decode("latin1")
        if name == "UNICODE":
            return str(raw, "raw-unicode-escape")
        return str(raw, "utf-8", "surrogatepass")
    except (UnicodeDecodeError, ValueError):
        return _UNKNOWN


def scan_pickle(path: Path | str, allowed: frozenset[tuple[str, str]] = ALLOWED_GLOBALS) -> int:
    """Check `path` as a data pickle without unpickling anything; returns the number of opcodes seen.

    Raises FileNotFoundError for a missing file and PickleFileError naming the file and the byte offset for one
    that is empty, not a pickle, truncated or otherwise malformed, or that names a global outside `allowed` (the
    names the restricted unpickler would be asked for, so the two agree). Cost: one pass over the opcodes (label
    and file-name lists; runs of small ints in one regex step each), the pixel payloads skipped unread.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pickle file not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise PickleFileError(f"{path}: empty file (0 bytes), not a pickled data batch")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        first = mm[0]
        if first not in _OPCODES or _OPCODES[first][0] not in ("PROTO", "EMPTY_DICT", "MARK"):
            raise PickleFileError(f"{path}: not a pickle (starts with {bytes(mm[:16])!r}; a pickled data batch "
                                  f"starts with a protocol header or a dict)")
        return _scan(mm, size, path, allowed)


def _scan(mm: mmap.mmap, size: int, path: Path, allowed: frozenset[tuple[str, str]]) -> int:
    def bad(pos: int, what: str) -> PickleFileError:
        return PickleFileError(f"{path}: {what} (at byte {pos} of {size})")

    def truncated(pos: int, what: str) -> PickleFileError:
        return PickleFileError(f"{path}: truncated: {what}, but the file has only {size:,} bytes (an interrupted "
                               f"copy or download; replace the file)")

    def forbidden(pos: int, what: str) -> PickleFileError:
        return PickleFileError(f"{path}: refusing to load {what} from a data pickle (at byte {pos}; only numpy "
                               f"array reconstruction is allowed, so the file is not a plain CIFAR/ImageNet16 batch "
                               f"and may be malicious; nothing was unpickled)")

    stack: list = []
    marks: list[int] = []
    memo: dict[int, object] = {}
    pos = count = 0
    while True:
        if pos >= size:
            raise truncated(pos, f"the pickle's opcodes go on past byte {pos:,} (no STOP opcode)")
        code = mm[pos]
        if code == 0x4B or code == 0x4D:  # BININT1 / BININT2 runs (label lists)
            run = (_INT1_RUN if code == 0x4B else _INT2_RUN).match(mm, pos)
            if run is not None:
                n = (run.end() - pos) // (2 if code == 0x4B else 3)
                stack.extend([_UNKNOWN] * n)
                count += n
                pos = run.end()
                continue
        op = _OPCODES.get(code)
        if op is None:
            raise bad(pos, f"corrupt pickle: byte {code:#04x} is not a pickle opcode")
        name, n, arg_name, below_mark, pops, pushes_mark, pushes = op
        start, pos = pos, pos + 1
        count += 1
        value: object = _UNKNOWN
        arg: object = None
        if n is not None:
            if n >= 0:
                if pos + n > size:
                    raise truncated(start, f"the {name} opcode at byte {start:,} needs {n} argument bytes")
                if arg_name in ("uint1", "uint2", "uint4", "uint8", "int4"):
                    arg = int.from_bytes(mm[pos:pos + n], "little", signed=arg_name == "int4")
                pos += n
            elif n == pickletools.UP_TO_NEWLINE:
                lines = 2 if arg_name == "stringnl_noescape_pair" else 1
                parts = []
                for _ in range(lines):
                    end = mm.find(b"\n", pos)
                    if end < 0:
                        raise truncated(start, f"the {name} opcode at byte {start:,} has no end of line")
                    parts.append(bytes(mm[pos:end]) if end - pos <= _NAME_LIMIT else None)
                    pos = end + 1
                arg = parts
            else:
                width, signed = _LENGTH_PREFIX[n]
                if pos + width > size:
                    raise truncated(start, f"the {name} opcode at byte {start:,} has no complete length")
                length = int.from_bytes(mm[pos:pos + width], "little", signed=signed)
                pos += width
                if length < 0:
                    raise bad(start, f"corrupt pickle: {name} with a negative length {length}")
                if pos + length > size:
                    raise truncated(start, f"the {name} opcode at byte {start:,} declares a {length:,}-byte payload "
                                           f"ending at byte {pos + length:,}")
                if name in _STRING_OPS and length <= _NAME_LIMIT:
                    value = _decode_string(name, bytes(mm[pos:pos + length]))
                pos += length
        if name in _REFUSED_OPS:
            raise forbidden(start, _REFUSED_OPS[name])
        if name in ("GLOBAL", "INST"):
            module, attr = (p.decode("utf-8", "replace") if p is not None else "<a very long name>" for p in arg)
            if (module, attr) not in allowed:
                raise forbidden(start, f"global {module}.{attr}")
        if name == "STRING" or name == "UNICODE":
            value = _decode_string(name, arg[0]) if arg[0] is not None else _UNKNOWN
        floor = marks[-1] if marks else 0
        if name in ("MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"):  # store the top, leave the stack as it is
            if len(stack) <= floor:
                raise bad(start, f"corrupt pickle: {name} on an empty stack")
            key = len(memo) if name == "MEMOIZE" else arg
            if name == "PUT":
                try:
                    key = int(arg[0])
                except (TypeError, ValueError):
                    raise bad(start, "corrupt pickle: PUT with a bad memo key") from None
            memo[key] = stack[-1]
            continue
        if name in ("GET", "BINGET", "LONG_BINGET"):
            key = arg
            if name == "GET":
                try:
                    key = int(arg[0])
                except (TypeError, ValueError):
                    raise bad(start, "corrupt pickle: GET with a bad memo key") from None
            if key not in memo:
                raise bad(start, f"corrupt pickle: memo key {key} read before it was stored")
            stack.append(memo[key])
            continue
        if name == "POP" and len(stack) == floor and marks:  # POP of a mark, as the unpickler allows
            marks.pop()
            continue
        if below_mark is not None:
            if not marks:
                raise bad(start, f"corrupt pickle: {name} without a MARK")
            del stack[marks.pop():]
            floor, pops = (marks[-1] if marks else 0), below_mark
        if len(stack) - floor < pops:
            raise bad(start, f"corrupt pickle: {name} on a stack with too few items")
        if name == "STACK_GLOBAL":
            module, attr = stack[-2], stack[-1]
            if not (isinstance(module, str) and isinstance(attr, str)):
                raise forbidden(start, "a global whose name the scan cannot follow (STACK_GLOBAL on computed "
                                       "strings)")
            if (module, attr) not in allowed:
                raise forbidden(start, f"global {module}.{attr}")
        if pops:
            del stack[len(stack) - pops:]
        if name == "STOP":
            if marks:
                raise bad(start, "corrupt pickle: STOP inside an open MARK")
            return count
        if pushes_mark:
            marks.append(len(stack))
        elif pushes:
            stack.append(value)
            if pushes > 1:
                stack.extend([_UNKNOWN] * (pushes - 1))
