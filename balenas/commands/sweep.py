"""Run a sweep: `balenas sweep SPEC.yaml [--storage DIR] [--resume] [--address ADDR] [--no-download]`.

Locally it starts an embedded Ray; with `--address` (e.g. `auto` on a cluster's head under `ray submit`) or
under `ray job submit` (which sets RAY_ADDRESS) it joins the cluster. The spec is validated, and a missing
CIFAR data set downloaded once, before Ray starts. Results: `<storage>/<name>/` (Parquet tables `epochs/`,
`trials/`, ...; read them with pandas.read_parquet).
Exit status: 0 all trials finished, 1 some trials failed, 130 interrupted (finish with --resume), 2 bad input.
"""

from __future__ import annotations

import argparse
import logging


def parse_args(argv: list[str] | None = None, prog: str = "balenas sweep") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="sweep spec (YAML), e.g. platform/sweeps/quickstart.yaml")
    p.add_argument("--storage", help="results folder (default: the spec's `storage`, else ./runs); on a "
                                     "multi-node cluster a folder shared by all nodes")
    p.add_argument("--resume", action="store_true", help="finish an interrupted sweep of the same name")
    p.add_argument("--address", help="Ray cluster to join (e.g. 'auto' on the head node); default: $RAY_ADDRESS "
                                     "if set, else an embedded local Ray")
    p.add_argument("--no-check-paths", action="store_true",
                   help="do not require (or fetch) the data and benchmark here: they exist only on the workers")
    p.add_argument("--no-download", action="store_true",
                   help="never download a missing data set (as `download: false` in the spec): air-gapped clusters")
    p.add_argument("--no-proxies", action="store_true", help="skip the proxy stage even if the spec has one")
    p.add_argument("--num-cpus", type=int, help="CPUs of the embedded local Ray (default: all)")
    p.add_argument("--ray-temp-dir", help="temporary folder of the embedded local Ray (keep the path short)")
    p.add_argument("--quiet", action="store_true", help="no per-iteration progress table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None, prog: str = "balenas sweep") -> int:
    args = parse_args(argv, prog)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from trainables.run_cli import bad_input, load_checked_spec, print_outcome, ray_init_options
    from trainables.spec import check_spec_paths, load_spec
    from trainables.sweep import run_sweep, summary_table, watched_bench_column

    spec = load_checked_spec(lambda: load_spec(args.spec, check_paths=False), check_spec_paths, args)
    if isinstance(spec, int):
        return spec
    print(f"sweep {spec.name!r}: {len(spec.trials())} trials "
          f"({len(spec.methods)} methods x grid x {len(spec.seeds)} seeds), {spec.epochs} epochs each")
    ray_init = ray_init_options(args)
    try:
        result = run_sweep(spec, storage=args.storage, resume=args.resume, address=args.address,
                           ray_init=ray_init, verbose=0 if args.quiet else 1, proxies=not args.no_proxies)
    except (FileExistsError, FileNotFoundError, ValueError, ConnectionError) as err:
        if isinstance(err, OSError) and err.errno is not None and not err.filename:
            raise  # a system error that names no path is no bad input: its traceback says where it arose
        return bad_input(err)
    if args.quiet:
        print(summary_table(result.trials, watched_bench_column(spec)))
    tables = sorted(p.name for p in result.run_dir.iterdir() if p.is_dir() and (p / "_common_metadata").exists())
    print(f"\nresults: {result.run_dir}\n  Parquet tables: {', '.join(tables)}  "
          f"(pandas.read_parquet('{result.run_dir}/<table>'))")
    print_outcome(result, args, prog, "trial(s) failed; see the `error` column of the trials table")
    return result.exit_code
