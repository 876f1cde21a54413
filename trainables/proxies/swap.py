"""SWAP: the number of distinct sample-wise activation patterns of the ReLU units over a mini-batch.

Peng et al., "SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS", ICLR 2024 (arXiv 2403.04161),
Sec. 3.2 (Def. 3.2, 3.3) and 3.3 (regularisation); authors' code pym1024/SWAP, `src/metrics/swap.py` (the score),
`src/utils/utilities.py` (initialisation) and `correlation.py` (the protocol). For S inputs x_1..x_S and every
ReLU unit v (one channel at one position of one layer), the unit's pattern is the binary vector
(1[z_v(x_s) > 0])_{s=1..S} over the samples; SWAP is the number of distinct patterns over all units. NASWOT
(`naswot.py`) binarises the other way round (one code per sample, over the units); SWAP's transposed view is
bounded by the number of units instead of S.

Choices, as in the authors' code unless noted:
- Units: the outputs of every `nn.ReLU` module whose input is a 4-D feature map (code: a forward hook on each
  `nn.ReLU`, kept when `len(input[0].size()) == 4`). Functional `relu` calls and ReLUs on 2-D inputs are not
  units. Every such ReLU that runs counts, whether or not the output depends on it (the code has no reachability
  filter, unlike NASWOT's authors' code).
- Binarisation: sign of the post-ReLU output (code `torch.sign`), i.e. pre-activation > 0. A pattern shared by
  units of different layers counts once (the code concatenates all layers before `torch.unique(dim=0)`).
- Weights: the code redraws every Conv2d / Linear weight from N(0, 1), biases 0, BN scale 1 / shift 0, before each
  evaluation (`network_weight_gaussian_init`, the same function as Zen-NAS'); we do the same (`zen.gaussian_init`,
  from the seeded global generator) on the scored copy. BN uses batch statistics (train mode), as in the code.
- Repeats: `correlation.py` averages 32 evaluations, each with freshly drawn weights; `REPEATS` = 32 here too
  (one evaluation = one forward pass; the score is the mean count, so it need not be an integer).
- Data: the code's batch is the first `input_samples` (default 16) CIFAR-10 training images, normalised and not
  augmented (an unshuffled loader; its RandomCrop(32, padding=0) is the identity); labels are unused. Ours is
  the data batch passed in: `score-space --batch-size 16` reproduces that protocol. The batch size of the paper's
  NB201 experiments is not stated in what we could read (its correlations are in a figure); 16 is the code's.
- Regularised SWAP (Sec. 3.3): Psi' = Psi * exp(-(Theta - mu)^2 / sigma), Theta the parameter count in thousands
  (code `count_parameters`: / 1e3, auxiliary-head parameters excluded). mu and sigma are chosen per search as the
  target model size (SWAP-NAS sets mu = sigma); neither paper nor code fixes them for a correlation study, so it
  is not a registered proxy: `regularised(score, net, mu, sigma)` applies the factor to a score.
- Counting: each unit's pattern is packed bit-exactly into int64 words (64 samples per word) and de-duplicated
  per layer as the forward pass runs: the count is exact and memory is O(units) integers, not float activations.

Failure (ProxyFailure): no ReLU on a 4-D feature map runs in the forward pass.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainables.proxies.base import ProxyFailure, finite, hooks_removed
from trainables.proxies.zen import gaussian_init

REPEATS = 32
_BYTE = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)


def pack_patterns(active: torch.Tensor) -> torch.Tensor:
    """[S, V] booleans (sample s, unit v) -> [V, ceil(S / 64)] int64: unit v's pattern over the samples, 8 samples
    per byte, 8 bytes per word, zero-padded (two units get equal rows iff their patterns are equal)."""
    s, v = active.shape
    if s % 8:
        active = torch.cat([active, active.new_zeros(8 - s % 8, v)])
    weights = _BYTE.to(active.device).reshape(1, 8, 1)
    packed = (active.contiguous().reshape(-1, 8, v).view(torch.uint8) * weights).sum(dim=1, dtype=torch.uint8)
    if packed.shape[0] % 8:
        packed = torch.cat([packed, packed.new_zeros(8 - packed.shape[0] % 8, v)])
    return packed.t().contiguous().view(torch.int64)


def distinct_rows(rows: torch.Tensor) -> torch.Tensor:
    """One int64 id per row of a [V, W] int64 matrix, equal iff the rows are equal, in 0..(distinct rows - 1);
    1-D `torch.unique` only (much faster than `unique(dim=0)`)."""
    ids = torch.unique(rows[:, 0], return_inverse=True)[1]
    for w in range(1, rows.shape[1]):
        word_values, word_ids = torch.unique(rows[:, w], return_inverse=True)
        ids = torch.unique(ids * word_values.numel() + word_ids, return_inverse=True)[1]
    return ids


def _layer_patterns(rows: torch.Tensor) -> torch.Tensor:
    """The distinct rows of one layer's [V_l, W] patterns (fewer rows to keep until the final count)."""
    if rows.shape[1] == 1:
        return torch.unique(rows[:, 0])[:, None]
    ids = distinct_rows(rows)
    first = torch.full((int(ids.max()) + 1,), rows.shape[0], dtype=torch.int64, device=rows.device)
    first.scatter_reduce_(0, ids, torch.arange(rows.shape[0], device=rows.device), reduce="amin")
    return rows[first]


def count_patterns(layers: list[torch.Tensor]) -> int:
    """Distinct rows over the per-layer packed patterns ([V_l, W] int64 each)."""
    rows = torch.cat(layers, dim=0)
    if rows.shape[1] == 1:
        return int(torch.unique(rows[:, 0]).numel())
    return int(distinct_rows(rows).max()) + 1


def sample_wise_patterns(net: nn.Module, inputs: torch.Tensor) -> int:
    """SWAP-Score of `net` as it is (no re-initialisation) on the batch `inputs`."""
    layers: list[torch.Tensor] = []

    def hook(module, args, output):
        x = args[0] if isinstance(args, tuple) else args
        if x.dim() == 4:
            layers.append(_layer_patterns(pack_patterns((output.detach() > 0).reshape(output.shape[0], -1))))

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    with hooks_removed(handles), torch.no_grad():
        net(inputs)
    if not layers:
        raise ProxyFailure("no ReLU on a 4-D feature map ran in the forward pass")
    return count_patterns(layers)


def compute(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    net.train()
    counts = []
    for _ in range(REPEATS):
        gaussian_init(net)
        counts.append(sample_wise_patterns(net, inputs))
    return finite(sum(counts) / len(counts), "swap score")


def regularised(score: float, net: nn.Module, mu: float, sigma: float) -> float:
    """Regularised SWAP (Sec. 3.3): score * exp(-(Theta - mu)^2 / sigma), Theta = parameters in thousands, those of
    modules named `auxiliary...` excluded (the authors' `count_parameters`)."""
    theta = sum(p.numel() for n, p in net.named_parameters() if "auxiliary" not in n) / 1e3
    return float(score) * math.exp(-((theta - mu) ** 2) / sigma)
