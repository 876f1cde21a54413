"""Forward + backward time of NB201 networks on this CPU: a derived network and the supernet.

Derived network: `search_spaces.nb201.network(arch)` for NB201's example architecture. Supernet:
`NB201SuperNet` driven by softmax edge weights of a trainable alpha (so backward reaches alpha too, as in a
DARTS step). C=16, N=5, batch 64 of 32x32 images, 10 classes; each with the default (NCHW) and the
channels_last memory format. Prints ms/iter (median of the timed iterations).

    python benchmarks/bench_forward.py [--threads 2] [--iters 10] [--warmup 2] [--batch 64] [--models derived]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from search_spaces.nb201 import NUM_EDGES, OPS, NB201SuperNet, network

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def time_step(step, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def derived_step(model, x, y):
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
    return step


def supernet_step(model, x, y, alpha):
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        model.zero_grad(set_to_none=True)
        alpha.grad = None
        weights = {"edges": torch.softmax(alpha, dim=-1)}
        loss_fn(model(x, weights), y).backward()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--C", type=int, default=16)
    parser.add_argument("--N", type=int, default=5)
    parser.add_argument("--models", default="derived,supernet", help="comma-separated: derived, supernet")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.batch,))
    alpha = (1e-3 * torch.randn(NUM_EDGES, len(OPS))).requires_grad_()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, C={args.C}, N={args.N}, "
          f"median of {args.iters} iterations after {args.warmup} warm-up")
    results = {}
    builders = {"derived": lambda: network(ARCH, num_classes=10, C=args.C, N=args.N),
                "supernet": lambda: NB201SuperNet(C=args.C, N=args.N, num_classes=10)}
    formats = {"NCHW": torch.contiguous_format, "channels_last": torch.channels_last}
    for name in args.models.split(","):
        for label, fmt in formats.items():
            xin = x.contiguous(memory_format=fmt)
            model = builders[name]().to(memory_format=fmt).train()
            step = derived_step(model, xin, y) if name == "derived" else supernet_step(model, xin, y, alpha)
            results[(name, label)] = ms = time_step(step, args.warmup, args.iters)
            print(f"{name:9s} {label:14s} forward+backward {ms:8.1f} ms/iter", flush=True)
        ratio = results[(name, "channels_last")] / results[(name, "NCHW")]
        print(f"{name:9s} channels_last / NCHW = {ratio:.2f}", flush=True)
    if len(results) == 4:
        print(f"supernet / derived (NCHW) = {results[('supernet', 'NCHW')] / results[('derived', 'NCHW')]:.1f}")


if __name__ == "__main__":
    main()
