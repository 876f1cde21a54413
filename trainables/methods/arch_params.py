"""Small helpers shared by the DARTS-family distributions: alpha initialisation, Gumbel-max draws and
resumable state (so each method file keeps to its own update rule)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from search_spaces.space import SearchSpace


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
