"""DARTS-PRIME (Maile, Lecarpentier, Luga & Wilson, 2021, "DARTS-PRIME: Regularization and Scheduling Improve
Constrained Optimization in Differentiable NAS", arXiv:2106.11655): first-order DARTS (softmax(alpha), Adam on the
validation loss) seen as a constrained bilevel problem (the architecture must end discrete), with two changes:

- **Proximity regularisation** towards the discretised architecture. The validation loss of each architecture
  step gets, per group (DARTS: normal and reduction cell),

      (rho / 2) * (t / T) * || softmax(alpha) - z ||_F,        z = the discrete architecture of softmax(alpha),

  an unsquared Frobenius norm whose weight grows linearly with the search progress t / T (t: epochs elapsed, T:
  the search's epochs), rho = 0.1. z is one-hot at each kept (edge, op) and zero elsewhere: in the DARTS space
  the edges a node does not keep (all but its top two) are zero rows, so the term also pushes the discarded
  edges' probabilities down and apart from the kept ones ("well-separated discretization"). The authors' code
  also has an ADMM variant (`--reg admm`: auxiliary Z and dual U updated every few steps); DARTS-PRIME's command
  uses `--reg prox`, the proximity term implemented here.
- **Dynamic scheduling** of architecture steps from per-minibatch network information: the trace of the
  empirical Fisher information of the weight step, FI = sum over weights of (d L_train / d w)^2, smoothed by an
  exponentially weighted moving average (weight 0.2 on the new value). An architecture step is taken when
  0 < EWMA(FI) < threshold; the threshold is multiplied by gamma = 1.05 after every weight step without one and by
  gamma^-f after every architecture step (initial threshold 1.0). With a steady FI this is exactly one architecture
  step every f + 1 weight steps (f skips then one step, the threshold back where it was); when the weights'
  gradients shrink (the weights settle for the current architecture) architecture steps come sooner, when they
  grow, later. f = 10 weight steps per architecture step. The rule has a warm-up: no architecture step until the
  threshold, 1.0 raised by gamma per weight step, first exceeds the Fisher trace (log_gamma FI steps: ~60 for a
  trace of 20; a run of a few dozen weight steps may take none), and a burst of steps where it starts above it.
  Without the dynamic schedule, a fixed one architecture step every f weight steps.

Source of every rule and default: the paper's abstract and the authors' released code (github k8lion/DARTS-PRIME,
commit 4953e40; the paper links an anonymised copy): README's DARTS-PRIME command `--reg prox
--schedfreq 10 --dyno_split --dyno_schedule`; `src/train_scheduled_hard_statebn.py` (the schedule and its
defaults `--rho 0.1 --ewma 0.2 --init_alpha_threshold 1.0 --threshold_multiplier 1.05`, Adam lr 3e-4, betas
(0.5, 0.999), weight decay 1e-3, alpha = 1e-3 * randn) and `src/model_admm_hard_statebn.py` (`prox_loss`, `_parse`,
`track_FI`). The paper's full text was not available to us beyond its abstract, so where the text and the code
might differ we follow the code that produced the published numbers. Published DARTS-space results (searched on
CIFAR-10, resp. CIFAR-100, then trained from scratch): 2.62 % test error on CIFAR-10 with 3.7 M parameters, 17.44 %
on CIFAR-100 (3.16 M parameters), search cost 0.5 GPU days.

How it maps onto this platform, and every departure from the authors' code:

- The projection z is `space.one_hot(space.discretize(probs))`: the space's own discretisation, so it is the
  authors' `_parse` in the DARTS space (top-2 incoming edges per node by their strongest non-`none` op, that op
  one-hot, other edges zero), the per-row argmax in NB201 and the top-k parents (multi-hot rows) in NB-1shot1.
  Departure: the authors recompute z at every architecture step; here it is recomputed at the start of every epoch
  (`on_epoch_start`, and at construction). Discretising needs the probabilities on the host, and inside the step
  that would be a host synchronisation on top of the schedule's one. Alpha only moves on architecture steps,
  typically by about the Adam learning rate each (3e-4; one epoch of DARTS' search has ~35 of them at f = 10),
  so within an epoch the argmax can only change between ops tied to ~1e-2 in alpha, where z's choice is
  arbitrary anyway.
- The weight t / T grows per epoch, not per step: t = epoch + 1/2 (the epoch's mean of the authors' clock, which
  advances by 1/steps-per-epoch every weight step), since a distribution is not told the number of steps per epoch.
- The schedule is taken inside `update`: with the dynamic schedule `update_interval` is 1, so the loop calls
  `update` after every weight step; `update` reads the Fisher trace from the gradients the loop's backward left
  on the weights (`.grad`, no extra forward), and when the rule says "no step" it raises the threshold and returns
  None, which the loop counts as no architecture step (no validation metrics from that step). This is the authors'
  order exactly: their iteration decides on the EWMA of the previous weight steps, takes the architecture step,
  then the weight step, so their decision before weight step t + 1 is ours after weight step t. Their first
  iteration has no Fisher information yet, never steps, and raises the threshold once: the threshold here starts
  at `init_threshold * threshold_multiplier`, which makes the two sequences of decisions identical. Deciding on
  the host whether to run the architecture step's forward and backward is inherent to the rule (its point is to
  run fewer of them), so a search step makes one host synchronisation by design (`host_syncs_per_step = 1`: the
  Fisher trace's one float); with the fixed schedule it makes none.
- The Fisher trace is of the gradients after the loop's gradient clipping (`grad_clip`, default 5), the authors'
  before theirs (also 5): when a batch's gradient norm exceeds the clip, FI reads clip^2 instead of the norm^2.
- Not carried over: the authors' `--dyno_split` (training/validation split of 10/11 : 1/11 so that both halves
  are used up at the schedule's rate; the search loop owns the data split) and their `mask_alphas`/CRB option (off
  in DARTS-PRIME). The schedule's state (threshold, EWMA) runs across epochs, as theirs does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import torch
from pydantic import Field

from trainables.methods.arch_step import arch_gradients, batch_metrics, softmax_weights
from trainables.methods.base import ArchStepContext
from trainables.methods.darts import DartsV1
from trainables.methods.params import AdamAlphaParams, Count, NonNegative, Positive


class DartsPrimeParams(AdamAlphaParams):
    """DARTS' Adam settings (the authors' `Architect`: lr 3e-4, betas (0.5, 0.999), weight decay 1e-3, alpha =
    1e-3 * randn) plus the proximity weight and the schedule, defaults from the authors' DARTS-PRIME command."""

    #: proximity regularisation weight rho (`--rho 0.1`); the term is (rho / 2) (t / T) ||softmax(alpha) - z||.
    #: 0 switches the regulariser off.
    rho: NonNegative = 0.1
    #: f, weight steps per architecture step (`--schedfreq 10`): the fixed schedule's interval, and the dynamic
    #: schedule's exponent (the threshold is divided by gamma^f after an architecture step).
    steps_per_arch_step: Count = 10
    #: the Fisher-information schedule (`--dyno_schedule`); false: one architecture step every f weight steps.
    dynamic_schedule: bool = Field(True, strict=True)
    #: weight of the newest Fisher trace in its moving average (`--ewma 0.2`; 1 = no averaging).
    fisher_ewma: Annotated[Positive, Field(le=1)] = 0.2
    #: the threshold before the first weight step (`--init_alpha_threshold 1.0`).
    init_threshold: Positive = 1.0
    #: gamma > 1, the threshold's growth per weight step without an architecture step (`--threshold_multiplier
    #: 1.05`).
    threshold_multiplier: Annotated[Positive, Field(gt=1)] = 1.05


class DartsPrime(DartsV1):
    """First-order DARTS with proximity regularisation and the Fisher-information schedule (module docstring)."""

    Params: ClassVar = DartsPrimeParams
    #: the Fisher trace's float: the host decides whether to run the architecture step (dynamic schedule only)
    host_syncs_per_step: ClassVar[int] = 1

    def __init__(self, space, params=None, *, num_valid: int, device="cpu", seed: int = 0):
        super().__init__(space, params, num_valid=num_valid, device=device, seed=seed)
        p = self.params
        # the authors' first iteration (no Fisher information yet) skips and raises the threshold once
        self.threshold = float(p.init_threshold) * float(p.threshold_multiplier)
        self.fisher = -1.0  # EWMA of the Fisher trace; -1: no weight step seen yet (as the authors' FI_ewma)
        self.target = self.projection()

    # ----- schedule and regulariser ------------------------------------------------------------------
    @property
    def update_interval(self) -> int:
        """1 under the dynamic schedule (`update` decides after every weight step), else f."""
        return 1 if self.params.dynamic_schedule else self.params.steps_per_arch_step

    def on_epoch_start(self, epoch: int, total_epochs: int) -> None:
        self.target = self.projection()

    def projection(self) -> dict[str, torch.Tensor]:
        """z: the space's supernet weights of the discretisation of the current probabilities (host work)."""
        with torch.no_grad():
            arch = self.space.discretize(self.op_probabilities())
            return {g: w.to(device=self.device, dtype=self.alpha[g].dtype)
                    for g, w in self.space.one_hot(arch, device=self.device).items()}

    def proximity_weight(self, epoch: int, total_epochs: int) -> float:
        """(rho / 2) * t / T with t = epoch + 1/2 (the authors' clock averaged over the epoch)."""
        progress = min((epoch + 0.5) / max(total_epochs, 1), 1.0)
        return 0.5 * float(self.params.rho) * progress

    def proximity(self, alpha: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """sum over groups of ||softmax(alpha) - z||_F (unsquared, as the authors' `prox_loss`)."""
        probs = softmax_weights(alpha)
        return torch.stack([torch.linalg.vector_norm(probs[g] - self.target[g]) for g in probs]).sum()

    def take_step(self, ctx: ArchStepContext) -> bool:
        """The dynamic schedule's decision after a weight step (one host sync); updates EWMA and threshold."""
        p = self.params
        grads = [w.grad for w in ctx.model.parameters() if w.grad is not None]
        trace = float(torch.nn.utils.get_total_norm(grads).square()) if grads else 0.0  # the one host sync
        self.fisher = trace if self.fisher < 0 else p.fisher_ewma * trace + (1.0 - p.fisher_ewma) * self.fisher
        step = 0.0 < self.fisher < self.threshold
        gamma = float(p.threshold_multiplier)
        self.threshold *= gamma ** -p.steps_per_arch_step if step else gamma
        return step

    # ----- the loop's calls ----------------------------------------------------------------------
    def update(self, ctx: ArchStepContext) -> dict[str, torch.Tensor] | None:  # type: ignore[override]
        """One architecture step on L_val + the proximity term, or None when the dynamic schedule skips (the loop
        then counts no architecture step)."""
        if self.params.dynamic_schedule and not self.take_step(ctx):
            return None
        names = list(self.alpha)
        leaves = [self.alpha[n] for n in names]
        grads, loss, logits = arch_gradients(ctx, leaves, names, second_order=False)
        weight = self.proximity_weight(ctx.epoch, ctx.total_epochs)
        if weight > 0:
            prox = torch.autograd.grad(weight * self.proximity(dict(zip(names, leaves))), leaves)
            grads = [g + q for g, q in zip(grads, prox)]
        for a, g in zip(leaves, grads):
            a.grad = g
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return batch_metrics(loss, logits, ctx.valid_batch[1])

    def extra_metrics(self) -> dict[str, float]:
        """The distance to the current discretisation (the regulariser's norm), and the schedule's state."""
        target = self.projection()
        with torch.no_grad():
            probs = self.op_probabilities()
            distance = float(sum(torch.linalg.vector_norm(probs[g] - target[g]) for g in probs))
        out = {"proximity_distance": distance}
        if self.params.dynamic_schedule:
            out.update(fisher_ewma=self.fisher, schedule_threshold=self.threshold)
        return out

    # ----- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["schedule"] = {"threshold": self.threshold, "fisher": self.fisher}
        state["target"] = {g: t.detach().clone() for g, t in self.target.items()}
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.threshold = float(state["schedule"]["threshold"])
        self.fisher = float(state["schedule"]["fisher"])
        self.target = {g: t.detach().clone().to(device=self.device, dtype=self.alpha[g].dtype)
                       for g, t in state["target"].items()}
