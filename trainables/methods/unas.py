"""UNAS (Vahdat, Mallya, Liu & Kautz, CVPR 2020, "UNAS: Differentiable Architecture Search Meets Reinforcement
Learning", arXiv 1912.07651; official code NVlabs/unas): one categorical per row, p = softmax(alpha), and the
gradient of E_{z~p}[objective(z)] estimated from discrete draws, so that a term with no gradient (latency measured
on a device; here the budget's true cost of the sampled architecture) is optimised alongside the differentiable
loss.

What is implemented, per architecture step (`update`):

- **The differentiable objective** (the official code's `training_obj` with `--gen_error_alpha`, the setting of
  every search in its `commands.sh`): f = L_train + gap_lambda * |L_valid - L_train| with gap_lambda = 0.5, the
  loss on the training batch plus the generalisation gap, so that architectures whose validation loss runs ahead
  of their training loss are penalised; `objective: valid` takes the validation loss alone (DARTS').
- **Its gradient**, `estimator: rebar` (the default; `--meta_loss rebar` in every published command): REBAR
  (Tucker et al., NeurIPS 2017) with the Gumbel-softmax relaxation as control variate and eta = 1, as the code's
  `gumbel_softmax_sample_rebar`: grad = (f(z) - f(zeta)) dlog p(z)/dalpha + df(zeta)/dalpha - df(zeta~)/dalpha,
  with z the hard draw argmax(log p + g), zeta = softmax((log p + g) / tau) the relaxed draw of the same noise
  and zeta~ its conditional twin given z (equal in value, differentiated with z and the residual noise held
  fixed: `conditional_perturbed`). Unbiased for the gradient of E_z[f(z)], for one more forward per batch
  without gradient (the one-hot z, every op computed at weight 0 or 1: no host sync). `estimator: relaxed` is the
  plain Gumbel-softmax (concrete) gradient df(zeta)/dalpha (the code's `--meta_loss default`; biased).
- **The budget term, by REINFORCE** (the code's `reinforce` latency branch): under a `cost:` budget the loop hands
  `ctx.budget_of_archs`, the budget's penalty of discrete architectures from their true cost (table, LUT, exact
  params/FLOPs). `cost_samples` (k) draws x_j = log p + g_j are made; the architecture a draw stands for is the
  space's discretisation of its per-row probabilities softmax(x_j), the method's `sample()` draw: a per-row
  categorical draw where the space keeps each row's argmax (NB201), and the space's top-k / top-2-edges rule on
  the perturbed values where it keeps a subset (NB-1shot1 parents, DARTS edges), whose cost is that of the derived
  network. Its term is split as term(a(x)) = term(a(z)) + r(x), with a(z) the discretisation of the one-hot
  argmax rows z (the space's rule on one-hot rows):
  grad += mean_j (term(a(z_j)) - b) (z_j - p)  [the categorical score, `reinforce_gradient`]
        + mean_j (r(x_j) - b_r) dlog q(x_j)/dalpha  [the score of the perturbed vector, `gumbel_score_gradient`],
  both unbiased, so their sum is unbiased for the gradient of E[term(a(x))]. Where the space keeps the argmax
  only, r = 0 exactly and the low-variance categorical score is all there is. The baselines b, b_r are
  exponential moving averages of the two parts, device tensors updated after their use (so independent of the
  draws they centre), starting at 0 as the code's `ExpMovingAvgrageMeter`.
- One Adam step on alpha with both gradients; metrics `arch_loss`/`arch_acc` (validation batch, relaxed
  forward), `objective` (f at the relaxed draw) and, under a budget, `reinforce_term` (mean term of the drawn
  architectures) and `reinforce_baseline` (b as used).

The weight step uses a detached relaxed draw softmax((log p + g) / tau), and the architecture step that follows
reuses the same noise (the code draws one `alpha(batch)` sample for both).

Defaults (`darts/train_search.py` and `commands.sh` of NVlabs/unas): Adam lr 1e-3 (`--arch_learning_rate`),
torch's default betas (0.9, 0.999), weight decay 1e-6 (`--arch_weight_decay`); alpha starts at 0 (`torch.zeros`);
temperature 0.4 (`--gumbel_soft_temp`), constant (tau_max = tau_min; set them apart for a linear anneal);
gap_lambda 0.5 (`--gen_error_alpha_lambda`); baseline_decay 0.1 (the code's `ExpMovingAvgrageMeter(momentum=0.9)`
keeps 0.1 of the old average).

Where this departs from UNAS:
- the latency is not measured online on the search GPU: the budget's source (packaged table, measured LUT, exact
  params/FLOPs) gives the cost, through the loop's budget term (a hinge penalty or a Lagrangian with its dual);
- no control variate for the latency beyond the moving-average baselines (the code's `rebar` latency branch fits
  a linear latency predictor, `SurrogateLinear`, as REBAR control variate) and no latency-coefficient warm-up
  (`--latency_iter`);
- `cost_samples` = 64 draws per step, where the code measures one latency per step: a table look-up costs well
  under a millisecond on the host, and the score-function estimate's variance falls as 1/k (on the DARTS space
  the perturbed-vector part needs the many draws; there a draw costs about 1 ms of host time per step, for its two
  discretisations and cost look-ups; NB201's are cached);
- the architecture learning rate is constant by default (`arch_lr_min: null`): the code anneals it per epoch by
  a cosine from 1e-3 to 3e-4 (`--arch_learning_rate_min`); set `arch_lr_min: 3e-4` to reproduce that;
- one architecture draw per batch (the code's `--same_alpha_minibatch`), not one per example, since the supernet
  takes one set of edge weights per forward; the generalisation gap uses the batch losses of `ctx.loss_fn`,
  |mean L_valid - mean L_train|, where the code pairs the i-th training and validation example and averages the
  per-example |l_valid,i - l_train,i|;
- the rows are the space's own (one categorical per edge or choice); UNAS' factorised DARTS cell (a categorical
  over input pairs per node, with its `alpha_loss` on them) and its warm-up epochs of weights only
  (`--init_epochs`, the search config's business) are not reproduced.

Host synchronisations: none without a budget (`host_syncs_per_step` = 0, what tests/trainables/test_host_syncs.py
and the CUDA check hold every method to). Under a budget one per step (`host_syncs_under_budget`): the k
perturbed draws cross to the host in a single copy, for the architecture strings whose true cost is looked up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
from pydantic import model_validator

from trainables.methods.arch_step import batch_metrics
from trainables.methods.base import ArchStepContext, EdgeWeights
from trainables.methods.gumbel import AnnealedGumbel, AnnealedGumbelParams, gumbel_noise, relaxed_sample
from trainables.methods.params import Beta, Betas, Count, NonNegative, Positive


class UNASParams(AnnealedGumbelParams):
    """UNAS' settings (NVlabs/unas `darts/train_search.py` defaults and `commands.sh`):

    - arch_lr 1e-3 (`--arch_learning_rate`); arch_lr_min: null keeps it constant, a number anneals it per epoch by
      a cosine down to that value (the code: to 3e-4, `--arch_learning_rate_min`); arch_weight_decay 1e-6
      (`--arch_weight_decay`); betas (0.9, 0.999) (torch's Adam default, which the code keeps); init_scale 0
      (alpha = `torch.zeros`);
    - tau_max = tau_min = 0.4: the Gumbel-softmax temperature (`--gumbel_soft_temp`), constant unless set apart;
    - estimator 'rebar' (`--meta_loss rebar`) or 'relaxed' (the plain Gumbel-softmax gradient);
    - objective 'generalization_gap' (`--gen_error_alpha`): L_train + gap_lambda * |L_valid - L_train| with
      gap_lambda 0.5 (`--gen_error_alpha_lambda`), or 'valid' (L_valid);
    - cost_samples 64: architectures drawn per step for the REINFORCE estimate of the budget term (the code measures
      one latency per step; see the module docstring);
    - baseline_decay 0.1: weight of the old value in the moving-average baseline (the code's
      `ExpMovingAvgrageMeter(momentum=0.9)`: avg <- 0.1 * avg + 0.9 * value).
    """

    arch_lr: Positive = 1e-3
    arch_lr_min: Positive | None = None
    arch_weight_decay: NonNegative = 1e-6
    betas: Betas = (0.9, 0.999)
    init_scale: NonNegative = 0.0
    tau_max: Positive = 0.4
    tau_min: Positive = 0.4
    estimator: Literal["rebar", "relaxed"] = "rebar"
    objective: Literal["generalization_gap", "valid"] = "generalization_gap"
    gap_lambda: NonNegative = 0.5
    cost_samples: Count = 64
    baseline_decay: Beta = 0.1

    @model_validator(mode="after")
    def _lr_range(self) -> UNASParams:
        if self.arch_lr_min is not None and self.arch_lr_min > self.arch_lr:
            raise ValueError(f"arch_lr_min ({self.arch_lr_min}) must not exceed arch_lr ({self.arch_lr})")
        return self


# ----- the estimators' pieces (shared with the tests) ---------------------------------------------------
def one_hot_argmax(x: torch.Tensor) -> torch.Tensor:
    """The one-hot of each row's argmax (last dimension), in x's dtype; a scatter, so no host sync on any
    device."""
    return torch.zeros_like(x).scatter_(-1, x.argmax(dim=-1, keepdim=True), 1.0)


def log_prob(logits: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
    """log p(z) of one-hot rows `hard` [..., rows, options] under the row categoricals softmax(logits): the sum
    over rows, one value per draw for a stack of draws."""
    lp = (hard * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
    return lp.sum(dim=-1)


def conditional_perturbed(logits: torch.Tensor, perturbed: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
    """REBAR's conditional Gumbel perturbation given the hard draw (Tucker et al. 2017, categorical case; UNAS'
    `gumbel_softmax_sample_rebar`), reparametrised with the very noise that produced `perturbed` = log p + g.

    With E_i = exp(-perturbed_i) = -log(u_i) / p_i and b the argmax, the top value is a function of noise only
    (no gradient), and each other entry is -log(E'_i / p_i + E_b) with the residual exponential E'_i =
    p_i (E_i - E_b) and E_b held fixed: equal in value to `perturbed`, but differentiated as a draw conditioned on
    argmax = b. Computed in log space (no overflow for very unlikely options)."""
    logp = torch.log_softmax(logits, dim=-1)
    x = perturbed.detach()
    top = (x * hard).sum(dim=-1, keepdim=True)
    # log E'_i = log p_i - x_i + log(1 - exp(x_i - top)); -inf at the argmax (its residual is 0)
    log_resid = (logp.detach() - x + torch.log(-torch.expm1((x - top).clamp(max=0.0)))).detach()
    return -torch.logaddexp(log_resid - logp, -top)


def rebar_weights(logits: torch.Tensor, noise: torch.Tensor, tau: float, rebar: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(relaxed weights, one-hot draw) of one group from Gumbel noise.

    The relaxed weights have the value of zeta = softmax((log p + g) / tau); with `rebar` their gradient is
    dzeta - dzeta~ (zeta~ the conditional twin, `conditional_perturbed`), so that the surrogate
    f(w) + stopgrad(f(z) - f(w)) * log p(z) has the REBAR estimate (eta = 1) as its gradient; without it, the plain
    Gumbel-softmax gradient."""
    perturbed = torch.log_softmax(logits, dim=-1) + noise
    hard = one_hot_argmax(perturbed.detach())
    relaxed = torch.softmax(perturbed / tau, dim=-1)
    if not rebar:
        return relaxed, hard
    twin = torch.softmax(conditional_perturbed(logits, perturbed, hard) / tau, dim=-1)
    return relaxed - twin + twin.detach(), hard


def reinforce_gradient(logits: torch.Tensor, draws: torch.Tensor, values: torch.Tensor,
                       baseline: torch.Tensor | float = 0.0) -> torch.Tensor:
    """The score-function (REINFORCE) estimate of d/dlogits E_{z ~ prod_rows softmax(logits)}[f(z)] from k draws:
    mean_j (f(z_j) - baseline) * dlog p(z_j)/dlogits, where dlog p(z)/dlogits = z - softmax(logits) row by row.

    logits [rows, options]; draws [k, rows, options] one-hot rows; values [k] (f of each draw, no gradient);
    baseline a number or 0-d tensor independent of these draws (unbiased for any such baseline)."""
    p = torch.softmax(logits.detach(), dim=-1)
    weight = (values.detach().to(p.dtype) - baseline)
    return torch.einsum("k,kro->ro", weight, draws.to(p.dtype) - p) / draws.shape[0]


def gumbel_score_gradient(logits: torch.Tensor, perturbed: torch.Tensor, values: torch.Tensor,
                          baseline: torch.Tensor | float = 0.0) -> torch.Tensor:
    """The score-function estimate of d/dlogits E_x[f(x)] over Gumbel-perturbed draws x = log_softmax(logits) + g
    (g i.i.d. Gumbel(0, 1); x_i is Gumbel with location mu_i = log p_i), from k draws:
    mean_j (f(x_j) - baseline) * dlog q(x_j)/dlogits, with dlog q/dmu_i = 1 - exp(-(x_i - mu_i)) and
    d/dlogits = s - p * sum(s) row by row (mu = log_softmax(logits)).

    For functions of the whole perturbed vector (an order of the options, a ranking across rows), where the
    categorical score of the argmax alone (`reinforce_gradient`) would be biased. logits [rows, options];
    perturbed [k, rows, options]; values [k]."""
    mu = torch.log_softmax(logits.detach(), dim=-1)
    p = mu.exp()
    s = 1.0 - torch.exp(mu - perturbed.detach())
    score = s - p * s.sum(dim=-1, keepdim=True)
    weight = values.detach().to(p.dtype) - baseline
    return torch.einsum("k,kro->ro", weight, score) / perturbed.shape[0]


def cosine_lr(lr_max: float, lr_min: float, epoch: int, total_epochs: int) -> float:
    """Cosine annealing per epoch, as torch's CosineAnnealingLR(T_max=epochs, eta_min) in the UNAS code:
    lr_min + (lr_max - lr_min) (1 + cos(pi epoch / total_epochs)) / 2."""
    if total_epochs <= 0:
        return lr_max
    return lr_min + (lr_max - lr_min) * (1.0 + math.cos(math.pi * epoch / total_epochs)) / 2.0


class UNAS(AnnealedGumbel):
    """REBAR (or Gumbel-softmax) gradient of the generalisation-gap objective plus REINFORCE on the budget's true
    cost of sampled architectures; see the module docstring."""

    Params: ClassVar = UNASParams
    cost_by_sampling: ClassVar[bool] = True
    host_syncs_per_step: ClassVar[int] = 0  # without a budget (what the sync checks run)
    #: under a cost budget: the k perturbed draws, one copy per step for their architecture strings (module docstring)
    host_syncs_under_budget: ClassVar[int] = 1

    def __init__(self, space, params=None, *, num_valid: int, device="cpu", seed: int = 0):
        super().__init__(space, params, num_valid=num_valid, device=device, seed=seed)
        self.baseline = torch.zeros((), device=self.device)  # of the one-hot draws' budget term
        self.baseline_residual = torch.zeros((), device=self.device)  # of the drawn minus the one-hot architectures'
        self._pending: dict[str, torch.Tensor] | None = None  # the weight step's noise, reused by `update`

    # ----- schedules ---------------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int, total_epochs: int) -> None:
        super().on_epoch_start(epoch, total_epochs)
        if self.params.arch_lr_min is None:
            return
        lr = cosine_lr(self.params.arch_lr, self.params.arch_lr_min, epoch, total_epochs)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # ----- the loop's calls ----------------------------------------------------------------------
    def _noise(self) -> dict[str, torch.Tensor]:
        return {n: gumbel_noise(a.detach(), self.generator) for n, a in self.alpha.items()}

    def weights_for_weight_step(self) -> EdgeWeights:
        """A detached relaxed draw; its noise is kept for the architecture step that follows."""
        self._pending = self._noise()
        with torch.no_grad():
            return EdgeWeights({n: relaxed_sample(a, self._pending[n], self.tau) for n, a in self.alpha.items()})

    def _objective(self, ctx: ArchStepContext, weights: dict[str, torch.Tensor]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(objective, validation loss, validation logits) of one forward setting."""
        x_v, y_v = ctx.valid_batch
        logits = ctx.forward(x_v, EdgeWeights(weights))
        valid = ctx.loss_fn(logits, y_v)
        if self.params.objective == "valid":
            return valid, valid, logits
        x_t, y_t = ctx.train_batch
        train = ctx.loss_fn(ctx.forward(x_t, EdgeWeights(weights)), y_t)
        return train + self.params.gap_lambda * (valid - train).abs(), valid, logits

    def update(self, ctx: ArchStepContext) -> dict[str, torch.Tensor]:
        noise = self._pending if self._pending is not None else self._noise()
        self._pending = None
        names = list(self.alpha)
        leaves = [self.alpha[n] for n in names]
        rebar = self.params.estimator == "rebar"
        weights, hard = {}, {}
        for n, a in zip(names, leaves):
            weights[n], hard[n] = rebar_weights(a, noise[n], self.tau, rebar)
        objective, valid, logits = self._objective(ctx, weights)
        surrogate = objective
        if rebar:
            with torch.no_grad():
                objective_hard = self._objective(ctx, hard)[0]
            logp = sum(log_prob(a, hard[n]) for n, a in zip(names, leaves))
            surrogate = objective + (objective_hard - objective).detach() * logp
        grads = list(torch.autograd.grad(surrogate, leaves))
        metrics = {**batch_metrics(valid, logits, ctx.valid_batch[1]), "objective": objective.detach().float()}
        if ctx.budget_of_archs is not None:
            metrics["reinforce_baseline"] = self.baseline.detach().clone().float()  # the one this step uses
            extra, term = self._budget_gradient(ctx.budget_of_archs)
            grads = [g + extra[n] for g, n in zip(grads, names)]
            metrics["reinforce_term"] = term.float()
        for a, g in zip(leaves, grads):
            a.grad = g
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return metrics

    def _budget_gradient(self, budget_of_archs) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """REINFORCE on the budget term of `cost_samples` draws x = log p + g (one host copy for all of them), split
        as term(a(x)) = term(a(z)) + residual (see the module docstring); updates both baselines after their use.
        Returns (gradient per group, mean term of the drawn architectures a(x))."""
        k = self.params.cost_samples
        names = list(self.alpha)
        with torch.no_grad():
            perturbed = {}
            for n, a in self.alpha.items():
                stacked = torch.log_softmax(a.detach(), dim=-1).expand(k, *a.shape)
                perturbed[n] = stacked + gumbel_noise(stacked, self.generator)
            flat = torch.cat([perturbed[n].reshape(-1) for n in names]).cpu()  # the one sync
        host, offset = {}, 0
        for n in names:
            size = perturbed[n].numel()
            host[n] = flat[offset:offset + size].view(perturbed[n].shape)
            offset += size
        hot_archs = [self.space.discretize({n: one_hot_argmax(host[n][j]) for n in names}) for j in range(k)]
        drawn_archs = [self.space.discretize({n: torch.softmax(host[n][j], dim=-1) for n in names})
                       for j in range(k)]
        device = self.baseline.device
        term_hot = budget_of_archs(hot_archs).to(device)
        term = budget_of_archs(drawn_archs).to(device)  # last: the budget's dual step sees the drawn architectures
        residual = term - term_hot
        grads = {}
        for n in names:
            hard = one_hot_argmax(perturbed[n])
            grads[n] = (reinforce_gradient(self.alpha[n], hard, term_hot, self.baseline)
                        + gumbel_score_gradient(self.alpha[n], perturbed[n], residual, self.baseline_residual))
        decay = self.params.baseline_decay
        self.baseline.mul_(decay).add_((1.0 - decay) * term_hot.mean())
        self.baseline_residual.mul_(decay).add_((1.0 - decay) * residual.mean())
        return grads, term.mean()

    # ----- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "baseline": self.baseline.detach().clone(),
                "baseline_residual": self.baseline_residual.detach().clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.baseline.copy_(state["baseline"])
        self.baseline_residual.copy_(state["baseline_residual"])
        self._pending = None
