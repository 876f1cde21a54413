"""NB201's index splits: the official split files when they apply, seeded halves otherwise.

NAS-Bench-201 (D-X-Y/AutoDL-Projects, configs/nas-benchmark/) ships three JSON files whose values are
`["int", ["0", "5", ...]]` (xautodl's load_config layout: a type and the values as strings):
- cifar-split.txt: {"train", "valid"}: two disjoint 25,000-image halves of the official CIFAR-10 training order;
- cifar100-test-split.txt and imagenet-16-120-test-split.txt: {"xvalid", "xtest"}: halves of the test set.
The indices only mean something for files in the official order, so callers apply a split file only to the
official files and otherwise fall back to `seeded_halves` (documented, deterministic).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

HALVES_SEED = 0  # seed of the fallback split; changing it changes every fallback split


def seeded_halves(n: int, seed: int = HALVES_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of range(n): a torch.randperm(n) with `seed`, first n//2 and the rest, each sorted."""
    if n < 2:
        raise ValueError(f"cannot halve a split of {n} example(s)")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).numpy()
    half = n // 2
    return np.sort(perm[:half]), np.sort(perm[half:])


def _index_list(value, key: str, path: Path) -> np.ndarray:
    if isinstance(value, list) and len(value) == 2 and value[0] == "int" and isinstance(value[1], list):
        value = value[1]  # xautodl's load_config layout: ["int", [values]]; the official files hold "123" strings
    if not isinstance(value, list):
        raise ValueError(f"{path}: entry {key!r} must be a list of indices or ['int', [indices]]")
    try:
        return np.asarray([_as_index(v) for v in value], dtype=np.int64)
    except ValueError as err:
        raise ValueError(f"{path}: entry {key!r}: {err}") from err


def _as_index(value) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ValueError(f"not an integer index: {value!r}")


def read_split_file(path: Path | str, keys: tuple[str, str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """The two index lists `keys` of an NB201 split file, checked to be disjoint and within range(n)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a JSON split file ({err})") from err
    if not isinstance(content, dict) or any(k not in content for k in keys):
        found = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise ValueError(f"{path}: expected keys {list(keys)}, found {found}")
    first, second = (_index_list(content[k], k, path) for k in keys)
    for key, idx in zip(keys, (first, second)):
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"{path}: {key!r} indices must lie in 0..{n - 1}, found {idx.min()}..{idx.max()}")
    if np.intersect1d(first, second).size:
        raise ValueError(f"{path}: {keys[0]!r} and {keys[1]!r} overlap")
    return first, second


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def official_files(folder: Path, md5: dict[str, str]) -> tuple[bool, str]:
    """Whether every file in `md5` exists in `folder` with the official checksum, and why not."""
    for name, expected in md5.items():
        path = folder / name
        if not path.is_file():
            return False, f"{path} is missing"
        if md5_of(path) != expected:
            return False, f"{path} is not the official file (md5 differs), so its image order is unknown"
    return True, ""
