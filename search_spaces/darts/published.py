"""Published DARTS-space genotypes, as their authors' repositories give them (facts, with sources).

Each node's pairs are stored ordered by input (the canonical order); the architecture is the source's.
"""

from __future__ import annotations

from search_spaces.darts.genotype import Genotype

#: DARTS first order (Liu et al., ICLR 2019): quark0/darts `cnn/genotypes.py`, `DARTS_V1`.
DARTS_V1 = Genotype.parse(
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
    "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], "
    "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], "
    "reduce_concat=[2, 3, 4, 5])")

#: DARTS second order (Liu et al., ICLR 2019; 3.3M parameters, 2.76% CIFAR-10 test error): quark0/darts
#: `cnn/genotypes.py`, `DARTS_V2` (= `DARTS`).
DARTS_V2 = Genotype.parse(
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
    "reduce_concat=[2, 3, 4, 5])")

#: PC-DARTS on CIFAR-10 (Xu et al., ICLR 2020; 3.6M parameters, 2.57% test error): yuhuixu1993/PC-DARTS
#: `genotypes.py`, `PC_DARTS_cifar`.
PC_DARTS_CIFAR = Genotype.parse(
    "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), "
    "('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=range(2, 6), "
    "reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), "
    "('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))")

#: name -> genotype, for look-ups by name (specs, the command line).
PUBLISHED: dict[str, Genotype] = {"DARTS_V1": DARTS_V1, "DARTS_V2": DARTS_V2, "PC_DARTS_CIFAR": PC_DARTS_CIFAR}
