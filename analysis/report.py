"""The report of one or more sweeps: `report.md` with the paper tables (every selection rule), the plots,
failed trials, library versions and the sweep's spec, plus the PNGs and the tables as .md/.tex/.csv; for searches
under a cost budget, the "Accuracy and cost" section (analysis.tradeoff).

`build_report(tables, out_dir, benchmark=None)` writes everything and returns a `Report`; the command line is
`python -m analysis report RUN_DIR [RUN_DIR ...] [--out DIR] [--benchmark PATH]` (analysis/__main__.py).

The ground truth belongs to the run's benchmark: the table file is the spec's `benchmark:` (or --benchmark),
read by the benchmark of the run's space (`SearchSpace.benchmark_name`; the space from the rows, else the
spec), which also names the table's columns (`report_columns`), what they mean (`report_note`) and the column
the plots show (`test_column`). The report knows no space, data set or benchmark by name.

Unreadable Parquet files: the report is built from `load(..., skip_corrupt=True)`, so it writes what it can;
every file left out (of the sweep tables and of `final`) is listed with its reason under "Skipped files" at the
top of report.md and in `Report.skipped`. Where no table has a readable file and some were skipped,
`build_report` raises `NothingToReport` (a CorruptTableError, so a ValueError) before creating `out_dir`; a
failure while writing removes an `out_dir` it created, so no empty report folder is left behind.
"""

from __future__ import annotations

import datetime as _dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from analysis import architectures as arch_mod
from analysis import final as final_mod
from analysis import plots as plots_mod
from analysis import tables as tables_mod
from analysis import tradeoff as tradeoff_mod
from analysis.frames import open_benchmark_table, tables_space
from analysis.load import TABLES, CorruptTableError, RunTables, Unreadable

REPORT_FILE = "report.md"
ERROR_CHARS = 300


@dataclass
class Report:
    path: Path
    main_table: str  # Markdown of the first rule's table (argmax where present)
    tables: dict[str, dict[str, Path]] = field(default_factory=dict)
    plots: list[plots_mod.Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[Unreadable] = field(default_factory=list)  # unreadable files left out, with their reasons
    #: the "Accuracy and cost" section (searches under a budget; empty lines where none)
    tradeoff: tradeoff_mod.TradeoffSection | None = None


class NothingToReport(CorruptTableError):
    """Every table file of the runs that could hold rows is unreadable: no report is written."""

    def __str__(self) -> str:
        return f"nothing to report, no table could be read: {super().__str__()}"


def benchmark_from_specs(tables: RunTables) -> Path | None:
    """The ground-truth table named by the runs' specs (`benchmark:`), if it exists on this machine."""
    from search_spaces.benchmarks.registry import is_builtin_reference, table_path

    for spec in tables.specs.values():
        path = spec.get("benchmark") if isinstance(spec, dict) else None
        if is_builtin_reference(path):
            return table_path(path)  # a table shipped with the package (`benchmark: nb201`)
        if path and Path(path).expanduser().is_file():
            return Path(path).expanduser()
    return None


def trial_status(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials per method and status (columns: method, one per status, total)."""
    if trials.empty or "status" not in trials.columns:
        return pd.DataFrame()
    counts = trials.assign(status=trials["status"].fillna("unknown")).pivot_table(
        index="method", columns="status", values="trial_id", aggfunc="count", fill_value=0)
    counts["total"] = counts.sum(axis=1)
    return counts.reset_index()


def failed_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials that did not finish (status other than TERMINATED), with their error's first line."""
    if trials.empty or "status" not in trials.columns:
        return pd.DataFrame()
    bad = trials[trials["status"].ne(tables_mod.OK_STATUS)]
    cols = [c for c in ("run", "trial_id", "method", "seed", "status", "epochs_done", "error") if c in bad.columns]
    out = bad[cols].copy()
    if "error" in out.columns:
        out["error"] = out["error"].map(lambda e: str(e).strip().splitlines()[0][:ERROR_CHARS] if isinstance(e, str)
                                        and e.strip() else e)
    return out.reset_index(drop=True)


def environment(trials: pd.DataFrame) -> pd.DataFrame:
    """Distinct library versions and devices of the trials (columns `<lib>_version`, `device`), with counts."""
    cols = [c for c in trials.columns if str(c).endswith("_version") or str(c) in ("device", "hostname")]
    if trials.empty or not cols:
        return pd.DataFrame()
    table = trials[cols].astype("string").fillna("")
    return table.value_counts().rename("trials").reset_index()


def _spec_yaml(spec: dict) -> str:
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=False).rstrip()


def build_report(tables: RunTables, out_dir: str | Path, benchmark: str | Path | None = None,
                 published: bool | str | Path = True) -> Report:
    """Write report.md, the plots and the tables into `out_dir` and return what was written.

    Files the load skipped (`tables.skipped`) and unreadable `final` files are listed under "Skipped files";
    when nothing readable is left, `NothingToReport` is raised and `out_dir` is not created."""
    out_dir = Path(out_dir)
    notes = list(tables.notes)
    if benchmark is None:
        benchmark = benchmark_from_specs(tables)
        if benchmark is None:
            notes.append("no benchmark table given (--benchmark) or found from the spec: no optimum row")
    elif not Path(benchmark).expanduser().is_file():
        raise FileNotFoundError(f"benchmark table not found: {benchmark}")
    skipped = list(tables.skipped)
    final_lines = final_mod.final_section(tables.runs, tables_mod.md_table, skipped=skipped)
    if skipped and not final_lines and all(tables[t].empty for t in TABLES):
        raise NothingToReport(skipped)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _write_report(tables, out_dir, benchmark, published, notes, skipped, final_lines)
    except BaseException:
        if created:  # no half-written (or empty) report folder of our own left behind
            shutil.rmtree(out_dir, ignore_errors=True)
        raise


def _skipped_lines(skipped: list[Unreadable]) -> list[str]:
    if not skipped:
        return []
    return (["## Skipped files", "",
             f"{len(skipped)} Parquet file(s) could not be read and are left out of everything below:", ""]
            + [f"- `{u.path}`: {u.reason}" for u in skipped] + [""])


def _write_report(tables: RunTables, out_dir: Path, benchmark: str | Path | None, published: bool | str | Path,
                  notes: list[str], skipped: list[Unreadable], final_lines: list[str]) -> Report:
    chosen, sel_notes = tables_mod.selections_frame(tables, benchmark)
    notes += sel_notes
    written = tables_mod.write_paper_tables(tables, out_dir, benchmark=benchmark, published=published)
    made = plots_mod.all_plots(tables, out_dir, benchmark=benchmark)

    lines = [f"# Sweep report: {', '.join(tables.runs)}", ""]
    lines.append(f"Generated {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M UTC} from "
                 + ", ".join(f"`{p}`" for p in tables.runs.values()) + ".")
    lines.append("")
    lines += _skipped_lines(skipped)

    lines += ["## Trials", ""]
    status = trial_status(tables.trials)
    lines.append(tables_mod.md_table(status) if len(status) else "No trials table.\n")
    failed = failed_trials(tables.trials)
    if len(failed):
        lines += [f"**{len(failed)} trial(s) did not finish**; they are left out of the result tables:", "",
                  tables_mod.md_table(failed)]

    note = ""
    if benchmark is not None:  # what the benchmark's columns mean; its class is the run's space's
        try:
            note = open_benchmark_table(benchmark, tables_space(tables)).report_note
        except ValueError as err:  # no trials and no space in the spec: the columns are the data's own
            notes.append(str(err))
    lines += ["## Results", "",
              "Mean ± std (sample std, ddof=1) over seeds of the ground-truth accuracy (%) of the chosen "
              f"architecture. {note + ' ' if note else ''}"
              "'–': not available (e.g. the benchmark table lacks that column).", ""]
    main_table = ""
    if not written:
        lines.append("No selections and no finished trials with a final architecture: no result table.\n")
    for i, (rule, paths) in enumerate(written.items()):
        text = paths["md"].read_text()
        main_table = main_table or text
        if i:  # the published rows once (under the first rule), not again under every rule
            rows = pd.read_csv(paths["csv"])
            rows = rows[rows["kind"] != "published"]
            text = tables_mod.to_markdown(rows, f"Selection rule {rule}: {tables_mod.rule_title(rule)}") + (
                "\nPublished rows: see the first table (and the .csv/.tex files).\n")
        lines += [f"### {rule}", "", text,
                  f"Files: [{paths['csv'].name}]({paths['csv'].name}), [{paths['tex'].name}]({paths['tex'].name})",
                  ""]

    lines += arch_mod.section(chosen, tables_mod.run_space(chosen), plots_mod.proxy_columns(tables.samples),
                              out_dir, tables_mod.md_table)
    tradeoff = tradeoff_mod.section(tables, out_dir, benchmark, tables_mod.md_table, selections=chosen)
    lines += tradeoff.lines
    lines += final_lines

    lines += ["## Plots", ""]
    for plot in made:
        lines += [f"### {plot.title}", ""]
        if plot.skipped:
            lines += [f"_Skipped: {plot.skipped}._", ""]
            continue
        lines += [f"![{plot.name}]({p.name})" for p in plot.paths] + [""]
        lines += [f"- {n}" for n in plot.notes] + ([""] if plot.notes else [])

    env = environment(tables.trials)
    lines += ["## Environment", ""]
    lines.append(tables_mod.md_table(env) if len(env) else "No library versions recorded in the trials table.\n")

    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]

    lines += ["## Spec", ""]
    for run, spec in tables.specs.items():
        if len(tables.specs) > 1:
            lines += [f"### {run}", ""]
        lines += ["```yaml", _spec_yaml(spec) if spec else "# no spec.yaml", "```", ""]

    path = out_dir / REPORT_FILE
    path.write_text("\n".join(lines))
    return Report(path=path, main_table=main_table, tables=written, plots=made, notes=notes, skipped=skipped,
                  tradeoff=tradeoff)
