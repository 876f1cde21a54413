"""Timing helpers shared by the side-by-side benchmark scripts (bench_methods, bench_vs_xautodl, ...)."""

from __future__ import annotations

from collections.abc import Callable


def rotated_rounds(timers: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each timer's figure once per round, the starting setting rotating each round, so load from other
    processes on a shared machine hits all settings alike (take the median per setting)."""
    times: dict[str, list[float]] = {k: [] for k in timers}
    names = list(timers)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(timers[name]())
    return times


def print_ratio_rows(times: dict[str, list[float]], medians: dict[str, float], ref: float | None,
                     extra: Callable[[str], str] | None = None) -> None:
    """One markdown row per setting: median, min, max, median / `ref` ("-" without one), and `extra(name)`."""
    for k, v in times.items():
        ratio = f"{medians[k] / ref:.3f}" if ref else "-"
        tail = f" {extra(k)} |" if extra else ""
        print(f"| {k} | {medians[k]:.3f} | {min(v):.3f} | {max(v):.3f} | {ratio} |{tail}")
