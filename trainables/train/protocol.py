"""Training protocols: named presets of every hyper-parameter of final training, each citing its source.

A spec picks a preset (`protocol: darts-cifar`) and may override any field (`overrides: {epochs: 2}`); unknown
presets and fields are errors naming them. A protocol also says which data split is trained on and which are
evaluated for each data set it supports (`splits`), because NB201 and DARTS cut the same files differently:
NB201's CIFAR-100 / ImageNet16-120 "test" accuracy is on one half of the official test set (x-test), DARTS's
on the whole of it.

Presets (hyper-parameters checked against the reference code, not copied from it):
- `darts-cifar`: quark0/darts cnn/train.py with the README's `--auxiliary --cutout` (Liu et al., ICLR 2019).
- `darts-imagenet`: quark0/darts cnn/train_imagenet.py (batch 128 per GPU, StepLR(1, 0.97), label smoothing
  0.1; the README trains with `--auxiliary`) at the paper's 250 epochs, C=48, 14 cells, on ILSVRC-2012 in the
  standard folder layout (data set `imagenet`: `data_root` holds `train/<wnid>/*.JPEG` and `val/<wnid>/*.JPEG`;
  trained on `train`, tested on `val`, the 50,000 validation images DARTS reports as test). Its data are read by
  search_spaces/data/image_folder.py: JPEGs decoded and augmented on the host per batch (RandomResizedCrop(224),
  flip, ColorJitter(0.4, 0.4, 0.4, 0.2); eval Resize(256) + CenterCrop(224)), not held on the device, with one
  host sync per batch; `augment` means that transform there.
- `nb201`, `nb201-12`: NAS-Bench-201's training (Dong & Yang, ICLR 2020), D-X-Y/AutoDL-Projects
  configs/nas-benchmark/hyper-opts/200E.config and 12E.config (cosine to 0 stepped per iteration as xautodl's
  scheduler, SGD 0.1 Nesterov 0.9, wd 5e-4, batch 256, no clipping, plain cross-entropy), C=16, N=5, crop +
  flip only, and NB201's splits of cifar10-valid, cifar10, cifar100 and ImageNet16-120.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trainables.runs.spec import validation_problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSplits(_Strict):
    """Where one data set's images come from: the data-layer set, the training split and the evaluated ones."""

    data: str  # a search_spaces.data data set (cifar10, cifar100, ImageNet16-120; imagenet: image folders)
    train: str  # the split trained on (search_spaces.data split names)
    eval: dict[str, str]  # role (test, valid) -> split; `test` is the one the final error is read from

    @model_validator(mode="after")
    def _has_test(self) -> DataSplits:
        if "test" not in self.eval:
            raise ValueError(f"eval splits must include 'test', got {sorted(self.eval)}")
        return self


class TrainProtocol(_Strict):
    """Every setting of one final training. `size` are the space's network size keywords (an override replaces
    the whole mapping; keys left out take the network's defaults); `network` extra keywords of `space.network`
    (e.g. {"imagenet": true})."""

    name: str
    source: str
    space: str
    size: dict[str, int]
    network: dict[str, Any] = Field(default_factory=dict)
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    eval_batch_size: int = Field(256, ge=1)
    lr: float = Field(gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(ge=0)
    schedule: Literal["cosine", "exponential"] = "cosine"
    lr_min: float = Field(0.0, ge=0)  # cosine: the final learning rate
    gamma: float = Field(0.97, gt=0, le=1)  # exponential: factor per epoch
    lr_step: Literal["epoch", "iteration"] = "epoch"  # cosine: stepped per epoch (DARTS) or iteration (xautodl)
    grad_clip: float | None = Field(None, gt=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    auxiliary: bool = False
    auxiliary_weight: float = Field(0.4, ge=0)
    drop_path_prob: float = Field(0.0, ge=0, lt=1)  # ramped linearly: epoch e (0-based) uses p * e / epochs
    augment: bool = True  # the data set's training augmentation: crop (its padding) + flip; imagenet: its reader's
    cutout: int = Field(0, ge=0)  # side of the cutout square (0: off)
    eval_every: int = Field(1, ge=1)  # evaluate every k epochs (and always after the last)
    steps_per_epoch: int | None = Field(None, ge=1)  # cap on training steps per epoch (tests, timing)
    train_size: int | None = Field(None, ge=1)  # keep the first n training images
    eval_size: int | None = Field(None, ge=1)  # keep the first n images of each evaluated split
    splits: dict[str, DataSplits]

    @model_validator(mode="after")
    def _consistent(self) -> TrainProtocol:
        if self.lr_min > self.lr:
            raise ValueError(f"lr_min ({self.lr_min}) must not exceed lr ({self.lr})")
        if self.schedule == "exponential" and self.lr_step == "iteration":
            raise ValueError("schedule 'exponential' decays per epoch: lr_step must be 'epoch'")
        return self


# NB201's data: which split is trained on and which evaluated (xautodl's get_datasets + the benchmark's
# "ori-test", "x-valid", "x-test" sets; the search_spaces.data docstring maps our split names).
NB201_SPLITS = {
    "cifar10-valid": DataSplits(data="cifar10", train="search-train", eval={"valid": "search-valid", "test": "test"}),
    "cifar10": DataSplits(data="cifar10", train="train", eval={"test": "test"}),
    "cifar100": DataSplits(data="cifar100", train="train", eval={"valid": "x-valid", "test": "x-test"}),
    "ImageNet16-120": DataSplits(data="ImageNet16-120", train="train", eval={"valid": "x-valid", "test": "x-test"}),
}
# DARTS: the whole training set, evaluated on the whole official test set.
DARTS_CIFAR_SPLITS = {
    "cifar10": DataSplits(data="cifar10", train="train", eval={"test": "test"}),
    "cifar100": DataSplits(data="cifar100", train="train", eval={"test": "test"}),
}
# DARTS on ImageNet: ILSVRC-2012's training folder, tested on its 50,000 validation images (`val/`).
DARTS_IMAGENET_SPLITS = {"imagenet": DataSplits(data="imagenet", train="train", eval={"test": "test"})}

_NB201 = dict(space="nb201", size={"C": 16, "N": 5}, batch_size=256, lr=0.1, momentum=0.9, nesterov=True,
              weight_decay=5e-4, schedule="cosine", lr_min=0.0, lr_step="iteration", grad_clip=None,
              splits=NB201_SPLITS)

PRESETS: dict[str, TrainProtocol] = {
    "darts-cifar": TrainProtocol(
        name="darts-cifar",
        source="quark0/darts cnn/train.py defaults with README's --auxiliary --cutout (Liu et al., ICLR 2019)",
        space="darts", size={"C": 36, "layers": 20}, epochs=600, batch_size=96, eval_batch_size=96, lr=0.025,
        momentum=0.9, weight_decay=3e-4, schedule="cosine", lr_min=0.0, lr_step="epoch", grad_clip=5.0,
        auxiliary=True, auxiliary_weight=0.4, drop_path_prob=0.2, cutout=16, splits=DARTS_CIFAR_SPLITS),
    "darts-imagenet": TrainProtocol(
        name="darts-imagenet",
        source="quark0/darts cnn/train_imagenet.py (SGD 0.1, momentum 0.9, wd 3e-5, batch 128, StepLR(1, 0.97), "
               "label smoothing 0.1, clip 5, auxiliary 0.4, no drop path) with README's --auxiliary and the "
               "DARTS paper's ImageNet setting (250 epochs, C=48, 14 cells; the script's own epochs / "
               "init_channels defaults differ)",
        space="darts", size={"C": 48, "layers": 14}, network={"imagenet": True}, epochs=250, batch_size=128,
        eval_batch_size=128, lr=0.1, momentum=0.9, weight_decay=3e-5, schedule="exponential", gamma=0.97,
        grad_clip=5.0, label_smoothing=0.1, auxiliary=True, auxiliary_weight=0.4, drop_path_prob=0.0,
        splits=DARTS_IMAGENET_SPLITS),
    "nb201": TrainProtocol(
        name="nb201", epochs=200,
        source="NAS-Bench-201 (Dong & Yang, ICLR 2020): D-X-Y/AutoDL-Projects configs/nas-benchmark/hyper-opts/"
               "200E.config, C=16, N=5, NB201's data splits",
        **_NB201),
    "nb201-12": TrainProtocol(
        name="nb201-12", epochs=12,
        source="NAS-Bench-201's 12-epoch schedule (hp=12; the table's *_12ep columns): D-X-Y/AutoDL-Projects "
               "configs/nas-benchmark/hyper-opts/12E.config, C=16, N=5, NB201's data splits",
        **_NB201),
}


def protocol_fields() -> list[str]:
    return [k for k in TrainProtocol.model_fields if k not in ("name", "source")]


def resolve_protocol(preset: str, overrides: dict[str, Any] | None = None) -> TrainProtocol:
    """The preset `preset` with `overrides` applied; a ValueError names an unknown preset, field or bad value."""
    if preset not in PRESETS:
        raise ValueError(f"unknown protocol {preset!r}; presets: {', '.join(PRESETS)}")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(protocol_fields()))
    if unknown:
        raise ValueError(f"unknown protocol field(s) {', '.join(repr(k) for k in unknown)}; fields: "
                         f"{', '.join(protocol_fields())}")
    base = PRESETS[preset].model_dump()
    try:
        return TrainProtocol(**{**base, **overrides})
    except ValidationError as err:
        raise ValueError(f"protocol {preset!r}: " + "; ".join(p.assigned() for p in validation_problems(err))) from None
