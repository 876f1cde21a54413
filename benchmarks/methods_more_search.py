"""Short CPU searches of iDARTS, SNAS, GDAS and DrNAS (and any other registered method) on real CIFAR-10,
each followed by the NAS-Bench-201 ground truth of its final argmax genotype and of k architectures sampled
from the final distribution. Prints one markdown row per method (and JSON with --json).

A smoke-scale check that each method runs end to end on real data and lands on a real architecture, not a
reproduction of the published numbers (those need C=16, N=5, 50-250 epochs on a GPU).

    OMP_NUM_THREADS=1 python benchmarks/methods_more_search.py --data-root ../shared/data/cifar10 \
        --benchmark ../shared/data/nb201/nb201_merged.csv --methods idarts snas gdas drnas
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from search_spaces.benchmarks import open_benchmark
from trainables.search.loop import SearchRun

ACC_KEYS = ("bench_cifar10_valid_valid", "bench_cifar10_test", "bench_cifar100_test",
            "bench_imagenet16_120_test")


def parse_params(pairs: list[str]) -> dict:
    """KEY=VALUE pairs -> method hyper-parameters; VALUE is read as JSON (numbers, true/false, strings)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param expects KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def search(method: str, args) -> dict:
    config = {"space": "nb201", "dataset": "cifar10", "data_root": args.data_root, "method": method,
              "method_params": parse_params(args.param),
              "epochs": args.epochs, "steps_per_epoch": args.steps, "batch_size": args.batch, "C": args.C,
              "N": args.N, "seed": args.seed, "device": "cpu", "benchmark": args.benchmark}
    start = time.perf_counter()
    run = SearchRun(config)
    rows = [run.run_epoch() for _ in range(run.total_epochs)]
    elapsed = time.perf_counter() - start
    bench = open_benchmark("nb201", args.benchmark)
    samples = run.distribution.sample(args.samples, seed=args.seed)
    sampled = [bench.record(a)["bench_cifar10_test"] for a in samples]
    last = rows[-1]
    return {"method": method, "genotype": last["genotype"], "seconds": elapsed,
            "steps": sum(r["steps"] for r in rows), "arch_steps": sum(r["arch_steps"] for r in rows),
            "train_acc": last["train_acc"], "valid_acc": last["valid_acc"], "entropy": last["entropy"],
            "max_op_prob": max(max(row) for row in json.loads(last["op_probs"])["edges"]),
            **{k: last[k] for k in ACC_KEYS},
            "sampled_cifar10_test_mean": statistics.fmean(sampled), "sampled_cifar10_test_max": max(sampled),
            "trajectory": [r["genotype"] for r in rows]}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="folder holding cifar-10-batches-py")
    parser.add_argument("--benchmark", required=True, help="NB201 ground-truth table (nb201_merged.csv)")
    parser.add_argument("--methods", nargs="+", default=["idarts", "snas", "gdas", "drnas"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=15, help="weight steps per epoch")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--C", type=int, default=8)
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=100, help="architectures sampled from the final state")
    parser.add_argument("--param", action="append", default=[],
                        help="KEY=VALUE hyper-parameter for every method (repeatable), e.g. arch_lr=0.003")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    results = []
    print("| method | genotype (final argmax) | C10 valid | C10 test | C100 test | IN16 test | "
          "sampled C10 test mean / max | entropy / max p | steps (arch) | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method in args.methods:
        r = search(method, args)
        results.append(r)
        print(f"| {method} | `{r['genotype']}` | {r['bench_cifar10_valid_valid']:.2f} | "
              f"{r['bench_cifar10_test']:.2f} | {r['bench_cifar100_test']:.2f} | "
              f"{r['bench_imagenet16_120_test']:.2f} | {r['sampled_cifar10_test_mean']:.2f} / "
              f"{r['sampled_cifar10_test_max']:.2f} | {r['entropy']:.3f} / {r['max_op_prob']:.3f} | "
              f"{r['steps']} ({r['arch_steps']}) | "
              f"{r['seconds']:.0f} |",
              flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
