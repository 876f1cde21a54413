"""DARTS-space architectures: the `Genotype` of a normal and a reduction cell, its text and compact forms.

A cell has two inputs (0, 1: the outputs of the two previous cells) and four intermediate nodes (2..5); each
node sums two ops applied to two distinct earlier nodes, and the cell outputs the concatenation of nodes 2-5.
Torch-free, so benchmark look-ups and spec validation stay light.

Text form: DARTS' own (quark0/darts `cnn/genotypes.py`), `Genotype(normal=[('sep_conv_3x3', 0), ...],
normal_concat=[2, 3, 4, 5], reduce=[...], reduce_concat=[2, 3, 4, 5])`, parsed with `ast` (no `eval`).
Compact form: NASLib's `[[(input, op), ...8 normal], [(input, op), ...8 reduce]]` with op indices into
`COMPACT_OPS` (automl/NASLib `search_spaces/nasbench301/conversions.py`).
"""

from __future__ import annotations

import ast
import reprlib
from collections.abc import Sequence
from dataclasses import dataclass

#: the eight candidate operations, in DARTS' `PRIMITIVES` order (quark0/darts cnn/genotypes.py).
OPS: tuple[str, ...] = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                        "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
#: NASLib's compact op indices: DARTS' ops without `none`.
COMPACT_OPS: tuple[str, ...] = OPS[1:]
NUM_NODES = 4                      # intermediate nodes per cell
NUM_EDGES = sum(i + 2 for i in range(NUM_NODES))   # 14 candidate edges per cell
CONCAT = (2, 3, 4, 5)
CELLS = ("normal", "reduce")
FORMAT = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ... 8 (op, input) pairs], "
          "normal_concat=[2, 3, 4, 5], reduce=[... 8 pairs], reduce_concat=[2, 3, 4, 5])")


def edge_index(node: int, source: int) -> int:
    """Row of the edge `source -> node` (node 0..3 = cell node node+2) in a (14, 8) weight group."""
    return sum(i + 2 for i in range(node)) + source


#: (node, source) of each of the 14 edges, in row order.
EDGES: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(NUM_NODES) for j in range(i + 2))

Pair = tuple[str, int]

#: the most characters of a bad value an error message shows
MAX_SHOWN = 200


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = MAX_SHOWN
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 16
_REPR.maxlong = 40


def _shown(value, limit: int = MAX_SHOWN) -> str:
    """`repr(value)` of at most `limit` characters, a longer one cut with an ellipsis; a huge value is never
    rendered whole (`reprlib`)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_cell(cell: str, pairs: Sequence) -> tuple[Pair, ...]:
    """Validate one cell's (op, input) pairs; returns them with each node's two pairs ordered by input."""
    pairs = list(pairs)
    if len(pairs) != 2 * NUM_NODES:
        raise ValueError(f"Genotype {cell}: a cell has {2 * NUM_NODES} (op, input) pairs (two per node for "
                         f"{NUM_NODES} nodes), got {len(pairs)}")
    out: list[Pair] = []
    for node in range(NUM_NODES):
        kept = []
        for k in (2 * node, 2 * node + 1):
            pair = pairs[k]
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise ValueError(f"Genotype {cell}[{k}]: expected an (op, input) pair, got {_shown(pair)}")
            op, source = pair
            if op not in OPS or op == "none":
                raise ValueError(f"Genotype {cell}[{k}]: unknown op {_shown(op)}; expected one of "
                                 f"{', '.join(COMPACT_OPS)}")
            if isinstance(source, bool) or not isinstance(source, int) or not 0 <= source < node + 2:
                raise ValueError(f"Genotype {cell}[{k}]: input {_shown(source)} of node {node + 2} is out of range; "
                                 f"node {node + 2} takes inputs 0..{node + 1}")
            kept.append((op, source))
        if kept[0][1] == kept[1][1]:
            raise ValueError(f"Genotype {cell}: node {node + 2} takes input {kept[0][1]} twice; each node has "
                             "exactly two distinct inputs")
        out.extend(sorted(kept, key=lambda p: (p[1], OPS.index(p[0]))))
    return tuple(out)


@dataclass(frozen=True)
class Genotype:
    """A DARTS-space architecture: 8 (op, input) pairs per cell, two per node; nodes 2-5 concatenated.

    Equal genotypes are the same architecture: each node's two pairs are stored ordered by input, so
    `str(g)` is the canonical string (Parquet columns, benchmark keys)."""

    normal: tuple[Pair, ...]
    reduce: tuple[Pair, ...]

    def __post_init__(self):
        object.__setattr__(self, "normal", _check_cell("normal", self.normal))
        object.__setattr__(self, "reduce", _check_cell("reduce", self.reduce))

    normal_concat = CONCAT
    reduce_concat = CONCAT

    def __str__(self) -> str:
        def cell(pairs):
            return "[" + ", ".join(f"({op!r}, {i})" for op, i in pairs) + "]"
        return (f"Genotype(normal={cell(self.normal)}, normal_concat={list(CONCAT)}, "
                f"reduce={cell(self.reduce)}, reduce_concat={list(CONCAT)})")

    def cell(self, name: str) -> tuple[Pair, ...]:
        if name not in CELLS:
            raise ValueError(f"unknown cell {name!r}; expected 'normal' or 'reduce'")
        return self.normal if name == "normal" else self.reduce

    # ----- text -------------------------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> Genotype:
        """DARTS' text form (also `range(2, 6)` for a concat), without `eval`; ValueError showing the format."""
        if isinstance(text, Genotype):
            return text
        if not isinstance(text, str):
            raise ValueError(f"a genotype must be a string like {FORMAT}; got {type(text).__name__} {_shown(text)}")
        try:
            call = ast.parse(text.strip(), mode="eval").body
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            call = None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"
                and not call.args):
            raise ValueError(f"not a DARTS genotype: {_shown(text)}; expected {FORMAT}")
        fields = {}
        for kw in call.keywords:
            if kw.arg not in ("normal", "normal_concat", "reduce", "reduce_concat"):
                raise ValueError(f"genotype field {_shown(kw.arg)} is not one of normal, normal_concat, reduce, "
                                 f"reduce_concat; expected {FORMAT}")
            fields[kw.arg] = _literal(kw.value, kw.arg)
        for name in ("normal", "reduce"):
            if name not in fields:
                raise ValueError(f"genotype lacks field {name!r}; expected {FORMAT}")
            if not isinstance(fields[name], (list, tuple)):
                raise ValueError(f"genotype {name} must be a list of 8 (op, input) pairs, got "
                                 f"{_shown(fields[name])}")
            concat = fields.get(f"{name}_concat", list(CONCAT))
            if not _is_concat(concat):
                raise ValueError(f"genotype {name}_concat must be [2, 3, 4, 5] in the DARTS space, got "
                                 f"{_shown(concat)}")
        return cls(tuple(fields["normal"]), tuple(fields["reduce"]))

    # ----- NASLib's compact encoding ----------------------------------------------------------------------
    @classmethod
    def from_compact(cls, obj) -> Genotype:
        """NASLib's `[[(input, op)]*8, [(input, op)]*8]` (nested lists/tuples, or their string)."""
        if isinstance(obj, str):
            try:
                obj = ast.literal_eval(obj.strip())
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as err:
                raise ValueError(f"not a compact DARTS encoding: {_shown(obj)} ({_shown(str(err))}); expected "
                                 "[[(input, op), ...8 pairs], [(input, op), ...8 pairs]]") from None
        if not (isinstance(obj, (list, tuple)) and len(obj) == 2):
            raise ValueError(f"a compact DARTS encoding is two cells [normal, reduce], got {_shown(obj)}")
        cells = []
        for name, pairs in zip(CELLS, obj):
            if not isinstance(pairs, (list, tuple)):
                raise ValueError(f"compact {name}: expected a list of (input, op) pairs, got {_shown(pairs)}")
            cell = []
            for k, pair in enumerate(pairs):
                if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                    raise ValueError(f"compact {name}[{k}]: expected an (input, op) pair, got {_shown(pair)}")
                source, op = pair
                if isinstance(op, bool) or not isinstance(op, int) or not 0 <= op < len(COMPACT_OPS):
                    raise ValueError(f"compact {name}[{k}]: op index {_shown(op)} is out of range "
                                     f"0..{len(COMPACT_OPS) - 1} ({', '.join(COMPACT_OPS)})")
                cell.append((COMPACT_OPS[op], source))
            cells.append(tuple(cell))
        return cls(*cells)

    def to_compact(self) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
        return tuple(tuple((i, COMPACT_OPS.index(op)) for op, i in self.cell(c)) for c in CELLS)


def _literal(node: ast.AST, field: str):
    """A field's value: a Python literal (`ast.literal_eval`, never `eval`), or for a concat `range(...)` as a
    range object (its integer arguments checked, never expanded)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" \
            and field.endswith("_concat"):
        return _range(node, field)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"genotype field {field!r} is not a literal: {_shown(ast.unparse(node))}; expected "
                         f"{FORMAT}") from None


def _range(node: ast.Call, field: str) -> range:
    """`range(a[, b[, c]])` of integer literals as a range object (a length of 10**9 costs nothing)."""
    args = []
    for arg in node.args:
        try:
            value = ast.literal_eval(arg)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            value = None
        if isinstance(value, bool) or not isinstance(value, int):
            args = None
            break
        args.append(value)
    if node.keywords or not args or len(args) > 3 or (len(args) == 3 and args[2] == 0):
        raise ValueError(f"genotype field {field!r}: {_shown(ast.unparse(node))} is not range(start, stop[, step]) "
                         f"of integers (step not 0); expected [2, 3, 4, 5] or range(2, 6)")
    return range(*args)


def _is_concat(value) -> bool:
    """Whether a parsed concat is DARTS' [2, 3, 4, 5] (a range is compared as a range, without expanding it)."""
    if isinstance(value, range):
        return value == range(CONCAT[0], CONCAT[-1] + 1)
    return isinstance(value, (list, tuple)) and len(value) == len(CONCAT) and list(value) == list(CONCAT)


def canonical(arch) -> str:
    """Validate and normalise a genotype (text, compact, or Genotype) to its canonical string."""
    if isinstance(arch, Genotype):
        return str(arch)
    if isinstance(arch, str) and arch.lstrip().startswith("[["):
        return str(Genotype.from_compact(arch))
    if isinstance(arch, (list, tuple)):
        return str(Genotype.from_compact(arch))
    return str(Genotype.parse(arch))
