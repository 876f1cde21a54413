"""Score every architecture of a space (e.g. NB201's 15,625) or a list from a file with chosen proxies into
Parquet.

    balenas score-space OUT_DIR --names naswot synflow            # data: $BALENAS_DATA_ROOT or the user cache
    balenas score-space OUT_DIR --archs archs.txt --names naswot --size C=4 N=1 --batch-size 8 --data-root DIR

`--size` sets the space's network size keys (NB201: C, N; default: the space's `proxy_size`).

Resumable: rerun the same command and architectures already under OUT_DIR are skipped. On a cluster run it
with `ray job submit -- python platform/score_space.py ... --address auto`.
"""

from __future__ import annotations

import argparse

from balenas.commands._run import connect_ray, size_args, start_logging


def main(argv: list[str] | None = None, prog: str = "balenas score-space") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="output folder (Parquet part files; existing ones are resumed)")
    parser.add_argument("--names", nargs="+", default=["naswot"], help="proxies to score")
    parser.add_argument("--archs", help="file with one architecture per line (default: the whole space)")
    parser.add_argument("--space", default=None, help="a registered search space (default: the registry's)")
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--data-root", default=None,
                        help="folder holding the data set files (default: $BALENAS_DATA_ROOT, else the per-user "
                             "cache, where missing CIFAR data are downloaded)")
    parser.add_argument("--no-download", action="store_true", help="never download a missing data set")
    parser.add_argument("--data-split", default="train")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-seed", type=int, default=None, help="None: the first images of the split")
    parser.add_argument("--seed", type=int, default=0, help="weight-initialisation seed of every network")
    parser.add_argument("--size", nargs="+", default=[], metavar="KEY=VALUE",
                        help="network size keys of the space, e.g. C=16 N=5 (default: the space's proxy_size)")
    parser.add_argument("--archs-per-task", type=int, default=50)
    parser.add_argument("--flush-every", type=int, default=500, help="rows per Parquet part file")
    parser.add_argument("--cpus-per-task", type=float, default=1.0)
    parser.add_argument("--gpus-per-task", type=float, default=0.0)
    parser.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray")
    parser.add_argument("--channels-last", action="store_true",
                        help="NHWC memory layout for networks and inputs (faster on CPUs and with GPU tensor cores)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    start_logging()

    from search_spaces.data.datasets import dataset_spec
    from search_spaces.data.download import DownloadError
    from search_spaces.space import DEFAULT_SPACE, get_space
    from trainables import proxies
    from trainables.proxies.batch import proxy_batch
    from trainables.proxy_stage.score_space import read_arch_list, score_space

    names = proxies.validate_names(args.names)
    args.space = args.space or DEFAULT_SPACE
    try:
        size = get_space(args.space).sizes("proxy", size_args(args.size), field="--size")
    except ValueError as err:
        parser.error(str(err))
    archs = read_arch_list(args.archs, args.space) if args.archs else None
    try:
        batch = proxy_batch(args.dataset, args.data_root, args.batch_size, seed=args.data_seed,
                            split=args.data_split, download=not args.no_download)
    except (FileNotFoundError, DownloadError) as err:
        parser.exit(2, f"error: {err}\n")
    connect_ray(args)
    counts = score_space(args.out, batch, names, archs=archs, space=args.space,
                         num_classes=dataset_spec(args.dataset).num_classes, size=size, seed=args.seed,
                         archs_per_task=args.archs_per_task, flush_every=args.flush_every,
                         cpu=args.cpus_per_task, gpu=args.gpus_per_task, progress=not args.no_progress,
                         channels_last=args.channels_last)
    print(f"{counts['scored']} architectures scored, {counts['skipped']} already in {args.out}")
    return 0


