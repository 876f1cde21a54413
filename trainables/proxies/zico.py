"""ZiCo: per layer, log of the summed inverse coefficient of variation of the weight gradients over mini-batches.

Paper: Li, Yang, Bhardwaj, Marculescu, "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on
Gradients", ICLR 2023 (arXiv 2301.11300). Code: SLDGroup/ZiCo, `ZeroShotProxy/compute_zico.py` (`getgrad`,
`caculate_zico`, `getzico`), as fixed in commit d7076d5 (Feb 2023: `network.zero_grad()` before each batch).

Definition: for each of S mini-batches, the cross-entropy gradient of every Conv2d / Linear weight; for each
weight entry theta, mean_s |g_s(theta)| and std_s g_s(theta) over the S mini-batches; per layer
l, ZiCo_l = log( sum over the layer's entries of mean|g| / std(g) ); the score is sum_l ZiCo_l.

Every choice, and where the paper and the code differ:
- Mini-batches: S = 2, the batch given to `compute` split into two equal contiguous halves (a batch of 128 is
  2 x 64). The authors' `getzico` loops over whatever loader it is given; two batches is the number in the
  authors' NB201 use that we could check (the MeCo authors' `zero-cost-nas/.../zico.py` fixes
  `split_data = 2` over one batch, and AZ-NAS's NB201 reimplementation, `NB201/ZeroShotProxy/
  compute_zico_score.py`, stops after `batch_iter=2` batches of 64). A batch that is odd or smaller than 2 is
  refused (`ProxyFailure`): ZiCo needs two equal mini-batches.
- Gradients per mini-batch, not accumulated: gradients are cleared before each mini-batch (the fixed code;
  the first version, and the MeCo repository's copy of it, forgot `zero_grad`, so its second "sample" was the
  sum of both batches' gradients). Each mini-batch is a separate forward pass, so BatchNorm (train mode)
  uses that mini-batch's statistics.
- Layers: the `weight` of every nn.Conv2d and nn.Linear (no biases, no BatchNorm), as `getgrad`.
- std is the population std (numpy's default ddof=0). Entries whose std is exactly 0 are dropped
  (`np.nonzero(nsr_std)`), and a layer whose remaining sum is 0 (e.g. all of its gradients are identical, or
  zero, in both mini-batches) adds nothing (`if tmpsum == 0: pass`). Natural log (`np.log`).
- A layer without any gradient (not on a path to the loss) is skipped; the authors' code would fail on it.
- Failures (`ProxyFailure`): a batch that cannot be split; non-finite gradients (the authors' code would
  return NaN); no layer left with a non-zero sum, e.g. identical gradients in both mini-batches.
- Computed in float64 from float32 gradients (the authors use float32 numpy arrays).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainables.proxies.base import ProxyFailure, cross_entropy_backward, finite, weight_layers

SPLITS = 2


def layer_value(grads: torch.Tensor) -> float | None:
    """[S, P] gradients of one layer's P weight entries over S mini-batches -> log(sum mean|g| / std g) over the
    entries with non-zero std, or None when that sum is 0 (the layer adds nothing)."""
    g = grads.double()
    std = g.std(dim=0, unbiased=False)
    keep = std != 0
    total = float((g.abs().mean(dim=0)[keep] / std[keep]).sum())
    return None if total == 0 else math.log(total)


def split(inputs: torch.Tensor, targets: torch.Tensor, parts: int = SPLITS):
    """The batch as `parts` equal contiguous mini-batches; ProxyFailure when it does not divide."""
    n = inputs.shape[0]
    if n < parts or n % parts:
        raise ProxyFailure(f"ZiCo needs the batch split into {parts} equal mini-batches; a batch of {n} cannot be "
                           f"(use a multiple of {parts}, e.g. 128 = {parts} x {128 // parts})")
    size = n // parts
    return [(inputs[i * size:(i + 1) * size], targets[i * size:(i + 1) * size]) for i in range(parts)]


def compute(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    batches = split(inputs, targets)
    layers = list(weight_layers(net))
    if not layers:
        raise ProxyFailure("no Conv2d or Linear layer")
    grads: list[list[torch.Tensor | None]] = [[] for _ in layers]
    for x, y in batches:
        cross_entropy_backward(net, x, y)  # clears the gradients first: one mini-batch's gradients each time
        for per_layer, layer in zip(grads, layers):
            g = layer.weight.grad
            per_layer.append(None if g is None else g.detach().flatten().clone())
    net.zero_grad(set_to_none=True)
    total, used = 0.0, 0
    for per_layer in grads:
        if any(g is None for g in per_layer):
            continue
        stacked = torch.stack(per_layer)
        if not bool(torch.isfinite(stacked).all()):
            raise ProxyFailure("non-finite weight gradients")
        value = layer_value(stacked)
        if value is not None:
            total, used = total + value, used + 1
    if not used:
        raise ProxyFailure(f"every layer's weight gradients have zero standard deviation across the {SPLITS} "
                           "mini-batches (or no gradient): ZiCo undefined")
    return finite(total, "zico")
