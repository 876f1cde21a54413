"""MeCo: sum over layers of the minimum eigenvalue of the channel correlation matrix of one image's features.

Paper: Jiang, Wang, Bie, "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum Eigenvalue of
Correlation", NeurIPS 2023 (openreview KFm2lZiI7n). Code: HamsterMimi/MeCo, `correlation/NAS_Bench_201.py`
(`get_score`, the script behind the paper's NAS-Bench-201 correlations) and
`zero-cost-nas/foresight/pruners/measures/meco.py` (the same hook, used by their search pipelines on the
pipeline's batch).

Definition, as in that code: one forward pass, no labels, no gradient. A forward hook on *every* module
(`net.modules()`, so the network itself and every container too) takes the module's output for the first image
of the batch, `f = output[0]`, reshapes it to [channels, positions] (`f.reshape(f.shape[0], -1)`: rows =
channels, columns = the H*W spatial positions of that one image), forms the channels' Pearson correlation
matrix, and takes its smallest eigenvalue; the score is the sum over all hooked modules.

Every choice, and where the paper and the code differ:
- Input: ONE image. The paper says "one random data"; the authors' NB201 correlation script loads a batch of
  ONE CIFAR training image (`--batch_size 1`, random crop + flip, seed 42); a later copy of the measure
  (`correlation/foresight/pruners/measures/meco.py`, Jan 2024) feeds `torch.randn(1, 3, 64, 64)` instead, and
  the search-pipeline copy reads `output[0]` (the first image's features) of a whole batch. We follow the
  correlation script: the first image of the given batch, `inputs[:1]`, is the only image the network sees
  (so BatchNorm's batch statistics are that image's per-channel spatial statistics, exactly as with their
  batch of 1). The batch size of a run therefore does not change MeCo; which image is first does.
- Layers: every module whose output is a tensor, as the authors' `named_modules()` loop; a container is
  counted again with the output of its last child (e.g. a ReLU-Conv-BN Sequential repeats its BN's value),
  and the network itself is hooked too. The multiplicities follow the module tree: the authors' NB201 model
  (zero-cost-nas `nasbench2`) wraps each ReLU-Conv-BN Sequential in one more module than our
  xautodl-style `NB201Network`, so the exact sum differs slightly; counting each output tensor once, or leaf
  modules only, ranks 300 NB201 architectures as this rule does (Spearman 0.997 / 0.999, benchmarks/proxies.md).
  Modules returning a tuple or other non-tensor are skipped (the authors' `data_output[0]` would take the
  tuple's first element; no NB201 / DARTS / NB101 module of ours returns one).
- Outputs with fewer than 2 positions per channel (logits, pooled vectors) have no channel correlation: the
  authors' code turns their all-NaN matrix into zeros (eigenvalue 0), so they add 0; we skip them, which adds
  the same 0. A one-channel output is skipped too (the authors' `eig` fails on its 0-d correlation, which makes
  their whole score NaN).
- Constant channels (e.g. the all-zero output of `none`, a dead ReLU channel): Pearson correlation is 0/0;
  the authors set NaN/inf entries to 0, which leaves a zero row and column, so that layer's minimum
  eigenvalue is 0. We do the same (a rank-deficient matrix: smallest eigenvalue 0, up to rounding).
- Eigenvalues: the authors call the general `torch.linalg.eig` in float32 and take the real parts; the
  matrix is symmetric, so we use `eigvalsh` in float64 (same values up to ~1e-7). No scaling factor
  (MeCo_opt's random 8-channel subsample scaled by C/8 is a different, optional variant, not this one).
- BatchNorm in train mode (batch statistics), as the authors' model is never put in eval mode.
- Failures: a non-finite feature map anywhere (the authors would zero its NaNs and report a number) and a
  network with no module giving a feature map of >= 2 channels x >= 2 positions raise `ProxyFailure`.
"""

from __future__ import annotations

import torch
from torch import nn

from trainables.proxies.base import ProxyFailure, finite, hooks_removed


def correlation(features: torch.Tensor) -> torch.Tensor:
    """[C, P] features (C channels observed at P positions) -> [C, C] Pearson correlation in float64, with
    the entries of constant channels set to 0 (the authors' NaN -> 0), diagonal included."""
    x = features.double()
    x = x - x.mean(dim=1, keepdim=True)
    norms = x.norm(dim=1, keepdim=True)
    z = torch.where(norms > 0, x / torch.where(norms > 0, norms, torch.ones_like(norms)), torch.zeros_like(x))
    return z @ z.t()


def layer_value(features: torch.Tensor) -> float:
    """Smallest eigenvalue of the channel correlation matrix of one image's [C, P] feature map."""
    return float(torch.linalg.eigvalsh(correlation(features))[0])


def compute(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    values: list[float] = []
    bad: list[str] = []

    def hook(name: str):
        def record(module, args, output):
            if not isinstance(output, torch.Tensor) or output.dim() < 2:
                return
            first = output[0].detach()
            if not bool(torch.isfinite(first).all()):
                bad.append(name or type(module).__name__)
                return
            feats = first.reshape(first.shape[0], -1)
            if feats.shape[0] >= 2 and feats.shape[1] >= 2:
                values.append(layer_value(feats))
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in net.named_modules()]
    with hooks_removed(handles), torch.no_grad():
        net(inputs[:1])
    if bad:
        raise ProxyFailure(f"non-finite feature map in {len(bad)} module(s), first {bad[0]!r}")
    if not values:
        raise ProxyFailure("no module gives a feature map with >= 2 channels and >= 2 positions")
    return finite(sum(values), "meco")
