"""`balenas report RUN_DIR [RUN_DIR ...] [--out DIR] [--benchmark PATH]` (also `python -m analysis report ...`).

Writes report.md, the plots and the tables (md/tex/csv) to --out (default: `<first RUN_DIR>/report`) and prints
the main table (argmax rule) to the terminal.

Unreadable Parquet files (not Parquet, truncated, damaged, columns that do not fit their table) do not stop the
report: it is written from the files that can be read, report.md lists each file left out and why under
"Skipped files", and stderr says the same (`warning: skipped ...`). Exit status: 0 when a report was written
(also with skipped files), 2 on bad input, including runs where no table has a readable file (the error names
the files; no report folder is created).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


def main(argv: list[str] | None = None, prog: str = "balenas report") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Write report.md, plots and paper tables for one or "
                                                            "more sweep or training run folders.",
                                     epilog="Unreadable Parquet files are left out and listed (report.md 'Skipped "
                                            "files', stderr); exit 0 when a report was written, 2 on bad input or "
                                            "when no table could be read.")
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories or globs (quote globs)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <first RUN_DIR>/report)")
    parser.add_argument("--benchmark", default=None,
                        help="ground-truth table for the optimum row (a file, or `nb201` for the packaged table); "
                             "default: the spec's `benchmark` where it exists here")
    parser.add_argument("--no-published", action="store_true", help="leave the published reference rows out")
    args = parser.parse_args(argv)

    from analysis.load import SkippedFileWarning, load
    from analysis.report import build_report

    try:
        if args.benchmark is not None:
            from search_spaces.benchmarks.registry import is_builtin_reference, table_path

            args.benchmark = table_path(args.benchmark) if is_builtin_reference(args.benchmark) else args.benchmark
        with warnings.catch_warnings():  # the skipped files are listed below, once
            warnings.simplefilter("ignore", SkippedFileWarning)
            tables = load(*args.runs, skip_corrupt=True)
        out = args.out if args.out is not None else next(iter(tables.runs.values())) / "report"
        result = build_report(tables, out, benchmark=args.benchmark, published=not args.no_published)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.main_table or "no result table (no selections and no finished trials)")
    for note in result.notes:
        print(f"note: {note}")
    print(f"report written to {result.path}")
    for item in result.skipped:
        print(f"warning: skipped unreadable file {item.path}: {item.reason}", file=sys.stderr)
    if result.skipped:
        print(f"warning: {len(result.skipped)} unreadable file(s) left out of the report (listed under 'Skipped "
              f"files' in {result.path})", file=sys.stderr)
    return 0

