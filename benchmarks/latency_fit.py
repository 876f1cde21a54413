"""Fit the additive per-edge, per-op latency model to every device of the NB201 latency table and report the fit.

    python benchmarks/latency_fit.py                       # print the table
    python benchmarks/latency_fit.py --write benchmarks/costs.md

`--write` replaces the block between the `latency_fit` markers of the page (creating the page if it is missing),
so the hand-written discussion around it stays. Columns: the device, distinct values in its column, fixed_ms
(intercept), the mean latency, R^2 / Spearman / MAPE on all 15,625 cells, the same on a random 20% held out
from a fit on the other 80% (seed 0), and MAPE on the 15,284 cells whose output node is reachable from the
input (the other 341 compute a constant zero cell output).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_spaces.nb201.latency import DEVICES  # noqa: E402
from search_spaces.nb201.latency_fit import fit_additive  # noqa: E402

BEGIN = "<!-- latency_fit:begin -->"
END = "<!-- latency_fit:end -->"


def output_reachable(ops: np.ndarray) -> np.ndarray:
    """[n] bool: whether node 3 is reached from node 0 through non-`none` edges (edge order of encoding.EDGES)."""
    live = ops != 0
    n1 = live[:, 0]
    n2 = live[:, 1] | (n1 & live[:, 2])
    return live[:, 3] | (n1 & live[:, 4]) | (n2 & live[:, 5])


def rows() -> list[list[str]]:
    out = []
    for d in DEVICES:
        model = fit_additive(d.name)
        r = model.fit_report()
        y = model._y
        pred = model.predict_many(model._ops)
        reach = output_reachable(model._ops)
        mape_reach = float(np.mean(np.abs(pred[reach] - y[reach]) / y[reach]) * 100)
        out.append([d.name, str(len(np.unique(y))), f"{model.fixed_ms:.3f}", f"{y.mean():.3f}", f"{r.r2:.4f}",
                    f"{r.spearman:.4f}", f"{r.mape:.2f}", f"{r.heldout_r2:.4f}", f"{r.heldout_spearman:.4f}",
                    f"{r.heldout_mape:.2f}", f"{mape_reach:.2f}"])
    return out


HEADER = ["device", "distinct values", "fixed ms", "mean ms", "R²", "Spearman", "MAPE %", "held-out R²",
          "held-out Spearman", "held-out MAPE %", "MAPE % (output reachable)"]


def markdown(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table]
    return "\n".join(lines)


def write(page: Path, block: str) -> None:
    text = page.read_text() if page.exists() else f"# Cost models\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    page.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path, help="markdown page whose latency_fit block is replaced")
    args = ap.parse_args(argv)
    table = markdown(rows())
    print(table)
    if args.write:
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        cmd = "python benchmarks/latency_fit.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        block = (f"`{cmd.strip()}` ({when}, {platform.node() or 'unknown host'}, {platform.machine()}, "
                 f"Python {platform.python_version()}, numpy {np.__version__}):\n\n{table}")
        write(args.write, block)
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
