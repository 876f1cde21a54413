"""The proxy stage's settings: the `proxies:` section of a sweep spec (`ProxySettings`, one pydantic model used by the
spec and by the stage) and what the stage reads of a sweep (`ProxyStage`, built once from validated values).

The section's size keys (e.g. NB201's C and N) are those of the spec's space (`SearchSpace.proxy_size`); a key the
space does not take is an error naming `proxies.<key>`. Higher is better for every proxy (all are defined that way).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from search_spaces.space import get_space
from trainables.runs.spec import located


class ProxyResources(BaseModel):
    """Per scoring task."""

    model_config = ConfigDict(extra="forbid")

    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)


class ProxySettings(BaseModel):
    """The proxy stage after the search (BaLeNAS-TF): `samples` architectures drawn per trial from its final
    distribution, scored by the proxies `names` on one data batch, and selected by the rules `combine`
    (default: all proxies together when more than one); `cost_devices` names the latency devices of the
    rows' cost columns. Extra keys are the space's network size keys."""

    model_config = ConfigDict(extra="allow")

    samples: int = Field(100, ge=1)
    names: list[str] = Field(default_factory=lambda: ["naswot"], min_length=1)
    batch_size: int = Field(64, ge=1)
    seed: int = 0
    archs_per_task: int = Field(100, ge=1)
    data_split: str = "train"
    resources: ProxyResources = Field(default_factory=ProxyResources)
    combine: list[list[str]] | None = None
    max_in_flight: int | None = Field(None, ge=1)
    channels_last: bool = False
    #: latency devices of the cost columns (`cost_latency_<device>_ms`); None: every device the space's latency
    #: source knows (none where the space has no source). Checked against the space by `ProxyStage.build`.
    cost_devices: list[str] | None = None

    @field_validator("names")
    @classmethod
    def _known_proxies(cls, v: list[str]) -> list[str]:
        from trainables.proxies import validate_names

        if len(set(v)) != len(v):
            raise ValueError("proxy names must be unique")
        return list(validate_names(v))

    @property
    def rank_groups(self) -> list[list[str]]:
        """The rank-combination rules: `combine`, or all proxies together when it is unset and several run."""
        if self.combine is not None:
            return self.combine
        return [list(self.names)] if len(self.names) > 1 else []

    @model_validator(mode="after")
    def _combine(self) -> ProxySettings:
        for group in self.rank_groups:
            bad = [n for n in group if n not in self.names]
            if len(group) < 2 or bad:
                raise ValueError(f"combine: {group} must name at least two of the scored proxies {self.names}"
                                 + (f" (not scored: {bad})" if bad else ""))
        return self

    def size(self, space: str) -> dict[str, int]:
        """The scored networks' size keywords: the space's `proxy_size` updated with this section's keys."""
        return get_space(space).sizes("proxy", self.model_extra, field="proxies")

    @classmethod
    def checked(cls, section: ProxySettings | Mapping[str, Any] | None = None, **overrides: Any) -> ProxySettings:
        """`section` with `overrides` (None = keep): a validated section without overrides as it is, anything else
        validated here; one ValueError names each bad field as `proxies.<path>`."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        if isinstance(section, cls) and not changes:
            return section
        data = section.model_dump() if isinstance(section, cls) else dict(section or {})
        try:
            return cls.model_validate({**data, **changes})
        except ValidationError as err:
            raise ValueError("; ".join(f"{loc}: {msg}" for loc, msg in located(err, ("proxies",)))) from None


@dataclass(frozen=True)
class ProxyStage:
    """What the proxy stage reads of a sweep, validated by whoever builds it (`build`; the sweep's builders are
    `trainables.sweep.spec.proxy_stage` for a `SweepSpec` and `stored_proxy_stage` for a run folder's spec.yaml).

    `space`, `dataset`, `data_root` (None: $BALENAS_DATA_ROOT, else the per-user cache), `download` (fetch missing
    CIFAR data) and `benchmark` (a ground-truth table for the selections' bench_* columns, or None) as the sweep
    has them; `proxies` its proxy section; `size` the scored networks' size keywords (the space's `proxy_size`
    updated with the section's size keys).
    """

    space: str
    dataset: str
    data_root: str | None
    download: bool
    benchmark: str | None
    proxies: ProxySettings
    size: dict[str, int]

    @classmethod
    def build(cls, *, space: str, dataset: str, data_root: str | None, download: bool, benchmark: str | None,
              proxies: ProxySettings | Mapping[str, Any] | None, **overrides: Any) -> ProxyStage:
        """The stage of a sweep whose other values its caller validated; `proxies` (a validated section, a mapping
        or None for the defaults) with `overrides` (None = keep) is checked here, its size keys against `space`
        (ValueErrors name `proxies.<path>`)."""
        from trainables.proxy_stage.selection import cost_devices

        settings = ProxySettings.checked(proxies, **overrides)
        cost_devices(space, settings.cost_devices)  # an unknown device: a ValueError naming proxies.cost_devices
        return cls(space=space, dataset=dataset, data_root=data_root, download=download, benchmark=benchmark,
                   proxies=settings, size=settings.size(space))
