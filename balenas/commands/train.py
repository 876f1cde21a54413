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
import sys

from balenas.commands._run import add_run_options, load_checked_spec, print_outcome, run_checked, start_logging


def parse_args(argv: list[str] | None = None, prog: str = "balenas train") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", help="training spec (YAML), e.g. platform/trains/nb201_12ep.yaml")
    p.add_argument("--from", dest="from_sweep", metavar="RUN_DIR",
                   help="train the architectures a finished search sweep selected (its `selections` table)")
    p.add_argument("--rule", help="selection rule to take from --from: argmax, proxy:<name>, rank:<a>+<b> "
                                  "(default: the spec's, else argmax)")
    add_run_options(p, run="training run", checked="data")
    return p.parse_args(argv)


def main(argv: list[str] | None = None, prog: str = "balenas train") -> int:
    """The command (`balenas train`, `python platform/train.py`); returns the exit status."""
    args = parse_args(argv, prog)
    start_logging()
    from trainables.train.driver import run_train, summary_table
    from trainables.train.spec import TrainSpecError, check_train_paths, load_train_spec

    spec = load_checked_spec(
        lambda: load_train_spec(args.spec, from_sweep=args.from_sweep, rule=args.rule, check_paths=False),
        check_train_paths, args, TrainSpecError, kind="training")
    if isinstance(spec, int):
        return spec
    print(f"training {spec.name!r}: {len(spec.trials())} trials ({len(spec.architectures)} architectures x "
          f"{len(spec.seeds)} seeds), protocol {spec.protocol}, {spec.epochs} epochs each")
    result = run_checked(run_train, spec, args)
    if isinstance(result, int):
        return result
    if args.quiet:
        print(summary_table(result.trials))
    print(f"\nresults: {result.run_dir}\n  Parquet tables: train_epochs, final  "
          f"(pandas.read_parquet('{result.run_dir}/final'))")
    print_outcome(result, args, prog, "training(s) failed; see the `error` column of the final table")
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
