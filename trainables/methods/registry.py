"""Method name -> distribution class. Adding a method = one new file + one line here.

The key is the method's only spelling: a class does not repeat it; `ArchDistribution` sets `cls.name` from this
table when the class is defined (`registered_name`).
"""

from __future__ import annotations

import importlib
from typing import Any

from trainables.methods.base import ArchDistribution
from trainables.methods.params import MethodParams

# name -> "module:Class"; imported lazily so a method's file is only loaded when used.
_METHODS: dict[str, str] = {
    "darts-v1": "trainables.methods.darts:DartsV1",
    "darts-v2": "trainables.methods.darts:DartsV2",
    "balenas": "trainables.methods.balenas:BaLeNAS",
    "balenas-v2": "trainables.methods.balenas:BaLeNASV2",
    "idarts": "trainables.methods.idarts:IDARTS",
    "snas": "trainables.methods.snas:SNAS",
    "gdas": "trainables.methods.gdas:GDAS",
    "drnas": "trainables.methods.drnas:DrNAS",
    "unas": "trainables.methods.unas:UNAS",
    "darts-prime": "trainables.methods.darts_prime:DartsPrime",
}


def available_methods() -> list[str]:
    return sorted(_METHODS)


def registered_name(cls: type) -> str | None:
    """The key `cls` is registered under, or None for a class not in the table."""
    target = f"{cls.__module__}:{cls.__qualname__}"
    return next((name for name, t in _METHODS.items() if t == target), None)


def get_method(name: str) -> type[ArchDistribution]:
    if name not in _METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(available_methods())}")
    module, _, attr = _METHODS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def make_distribution(name: str, space, params: dict[str, Any] | MethodParams | None = None,
                      **kwargs) -> ArchDistribution:
    """The distribution of method `name`; `params` a dict (validated by the method's `Params`) or that model
    already validated (e.g. `SearchConfig.params`)."""
    return get_method(name)(space, params, **kwargs)
