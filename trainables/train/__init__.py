"""Final training of chosen architectures: protocols (presets), the training loop, the Tune Trainable.

One training run: `TrainRun(config)` / `run_training(config)` with `TrainConfig`; protocols: `PRESETS`,
`resolve_protocol`. The training sweep behind `balenas train`: `load_train_spec` (validated before Ray starts)
and `run_train` (the driver, imported with Ray on first use).
"""

import importlib

from trainables.train.config import TrainConfig, parse_train_config
from trainables.train.loop import NonFiniteLoss, TrainRun, run_training
from trainables.train.protocol import PRESETS, TrainProtocol, resolve_protocol

_LAZY = {"TrainSpec": "spec", "TrainSpecError": "spec", "load_train_spec": "spec", "check_train_paths": "spec",
         "run_train": "driver"}

__all__ = ["PRESETS", "NonFiniteLoss", "TrainConfig", "TrainProtocol", "TrainRun", "parse_train_config",
           "resolve_protocol", "run_training", *_LAZY]


def __getattr__(name: str):
    """The spec and the driver (which imports Ray) load on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"trainables.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'trainables.train' has no attribute {name!r}")
