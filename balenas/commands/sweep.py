"""Run a sweep: `balenas sweep SPEC.yaml [--storage DIR] [--resume] [--address ADDR] [--no-download]`.

Locally it starts an embedded Ray; with `--address` (e.g. `auto` on a cluster's head under `ray submit`) or
under `ray job submit` (which sets RAY_ADDRESS) it joins the cluster. The spec is validated, and a missing
CIFAR data set downloaded once, before Ray starts. Results: `<storage>/<name>/` (Parquet tables `epochs/`,
`trials/`, ...; read them with pandas.read_parquet).
Exit status: 0 all trials finished, 1 some trials failed, 130 interrupted (finish with --resume), 2 bad input.
"""

from __future__ import annotations

import argparse
import functools

from balenas.commands._run import add_run_options, load_checked_spec, print_outcome, run_checked, start_logging


def parse_args(argv: list[str] | None = None, prog: str = "balenas sweep") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="sweep spec (YAML), e.g. platform/sweeps/quickstart.yaml")
    add_run_options(p, run="sweep", checked="data and benchmark")
    p.add_argument("--no-proxies", action="store_true", help="skip the proxy stage even if the spec has one")
    return p.parse_args(argv)


def main(argv: list[str] | None = None, prog: str = "balenas sweep") -> int:
    args = parse_args(argv, prog)
    start_logging()
    from trainables.sweep.driver import run_sweep, summary_table, watched_bench_column
    from trainables.sweep.spec import SpecError, check_spec_paths, load_spec

    spec = load_checked_spec(lambda: load_spec(args.spec, check_paths=False), check_spec_paths, args, SpecError,
                             kind="sweep")
    if isinstance(spec, int):
        return spec
    print(f"sweep {spec.name!r}: {len(spec.trials())} trials "
          f"({len(spec.methods)} methods x grid x {len(spec.seeds)} seeds), {spec.epochs} epochs each")
    result = run_checked(functools.partial(run_sweep, proxies=not args.no_proxies), spec, args)
    if isinstance(result, int):
        return result
    if args.quiet:
        print(summary_table(result.trials, watched_bench_column(spec)))
    tables = sorted(p.name for p in result.run_dir.iterdir() if p.is_dir() and (p / "_common_metadata").exists())
    print(f"\nresults: {result.run_dir}\n  Parquet tables: {', '.join(tables)}  "
          f"(pandas.read_parquet('{result.run_dir}/<table>'))")
    print_outcome(result, args, prog, "trial(s) failed; see the `error` column of the trials table")
    return result.exit_code
