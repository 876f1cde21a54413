"""Costs of a derived network, generic over spaces: parameters, multiply-adds and (where a table exists) latency.

`cost_columns(space, arch, size, dataset, devices=())` builds `space.network(arch, num_classes, **size)` for
the data set's classes and resolution and returns

- `cost_params_M`: trainable parameters in millions, the auxiliary head of DARTS networks left out (as DARTS'
  `count_parameters_in_MB` and final training's `param_count` count);
- `cost_flops_M`: multiply-adds (MACs) of one forward pass of ONE image in eval mode, in millions, counted by
  `torch.utils.flop_counter.FlopCounterMode`. That counter reports FLOPs as 2 x MACs for every op it knows
  (matmul, convolution, attention), so the total is halved here: `flops_M` means multiply-adds, the convention
  of NAS-Bench-201's table (xautodl's `get_model_infos`) and of the DARTS papers. Bias additions, BatchNorm,
  activations and pooling are not counted (they have no formula in the counter);
- `cost_latency_<device>_ms`: for each requested device that the space's latency source knows; absent
  otherwise.

Latency comes from a source registered per space (`LATENCY_SOURCES`, "module:attribute" imported lazily, or
`register_latency_source`), or from the space's own optional method `latency_ms`. A source is a callable
`(arch, device, *, dataset, size) -> float | None` (None: no figure for that device; `dataset` and `size`
are passed only where the callable takes them). A source whose module is
not there yet counts as no source: costs then carry no latency column.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from search_spaces.data.datasets import DATASETS, FOLDER_DATASETS
from search_spaces.space import SearchSpace, get_space

#: parameters whose name contains this belong to an auxiliary head, which exists only for training.
AUXILIARY_NAME = "auxiliary"
#: classes of the image-folder data sets (their spec takes them from the class folders at load time).
FOLDER_NUM_CLASSES = {"imagenet": 1000}
#: prefix of every cost column.
PREFIX = "cost_"

LatencySource = Callable[..., "float | None"]
#: the NB201 latency tables' network: the benchmark's size, CIFAR-10's (10 classes, 32x32 images). HELP's values
#: are HW-NAS-Bench's CIFAR-10 setting (its CIFAR-100 values differ: search_spaces/nb201/data/README.md)
NB201_TABLE_SIZE = {"C": 16, "N": 5}
#: data sets whose NB201 network the packaged table times: CIFAR-10's; CIFAR-100's differs only in its classifier
#: (64 x 100 instead of 64 x 10 multiply-adds: 5,760 more, under 0.1 % of any NB201 network with a convolution),
#: so its latency is taken as CIFAR-10's (an approximation, said in search_spaces/nb201/data/README.md)
NB201_TABLE_DATASETS = ("cifar10", "cifar10-valid", "cifar100")


def nb201_latency(arch: str, device: str, *, dataset: str, size: Mapping[str, Any]) -> float | None:
    """Published latency (ms) of an NB201 cell from `search_spaces.nb201.latency`'s packaged table (HELP /
    HW-NAS-Bench devices, e.g. 'pixel3', 'titanx_b1'); None for a device the table lacks, for another size than
    the benchmark's C=16, N=5, for another data set than CIFAR-10 (or CIFAR-100, whose network differs only in
    its classifier: `NB201_TABLE_DATASETS`), or where the table is not installed."""
    if dict(size) != NB201_TABLE_SIZE or dataset not in NB201_TABLE_DATASETS:
        return None
    try:
        from search_spaces.nb201 import latency
    except ImportError:
        return None
    if device not in {d.name for d in latency.DEVICES}:
        return None
    try:
        return latency.latency_table().latency(arch, device)
    except FileNotFoundError:
        return None


def _nb201_devices() -> tuple[str, ...]:
    from search_spaces.nb201 import latency

    return tuple(d.name for d in latency.DEVICES)


def _nb201_table(device: str, *, dataset: str, size: Mapping[str, Any]):
    """The bulk form of `nb201_latency` (`search_spaces.cost_model.true_costs`): one device's latencies indexed by the
    canonical architecture, None where `nb201_latency` would give None for every architecture."""
    if dict(size) != NB201_TABLE_SIZE or dataset not in NB201_TABLE_DATASETS or device not in _nb201_devices():
        return None
    try:
        from search_spaces.nb201 import latency
    except ImportError:
        return None
    try:
        return latency.latency_table().column(device)
    except FileNotFoundError:
        return None


nb201_latency.devices = _nb201_devices  # a source lists its devices by a `devices` attribute
nb201_latency.table = _nb201_table  # and may offer a bulk lookup


#: space name -> its latency source (a callable, or "module:attribute" imported when first asked for; a module
#: that does not exist means no latency for that space).
LATENCY_SOURCES: dict[str, str | LatencySource] = {
    "nb201": nb201_latency,
}


def register_latency_source(space_name: str, source: str | LatencySource) -> None:
    """Register a latency source for a space: a callable `(arch, device, *, dataset, size) -> float | None`
    or its "module:attribute"."""
    LATENCY_SOURCES[space_name] = source


def latency_source(space: SearchSpace) -> LatencySource | None:
    """The space's latency source: its own `latency_ms` method, else the registered one; None where neither
    exists (a registered module that is not installed counts as none)."""
    own = getattr(space, "latency_ms", None)
    if callable(own):
        return own
    source = LATENCY_SOURCES.get(space.name)
    if source is None or callable(source):
        return source
    module, _, attr = source.partition(":")
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is not None and module.startswith(err.name):  # the source itself is missing, not a dependency
            return None
        raise
    fn = getattr(loaded, attr, None)
    return fn if callable(fn) else None


def call_latency_source(source: LatencySource, arch: str, device: str, **context: Any) -> float | None:
    """`source(arch, device, **context)`, passing only the keywords (`dataset`, `size`) that it takes."""
    try:
        params = inspect.signature(source).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature: give it everything
        return source(arch, device, **context)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return source(arch, device, **context)
    return source(arch, device, **{k: v for k, v in context.items() if k in params})


def known_devices(space: SearchSpace | str) -> tuple[str, ...] | None:
    """The devices of the space's latency source: () where the space has none; None where the source does not
    list them (a `devices` attribute: a sequence or a callable returning one), so names go unchecked."""
    source = latency_source(_space(space))
    if source is None:
        return ()
    listed = getattr(source, "devices", None)
    if listed is None:
        return None
    return tuple(listed() if callable(listed) else listed)


def check_devices(space: SearchSpace | str, devices: Iterable[str] | None = None, *,
                  field: str = "devices") -> tuple[str, ...]:
    """`devices` checked against the space's latency source (a ValueError naming `field` lists the known ones), or
    with None every device the source knows (none without a source); duplicates dropped."""
    space = _space(space)
    known = known_devices(space)
    if devices is None:
        return tuple(known or ())
    devices = [str(d) for d in devices]
    bad = [d for d in devices if known is not None and d not in known]
    if bad:
        where = (f"the latency source of space {space.name!r} knows {', '.join(known)}" if known
                 else f"space {space.name!r} has no latency source")
        raise ValueError(f"{field}: unknown latency device(s) {', '.join(map(repr, bad))}; {where}")
    return tuple(dict.fromkeys(devices))


def latency_ms(space: SearchSpace | str, arch: str, size: Mapping[str, Any] | None, dataset: str,
               devices: Iterable[str]) -> dict[str, float]:
    """{device: ms} of `arch` for each device the space's source has a figure for (a lookup, no network built);
    the source decides where it applies (NB201: C=16, N=5 on CIFAR-10's network)."""
    devices = list(devices)
    space = _space(space)
    source = latency_source(space) if devices else None
    if source is None:
        return {}
    canonical, checked = space.canonical(arch), split_size(space, size)
    out: dict[str, float] = {}
    for device in devices:
        value = call_latency_source(source, canonical, device, dataset=dataset, size=checked)
        if value is not None and math.isfinite(float(value)):
            out[device] = float(value)
    return out


def latency_columns(space: SearchSpace | str, arch: str, size: Mapping[str, Any] | None, dataset: str,
                    devices: Iterable[str]) -> dict[str, float]:
    """`latency_ms` as result columns `cost_latency_<device>_ms`."""
    return {latency_column(d): ms for d, ms in latency_ms(space, arch, size, dataset, devices).items()}


def network_columns(model: nn.Module, image: torch.Tensor) -> dict[str, float]:
    """`cost_params_M` and `cost_flops_M` (multiply-adds) of a built network for one `image` ([1, C, H, W])."""
    return {f"{PREFIX}params_M": count_params(model) / 1e6, f"{PREFIX}flops_M": count_macs(model, image) / 1e6}


def dataset_shape(dataset: str, num_classes: int | None = None) -> tuple[int, int]:
    """(num_classes, image size) of a data set name (`DATASETS` or `FOLDER_DATASETS`); `num_classes` overrides."""
    if dataset in DATASETS:
        spec = DATASETS[dataset]
        return (num_classes or spec.num_classes), spec.image_size
    if dataset in FOLDER_DATASETS:
        classes = num_classes or FOLDER_NUM_CLASSES.get(dataset)
        if classes is None:
            raise ValueError(f"data set {dataset!r}: pass num_classes (its classes come from its folders)")
        return classes, FOLDER_DATASETS[dataset].image_size
    raise ValueError(f"unknown data set {dataset!r}; expected one of {', '.join([*DATASETS, *FOLDER_DATASETS])}")


def _space(space: SearchSpace | str) -> SearchSpace:
    return get_space(space) if isinstance(space, str) else space


def split_size(space: SearchSpace, size: Mapping[str, Any] | None, *, field: str = "size") -> dict[str, Any]:
    """`size` checked against the space: its `proxy_size` keys (defaults filled in) plus any `network_extras`
    given; another key is a ValueError naming `<field>.<key>`."""
    given = dict(size or {})
    extras = {k: given.pop(k) for k in tuple(getattr(space, "network_extras", ())) if k in given}
    return {**space.sizes("proxy", given, field=field), **extras}


def build_network(space: SearchSpace | str, arch: str, size: Mapping[str, Any] | None = None,
                  dataset: str = "cifar10", *, num_classes: int | None = None) -> tuple[nn.Module, int]:
    """(the derived network in eval mode, the input image size) of `arch` for `dataset`'s classes."""
    space = _space(space)
    classes, image_size = dataset_shape(dataset, num_classes)
    kw = split_size(space, size)
    if dataset in FOLDER_DATASETS and "imagenet" in getattr(space, "network_extras", ()):
        kw.setdefault("imagenet", True)  # the space's ImageNet stem, as final training on ImageNet builds it
    return space.network(space.canonical(arch), num_classes=classes, **kw).eval(), image_size


def count_params(model: nn.Module) -> int:
    """Trainable parameters, the auxiliary head left out."""
    return sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and AUXILIARY_NAME not in n)


def count_macs(model: nn.Module, image: torch.Tensor) -> int:
    """Multiply-adds of one forward pass of `image` ([1, C, H, W]) in eval mode: FlopCounterMode's total,
    which counts 2 FLOPs per multiply-add, halved."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(image)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def costs(space: SearchSpace | str, arch: str, size: Mapping[str, Any] | None = None, dataset: str = "cifar10",
          devices: Iterable[str] = (), *, num_classes: int | None = None) -> dict[str, Any]:
    """{"params_M", "flops_M" (multiply-adds, millions), "latency_ms": {device: ms}} of `arch` at `size` on
    `dataset`'s resolution; latency only for devices the space's source knows."""
    space = _space(space)
    try:
        params, macs = _counts(space, arch, size, dataset, num_classes, "meta")
    except (NotImplementedError, RuntimeError):  # a network whose forward needs real values: count on the CPU
        params, macs = _counts(space, arch, size, dataset, num_classes, "cpu")
    return {"params_M": params / 1e6, "flops_M": macs / 1e6,
            "latency_ms": latency_ms(space, arch, size, dataset, devices)}


def _counts(space: SearchSpace, arch: str, size: Mapping[str, Any] | None, dataset: str, num_classes: int | None,
            device: str) -> tuple[int, int]:
    """(parameters, multiply-adds) of the derived network built on `device`: 'meta' (shapes only: no memory, no
    arithmetic, no random initialisation; the same counts, ~3-10x faster) or 'cpu'."""
    with torch.device(device):
        model, image_size = build_network(space, arch, size, dataset, num_classes=num_classes)
        return count_params(model), count_macs(model, torch.zeros(1, 3, image_size, image_size))


def latency_column(device: str) -> str:
    """The column name of a device's latency: `cost_latency_<device>_ms` (non-alphanumerics as '_')."""
    safe = "".join(c if c.isalnum() else "_" for c in device)
    return f"{PREFIX}latency_{safe}_ms"


def cost_columns(space: SearchSpace | str, arch: str, size: Mapping[str, Any] | None = None,
                 dataset: str = "cifar10", devices: Iterable[str] = (), *,
                 num_classes: int | None = None) -> dict[str, float]:
    """`costs` as result columns: `cost_params_M`, `cost_flops_M` and `cost_latency_<device>_ms` per device
    with a figure."""
    c = costs(space, arch, size, dataset, devices, num_classes=num_classes)
    return {f"{PREFIX}params_M": c["params_M"], f"{PREFIX}flops_M": c["flops_M"],
            **{latency_column(d): ms for d, ms in c["latency_ms"].items()}}
