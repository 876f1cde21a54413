"""Load the data sets' pickle batches without letting the file run code.

CIFAR and NB201's ImageNet16 batches are pickled dicts of lists and numpy arrays. A plain `pickle.load`
would import and call whatever the file names, so a tampered batch could run arbitrary code; this
unpickler resolves only the handful of globals that numpy needs to rebuild an array (and `_codecs.encode`,
which protocol-2 pickles written by Python 3 use for raw bytes). Anything else is refused with an error
naming the file.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

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


class PickleFileError(ValueError):
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
            ImportError, UnicodeDecodeError, MemoryError, OverflowError) as err:
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
