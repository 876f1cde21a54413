"""Zen-score: log expected change of the pre-pooling feature map under a small input perturbation, plus the log
BatchNorm scales.

Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition", ICCV 2021 (arXiv 2102.01063);
authors' code idstcv/ZenNAS, `ZeroShotProxy/compute_zen_score.py` (the score) and `evolution_search.py` (how the
search calls it). For a network f with feature map F(x) before global average pooling (GAP),

    Zen(f) = log E_{x, e} ||F(x) - F(x + alpha e)|| + sum over BN layers i of log sigma_i,

x and e standard Gaussian images, alpha = 0.01, sigma_i the BN layer's scale (the root mean square over channels
of its variance). Every choice below follows the authors' code; where the paper says otherwise it is noted.

- Weights: before each evaluation every Conv2d and Linear weight is redrawn from N(0, 1) (biases 0) and every BN
  scale / shift set to 1 / 0 (code `network_weight_gaussian_init`; `gaussian_init` here, drawn from the seeded global
  generator in the weights' logical order, so a fixed seed gives a fixed score in NCHW and channels_last alike).
  BN layers without affine parameters keep none.
- Inputs: `torch.randn` images of the data batch's shape (batch size and resolution only; the data are unused); the
  perturbed input is x + alpha * e with a second Gaussian draw e (code `mixup_gamma` = 1e-2).
- The norm: per image the sum of absolute differences over C, H, W (an entry-wise L1 norm), averaged over the
  batch (code). The paper writes a Frobenius norm; we follow the code.
- BN scales: the code reads sqrt(mean over channels of `running_var`) after the two forward passes in train mode
  of a freshly built network (`running_var` starts at 1, PyTorch's default momentum 0.1), i.e. running_var =
  0.81 + 0.09 v1 + 0.1 v2 with v1, v2 the unbiased batch variances; the paper describes sigma_i as the BN layer's
  standard deviation. We follow the code exactly and independently of the network's own settings: every BN that
  tracks running statistics is reset and given momentum 0.1 before the two passes (the scored net is a copy).
  BNs without running statistics (`track_running_stats=False`) contribute nothing (as in MeCo's port of the
  code to NB201, HamsterMimi/MeCo `zero-cost-nas/foresight/pruners/measures/zen.py`, whose cell BNs have none).
- Repeats and batch: the search (`evolution_search.py`) scores each candidate once (`repeat=1`), on CIFAR at batch 64
  (`scripts/Zen_NAS_cifar_params1M.sh`); the stand-alone script averages 32 draws. `REPEATS` = 1 (one evaluation =
  two forward passes); the batch size is the data batch's (`score-space --batch-size 64` for the authors' setting).
- Residual links: Zen-NAS computes the score on its networks with the residual links removed (`no_reslink=True`
  in `evolution_search.py`). NB201 / DARTS / NB101 cells have no separable residual link (skip connections are
  candidate ops), so, like the ports of Zen to NB201 (MeCo's `forward_pre_GAP`, NASLib's
  `forward_before_global_avg_pool`), we score the network as built.
- The pre-GAP feature map, found generically (`pre_gap_features`): the code calls the model's own
  `forward_pre_GAP`; ours have none, so the forward pass runs with hooks and the map is the last 4-D output of a
  module (global pooling modules excluded) before the last Linear layer runs, checked to be the map whose global
  average is that Linear layer's input. That is `lastact`'s output in NB201 (BN-ReLU), the last cell's output in
  DARTS, the last stack's output (`layers`) in the NB101 networks of NB-1shot-1. A head that is not
  GAP + Linear is refused (ProxyFailure), never silently scored on another tensor.

Failures (ProxyFailure): no such feature map, a feature map that does not change with the input (log 0, e.g. a
cell of `none` ops), or a non-finite score.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from trainables.proxies.base import ProxyFailure, finite, hooks_removed

ALPHA = 0.01
REPEATS = 1
BN_MOMENTUM = 0.1  # PyTorch's default, the code's networks' value
_GLOBAL_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool2d)


@torch.no_grad()
def gaussian_init(net: nn.Module) -> None:
    """Zen-NAS' `network_weight_gaussian_init` (SWAP's code uses the same): Conv2d / Linear weights ~ N(0, 1),
    their biases 0; BN / GroupNorm scale 1, shift 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):  # drawn in logical order: the same weights in any memory format
            m.weight.copy_(torch.randn(m.weight.shape, dtype=m.weight.dtype, device=m.weight.device))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (_BatchNorm, nn.GroupNorm)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def pre_gap_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The feature map whose global average pooling feeds the network's last Linear layer, for input `x`."""
    last: list[torch.Tensor | None] = [None]
    pairs: list[tuple[torch.Tensor | None, torch.Tensor]] = []

    def after(module, args, out):
        if isinstance(out, torch.Tensor) and out.dim() == 4 and not isinstance(module, _GLOBAL_POOLS):
            last[0] = out

    def before_linear(module, args):
        pairs.append((last[0], args[0]))

    handles = [m.register_forward_hook(after) for m in net.modules()]
    handles += [m.register_forward_pre_hook(before_linear) for m in net.modules() if isinstance(m, nn.Linear)]
    with hooks_removed(handles), torch.no_grad():
        net(x)
    if not pairs:
        raise ProxyFailure("no Linear classifier ran, so there is no pre-GAP feature map")
    fmap, feat = pairs[-1]
    if fmap is None:
        raise ProxyFailure("no 4-D feature map precedes the classifier")
    pooled = fmap.float().mean(dim=(2, 3))
    feat = feat.float()
    scale = float(feat.abs().max()) if feat.numel() else 0.0
    if feat.shape != pooled.shape or not torch.allclose(pooled, feat, rtol=1e-3, atol=1e-5 * scale + 1e-12):
        raise ProxyFailure(f"the classifier's input {tuple(feat.shape)} is not the global average of the last "
                           f"feature map {tuple(fmap.shape)}")
    return fmap


def _log_bn_scale(bns: list[_BatchNorm]) -> float:
    total = 0.0
    for bn in bns:
        var = float(bn.running_var.double().mean())
        if not var > 0:
            raise ProxyFailure(f"BatchNorm running variance is {var:g}")
        total += 0.5 * math.log(var)
    return total


def compute(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    net.train()
    bns = [m for m in net.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    dtype = inputs.dtype if inputs.is_floating_point() else torch.float32
    scores = []
    with torch.no_grad():
        for _ in range(REPEATS):
            gaussian_init(net)
            for bn in bns:
                bn.reset_running_stats()
                bn.momentum = BN_MOMENTUM
            x = torch.randn(inputs.shape, device=inputs.device, dtype=dtype)
            e = torch.randn(inputs.shape, device=inputs.device, dtype=dtype)
            diff = pre_gap_features(net, x) - pre_gap_features(net, x + ALPHA * e)
            delta = float(diff.abs().flatten(1).sum(dim=1).mean())
            if not delta > 0:
                raise ProxyFailure(f"pre-GAP feature map does not change with the input (mean |difference| "
                                   f"{delta:g})")
            scores.append(math.log(delta) + _log_bn_scale(bns))
    return finite(sum(scores) / len(scores), "zen score")
