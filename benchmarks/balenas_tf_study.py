"""BaLeNAS-TF on NB201 with the new zero-cost proxies (issue 24): which selection rule picks the best architecture
from the posterior samples of a (reduced-scale, CPU) balenas search.

Three steps, each a subcommand:

  search  one `balenas` search on NB201 CIFAR-10 through the real loop (`trainables.search.loop.SearchRun`),
          checkpointed after every epoch (resumable: a rerun continues from the last epoch saved); per-epoch
          metrics go to `<checkpoint>.epochs.csv`.
  score   for each sampling seed s in 0..S-1, `dist.sample(K, seed=s)` from the final distribution, plus
          `dist.most_likely()`; the union of distinct architectures is scored once with
          `trainables.proxy_stage.selection.score_architectures` (NB201 C=16, N=5, weights seeded 0, one real
          CIFAR-10 training batch) and appended to a CSV (resumable: architectures already there are skipped).
  report  per seed, the product's own selection rules (`selection.select`: argmax, proxy:<name>, rank:<a>+<b>),
          a random-sample baseline (mean over the seed's samples) and the oracle (best sample); a markdown table
          of NB201 test accuracy (CIFAR-10, CIFAR-100, ImageNet16-120; 200 epochs) mean +- std over seeds, how
          often each rule picked the best of its seed's samples (ties count), and each proxy's Spearman with
          CIFAR-10 test accuracy over the scored pool.

    OMP_NUM_THREADS=1 nice python benchmarks/balenas_tf_study.py search --checkpoint runs/balenas_tf_study/search.pt
    OMP_NUM_THREADS=1 nice python benchmarks/balenas_tf_study.py score --checkpoint runs/balenas_tf_study/search.pt
    python benchmarks/balenas_tf_study.py report --checkpoint runs/balenas_tf_study/search.pt

Data: $BALENAS_DATA_ROOT (CIFAR-10) or --data-root; ground truth: the packaged NB201 benchmark.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = REPO / "runs" / "balenas_tf_study" / "search.pt"
DEFAULT_SCORES = REPO / "benchmarks" / "results" / "balenas_tf_nb201_scores.csv"
#: the proxies the study scores when registered (grasp is left out: a double backward, the slowest proxy)
DEFAULT_NAMES = ("naswot", "synflow", "jacob_cov", "meco", "zico", "swap", "zen")
NEW = ("meco", "zico", "swap", "zen")
#: rank-combination rules (kept when every member is scored)
DEFAULT_COMBINE = (
    ("naswot", "synflow"),
    ("meco", "zico"),
    ("swap", "zico"),
    ("meco", "swap"),
    ("naswot", "meco"),
    ("naswot", "zico"),
    ("meco", "zico", "swap", "zen"),
    ("naswot", "synflow", "meco", "zico"),
    ("naswot", "synflow", "jacob_cov", "meco", "zico", "swap", "zen"),
)
#: report column -> (benchmark data set, split)
ACCURACY = {"C10 test": ("cifar10", "test"), "C100 test": ("cifar100", "test"),
            "IN16 test": ("ImageNet16-120", "test")}


def _data_root(value: str | None) -> str | None:
    return value or os.environ.get("BALENAS_DATA_ROOT")


def _load_avg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# ----- search ---------------------------------------------------------------------------------------------------
def search_config(args: argparse.Namespace) -> dict:
    return {"method": "balenas", "space": "nb201", "dataset": "cifar10", "data_root": _data_root(args.data_root),
            "download": False, "C": args.C, "N": args.N, "batch_size": args.batch_size, "epochs": args.epochs,
            "train_size": args.train_size, "device": "cpu", "seed": args.seed, "benchmark": "nb201"}


def cmd_search(args: argparse.Namespace) -> None:
    from trainables.search.loop import SearchRun

    ckpt = Path(args.checkpoint)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    log_path = ckpt.with_suffix(".epochs.csv")
    if ckpt.is_file():
        run = SearchRun.from_checkpoint(ckpt)
        print(f"resuming {ckpt} at epoch {run.epoch}/{run.total_epochs}", flush=True)
    else:
        run = SearchRun(search_config(args))
        print(f"new search: {json.dumps(search_config(args))}", flush=True)
    print(f"steps/epoch {run.steps_per_epoch}, train {len(run.train)}, valid {len(run.valid)}, "
          f"load {_load_avg()}", flush=True)
    start = time.perf_counter()
    while not run.done:
        m = run.run_epoch()
        run.save(ckpt)
        row = {k: m.get(k) for k in ("epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "entropy",
                                      "epoch_time_s", "bench_cifar10_test", "genotype")}
        new = not log_path.is_file()
        with log_path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)
        print(f"epoch {m['epoch']}/{run.total_epochs}: {m['epoch_time_s']:.1f}s train_acc {m['train_acc']:.1f} "
              f"valid_acc {m['valid_acc']:.1f} entropy {m['entropy']:.4f} argmax C10 "
              f"{m.get('bench_cifar10_test', float('nan')):.2f} load {_load_avg()}", flush=True)
    print(f"search done in {time.perf_counter() - start:.0f}s this session; checkpoint {ckpt}", flush=True)


# ----- samples ----------------------------------------------------------------------------------------------------
def draw_samples(checkpoint: str | Path, seeds: int, k: int) -> tuple[dict[int, list[str]], str]:
    """{seed: its k sampled architectures} and the distribution's most likely architecture."""
    from trainables.proxy_stage.selection import sample_trial

    draws: dict[int, list[str]] = {}
    argmax = None
    for s in range(seeds):
        out = sample_trial(str(checkpoint), k, s)
        if out.get("error"):
            raise SystemExit(f"cannot sample: {out['error']}")
        draws[s], argmax = list(out["samples"]), out["argmax"]
    return draws, argmax


def pool(draws: dict[int, list[str]], argmax: str) -> list[str]:
    """Distinct architectures of all draws and the argmax, in first-seen order."""
    return list(dict.fromkeys([a for s in sorted(draws) for a in draws[s]] + [argmax]))


def cmd_score(args: argparse.Namespace) -> None:
    import torch

    from trainables import proxies
    from trainables.proxies.batch import proxy_batch
    from trainables.proxy_stage.selection import score_architectures

    names = [n for n in args.names if n in proxies.names()]
    skipped = [n for n in args.names if n not in names]
    if skipped:
        print(f"not registered, skipped: {', '.join(skipped)}", flush=True)
    draws, argmax = draw_samples(args.checkpoint, args.seeds, args.samples)
    archs = pool(draws, argmax)
    out = Path(args.scores)
    done: set[str] = set()
    if out.is_file():
        prev = pd.read_csv(out)
        missing = [n for n in names if n not in prev.columns]
        if missing:
            raise SystemExit(f"{out} lacks the proxies {missing}: score into another file")
        done = set(prev.arch)
    todo = [a for a in archs if a not in done]
    print(f"{len(archs)} distinct architectures ({args.seeds} seeds x {args.samples} samples + argmax); "
          f"{len(done & set(archs))} already scored, {len(todo)} to score; proxies {names}; load {_load_avg()}",
          flush=True)
    if not todo:
        return
    torch.set_num_threads(1)
    root = _data_root(args.data_root)
    # SWAP on its authors' batch (16 images, 32 weight draws: `trainables/proxies/swap.py`), the others on --batch-size
    passes = [(n, args.batch_size) for n in [[n for n in names if n != "swap"]] if n]
    if "swap" in names:
        passes.append((["swap"], args.swap_batch_size))
    batches = {b: proxy_batch("cifar10", root, b, download=False) for _, b in passes}
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    fields = None
    if args.reverse:
        todo = todo[::-1]
    for i, arch in enumerate(todo, 1):
        if arch in _scored(args.skip_scored):  # another process (scoring the pool from the other end) has it
            print(f"the other scorer has reached this one: stop after {i - 1}", flush=True)
            break
        t0 = time.perf_counter()
        row: dict = {}
        for group, b in passes:
            row.update(score_architectures([arch], *batches[b], group, space="nb201", seed=0,
                                           channels_last=args.channels_last)[0])
        row["seconds"] = round(time.perf_counter() - t0, 3)
        fields = fields or list(row)
        new = not out.is_file()
        with out.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            if new:
                w.writeheader()
            w.writerow(row)
        if i % 10 == 0 or i == len(todo):
            el = time.perf_counter() - start
            print(f"scored {i}/{len(todo)} in {el:.0f}s ({el / i:.2f} s/arch, eta {el / i * (len(todo) - i):.0f}s) "
                  f"load {_load_avg()}", flush=True)


def _scored(paths: Sequence[str]) -> set[str]:
    return {a for p in paths if Path(p).is_file() for a in pd.read_csv(p, usecols=["arch"]).arch}


def read_scores(paths: Sequence[str]) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p) for p in paths if Path(p).is_file()], ignore_index=True)


# ----- report -----------------------------------------------------------------------------------------------------
def rank_groups(names: Sequence[str], combine: Sequence[Sequence[str]] = DEFAULT_COMBINE) -> list[list[str]]:
    """The rank-combination rules whose members are all among `names`, then all of `names` together (the proxy
    stage's default rule when `combine` is unset) unless already there."""
    groups = [list(g) for g in combine if all(n in names for n in g)]
    if len(names) > 1 and sorted(names) not in [sorted(g) for g in groups]:
        groups.append(list(names))
    return groups


def seed_rows(samples: Sequence[str], argmax: str, scores: pd.DataFrame, names: Sequence[str],
              groups: Sequence[Sequence[str]], acc: dict[str, float]) -> list[dict]:
    """One seed: the architecture each rule picks (`selection.select` on the seed's scored samples), its accuracy
    (`acc`: arch -> CIFAR-10 test accuracy) and whether it is the best of the seed's samples (ties count); plus the
    random-sample baseline (mean accuracy of the samples, `hit` = the share of samples that are the best) and the
    oracle."""
    from trainables.proxy_stage.selection import select

    frame = pd.DataFrame({"arch": list(samples)}).merge(scores, on="arch", how="left")
    best = max(acc[a] for a in samples)
    rows = []
    for r in select(frame, names, groups, argmax=argmax):
        a = r["arch"]
        rows.append({"rule": r["rule"], "arch": a, "hit": a is not None and acc[a] >= best})
    distinct = list(dict.fromkeys(samples))
    rows.append({"rule": "random sample", "arch": None,
                 "hit": float(np.mean([acc[a] >= best for a in samples]))})
    rows.append({"rule": "oracle (best sample)", "arch": max(distinct, key=lambda a: acc[a]), "hit": True})
    return rows


def _spearman(x: pd.Series, y: pd.Series) -> float:
    ok = x.notna() & y.notna()
    return float(x[ok].rank().corr(y[ok].rank())) if ok.sum() > 2 else math.nan


def build_report(draws: dict[int, list[str]], argmax: str, scores: pd.DataFrame, names: Sequence[str],
                 groups: Sequence[Sequence[str]], bench) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-seed selections with accuracies, per-rule summary)."""
    archs = pool(draws, argmax)
    truth = {col: {a: bench.query(a, ds, split, 200) for a in archs} for col, (ds, split) in ACCURACY.items()}
    c10 = truth["C10 test"]
    rows = []
    for s, samples in sorted(draws.items()):
        for r in seed_rows(samples, argmax, scores, names, groups, c10):
            if r["rule"] == "random sample":
                accs = {col: float(np.mean([t[a] for a in samples])) for col, t in truth.items()}
            else:
                accs = {col: (t[r["arch"]] if r["arch"] is not None else math.nan) for col, t in truth.items()}
            rows.append({"seed": s, **r, **accs})
    per_seed = pd.DataFrame(rows)
    order = list(dict.fromkeys(per_seed.rule))
    summary = []
    for rule in order:
        g = per_seed[per_seed.rule == rule]
        summary.append({"rule": rule, **{col: (g[col].mean(), g[col].std(ddof=1) if len(g) > 1 else 0.0)
                                         for col in ACCURACY},
                        "best of seed": g.hit.astype(float).sum(), "distinct picks": g.arch.nunique(), "n": len(g)})
    return per_seed, pd.DataFrame(summary)


def print_table(summary: pd.DataFrame, S: int, hit_label: str) -> None:
    """The rule table (markdown); rules ordered as given, the best real rule(s) by mean CIFAR-10 test accuracy in
    bold (ties within 0.005 all bold), then by hits."""
    real = summary[~summary.rule.isin(["oracle (best sample)", "random sample"])]
    means = real["C10 test"].map(lambda v: v[0])
    top = set(real.rule[means >= means.max() - 0.005])
    print(f"| rule | C10 test | C100 test | IN16 test | {hit_label} | distinct picks |")
    print("|---|---|---|---|---|---|")
    for _, r in summary.iterrows():
        cells = " | ".join(f"{r[c][0]:.2f} ± {r[c][1]:.2f}" for c in ACCURACY)
        hits = f"{r['best of seed']:.1f}/{S}" if r.rule == "random sample" else f"{int(r['best of seed'])}/{S}"
        picks = "-" if r.rule == "random sample" else str(int(r["distinct picks"]))
        print(f"| {f'**{r.rule}**' if r.rule in top else r.rule} | {cells} | {hits} | {picks} |")
    ranked = real.assign(mean=means).sort_values(["mean", "best of seed"], ascending=False)
    print("\nbest rule(s) by mean CIFAR-10 test accuracy: " + ", ".join(sorted(top))
          + "; ranking: " + ", ".join(f"{r.rule} {r['mean']:.2f}" for _, r in ranked.head(6).iterrows()))
    print("(random sample: mean over the samples; its count is the expected number of best picks of a uniform pick)")


def cmd_report(args: argparse.Namespace) -> None:
    from search_spaces.benchmarks import open_benchmark

    bench = open_benchmark("nb201")
    draws, argmax = draw_samples(args.checkpoint, args.seeds, args.samples)
    scores = read_scores([args.scores, *args.skip_scored])
    names = [n for n in args.names if n in scores.columns]
    scored = set(scores.arch)
    complete = {s: a for s, a in draws.items() if set(a) <= scored}
    if not complete:
        raise SystemExit("no seed has all its samples scored yet: run `score` first")
    if len(complete) < len(draws):
        print(f"(only the {len(complete)} of {len(draws)} seeds whose samples are all scored: "
              f"{sorted(complete)}; rerun `score` to finish the rest)\n")
    draws = complete
    scores = scores.drop_duplicates("arch")
    groups = rank_groups(names)
    per_seed, summary = build_report(draws, argmax, scores, names, groups, bench)
    print(f"## {len(draws)} sampling seeds x {args.samples} samples (+ argmax), {len(pool(draws, argmax))} distinct "
          f"architectures\n")
    print_table(summary, len(draws), "best of seed's samples")
    if args.resample:
        # every draw of every seed is an independent posterior sample, so a random K-subset of them is another
        # seed's worth of K posterior samples: R such subsets give a lower-variance estimate (overlapping subsets,
        # so the R "seeds" are not independent; the std is the spread of one K-sample selection)
        rng = np.random.default_rng(0)
        every = [a for s in sorted(draws) for a in draws[s]]
        resampled = {r: [every[i] for i in rng.choice(len(every), args.samples, replace=False)]
                     for r in range(args.resample)}
        _, rsummary = build_report(resampled, argmax, scores, names, groups, bench)
        print(f"\n## {args.resample} random {args.samples}-subsets of those {len(every)} posterior draws\n")
        print_table(rsummary, args.resample, "best of subset")

    arch_pool = [a for a in pool(draws, argmax) if a in scored]
    frame = scores.set_index("arch").loc[arch_pool]
    acc = pd.Series({a: bench.query(a, "cifar10", "test", 200) for a in arch_pool})
    print(f"\n## Spearman with CIFAR-10 test accuracy over the pool ({len(arch_pool)} architectures)\n")
    print("| proxy | Spearman | failed |")
    print("|---|---|---|")
    for n in names:
        v = frame[n].astype(float)
        print(f"| {n} | {_spearman(v, acc):.3f} | {int(v.isna().sum())} |")
    print(f"\npool C10 test accuracy: mean {acc.mean():.2f}, min {acc.min():.2f}, max {acc.max():.2f}; "
          f"argmax {argmax} -> {bench.query(argmax, 'cifar10', 'test', 200):.2f}")
    all_best = bench.column("cifar10", "test", 200)
    print(f"NB201 CIFAR-10 test accuracy over all 15,625: mean {np.nanmean(all_best):.2f}, "
          f"max {np.nanmax(all_best):.2f}")
    if args.per_seed:
        per_seed.to_csv(args.per_seed, index=False)
        print(f"per-seed picks: {args.per_seed}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    common.add_argument("--data-root", default=None, help="CIFAR-10 folder (default $BALENAS_DATA_ROOT)")
    sampling = argparse.ArgumentParser(add_help=False)
    sampling.add_argument("--seeds", type=int, default=20, help="sampling seeds 0..S-1")
    sampling.add_argument("--samples", type=int, default=10, help="K architectures drawn per seed")
    sampling.add_argument("--scores", default=str(DEFAULT_SCORES))
    sampling.add_argument("--names", nargs="+", default=list(DEFAULT_NAMES))
    sampling.add_argument("--skip-scored", nargs="*", default=[], metavar="CSV",
                          help="score: skip (and stop at) architectures in these CSVs (a second scorer's); "
                               "report: read them too")

    s = sub.add_parser("search", parents=[common], help="the balenas search (resumable)")
    s.add_argument("--C", type=int, default=8)
    s.add_argument("--N", type=int, default=1)
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--epochs", type=int, default=20)
    s.add_argument("--train-size", type=int, default=2000)
    s.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("score", parents=[common, sampling], help="score the sampled pool (resumable)")
    c.add_argument("--batch-size", type=int, default=64)
    c.add_argument("--swap-batch-size", type=int, default=16, help="SWAP's batch (its authors' 16)")
    c.add_argument("--channels-last", action="store_true")
    c.add_argument("--reverse", action="store_true", help="score the pool from its end (a second process)")
    r = sub.add_parser("report", parents=[common, sampling], help="selection rules vs NB201 accuracy")
    r.add_argument("--per-seed", default=None, help="write the per-seed picks to this CSV")
    r.add_argument("--resample", type=int, default=0, metavar="R",
                   help="also R random K-subsets of all seeds' draws (a lower-variance estimate)")
    args = p.parse_args(argv)
    {"search": cmd_search, "score": cmd_score, "report": cmd_report}[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
