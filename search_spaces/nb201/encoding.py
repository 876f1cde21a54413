"""NAS-Bench-201 architecture strings <-> op-index tuples, and enumeration of the space.

Edge order is the benchmark's own: (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2), which is also the order of
the tokens in the canonical string `|a~0|+|b~0|c~1|+|d~0|e~1|f~2|`.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

#: The five candidate operations, in the benchmark's order (kept here, free of torch, for fast table look-ups).
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

NUM_NODES = 4
EDGES: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(1, NUM_NODES) for j in range(i))
NUM_EDGES = len(EDGES)  # 6
_OP_INDEX = {name: i for i, name in enumerate(OPS)}


def to_string(ops: tuple[int, ...] | list[int]) -> str:
    """Op-index tuple (one index into OPS per edge, benchmark edge order) -> canonical string."""
    ops = tuple(int(o) for o in ops)
    if len(ops) != NUM_EDGES:
        raise ValueError(f"an NB201 architecture has {NUM_EDGES} edges, got {len(ops)} op indices: {ops}")
    for o in ops:
        if not 0 <= o < len(OPS):
            raise ValueError(f"op index {o} out of range 0..{len(OPS) - 1} in {ops}")
    nodes, k = [], 0
    for i in range(1, NUM_NODES):
        tokens = []
        for j in range(i):
            tokens.append(f"{OPS[ops[k]]}~{j}")
            k += 1
        nodes.append("|" + "|".join(tokens) + "|")
    return "+".join(nodes)


def to_tuple(arch: str) -> tuple[int, ...]:
    """Canonical string -> op-index tuple; a ValueError names the bad token."""
    if not isinstance(arch, str):
        raise ValueError(f"an NB201 architecture string is needed, got {type(arch).__name__}: {arch!r}")
    nodes = arch.strip().split("+")
    if len(nodes) != NUM_NODES - 1:
        raise ValueError(f"malformed NB201 architecture {arch!r}: expected {NUM_NODES - 1} '+'-separated nodes")
    ops: list[int] = []
    for i, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise ValueError(f"malformed NB201 node {node!r} in {arch!r}: must start and end with '|'")
        tokens = node[1:-1].split("|")
        if len(tokens) != i:
            raise ValueError(f"malformed NB201 node {node!r} in {arch!r}: node {i} needs {i} inputs")
        for j, token in enumerate(tokens):
            name, sep, source = token.partition("~")
            if not sep or source != str(j):
                raise ValueError(f"malformed token {token!r} in {arch!r}: expected '<op>~{j}'")
            if name not in _OP_INDEX:
                raise ValueError(f"unknown op {name!r} (token {token!r}) in {arch!r}; "
                                 f"expected one of {', '.join(OPS)}")
            ops.append(_OP_INDEX[name])
    return tuple(ops)


def canonical(arch: str) -> str:
    """Validate and normalise an architecture string."""
    return to_string(to_tuple(arch))


@lru_cache(maxsize=1)
def _all() -> tuple[str, ...]:
    return tuple(to_string(t) for t in itertools.product(range(len(OPS)), repeat=NUM_EDGES))


def all_architectures() -> list[str]:
    """All 15,625 canonical strings, in op-index (lexicographic tuple) order."""
    return list(_all())
