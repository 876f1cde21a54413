"""Hyper-parameter models of the methods: each method declares one pydantic model (`ArchDistribution.Params`),
its single source of names, defaults and value checks; sweep specs and search configs validate through it.

The field types below are shared so that the same setting means the same thing in every method.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _number(value: Any) -> Any:
    """Numbers only: true/false is not 1/0 (a YAML `yes` for a learning rate is a mistake)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


#: a finite number > 0 (learning rates, temperatures, precisions).
Positive = Annotated[float, BeforeValidator(_number), Field(gt=0, allow_inf_nan=False)]
#: a finite number >= 0 (weight decays, initialisation scales, prior precisions).
NonNegative = Annotated[float, BeforeValidator(_number), Field(ge=0, allow_inf_nan=False)]
#: an integer >= 1 (counts); strict: 2.0 and true are rejected.
Count = Annotated[int, Field(ge=1, strict=True)]
#: Adam's (beta1, beta2), each in [0, 1).
Beta = Annotated[float, BeforeValidator(_number), Field(ge=0, lt=1)]
Betas = tuple[Beta, Beta]


class MethodParams(BaseModel):
    """Base of every method's hyper-parameter model: unknown names are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AdamAlphaParams(MethodParams):
    """A point-estimate alpha per group trained by Adam on the validation loss (the DARTS family); defaults
    are NAS-Bench-201's DARTS setting (Dong & Yang, ICLR 2020; xautodl DARTS-V1.py): alpha = 1e-3 * randn,
    Adam lr 3e-4, betas (0.5, 0.999), weight decay 1e-3."""

    arch_lr: Positive = 3e-4
    arch_weight_decay: NonNegative = 1e-3
    betas: Betas = (0.5, 0.999)
    init_scale: NonNegative = 1e-3


class SecondOrderParams(MethodParams):
    """The unrolled (second-order) hypergradient's finite-difference radius (DARTS: R = 0.01 / ||v||)."""

    finite_diff_r: Positive = 0.01


def list_valued(params: type[MethodParams]) -> set[str]:
    """Names of hyper-parameters whose single value is itself a list (e.g. `betas`): a grid axis over them is
    written as a list of lists."""
    return {name for name, f in params.model_fields.items() if isinstance(f.default, (list, tuple))}
