"""Final training of chosen architectures: protocols (presets), the training loop, the Tune Trainable."""

from trainables.train.config import TrainConfig, parse_train_config
from trainables.train.loop import NonFiniteLoss, TrainRun, run_training
from trainables.train.protocol import PRESETS, TrainProtocol, resolve_protocol

__all__ = ["PRESETS", "NonFiniteLoss", "TrainConfig", "TrainProtocol", "TrainRun", "parse_train_config",
           "resolve_protocol", "run_training"]
