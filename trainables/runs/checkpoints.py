"""What every resumable loop saves besides its own state: RNG states, and the atomic checkpoint write.

Shared by the search loop (trainables/search/loop.py) and final training (trainables/train/loop.py), so that both
resume bit-exactly on the CPU the same way: the global torch RNG (initialisation, dropout / drop path), the
loop's data generator (order and augmentation; restored only on the same device type, where its state means
the same thing) and, where present, the CUDA generators.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


def rng_state(data_generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "data": data_generator.get_state(), "data_device_type": device.type}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def load_rng_state(state: dict[str, Any], data_generator: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state.get("data_device_type") == device.type:
        data_generator.set_state(state["data"].cpu())
    else:
        log.warning("checkpoint's data generator is from a %s run; this run is on %s: data order differs",
                    state.get("data_device_type"), device.type)
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_atomic(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """`torch.save` to a temporary name beside `path`, then rename: a crash mid-write leaves the old file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path
