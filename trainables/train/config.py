"""One final training's configuration: which architecture, space, data set, seed and protocol (preset + overrides).

Validated with pydantic; `parse_train_config` turns every problem into one ValueError naming the key and value
(an unknown preset or protocol field, a data set the protocol has no splits for, an architecture the space
cannot parse).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from search_spaces.space import get_space
from trainables.search.config import DeviceName, SpaceName, validate_config
from trainables.train.protocol import TrainProtocol, resolve_protocol

#: formats a finished training can be exported to (`export:` of a training spec)
ExportFormat = Literal["onnx"]


class TrainConfig(BaseModel):
    """`space` defaults to the protocol's; `overrides` change protocol fields (e.g. {"epochs": 2})."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    arch: str
    protocol: str = "nb201"
    overrides: dict[str, Any] = Field(default_factory=dict)
    space: SpaceName | None = None
    dataset: str = "cifar10"
    data_root: str | None = None  # None: $BALENAS_DATA_ROOT
    split_file: str | None = None
    seed: int = Field(0, ge=0)
    device: DeviceName = "auto"
    amp: bool = False  # bf16 autocast
    channels_last: bool = False
    export: tuple[ExportFormat, ...] = ()  # written beside the last checkpoint (trainables/train/trainable.py)

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        protocol = self.resolved_protocol()
        if self.space is not None and self.space != protocol.space and "size" not in self.overrides:
            raise ValueError(f"space {self.space!r} differs from protocol {protocol.name!r}'s space "
                             f"{protocol.space!r}: override the protocol's `size` for this space")
        if protocol.splits and self.dataset not in protocol.splits:
            raise ValueError(f"dataset {self.dataset!r}: protocol {protocol.name!r} trains on "
                             f"{', '.join(protocol.splits)}")
        try:
            get_space(self.space_name).canonical(self.arch)
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"arch {self.arch!r} does not parse in space {self.space_name!r}: {err}") from None
        return self

    def resolved_protocol(self) -> TrainProtocol:
        return resolve_protocol(self.protocol, self.overrides)

    @property
    def space_name(self) -> str:
        return self.space or self.resolved_protocol().space


def parse_train_config(config: dict[str, Any] | TrainConfig) -> TrainConfig:
    """Validate a plain dict; one ValueError lists each bad key with its value and the reason."""
    return validate_config(TrainConfig, config, "training config")
