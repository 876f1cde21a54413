"""Small helpers shared by the DARTS-family distributions: hyper-parameter checks, alpha initialisation,
Gumbel-max draws and generator-state handling (so each method file keeps to its own update rule)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from search_spaces.space import SearchSpace


def positive_float(method: str, params: Mapping[str, Any], key: str, *, allow_zero: bool = False) -> float:
    """params[key] as a float > 0 (or >= 0); a ValueError names the method, the key and the value."""
    value = params[key]
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"method {method!r}: {key} must be a number, got {value!r}") from None
    if not math.isfinite(out) or out < 0 or (out == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"method {method!r}: {key} must be finite and {bound}, got {value!r}")
    return out


def positive_int(method: str, params: Mapping[str, Any], key: str) -> int:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"method {method!r}: {key} must be an integer >= 1, got {value!r}")
    return int(value)


def adam_betas(method: str, params: Mapping[str, Any]) -> tuple[float, float]:
    """(beta1, beta2) from `betas` (a pair) when given, else from `beta1`/`beta2`; each in [0, 1)."""
    raw = params.get("betas")
    if raw is not None:
        if not isinstance(raw, (list, tuple)) or len(raw) != 2:
            raise ValueError(f"method {method!r}: betas must be a pair [beta1, beta2], got {raw!r}")
        pair = raw
    else:
        pair = (params["beta1"], params["beta2"])
    out = []
    for name, b in zip(("beta1", "beta2"), pair):
        try:
            b = float(b)
        except (TypeError, ValueError):
            raise ValueError(f"method {method!r}: {name} must be a number in [0, 1), got {b!r}") from None
        if not 0.0 <= b < 1.0:
            raise ValueError(f"method {method!r}: {name} must be in [0, 1), got {b!r}")
        out.append(b)
    return out[0], out[1]


def init_alpha(space: SearchSpace, scale: float, generator: torch.Generator,
               device: torch.device) -> dict[str, torch.Tensor]:
    """scale * N(0, 1) per group (DARTS / NB201: 1e-3 * randn), drawn with the method's own generator."""
    return {name: scale * torch.randn(rows, opts, generator=generator, device=device)
            for name, (rows, opts) in space.arch_shapes.items()}


def gumbel_max(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """log_softmax(logits) + Gumbel(0, 1) noise: its row-wise argmax is a draw from softmax(logits)."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    u = u.clamp(torch.finfo(u.dtype).tiny, 1.0 - torch.finfo(u.dtype).eps)
    return torch.log_softmax(logits, dim=-1) - torch.log(-torch.log(u))


def generator_state(generator: torch.Generator) -> dict[str, Any]:
    return {"state": generator.get_state(), "device_type": generator.device.type}


def restore_generator(generator: torch.Generator, saved: Mapping[str, Any]) -> bool:
    """Restore a generator saved by `generator_state`; False (state kept) when saved on another device
    type (e.g. a CUDA run's distribution rebuilt on the CPU for the proxy stage)."""
    if saved.get("device_type") != generator.device.type:
        return False
    generator.set_state(saved["state"].cpu())  # states are CPU byte tensors on every device
    return True


def detached_copy(obj: Any) -> Any:
    """A copy of a (nested) state dict whose tensors are cloned: `torch.optim` state dicts reference the live
    moment buffers, which later steps would modify in place under a caller holding the state."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: detached_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [detached_copy(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(detached_copy(v) for v in obj)
    return obj


def alpha_state(alpha: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                generator: torch.Generator) -> dict[str, Any]:
    """The resumable state of a method whose parameters are one tensor per group plus one optimizer."""
    return {"alpha": {k: v.detach().clone() for k, v in alpha.items()},
            "optimizer": detached_copy(optimizer.state_dict()), "generator": generator_state(generator)}


def load_alpha_state(alpha: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                     generator: torch.Generator, state: Mapping[str, Any]) -> None:
    """Inverse of `alpha_state` (copies in place, so the optimizer keeps its parameter references)."""
    with torch.no_grad():
        for k, v in state["alpha"].items():
            alpha[k].copy_(v)
    optimizer.load_state_dict(state["optimizer"])
    restore_generator(generator, state["generator"])
