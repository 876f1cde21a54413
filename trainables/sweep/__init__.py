"""The search sweep: a YAML spec validated before Ray starts (`load_spec`, `SweepSpec`) and the driver that runs
it as one Tune experiment and then the proxy stage (`run_sweep`)."""

import importlib

_LAZY = {"load_spec": "spec", "SweepSpec": "spec", "SpecError": "spec", "check_spec_paths": "spec",
         "run_sweep": "driver", "SweepResult": "driver"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    """The driver imports Ray: loaded on first use, so validating a spec stays cheap."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"trainables.sweep.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'trainables.sweep' has no attribute {name!r}")
