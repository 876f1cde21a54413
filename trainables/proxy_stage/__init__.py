"""The proxy stage: sample architectures from each trial's final distribution, score them with training-free
proxies on Ray tasks, and select (`run_proxy_stage`); whole-space scoring (`score_space`) uses the same tasks."""

import importlib

_LAZY = {"run_proxy_stage": "driver", "score_distributed": "driver", "ProxySettings": "config", "ProxyStage": "config",
         "score_space": "score_space", "read_arch_list": "score_space", "select": "selection"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    """Ray and torch load on first use, so the spec layer can import the settings cheaply."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"trainables.proxy_stage.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'trainables.proxy_stage' has no attribute {name!r}")
