"""GDAS (Dong & Yang, CVPR 2019, "Searching for A Robust Neural Architecture in Four GPU Hours"): one hard
Gumbel-max op per edge per forward, so only the sampled op is computed, with straight-through gradients.

As in xautodl's NB201 GDAS (`exps/NAS-Bench-201-algos/GDAS.py`, `search_model_gdas.py`): alpha = 1e-3 * randn;
per forward, g ~ Gumbel, probs = softmax((log_softmax(alpha) + g) / tau), the edge weights are
one_hot(argmax probs) - probs.detach() + probs (value one-hot, gradient that of probs); tau goes linearly
from tau_max = 10 to tau_min = 0.1 over the epochs; the weight step uses the same kind of hard sample
(detached); the architecture step is Adam (lr 3e-4, betas (0.5, 0.999), weight decay 1e-3) on the
validation batch. One sample is shared by all cells of a forward. The weight optimizer belongs to the
search config: xautodl's `GDAS.config` is the loop's DARTS defaults (SGD 0.025 -> 0.001 cosine, momentum
0.9, Nesterov, weight decay 5e-4, batch 64) with 240 epochs (`epochs: 240` in the sweep spec).

Only the sampled op runs: `EdgeWeights.active` lists it per edge. The supernet needs those indices on the
host to pick which modules to call, while the sample depends on alpha, which lives on the device and changes
every step: one device-to-host copy per step is therefore inherent (xautodl pays one `.item()` per edge per
cell). Both samples a step needs (weight step and architecture step) come from the same alpha, so they are
drawn together and cross to the host in a single copy of 2 x 6 integers.

A deliberate difference from xautodl: its cell adds the (zero-valued) weights of the unsampled ops to the
node sum as scalars, which gives those weights a gradient equal to the sum of the node's upstream gradient;
the supernet here never touches unsampled ops, so alpha's gradient is the straight-through gradient of the
sampled weights alone (through the softmax it still reaches every op's alpha).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from trainables.methods.arch_step import batch_metrics
from trainables.methods.base import ArchStepContext, EdgeWeights
from trainables.methods.gumbel import AnnealedGumbel, AnnealedGumbelParams, gumbel_noise, relaxed_sample
from trainables.methods.params import Positive


class GDASParams(AnnealedGumbelParams):
    """GDAS' temperature: linear from 10 to 0.1 (xautodl GDAS.py)."""

    tau_max: Positive = 10.0
    tau_min: Positive = 0.1


@dataclass(frozen=True)
class HardSample:
    """One hard Gumbel-max draw: its noise and device indices per group, and the host-side active lists."""

    noise: dict[str, torch.Tensor]
    index: dict[str, torch.Tensor]
    active: dict[str, list[list[int]]]


class GDAS(AnnealedGumbel):
    """Hard Gumbel-max sampling with straight-through gradients; first-order architecture step."""

    Params: ClassVar = GDASParams
    host_syncs_per_step: ClassVar[int] = 1  # the sampled op indices (see the module docstring)

    def __init__(self, space, params=None, *, num_valid: int, device="cpu", seed: int = 0):
        super().__init__(space, params, num_valid=num_valid, device=device, seed=seed)
        self._pending: HardSample | None = None  # the arch step's sample, drawn with the weight step's

    def draw(self, count: int) -> list[HardSample]:
        """`count` independent hard samples from the current alpha, with one host copy for all of them."""
        noises, indices = [], []
        with torch.no_grad():
            for _ in range(count):
                noise = {n: gumbel_noise(a, self.generator) for n, a in self.alpha.items()}
                noises.append(noise)
                indices.append({n: (torch.log_softmax(a, dim=-1) + noise[n]).argmax(dim=-1)
                                for n, a in self.alpha.items()})
            host = torch.cat([idx[n] for idx in indices for n in self.alpha]).tolist()  # the one sync
        out, offset = [], 0
        for noise, idx in zip(noises, indices):
            active = {}
            for n in self.alpha:
                rows = idx[n].shape[0]
                active[n] = [[k] for k in host[offset:offset + rows]]
                offset += rows
            out.append(HardSample(noise, idx, active))
        return out

    def _one_hot(self, sample: HardSample) -> dict[str, torch.Tensor]:
        return {n: torch.nn.functional.one_hot(sample.index[n], a.shape[-1]).to(a.dtype)
                for n, a in self.alpha.items()}

    def weights_for_weight_step(self) -> EdgeWeights:
        weight_sample, self._pending = self.draw(2)
        return EdgeWeights(self._one_hot(weight_sample), weight_sample.active)

    def update(self, ctx: ArchStepContext) -> dict[str, torch.Tensor]:
        sample = self._pending if self._pending is not None else self.draw(1)[0]
        self._pending = None
        hard = self._one_hot(sample)
        weights = {}
        for n, a in self.alpha.items():
            probs = relaxed_sample(a, sample.noise[n], self.tau)
            weights[n] = hard[n] - probs.detach() + probs  # straight-through
        x_v, y_v = ctx.valid_batch
        logits = ctx.forward(x_v, EdgeWeights(weights, sample.active))
        loss = ctx.loss_fn(logits, y_v)
        leaves = list(self.alpha.values())
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        for a, g in zip(leaves, grads):
            a.grad = torch.zeros_like(a) if g is None else g
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return batch_metrics(loss, logits, y_v)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._pending = None
