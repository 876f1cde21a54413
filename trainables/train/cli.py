"""Train chosen architectures from scratch: `balenas train SPEC.yaml [--from RUN --rule RULE]` (= platform/train.py).

The spec names a protocol preset (darts-cifar, darts-imagenet, nb201, nb201-12) with overrides, the data and
the architectures x seeds, or takes the architectures from a finished search sweep (`--from runs/<sweep>
--rule proxy:naswot`: each distinct architecture the rule chose, once per seed). Locally it starts an embedded
Ray; with `--address` or under `ray job submit` it joins the cluster. Results: `<storage>/<name>/` with the
Parquet tables `train_epochs/` and `final/`. Exit status: 0 all trainings finished, 1 some failed (see
`final.error`), 130 interrupted (finish with --resume), 2 bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys


def parse_args(argv: list[str] | None = None, prog: str = "balenas train") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="training spec (YAML), e.g. platform/trains/nb201_12ep.yaml")
    p.add_argument("--from", dest="from_sweep", metavar="RUN_DIR",
                   help="train the architectures a finished search sweep selected (its `selections` table)")
    p.add_argument("--rule", help="selection rule to take from --from: argmax, proxy:<name>, rank:<a>+<b> "
                                  "(default: the spec's, else argmax)")
    p.add_argument("--storage", help="results folder (default: the spec's `storage`, else ./runs)")
    p.add_argument("--resume", action="store_true", help="finish an interrupted training run of the same name")
    p.add_argument("--address", help="Ray cluster to join (e.g. 'auto'); default: $RAY_ADDRESS, else local Ray")
    p.add_argument("--no-check-paths", action="store_true",
                   help="do not require (or fetch) the data here: they exist only on the workers")
    p.add_argument("--no-download", action="store_true", help="never download a missing data set")
    p.add_argument("--num-cpus", type=int, help="CPUs of the embedded local Ray (default: all)")
    p.add_argument("--ray-temp-dir", help="temporary folder of the embedded local Ray (keep the path short)")
    p.add_argument("--quiet", action="store_true", help="no per-iteration progress table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None, prog: str = "balenas train") -> int:
    """The command (`balenas train`, `python platform/train.py`); returns the exit status."""
    args = parse_args(argv, prog)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from trainables.run_cli import bad_input, load_checked_spec, print_outcome, ray_init_options
    from trainables.train.driver import run_train, summary_table
    from trainables.train.spec import check_train_paths, load_train_spec

    spec = load_checked_spec(
        lambda: load_train_spec(args.spec, from_sweep=args.from_sweep, rule=args.rule, check_paths=False),
        check_train_paths, args)
    if isinstance(spec, int):
        return spec
    print(f"training {spec.name!r}: {len(spec.trials())} trials ({len(spec.architectures)} architectures x "
          f"{len(spec.seeds)} seeds), protocol {spec.protocol}, {spec.epochs} epochs each")
    ray_init = ray_init_options(args)
    try:
        result = run_train(spec, storage=args.storage, resume=args.resume, address=args.address,
                           ray_init=ray_init, verbose=0 if args.quiet else 1)
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        return bad_input(err)
    if args.quiet:
        print(summary_table(result.trials))
    print(f"\nresults: {result.run_dir}\n  Parquet tables: train_epochs, final  "
          f"(pandas.read_parquet('{result.run_dir}/final'))")
    print_outcome(result, args, prog, "training(s) failed; see the `error` column of the final table")
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
