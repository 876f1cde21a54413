"""What every proxy shares: the explicit failure value, the failure exception, and layer helpers.

Failure design: a proxy that cannot produce a meaningful number raises `ProxyFailure(reason)` (or any
exception escapes it); `trainables.proxies.score` turns that into a `ProxyError`, a float subclass whose
value is NaN and which carries `.reason`. So `score()` still returns `dict[str, float]`, but a failed
entry is never an anonymous NaN: `is_error(v)` tells it apart, and `to_row()` writes it as a null
`<proxy>` value plus a `<proxy>_error` string (the Parquet `samples` layout).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


class ProxyFailure(RuntimeError):
    """Raised inside a proxy when its score is undefined for this network and batch (with the reason)."""


class ProxyError(float):
    """A failed proxy score: NaN as a float, with the reason attached (`.reason`)."""

    reason: str

    def __new__(cls, reason: str) -> ProxyError:
        obj = super().__new__(cls, math.nan)
        obj.reason = str(reason)
        return obj

    def __repr__(self) -> str:
        return f"ProxyError({self.reason!r})"

    def __reduce__(self):  # survive pickling (Ray moves results between processes)
        return (ProxyError, (self.reason,))


def is_error(value: float) -> bool:
    return isinstance(value, ProxyError)


def to_row(scores: Mapping[str, float]) -> dict[str, float | str | None]:
    """{name: value} -> {name: value or None, name_error: reason or None} (the `samples` table layout)."""
    row: dict[str, float | str | None] = {}
    for name, value in scores.items():
        if is_error(value):
            row[name], row[f"{name}_error"] = None, value.reason
        else:
            row[name], row[f"{name}_error"] = float(value), None
    return row


def weight_layers(net: nn.Module) -> Iterator[nn.Module]:
    """Conv2d and Linear layers, in module order: the layers zero-cost-nas sums its per-weight scores over."""
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            yield module


def finite(value: float, what: str) -> float:
    """`value` as a float, or ProxyFailure naming `what` when it is NaN or infinite."""
    value = float(value.detach()) if hasattr(value, "detach") else float(value)
    if not math.isfinite(value):
        raise ProxyFailure(f"{what} is {value}")
    return value


def cross_entropy_backward(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> None:
    """Fresh weight gradients of the cross-entropy loss on one batch (the start of every gradient proxy)."""
    net.zero_grad(set_to_none=True)
    loss = F.cross_entropy(net(inputs), targets)
    if not loss.requires_grad:
        raise ProxyFailure("loss does not depend on any weight")
    loss.backward()


@contextmanager
def hooks_removed(handles: Iterable[torch.utils.hooks.RemovableHandle]) -> Iterator[None]:
    """Keep a proxy's hook `handles` for the block and remove them however it ends: a proxy scores a copy of the
    network, but its hooks must never outlive the pass they record."""
    try:
        yield
    finally:
        for h in handles:
            h.remove()
