"""Run the proxy stage (BaLeNAS-TF) on an existing sweep directory.

    balenas proxies RUN_DIR [--samples K] [--names naswot synflow] [--address auto] [--no-download]

Reads RUN_DIR/spec.yaml and the `trials` table, samples K architectures from every trial's final
distribution, scores them, and writes the `samples` and `selections` tables into RUN_DIR.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from balenas.commands._run import connect_ray, start_logging


def main(argv: list[str] | None = None, prog: str = "balenas proxies") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a sweep's run directory (holds spec.yaml and the trials table)")
    parser.add_argument("--samples", type=int, default=None, help="architectures sampled per trial")
    parser.add_argument("--names", nargs="+", default=None, help="proxies to score (default: the spec's)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--archs-per-task", type=int, default=None)
    parser.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray")
    parser.add_argument("--no-download", action="store_true", help="never download a missing data set")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    start_logging()

    import yaml

    from trainables.proxy_stage.driver import run_proxy_stage
    from trainables.sweep.spec import stored_proxy_stage

    run_dir = Path(args.run_dir)
    spec_path = run_dir / "spec.yaml"
    if not spec_path.is_file():
        parser.error(f"{spec_path} not found: RUN_DIR must be a sweep's run directory")
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    if not isinstance(spec, dict):
        parser.error(f"{spec_path} does not hold a mapping")
    if args.no_download:
        spec["download"] = False
    stage = stored_proxy_stage(spec, source=str(spec_path), samples=args.samples, names=args.names,
                               batch_size=args.batch_size, archs_per_task=args.archs_per_task)
    connect_ray(args)
    selections = run_proxy_stage(run_dir, stage, progress=not args.no_progress)
    cols = [c for c in selections.columns if c in ("trial_id", "method", "seed", "rule", "arch")
            or c.startswith("bench_") and c.endswith("_test")]
    print(selections[cols].to_string(index=False))
    return 0
