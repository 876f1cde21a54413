"""Published device latencies of all 15,625 NAS-Bench-201 cells, shipped as package data.

`latency_table()` opens `data/latency.parquet` (converted once by `convert_latency.py` from HELP's
`data/nasbench201/latency/*.pt`; sources, commit, units and devices in `data/README.md`): one row per canonical
NB201 string, one float32 column of milliseconds per device (and batch size, for the GPUs).

    table = latency_table()
    table.devices()                      # ['1080ti_b1', ..., 'fpga', 'eyeriss', 'pixel3', ...]
    table.latency(arch, "pixel3")        # ms, arch canonicalised first
    table.frame                          # the DataFrame: arch, nb201_index, latency_<device>_ms ...

Device names are HELP's file names with the batch size of the GPU files written `_b<N>` (`titanx_256.pt` ->
`titanx_b256`); `DEVICES` lists each with its hardware, batch size and source.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from search_spaces.nb201.encoding import canonical

LATENCY_FILE = Path(__file__).resolve().parent / "data" / "latency.parquet"

HELP_REPO = "HayeonLee/HELP"
HWNASBENCH_REPO = "GATECH-EIC/HW-NAS-Bench"


@dataclass(frozen=True)
class Device:
    """One latency column: our device name, HELP's file stem, the hardware, the batch size (None: not stated in
    the source's file names)."""

    name: str
    help_file: str
    hardware: str
    batch_size: int | None
    #: where the numbers were published first, as far as checked ("HELP" or "HW-NAS-Bench (CIFAR-10)")
    source: str = "HELP"

    @property
    def column(self) -> str:
        return f"latency_{self.name}_ms"


def _gpus() -> tuple[Device, ...]:
    cards = (("1080ti", "NVIDIA GeForce GTX 1080 Ti"), ("2080ti", "NVIDIA GeForce RTX 2080 Ti"),
             ("titanx", "NVIDIA Titan X"), ("titanxp", "NVIDIA Titan Xp"), ("titan_rtx", "NVIDIA Titan RTX"))
    return tuple(Device(f"{stem}_b{b}", f"{stem}_{b}", hw, b) for stem, hw in cards for b in (1, 32, 256))


_HWNB = "HW-NAS-Bench (CIFAR-10)"

#: Every shipped device, in column order.
DEVICES: tuple[Device, ...] = (
    *_gpus(),
    Device("gold_6226", "gold_6226", "Intel Xeon Gold 6226 (CPU)", None),
    Device("gold_6240", "gold_6240", "Intel Xeon Gold 6240 (CPU)", None),
    Device("silver_4114", "silver_4114", "Intel Xeon Silver 4114 (CPU)", None),
    Device("silver_4210r", "silver_4210r", "Intel Xeon Silver 4210R (CPU)", None),
    Device("pixel2", "pixel2", "Google Pixel 2 (phone; whole milliseconds in the source)", None),
    Device("samsung_a50", "samsung_a50", "Samsung Galaxy A50 (phone; whole milliseconds in the source)", None),
    Device("samsung_s7", "samsung_s7", "Samsung Galaxy S7 (phone; whole milliseconds in the source)", None),
    Device("essential_ph_1", "essential_ph_1", "Essential Phone PH-1 (phone; whole milliseconds in the source)",
           None),
    Device("pixel3", "pixel3", "Google Pixel 3 (phone)", None, _HWNB),
    Device("raspi4", "raspi4", "Raspberry Pi 4 (edge CPU)", None, _HWNB),
    Device("fpga", "fpga", "FPGA (HW-NAS-Bench's FPGA setting)", None, _HWNB),
    Device("eyeriss", "eyeriss", "Eyeriss ASIC (HW-NAS-Bench's Eyeriss setting)", None, _HWNB),
)
_BY_NAME = {d.name: d for d in DEVICES}


def device(name: str) -> Device:
    """The `Device` called `name`; a ValueError lists the known names."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown NB201 latency device {name!r}; known devices: {', '.join(_BY_NAME)}") from None


class LatencyTable:
    """The latency table: `devices()`, `latency(arch, device)`, `column(device)`; `frame` is the DataFrame."""

    def __init__(self, frame: pd.DataFrame, path: Path | str | None = None):
        missing = [c for c in ("arch", *(d.column for d in DEVICES)) if c not in frame.columns]
        if missing:
            raise ValueError(f"{path or 'latency table'}: missing column(s) {missing}")
        self.frame = frame
        self.path = path
        self._row = {a: i for i, a in enumerate(frame["arch"])}
        if len(self._row) != len(frame):
            raise ValueError(f"{path or 'latency table'}: duplicate architecture strings")

    def __len__(self) -> int:
        return len(self.frame)

    def devices(self) -> list[str]:
        return [d.name for d in DEVICES]

    def column(self, name: str) -> pd.Series:
        """One device's latencies (ms, float32) indexed by the canonical architecture string."""
        col = device(name).column
        return pd.Series(self.frame[col].to_numpy(), index=self.frame["arch"].to_numpy(), name=col)

    def latency(self, arch: str, name: str) -> float:
        """Latency of `arch` (any spelling `canonical` accepts) on device `name`, in milliseconds."""
        col = device(name).column
        key = canonical(arch)
        try:
            row = self._row[key]
        except KeyError:
            raise ValueError(f"architecture {key!r} is not in the latency table") from None
        return float(self.frame[col].iat[row])


@lru_cache(maxsize=4)
def _load(path: str) -> LatencyTable:
    return LatencyTable(pd.read_parquet(path), path)


def latency_table(path: Path | str | None = None) -> LatencyTable:
    """The packaged table (or the one at `path`); read once per path and process."""
    return _load(str(Path(path) if path is not None else LATENCY_FILE))
