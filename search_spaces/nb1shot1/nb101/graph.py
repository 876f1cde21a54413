"""NAS-Bench-101 cell graphs: validation, pruning and the benchmark's isomorphism-invariant module hash.

A cell is an upper-triangular 0/1 adjacency matrix over at most 7 vertices plus one op label per vertex
(`input`, up to five of the three operations, `output`). The benchmark prunes vertices that are not on an
input->output path before it checks the limits (7 vertices, 9 edges) and hashes the cell. Facts follow
google-research/nasbench (`lib/model_spec.py` `_prune`, `lib/graph_util.py` `hash_module`, `api.py`
`_check_spec`, `lib/config.py` for the op order); the code is ours.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
#: The benchmark's `available_ops` in its canonical order: the hash labels ops by their index here.
AVAILABLE_OPS: tuple[str, ...] = (CONV3X3, CONV1X1, MAXPOOL3X3)
MAX_VERTICES = 7
MAX_EDGES = 9
_INPUT_LABEL, _OUTPUT_LABEL = -1, -2


class InvalidSpecError(ValueError):
    """A (matrix, ops) pair outside NAS-Bench-101's space; the message names the problem."""


def as_spec(matrix, ops: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Check shape, 0/1 entries, upper-triangularity and op-list length; return (int8 matrix, ops)."""
    try:
        m = np.asarray(matrix)
    except (TypeError, ValueError) as err:  # ragged nested lists
        raise InvalidSpecError(f"matrix is not a rectangular array: {err}") from None
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise InvalidSpecError(f"matrix must be square, got shape {m.shape}")
    if isinstance(ops, str):
        raise InvalidSpecError(f"ops must be a list of op names, got the string {ops!r}")
    ops = [str(o) for o in ops]
    if len(ops) != m.shape[0]:
        raise InvalidSpecError(f"ops has {len(ops)} entries but the matrix has {m.shape[0]} vertices")
    bad = (m != 0) & (m != 1)
    if bad.any():
        raise InvalidSpecError(f"matrix entries must be 0 or 1, found {m[bad].ravel()[0]!r}")
    m = m.astype(np.int8)
    lower = np.tril(m)
    if lower.any():
        src, dst = np.argwhere(lower)[0]
        raise InvalidSpecError(f"matrix must be upper triangular (a DAG in topological order): "
                               f"edge {src}->{dst} is on or below the diagonal")
    return m, ops


def prune(matrix: np.ndarray, ops: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Drop vertices not on an input->output path (as NB101's ModelSpec does); error if none is left."""
    n = matrix.shape[0]
    if n < 2:
        raise InvalidSpecError(f"a cell needs at least the input and output vertices, got {n} vertex(es)")
    rows = matrix.tolist()
    from_input, stack = {0}, [0]
    while stack:
        v = stack.pop()
        for w in range(v + 1, n):
            if rows[v][w] and w not in from_input:
                from_input.add(w)
                stack.append(w)
    to_output, stack = {n - 1}, [n - 1]
    while stack:
        v = stack.pop()
        for w in range(v):
            if rows[w][v] and w not in to_output:
                to_output.add(w)
                stack.append(w)
    keep = sorted(from_input & to_output)
    if len(keep) < 2:
        raise InvalidSpecError("graph is disconnected: no path from the input vertex to the output vertex")
    return matrix[np.ix_(keep, keep)].copy(), [ops[i] for i in keep]


def check_in_space(matrix: np.ndarray, ops: Sequence[str]) -> None:
    """The benchmark's domain checks on a pruned cell (vertex and edge limits, op names)."""
    if len(ops) > MAX_VERTICES:
        raise InvalidSpecError(f"too many vertices after pruning: {len(ops)} (max {MAX_VERTICES})")
    edges = int(matrix.sum())
    if edges > MAX_EDGES:
        raise InvalidSpecError(f"too many edges after pruning: {edges} (max {MAX_EDGES})")
    if ops[0] != INPUT:
        raise InvalidSpecError(f"first op must be {INPUT!r}, got {ops[0]!r}")
    if ops[-1] != OUTPUT:
        raise InvalidSpecError(f"last op must be {OUTPUT!r}, got {ops[-1]!r}")
    for i, op in enumerate(ops[1:-1], start=1):
        if op not in AVAILABLE_OPS:
            raise InvalidSpecError(f"unsupported op {op!r} at vertex {i}; expected one of {', '.join(AVAILABLE_OPS)}")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def hash_module(matrix: np.ndarray, labeling: Sequence[int]) -> str:
    """NB101's graph hash: md5 of (out-degree, in-degree, label) per vertex, refined V times by the sorted
    hashes of in- and out-neighbours, then md5 of the sorted vertex hashes. Byte-identical to the original
    (Python `str` of int tuples and lists), so it addresses the official records."""
    rows = np.asarray(matrix).tolist()
    n = len(rows)
    if len(labeling) != n:
        raise ValueError(f"labeling has {len(labeling)} labels for {n} vertices")
    in_deg = [sum(rows[w][v] for w in range(n)) for v in range(n)]
    out_deg = [sum(r) for r in rows]
    hashes = [_md5(str((int(o), int(i), int(lab)))) for o, i, lab in zip(out_deg, in_deg, labeling)]
    parents = [[w for w in range(n) if rows[w][v]] for v in range(n)]
    children = [[w for w in range(n) if rows[v][w]] for v in range(n)]
    for _ in range(n):
        hashes = [_md5("".join(sorted(hashes[w] for w in parents[v])) + "|"
                       + "".join(sorted(hashes[w] for w in children[v])) + "|" + hashes[v])
                  for v in range(n)]
    return _md5(str(sorted(hashes)))


def labeling(ops: Sequence[str]) -> list[int]:
    """Integer labels of a pruned op list: -1 input, -2 output, else the index in AVAILABLE_OPS."""
    return [_INPUT_LABEL] + [AVAILABLE_OPS.index(op) for op in ops[1:-1]] + [_OUTPUT_LABEL]


def canonical_spec(matrix, ops: Sequence[str]) -> tuple[np.ndarray, list[str], str]:
    """Validate, prune and check a cell; return (pruned matrix, pruned ops, module hash)."""
    m, o = as_spec(matrix, ops)
    m, o = prune(m, o)
    check_in_space(m, o)
    return m, o, hash_module(m, labeling(o))


def spec_hash(matrix, ops: Sequence[str]) -> str:
    """The NAS-Bench-101 module hash of a (matrix, ops) cell (InvalidSpecError if outside the space)."""
    return canonical_spec(matrix, ops)[2]
