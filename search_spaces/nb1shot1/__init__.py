"""NAS-Bench-1Shot1 search spaces 1, 2, 3 (Zela et al., ICLR 2020) with NAS-Bench-101 ground truth.

Public API: `count_architectures(space)`, `all_architectures(space)`, `arch_to_spec(arch)` (-> NB101
matrix, ops), `canonical(arch)`, `NB1Shot1Space(number)` (the SearchSpace; registered as 'nb1shot1-1|2|3'),
`nb101_network.NB101Network(matrix, ops, num_classes, C=128, N=3)` (NB101's own model, the derived network).
"""

from search_spaces.nb1shot1.encoding import (
    OPS,
    SPACES,
    Arch,
    all_architectures,
    arch_to_spec,
    canonical,
    count_architectures,
    parse,
    to_nb101,
)

__all__ = ["OPS", "SPACES", "Arch", "all_architectures", "arch_to_spec", "canonical", "count_architectures",
           "parse", "to_nb101", "NB1Shot1Space"]


def __getattr__(name: str):
    """`NB1Shot1Space` is imported on first use: encodings and counting must not pay for importing torch."""
    if name == "NB1Shot1Space":
        from search_spaces.nb1shot1.space import NB1Shot1Space

        return NB1Shot1Space
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
