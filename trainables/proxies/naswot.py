"""NASWOT: log-determinant of the binary activation-code kernel.

Mellor et al., "Neural Architecture Search without Training", ICML 2021 (the second arXiv version of
2006.04647). Each ReLU turns an input into a binary code (pre-activation > 0); for a batch of B inputs,
K[i, j] = sum over ReLUs of the number of units where inputs i and j agree (c_i.c_j + (1-c_i).(1-c_j)),
and the score is log|K| (slogdet). As in the authors' code (BayesWatch/nas-without-training), only ReLUs
that the backward pass from the output reaches are counted (their `visited_backwards` flag); we find
those by walking the autograd graph from the output instead of running the backward pass, which gives
the same set at no extra compute. BatchNorm uses batch statistics (train mode), as in that code.
"""

from __future__ import annotations

import torch
from torch import nn

from trainables.proxies.base import ProxyFailure, finite, hooks_removed


def _reachable(root) -> set:
    """Autograd nodes a backward pass from `root` would visit."""
    seen, stack = set(), [root]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(fn for fn, _ in node.next_functions)
    return seen


def code_kernel(codes: torch.Tensor) -> torch.Tensor:
    """[B, D] binary codes -> [B, B] agreement counts c_i.c_j + (1-c_i).(1-c_j), in float64.

    Written as 2 c c^T - |c_i| - |c_j| + D: one matmul; exact because counts stay below 2**24.
    """
    c = codes.float()
    ones = c.sum(dim=1, keepdim=True)
    k = 2.0 * (c @ c.t()) - ones - ones.t() + c.shape[1]
    return k.double()


def compute(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    records: list[tuple[torch.Tensor, torch.Tensor]] = []

    def hook(module, args, output):
        x = args[0] if isinstance(args, tuple) else args
        records.append((code_kernel((x.detach() > 0).flatten(1)), output))

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    with hooks_removed(handles):
        x = inputs.detach().clone().requires_grad_(True)
        y = net(x)
    if y.grad_fn is None:
        raise ProxyFailure("network output does not depend on its input or weights")
    live = _reachable(y.grad_fn)
    kernel = None
    for k, out in records:
        if out.grad_fn is not None and out.grad_fn in live:
            kernel = k if kernel is None else kernel + k
    if kernel is None:
        raise ProxyFailure("no ReLU on a path to the output")
    sign, logdet = torch.linalg.slogdet(kernel)
    if float(sign) <= 0:
        raise ProxyFailure(f"activation-code kernel is singular (sign {float(sign):g}): identical codes")
    return finite(logdet, "log-determinant")
