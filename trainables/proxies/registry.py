"""Proxy name -> implementation, and the one place where a proxy run is isolated and its failure captured.

Every proxy module exposes `compute(net, inputs, targets) -> float` and may raise `ProxyFailure`. Adding a
proxy = one new file + one line in `_PROXIES`.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Iterable

import torch
from torch import nn

from trainables.proxies.base import ProxyError, ProxyFailure

# name -> "module:function"; imported lazily.
_PROXIES: dict[str, str] = {
    "naswot": "trainables.proxies.naswot:compute",
    "synflow": "trainables.proxies.synflow:compute",
    "snip": "trainables.proxies.snip:compute",
    "grad_norm": "trainables.proxies.grad_norm:compute",
    "jacob_cov": "trainables.proxies.jacob_cov:compute",
    "fisher": "trainables.proxies.fisher:compute",
    "grasp": "trainables.proxies.grasp:compute",
    "params": "trainables.proxies.params:compute",
    "flops": "trainables.proxies.flops:compute",
    "meco": "trainables.proxies.meco:compute",
    "zico": "trainables.proxies.zico:compute",
    "swap": "trainables.proxies.swap:compute",
    "zen": "trainables.proxies.zen:compute",
}

ProxyFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]


def names() -> list[str]:
    """All registered proxy names, in registration order."""
    return list(_PROXIES)


def get_proxy(name: str) -> ProxyFn:
    if name not in _PROXIES:
        raise ValueError(f"unknown proxy {name!r}; available: {', '.join(_PROXIES)}")
    module, _, attr = _PROXIES[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def validate_names(requested: Iterable[str]) -> list[str]:
    """The requested names as a list, or one ValueError naming every unknown one."""
    requested = list(requested)
    unknown = [n for n in requested if n not in _PROXIES]
    if unknown:
        raise ValueError(f"unknown proxy name(s) {', '.join(map(repr, unknown))}; available: {', '.join(_PROXIES)}")
    if not requested:
        raise ValueError("no proxy names given")
    return requested


def score_one(name: str, net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, seed: int = 0) -> float:
    """One proxy on a deep copy of `net` in train mode; a failure comes back as a `ProxyError`."""
    fn = get_proxy(name)
    torch.manual_seed(seed)
    work = copy.deepcopy(net).train()
    try:
        value = fn(work, inputs, targets)
    except ProxyFailure as e:
        return ProxyError(str(e))
    except (RuntimeError, ValueError, ArithmeticError, torch.linalg.LinAlgError) as e:
        return ProxyError(f"{type(e).__name__}: {e}")
    finally:
        del work
    return float(value)


def score(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, names: Iterable[str] | None = None,
          seed: int = 0) -> dict[str, float]:
    """{proxy: value} for each requested proxy (all when `names` is None); failures are `ProxyError`s."""
    selected = validate_names(_PROXIES if names is None else names)
    if inputs.dim() != 4 or targets.dim() != 1 or inputs.shape[0] != targets.shape[0]:
        raise ValueError(f"inputs must be [B, C, H, W] and targets [B], got {tuple(inputs.shape)} and "
                         f"{tuple(targets.shape)}")
    return {name: score_one(name, net, inputs, targets, seed) for name in selected}
