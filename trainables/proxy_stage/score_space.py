"""Score every architecture of a space (or a given list) with chosen proxies into Parquet, across Ray workers.

Memory stays flat: tasks build, score and free one network at a time, and the driver keeps only the rows of
the current chunk, writing each chunk of `flush_every` rows as its own Parquet file
(`<out>/part-<n>.parquet`, written atomically). Resumable: architectures already in `<out>` are skipped, so
an interrupted run continues where it stopped. Read the result with `pandas.read_parquet(out)`.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from search_spaces.space import DEFAULT_SPACE, get_space
from trainables import proxies
from trainables.proxy_stage.driver import score_distributed

log = logging.getLogger(__name__)


def read_arch_list(path: str | os.PathLike, space: str = DEFAULT_SPACE) -> list[str]:
    """One architecture string per line (blank lines and '#' comments ignored), validated and canonical."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"architecture list not found: {path}")
    sp = get_space(space)
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            out.append(sp.canonical(line))
        except ValueError as e:
            raise ValueError(f"{path}:{number}: {e}") from None
    return out


def scored_architectures(out: str | os.PathLike) -> set[str]:
    """Architectures already written under `out` (empty when it does not exist yet)."""
    out = Path(out)
    files = sorted(out.glob("part-*.parquet")) if out.is_dir() else []
    done: set[str] = set()
    for f in files:
        done.update(pq.read_table(f, columns=["arch"]).column("arch").to_pylist())
    return done


def _write_chunk(out: Path, rows: list[dict[str, Any]], names: Sequence[str]) -> Path:
    columns = ["arch"] + [c for n in names for c in (n, f"{n}_error")]
    frame = pd.DataFrame(rows, columns=columns)
    schema = pa.schema([("arch", pa.string())] + [f for n in names
                                                  for f in ((n, pa.float64()), (f"{n}_error", pa.string()))])
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"part-{uuid.uuid4().hex}.parquet"
    tmp = out / f".{path.name}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def score_space(out: str | os.PathLike, batch: tuple[torch.Tensor, torch.Tensor], names: Sequence[str], *,
                archs: Sequence[str] | None = None, space: str = DEFAULT_SPACE, num_classes: int = 10,
                size: Mapping[str, int] | None = None, seed: int = 0, archs_per_task: int = 50,
                flush_every: int = 500, cpu: float = 1.0,
                gpu: float = 0.0, max_in_flight: int | None = None, progress: bool = True,
                channels_last: bool = False) -> dict[str, int]:
    """Score `archs` (default: the whole space, `SearchSpace.enumerate()`) not yet under `out`; returns counts
    {total, skipped, scored}. Networks take the space's `proxy_size` updated with `size`.

    Ray must be initialised by the caller. Every network is built with weights seeded by `seed`, so a
    resumed run gives the same numbers as an uninterrupted one.
    """
    names = proxies.validate_names(names)
    out = Path(out)
    archs = list(archs) if archs is not None else get_space(space).enumerate()
    done = scored_architectures(out)
    existing = _existing_names(out)
    if existing is not None and existing != list(names):
        raise ValueError(f"{out} holds scores for proxies {existing}, not {list(names)}: use another output folder")
    todo = list(dict.fromkeys(a for a in archs if a not in done))
    buffer: list[dict[str, Any]] = []

    def on_rows(rows: list[dict[str, Any]]) -> None:
        buffer.extend(rows)
        if len(buffer) >= flush_every:
            _write_chunk(out, buffer, names)
            buffer.clear()

    if todo:
        score_distributed(todo, batch, names, on_rows=on_rows, archs_per_task=archs_per_task, space=space,
                          num_classes=num_classes, size=size, seed=seed, cpu=cpu, gpu=gpu,
                          max_in_flight=max_in_flight, progress=progress, desc="scoring space",
                          channels_last=channels_last)
        if buffer:
            _write_chunk(out, buffer, names)
    counts = {"total": len(archs), "skipped": len(archs) - len(todo), "scored": len(todo)}
    log.info("score_space %s: %s", out, counts)
    return counts


def _existing_names(out: Path) -> list[str] | None:
    files = sorted(out.glob("part-*.parquet")) if out.is_dir() else []
    if not files:
        return None
    return [c for c in pq.read_schema(files[0]).names if c != "arch" and not c.endswith("_error")]


def read_scores(out: str | os.PathLike) -> pd.DataFrame:
    """All scored rows under `out` as one frame."""
    out = Path(out)
    files = sorted(out.glob("part-*.parquet")) if out.is_dir() else []
    if not files:
        raise FileNotFoundError(f"no scores under {out} (expected part-*.parquet files)")
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
