"""Finding host synchronisations in the search step without a GPU.

On CUDA, `torch.cuda.set_sync_debug_mode("error")` catches every synchronising call (benchmarks/gpu_check.py
runs the step under it). On the CPU nothing synchronises, so `count_host_syncs` instead counts the Python-level
ways a device value reaches the host (`.item()`, `.tolist()`, `.numpy()`, `.cpu()`, `bool()`, `float()`,
`int()`, indexing with a tensor as a Python int, printing or formatting a tensor) when the call is made from the
project's own packages. Syncs inside torch's C++ (e.g. `nonzero`, boolean-mask indexing) are invisible to it:
that is what the CUDA check is for. Hand-written because no library counts these on CPU tensors.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

#: Tensor methods through which a value crosses to the host (each one a sync on an accelerator).
SYNC_METHODS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__", "__repr__",
                "__format__")

_ROOT = Path(__file__).resolve().parents[2]  # the checkout: trainables/runs/host_sync.py
PROJECT_PACKAGES = tuple(str(_ROOT / name) + "/" for name in ("trainables", "search_spaces", "analysis"))


@contextmanager
def count_host_syncs(packages: tuple[str, ...] = PROJECT_PACKAGES) -> Iterator[Counter]:
    """Within the block, count calls of `SYNC_METHODS` on tensors made directly from files under `packages`;
    yields a Counter of (method, file relative to the repository, line) -> calls."""
    calls: Counter = Counter()
    originals = {name: getattr(torch.Tensor, name) for name in SYNC_METHODS}
    this_file = str(Path(__file__).resolve())
    where: dict[str, str | None] = {}  # code file -> path relative to the repository, None when not counted

    def relative(path: str) -> str | None:
        if path not in where:
            real = os.path.realpath(path)
            where[path] = (str(Path(real).relative_to(_ROOT)) if real != this_file and real.startswith(packages)
                           else None)
        return where[path]

    def wrap(name, original):
        def probe(self, *args, **kwargs):
            caller = sys._getframe(1)
            rel = relative(caller.f_code.co_filename)
            if rel is not None:
                calls[(name, rel, caller.f_lineno)] += 1
            return original(self, *args, **kwargs)
        return probe

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
