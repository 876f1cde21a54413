"""The pure part of the proxy stage (BaLeNAS-TF): sample architectures from a trial's final distribution,
score them with training-free proxies, and select one per rule. No Ray, no files: `trainables.proxy_stage.driver`
schedules these functions as Ray tasks and writes their rows to Parquet.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from search_spaces.pareto import pareto_front
from trainables import proxies


def sampling_seed(stage_seed: int, trial_seed: int) -> int:
    """The seed of one trial's architecture draws: independent across the trials' own seeds (so repeated
    runs of a method are independent samples) and reproducible from `proxies.seed`."""
    return int(stage_seed) * 1_000_003 + int(trial_seed)


def sample_trial(checkpoint_path: str, k: int, seed: int) -> dict[str, Any]:
    """The trial's final distribution: k sampled architectures and the most likely one; a distribution holding NaN
    or infinite values (a diverged search) gives no architectures and an `error` naming its tensors."""
    from trainables.search.loop import load_distribution, nonfinite_state

    dist, _ = load_distribution(checkpoint_path, device="cpu")
    bad = nonfinite_state(dist)
    if bad:
        return {"samples": [], "argmax": None, "error": f"non-finite distribution parameters ({', '.join(bad[:4])})"}
    samples = dist.sample(int(k), seed=int(seed))
    return {"samples": samples, "argmax": dist.most_likely(), "likelihood": mode_likelihood(dist, set(samples))}


def mode_likelihood(dist, archs: Iterable[str]) -> dict[str, float]:
    """Each architecture's log-likelihood under the distribution's mode probabilities, sum over rows of
    log p(the option it keeps) (`space.one_hot`): the order in which a budget-aware `argmax` falls back to samples
    within the budget. Empty where the space has no one-hot encoding."""
    space, probs = dist.space, dist.mode_probabilities()
    out = {}
    for arch in archs:
        try:
            hot = space.one_hot(arch)
        except (NotImplementedError, ValueError):
            return {}
        out[arch] = float(sum((hot[g] * probs[g].detach().double().clamp_min(1e-30).log()).sum() for g in hot))
    return out


def failed_rows(archs: Sequence[str], names: Sequence[str], reason: str) -> list[dict[str, Any]]:
    """Rows for architectures that could not be scored: every proxy NaN, its `_error` column the reason."""
    return [{"arch": a, **proxies.to_row({n: proxies.ProxyError(reason) for n in names})} for a in archs]


def score_architectures(archs: Sequence[str], inputs: torch.Tensor, targets: torch.Tensor, names: Sequence[str],
                        *, space: str, num_classes: int = 10, size: Mapping[str, int] | None = None,
                        seed: int = 0, device: torch.device | str = "cpu",
                        channels_last: bool = False, costs: bool = False) -> list[dict[str, Any]]:
    """One row per architecture: `arch` plus `<proxy>` / `<proxy>_error`. Each network
    (`space.network(arch, num_classes, **size)`) is built with weights seeded by `seed`, scored, and freed
    before the next one (flat memory). `channels_last` runs networks and inputs in NHWC memory layout
    (1.4x faster NASWOT on the project's CPU at batch 64; same scores up to float rounding). `costs` adds
    `cost_params_M` and `cost_flops_M` of each built network (`search_spaces.costs.network_columns`: one extra
    eval forward of one image of the inputs' shape, before scoring; the same numbers as `cost_columns`)."""
    from search_spaces.costs import network_columns
    from search_spaces.space import get_space

    sp = get_space(space)
    size = sp.sizes("proxy", size)
    device = torch.device(device)
    inputs, targets = inputs.to(device), targets.to(device)
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    rows = []
    for arch in archs:
        try:
            torch.manual_seed(seed)
            net = sp.network(arch, num_classes=num_classes, **size).to(device)
            if channels_last:
                net = net.to(memory_format=torch.channels_last)
        except (ValueError, RuntimeError) as e:
            rows.extend(failed_rows([arch], names, f"cannot build network: {type(e).__name__}: {e}"))
            continue
        cost = network_columns(net, torch.zeros(1, *inputs.shape[1:], device=device)) if costs else {}
        rows.append({"arch": arch, **cost, **proxies.to_row(proxies.score(net, inputs, targets, names, seed=seed))})
        del net
    return rows


# ----- costs (search_spaces.costs' columns) -------------------------------------------------------------------
def cost_devices(space: str, devices: Sequence[str] | None = None) -> tuple[str, ...]:
    """The proxy stage's latency devices (`search_spaces.costs.check_devices`, errors naming
    `proxies.cost_devices`)."""
    from search_spaces import costs

    return costs.check_devices(space, devices, field="proxies.cost_devices")


def chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


# ----- selection rules ----------------------------------------------------------------------------------------
def rank_sum(frame: pd.DataFrame, names: Sequence[str]) -> pd.Series:
    """Sum over `names` of each row's rank (1 = lowest value, ties averaged); rows with a failed proxy get NaN."""
    values = frame[list(names)].astype(float)
    ok = values.notna().all(axis=1)
    ranks = values[ok].rank(axis=0, method="average")
    out = pd.Series(math.nan, index=frame.index)
    out[ok] = ranks.sum(axis=1)
    return out


@dataclass(frozen=True)
class BudgetView:
    """A trial's cost budget as the selection rules see it: the `limit`, the true `costs` (the budget source's own
    cost, in its unit) of the samples and the argmax, and each sample's `likelihood` under the distribution's mode
    (`mode_likelihood`: the budget-aware argmax's fallback order)."""

    limit: float
    costs: Mapping[str, float]
    likelihood: Mapping[str, float] = field(default_factory=dict)

    def within(self, arch: str) -> bool:
        return self.costs[arch] <= self.limit

    def none_within(self) -> str:
        return f"no sampled architecture within the budget {self.limit:g}"


def select(scores: pd.DataFrame, names: Sequence[str], combine: Sequence[Sequence[str]] = (),
           argmax: str | None = None, budget: BudgetView | None = None) -> list[dict[str, str | None]]:
    """Selection rules over one trial's scored samples (`arch` + proxy columns; NaN/None = failed).

    `proxy:<name>`: the architecture with the highest value (first in sample order on ties);
    `rank:<a>+<b>`: the highest sum of ranks over those proxies, among architectures scored by all of them;
    `argmax`: the distribution's most likely architecture (given). A rule with no valid candidate gives None.
    Under a `budget` every rule chooses among the samples within it (ranks are taken among them): `argmax` keeps
    the most likely architecture when it is within, else the within-budget sample most likely under the mode; a
    rule with no candidate within gives None and a `note` saying so. `pareto:<name>` (budget only) gives one row per
    sample non-dominated in (the proxy's score up, the budget's cost down), over all samples.
    """
    distinct = scores.drop_duplicates("arch").reset_index(drop=True)
    if budget is not None:
        within = distinct[[budget.within(a) for a in distinct.arch]].reset_index(drop=True)
        none_note = None if len(within) else budget.none_within()
    else:
        within, none_note = distinct, None
    rows: list[dict[str, str | None]] = []
    if argmax is not None:
        rows.append(_budget_argmax(argmax, within, budget))
    for name in names:
        values = within[name].astype(float)
        rows.append({"rule": f"proxy:{name}", "arch": None if values.isna().all() else within.arch[values.idxmax()],
                     **({"note": none_note} if none_note else {})})
    for group in combine:
        total = rank_sum(within, group)
        rows.append({"rule": "rank:" + "+".join(group),
                     "arch": None if total.isna().all() else within.arch[total.idxmax()],
                     **({"note": none_note} if none_note else {})})
    if budget is not None:
        costs = [budget.costs[a] for a in distinct.arch]
        for name in names:
            front = sorted(pareto_front(costs, distinct[name].astype(float).tolist()))  # in sample order
            rows += [{"rule": f"pareto:{name}", "arch": distinct.arch[i]} for i in front]
    return rows


def _budget_argmax(argmax: str, within: pd.DataFrame, budget: BudgetView | None) -> dict[str, str | None]:
    if budget is None or budget.within(argmax):
        return {"rule": "argmax", "arch": argmax}
    if within.empty:
        return {"rule": "argmax", "arch": None, "note": budget.none_within()}
    order = sorted(range(len(within)), key=lambda i: -budget.likelihood.get(within.arch[i], -math.inf))
    return {"rule": "argmax", "arch": within.arch[order[0]],
            "note": f"the most likely architecture costs {budget.costs[argmax]:g} > {budget.limit:g}: the most "
                    "likely sample within the budget"}
