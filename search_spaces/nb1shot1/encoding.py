"""NAS-Bench-1Shot1 search spaces 1-3 (Zela, Siems & Hutter, ICLR 2020): structure, architecture strings,
conversion to NAS-Bench-101 cells, enumeration and counting.

A cell has K choice blocks (K=4 in spaces 1 and 2, K=5 in space 3) and an output node. Block i (1..K) picks
one op and a fixed number of parents among {0 = cell input, 1..i-1}; the output picks its parents among
{0..K}. Parent counts (automl/nasbench-1shot1 `nasbench_analysis/search_spaces/search_space_{1,2,3}.py`):

    space 1: blocks 1..4 take 1, 2, 2, 2 parents, output 2      (4 blocks + an unused dummy NB101 vertex)
    space 2: blocks 1..4 take 1, 1, 2, 2 parents, output 3      (idem)
    space 3: blocks 1..5 take 1, 1, 1, 2, 2 parents, output 2

Every space has 9 edges at most, so each choice is an NB101 cell: spaces 1 and 2 insert an unused vertex 5
(op conv1x1, no edges) to fill NB101's 7 vertices, as the reference code's `upscale_to_nasbench_format`;
NB101's pruning then removes it and any block that does not reach the output ("loose ends").

Canonical string: `"<space>:<op>~<parents>|...|out~<parents>"`, one token per block then the output, parents
ascending and '+'-joined, ops `conv3x3`, `conv1x1`, `maxpool3x3`; e.g. space 1:
`1:conv3x3~0|conv1x1~0+1|maxpool3x3~0+2|conv3x3~1+3|out~2+4`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from search_spaces.nb1shot1.nb101.graph import CONV1X1, CONV3X3, INPUT, MAXPOOL3X3, OUTPUT

#: op short name -> NB101 label. Order = the option order of the "ops" group (the reference PRIMITIVES order).
OPS: tuple[str, ...] = ("maxpool3x3", "conv3x3", "conv1x1")
NB101_LABEL = {"maxpool3x3": MAXPOOL3X3, "conv3x3": CONV3X3, "conv1x1": CONV1X1}
NB101_VERTICES = 7


@dataclass(frozen=True)
class SpaceSpec:
    """Parent counts of one NAS-Bench-1Shot1 space: `block_parents[i-1]` for block i, `output_parents`."""

    number: int
    block_parents: tuple[int, ...]
    output_parents: int
    #: the paper's counting convention for Table 1 (see `count_architectures`)
    count_loose_ops: bool

    @property
    def num_blocks(self) -> int:
        return len(self.block_parents)

    def candidates(self, block: int) -> int:
        """Number of possible parents of block `block` (1-based) or of the output (block = K+1)."""
        return block

    def choice_blocks(self) -> list[int]:
        """Blocks whose parent set is a real choice (more than one possible set)."""
        return [i for i, k in enumerate(self.block_parents, start=1) if math.comb(i, k) > 1]


SPACES: dict[int, SpaceSpec] = {
    1: SpaceSpec(1, (1, 2, 2, 2), 2, count_loose_ops=False),
    2: SpaceSpec(2, (1, 1, 2, 2), 3, count_loose_ops=True),
    3: SpaceSpec(3, (1, 1, 1, 2, 2), 2, count_loose_ops=False),
}


def get_spec(space: int) -> SpaceSpec:
    if space not in SPACES:
        raise ValueError(f"unknown NAS-Bench-1Shot1 search space {space!r}; expected one of 1, 2, 3")
    return SPACES[space]


@dataclass(frozen=True)
class Arch:
    """A discrete architecture: op index (into OPS) per block, sorted parent tuples per block and output."""

    space: int
    ops: tuple[int, ...]
    parents: tuple[tuple[int, ...], ...]
    output: tuple[int, ...]

    def to_string(self) -> str:
        tokens = [f"{OPS[o]}~{'+'.join(map(str, p))}" for o, p in zip(self.ops, self.parents)]
        tokens.append(f"out~{'+'.join(map(str, self.output))}")
        return f"{self.space}:" + "|".join(tokens)


def validate(arch: Arch) -> Arch:
    """Check an Arch against its space's parent counts; ValueError names the block."""
    spec = get_spec(arch.space)
    k = spec.num_blocks
    if len(arch.ops) != k or len(arch.parents) != k:
        raise ValueError(f"space {arch.space} has {k} choice blocks, got {len(arch.ops)} ops and "
                         f"{len(arch.parents)} parent sets")
    for o in arch.ops:
        if not 0 <= o < len(OPS):
            raise ValueError(f"op index {o} out of range 0..{len(OPS) - 1}")
    for i, (ps, need) in enumerate(zip((*arch.parents, arch.output), (*spec.block_parents, spec.output_parents)),
                                   start=1):
        what = "output" if i == k + 1 else f"block {i}"
        if len(ps) != need or len(set(ps)) != need:
            raise ValueError(f"space {arch.space}: {what} needs {need} distinct parents, got {list(ps)}")
        if any(not 0 <= p < i for p in ps) or list(ps) != sorted(ps):
            raise ValueError(f"space {arch.space}: {what} parents must be sorted and among 0..{i - 1}, got {list(ps)}")
    return arch


def parse(arch: str) -> Arch:
    """Architecture string -> Arch; ValueError names the bad token."""
    if not isinstance(arch, str):
        raise ValueError(f"an nb1shot1 architecture string is needed, got {type(arch).__name__}: {arch!r}")
    head, sep, body = arch.strip().partition(":")
    if not sep or head not in ("1", "2", "3"):
        raise ValueError(f"malformed nb1shot1 architecture {arch!r}: must start with the space number '1:', "
                         f"'2:' or '3:'")
    tokens = body.split("|")
    ops, parents, output = [], [], ()
    for j, token in enumerate(tokens):
        name, sep, plist = token.partition("~")
        try:
            ps = tuple(int(p) for p in plist.split("+"))
        except ValueError:
            raise ValueError(f"malformed token {token!r} in {arch!r}: expected '<op>~<p>+<p>...'") from None
        if not sep:
            raise ValueError(f"malformed token {token!r} in {arch!r}: expected '<op>~<parents>'")
        if j == len(tokens) - 1:
            if name != "out":
                raise ValueError(f"last token {token!r} in {arch!r} must be the output 'out~<parents>'")
            output = ps
        else:
            if name not in OPS:
                raise ValueError(f"unknown op {name!r} (token {token!r}) in {arch!r}; expected one of {', '.join(OPS)}")
            ops.append(OPS.index(name))
            parents.append(ps)
    return validate(Arch(int(head), tuple(ops), tuple(parents), output))


def canonical(arch: str) -> str:
    return parse(arch).to_string()


def to_nb101(arch: Arch) -> tuple[np.ndarray, list[str]]:
    """The NB101 (7x7 matrix, ops) of an architecture, unpruned (NB101's query prunes loose ends)."""
    k = len(arch.ops)
    out_vertex = NB101_VERTICES - 1
    m = np.zeros((NB101_VERTICES, NB101_VERTICES), dtype=np.int8)
    for i, ps in enumerate(arch.parents, start=1):
        for p in ps:
            m[p, i] = 1
    for p in arch.output:
        m[p, out_vertex] = 1
    ops = [INPUT, *(NB101_LABEL[OPS[o]] for o in arch.ops)]
    ops += [CONV1X1] * (NB101_VERTICES - 2 - k)  # the unused dummy vertex of spaces 1 and 2
    ops.append(OUTPUT)
    return m, ops


def arch_to_spec(arch: str) -> tuple[np.ndarray, list[str]]:
    """Architecture string -> NB101 (matrix, ops)."""
    return to_nb101(parse(arch))


def live_blocks(arch: Arch) -> set[int]:
    """Blocks on a path to the output (every block is reachable from the input by construction)."""
    live, stack = set(), [p for p in arch.output if p > 0]
    while stack:
        b = stack.pop()
        if b not in live:
            live.add(b)
            stack.extend(p for p in arch.parents[b - 1] if p > 0)
    return live


# ----- enumeration ---------------------------------------------------------------------------------
def parent_sets(space: int) -> Iterator[tuple[tuple[tuple[int, ...], ...], tuple[int, ...]]]:
    """Every (block parents, output parents) of the space, in itertools.product order."""
    spec = get_spec(space)
    choices = [list(itertools.combinations(range(i), k)) for i, k in enumerate(spec.block_parents, start=1)]
    choices.append(list(itertools.combinations(range(spec.num_blocks + 1), spec.output_parents)))
    for combo in itertools.product(*choices):
        yield tuple(combo[:-1]), combo[-1]


def all_architectures(space: int) -> Iterator[Arch]:
    """Every (parents, ops) configuration: prod_i C(i, k_i) * C(K+1, k_out) * 3^K architectures."""
    spec = get_spec(space)
    for parents, output in parent_sets(space):
        for ops in itertools.product(range(len(OPS)), repeat=spec.num_blocks):
            yield Arch(space, ops, parents, output)


def _feeding_blocks(parents: Sequence[tuple[int, ...]], output: tuple[int, ...]) -> int:
    used = {p for ps in (*parents, output) for p in ps if p > 0}
    return len(used)


def count_architectures(space: int, count_loose_ops: bool | None = None) -> int:
    """Number of architectures of a space by enumerating its parent sets, in the paper's convention.

    The NAS-Bench-1Shot1 paper's Table 1 (6,240 / 29,160 / 363,648) counts, per parent configuration,
    3^(number of blocks whose op matters). For spaces 1 and 3 a block's op is counted only when the block
    feeds another block or the output (a block without outgoing edges leaves the NB101 cell unchanged
    whatever its op): 6,240 and 363,648. For space 2 the published 29,160 is the plain product 360 parent
    configurations x 3^4, i.e. every block's op counted (`count_loose_ops=True`); the feeding-only count
    of space 2 would be 16,632. Pass `count_loose_ops` to override the per-space convention
    (spaces 1 and 3 with all ops counted: 14,580 and 1,312,200). Distinct NB101 cells (module hashes after
    pruning) are fewer still: 2,685 / 7,773 / 55,854 for spaces 1 / 2 / 3 (hashing every configuration).
    """
    spec = get_spec(space)
    loose = spec.count_loose_ops if count_loose_ops is None else bool(count_loose_ops)
    total = 0
    for parents, output in parent_sets(space):
        n = spec.num_blocks if loose else _feeding_blocks(parents, output)
        total += len(OPS) ** n
    return total


def random_architecture(space: int, rng: np.random.Generator) -> Arch:
    """One architecture drawn uniformly over parent sets and ops (for tests and baselines)."""
    spec = get_spec(space)
    parents = tuple(tuple(sorted(rng.choice(i, size=k, replace=False).tolist()))
                    for i, k in enumerate(spec.block_parents, start=1))
    output = tuple(sorted(rng.choice(spec.num_blocks + 1, size=spec.output_parents, replace=False).tolist()))
    ops = tuple(int(o) for o in rng.integers(0, len(OPS), size=spec.num_blocks))
    return Arch(space, ops, parents, output)
