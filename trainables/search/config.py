"""The search loop's configuration: names, defaults (NAS-Bench-201's DARTS setting) and validation.

Defaults follow NB201's DARTS search (Dong & Yang, ICLR 2020; xautodl configs/nas-benchmark/algos/
DARTS.config): SGD lr 0.025 -> 0.001 cosine, momentum 0.9, Nesterov, weight decay 5e-4, batch 64,
50 epochs, gradient clip 5; a space's `search_defaults` replace any of them it lists for that space (e.g. DARTS'
weight decay 3e-4 without Nesterov), and the config's own keys win over both. The supernet's size keys
(e.g. NB201's C and N) belong to the space: the config
takes them as top-level keys, `SearchSpace.search_size` gives their defaults, and a key the chosen space
does not take is an error naming it. Unknown keys and bad values raise one ValueError naming them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from search_spaces.data import DATASETS
from search_spaces.space import DEFAULT_SPACE, available_spaces, get_space
from trainables.methods import available_methods, get_method
from trainables.methods.params import MethodParams
from trainables.runs.spec import validation_problems
from trainables.search.budget import CostConstraint


def _known_space(name: str) -> str:
    if name not in available_spaces():
        raise ValueError(f"unknown search space; available: {', '.join(available_spaces())}")
    return name


#: A registered search-space name (shared by the search config and the sweep spec).
SpaceName = Annotated[str, AfterValidator(_known_space)]

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _device_name(v: str) -> str:
    if not _DEVICE.match(v):
        raise ValueError("device must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:<index>'")
    return v


#: A torch device a config may name (shared by the search and the training config).
DeviceName = Annotated[str, AfterValidator(_device_name)]

ModelT = TypeVar("ModelT", bound=BaseModel)


def validate_config(model: type[ModelT], config: dict[str, Any] | ModelT, what: str) -> ModelT:
    """`config` validated as `model`; one ValueError (`invalid <what>: ...`) lists each bad key with its value
    and the reason."""
    if isinstance(config, model):
        return config
    if not isinstance(config, dict):
        raise ValueError(f"a {what} must be a dict, got {type(config).__name__}")
    try:
        return model(**config)
    except ValidationError as err:
        raise ValueError(f"invalid {what}: " + "; ".join(p.assigned() for p in validation_problems(err))) from None


#: validation context of a search config whose `method_params` the caller has already checked through the method's
#: `Params` (the sweep spec, which checks every grid point under `methods.<method>` before the trials' configs)
PARAMS_CHECKED = {"method_params_checked": True}


class SearchConfig(BaseModel):
    """One search run. `method_params` are the method's hyper-parameters as given (its `Params` model lists them;
    `params` is that model, validated once with the config); extra top-level keys are the space's size keys (`size`
    gives them with the space's defaults filled in)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    space: SpaceName = DEFAULT_SPACE
    dataset: str = "cifar10"
    data_root: str | None = None  # None: $BALENAS_DATA_ROOT, else the per-user cache
    download: bool = True  # fetch missing CIFAR-10/100 into data_root (False: air-gapped, error instead)
    split_file: str | None = None  # NB201's official split file (applied to the official data files only)
    benchmark: str | None = None  # ground-truth table for the bench_* metrics of the argmax genotype
    method: str = "darts-v1"
    method_params: dict[str, Any] = Field(default_factory=dict)
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(64, ge=1)
    seed: int = Field(0, ge=0)
    device: DeviceName = "auto"
    steps_per_epoch: int | None = Field(None, ge=1)  # cap on weight steps per epoch
    train_size: int | None = Field(None, ge=1)  # keep the first n of each search half (same for every seed)
    augment: bool = True  # random crop + flip on both halves, as NB201's search loaders
    w_lr: float = Field(0.025, gt=0)
    w_lr_min: float = Field(0.001, ge=0)
    w_momentum: float = Field(0.9, ge=0, lt=1)
    w_nesterov: bool = True
    w_weight_decay: float = Field(5e-4, ge=0)
    grad_clip: float | None = Field(5.0, gt=0)  # None: no clipping
    amp: bool = False  # bf16 autocast
    # "auto": per device (`default_channels_last`); measured, not guessed: see benchmarks/README.md "GPU"
    channels_last: bool | Literal["auto"] = "auto"
    # torch.compile the supernet: None (eager), "default", or "reduce-overhead" (CUDA graphs through
    # torch.compile). Off by default until the GPU check (benchmarks/gpu_check.py) shows a gain.
    compile: Literal["default", "reduce-overhead"] | None = None
    # a budget on the architecture's cost (trainables/search/budget.py); None: accuracy alone
    cost: CostConstraint | None = None
    _params: MethodParams | None = PrivateAttr(None)

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        if v not in DATASETS:
            raise ValueError(f"unknown data set; available: {', '.join(DATASETS)}")
        return v

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        if v not in available_methods():
            raise ValueError(f"unknown method; available: {', '.join(available_methods())}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _space_defaults(cls, data: Any) -> Any:
        """Keys the config leaves out take the space's `search_defaults` before the generic defaults."""
        if isinstance(data, dict):
            space = data.get("space", DEFAULT_SPACE)
            if isinstance(space, str) and space in available_spaces():
                data = {**get_space(space).search_defaults, **data}
        return data

    @property
    def size(self) -> dict[str, int]:
        """The supernet's size keywords: the space's `search_size` updated with this config's keys."""
        return get_space(self.space).sizes("search", self.model_extra)

    @property
    def params(self) -> MethodParams:
        """The method's hyper-parameters as its validated `Params` model (what the distribution takes)."""
        if self._params is None:
            raise RuntimeError("this search config was validated with PARAMS_CHECKED: its caller holds the "
                               "method's Params")
        return self._params

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> SearchConfig:
        self.size  # noqa: B018 - a key the space does not take is an error naming it
        if self.w_lr_min > self.w_lr:
            raise ValueError(f"w_lr_min ({self.w_lr_min}) must not exceed w_lr ({self.w_lr})")
        if not (info.context or {}).get("method_params_checked"):  # validated here, once; kept as `params`
            self._params = get_method(self.method).validate_params(self.method_params)
        if self.cost is not None:
            self.cost.check_space(get_space(self.space))
        return self


def default_channels_last(device_type: str) -> bool:
    """channels_last when the config says "auto": on the CPU it is the faster layout (the NB201 supernet's
    forward + backward at C=16, N=5, batch 64 in 0.55x the NCHW time, benchmarks/README.md; DARTS-V1's
    iteration 0.53x xautodl's instead of 0.80x, issue 16; benchmarks/bench_vs_xautodl.py measures it). On CUDA
    NCHW stays until the GPU check (benchmarks/gpu_check.py, section iteration) shows channels_last winning.
    This is the device's preference; `SearchRun` keeps NCHW on a supernet with convolutions that torch's CPU
    backward crashes or hangs on in channels_last (`trainables.runs.memory_format.resolve_channels_last`)."""
    return device_type == "cpu"


def parse_config(config: dict[str, Any]) -> SearchConfig:
    """Validate a plain dict; one ValueError lists each bad key with its value and the reason."""
    return validate_config(SearchConfig, config, "search config")
