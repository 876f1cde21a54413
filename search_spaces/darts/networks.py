"""DARTS-space networks: the search supernet, the CIFAR evaluation network (auxiliary head, drop path) and
the ImageNet "mobile" network (Liu et al., ICLR 2019; macro structure as quark0/darts `cnn/model_search.py`
and `cnn/model.py`, written here from their description).

Macro skeleton: stem -> `layers` cells, reduction cells at layers//3 and 2*layers//3 (channels double there),
each cell reading the two previous cells' outputs -> global pooling -> linear head.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from search_spaces.darts.cells import EvalCell, SearchCell
from search_spaces.darts.genotype import Genotype, canonical

STEM_MULTIPLIER = 3
MULTIPLIER = 4          # a cell outputs 4 concatenated nodes


def reduction_layers(layers: int) -> tuple[int, int]:
    return layers // 3, 2 * layers // 3


def _check_size(C: int, layers: int, num_classes: int) -> None:
    for name, value, low in (("C", C, 2), ("layers", layers, 3), ("num_classes", num_classes, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if C % 2:
        raise ValueError(f"C must be even (FactorizedReduce splits channels in halves), got C={C}")


def _build_cells(make: Callable[[int, int, int, bool, bool], nn.Module], c_stem: int, C: int, layers: int,
                 reduction_prev: bool) -> tuple[nn.ModuleList, int, int]:
    """The cell stack; returns (cells, output channels, channels after cell 2*layers//3)."""
    cells = nn.ModuleList()
    c_pp, c_p, c_curr = c_stem, c_stem, C
    c_aux = 0
    for i in range(layers):
        reduction = i in reduction_layers(layers)
        if reduction:
            c_curr *= 2
        cells.append(make(c_pp, c_p, c_curr, reduction, reduction_prev))
        reduction_prev = reduction
        c_pp, c_p = c_p, MULTIPLIER * c_curr
        if i == reduction_layers(layers)[1]:
            c_aux = c_p
    return cells, c_p, c_aux


class DartsSuperNet(nn.Module):
    """The weight-sharing supernet (DARTS `model_search.py` Network without its α): groups "normal" and
    "reduce", each [14, 8], come in with every forward and are shared by all cells of that type."""

    def __init__(self, C: int = 16, layers: int = 8, num_classes: int = 10):
        super().__init__()
        _check_size(C, layers, num_classes)
        c_stem = STEM_MULTIPLIER * C
        self.stem = nn.Sequential(nn.Conv2d(3, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        self.cells, c_out, _ = _build_cells(SearchCell, c_stem, C, layers, reduction_prev=False)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_out, num_classes)

    def forward(self, x: torch.Tensor, weights: Mapping[str, torch.Tensor],
                active: Mapping[str, Sequence[Sequence[int]]] | None = None) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            group = "reduce" if cell.reduction else "normal"
            s0, s1 = s1, cell(s0, s1, weights[group], None if active is None else active.get(group))
        return self.classifier(self.global_pooling(s1).flatten(1))


class AuxiliaryHead(nn.Sequential):
    """DARTS' auxiliary classifier on the 8x8 (CIFAR, pool stride 3) or 14x14 (ImageNet, stride 2) map.

    DARTS' ImageNet head omits the BN after the 2x2 conv (a typo kept for consistency with its paper,
    quark0/darts `cnn/model.py`); so does this one.
    """

    def __init__(self, C: int, num_classes: int, imagenet: bool = False):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.AvgPool2d(5, stride=2 if imagenet else 3, padding=0, count_include_pad=False),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            *(() if imagenet else (nn.BatchNorm2d(768),)),
            nn.ReLU(inplace=True),
            nn.Flatten(),
            nn.Linear(768, num_classes),
        )


class DartsNetwork(nn.Module):
    """The derived network of a genotype: CIFAR (3x3 stem to 3C) or ImageNet (three stride-2 convs).

    Training protocol hooks: with `auxiliary`, `forward` returns (logits, aux_logits) in train mode and
    logits in eval mode; `drop_path_prob` (set by the trainer each epoch) drops non-identity ops' outputs
    per sample in train mode only. `op_affine=False`: ops' BNs without scale/shift (NASLib's NB301 graph).
    """

    def __init__(self, genotype: Genotype | str, num_classes: int = 10, C: int = 36, layers: int = 20,
                 auxiliary: bool = True, imagenet: bool = False, op_affine: bool = True):
        super().__init__()
        _check_size(C, layers, num_classes)
        self.genotype = genotype if isinstance(genotype, Genotype) else Genotype.parse(canonical(genotype))
        self.arch = str(self.genotype)
        self.auxiliary, self.imagenet = bool(auxiliary), bool(imagenet)
        self.drop_path_prob = 0.0
        self._aux_layer = reduction_layers(layers)[1]
        if imagenet:
            self.stem0 = nn.Sequential(
                nn.Conv2d(3, C // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C // 2),
                nn.ReLU(inplace=True),
                nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C))
            self.stem1 = nn.Sequential(
                nn.ReLU(inplace=False), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C))
            c_stem, reduction_prev = C, True
        else:
            c_stem = STEM_MULTIPLIER * C
            self.stem = nn.Sequential(nn.Conv2d(3, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
            reduction_prev = False

        def make(c_pp, c_p, c, reduction, red_prev):
            return EvalCell(self.genotype.cell("reduce" if reduction else "normal"), c_pp, c_p, c, reduction,
                            red_prev, op_affine=op_affine)

        self.cells, c_out, c_aux = _build_cells(make, c_stem, C, layers, reduction_prev)
        if self.auxiliary:
            self.auxiliary_head = AuxiliaryHead(c_aux, num_classes, imagenet=imagenet)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_out, num_classes)

    def forward(self, x: torch.Tensor):
        if self.imagenet:
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        else:
            s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self._aux_layer and self.auxiliary and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return (logits, aux) if aux is not None else logits


def supernet(C: int = 16, layers: int = 8, num_classes: int = 10) -> DartsSuperNet:
    """The DARTS search supernet (1,930,618 parameters at C=16, 8 layers, 10 classes)."""
    return DartsSuperNet(C=C, layers=layers, num_classes=num_classes)


def network(genotype: Genotype | str, num_classes: int = 10, C: int = 36, layers: int = 20,
            auxiliary: bool = True, imagenet: bool = False) -> DartsNetwork:
    """The evaluation network of a genotype: CIFAR defaults C=36, 20 layers; ImageNet: pass imagenet=True,
    C=48, layers=14 (DARTS_V2 on CIFAR-10 has 3,349,342 parameters without the auxiliary head)."""
    return DartsNetwork(genotype, num_classes=num_classes, C=C, layers=layers, auxiliary=auxiliary,
                        imagenet=imagenet)


def count_parameters(net: nn.Module, auxiliary: bool = False) -> int:
    """Parameters of a network; the auxiliary head counts only with `auxiliary=True` (DARTS reports
    `count_parameters_in_MB` without it)."""
    return sum(p.numel() for name, p in net.named_parameters()
               if auxiliary or not name.startswith("auxiliary_head."))
