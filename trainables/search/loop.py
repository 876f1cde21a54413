"""The one supernet search loop every method runs on (the Ray Trainable and notebooks drive it).

Per step: a weight step (SGD, cosine schedule) on a "search-train" batch with the distribution's edge
weights, then, every `distribution.update_interval` weight steps, the distribution's architecture step on a
"search-valid" batch (after the weight step, as NB201's DARTS loop does). Data live on the device and are
augmented there; losses and accuracies accumulate as device tensors with one host synchronisation per epoch.
All randomness is seeded (global torch RNG for the supernet's initialisation, a device generator for data
order and augmentation, the distribution's own generator) and saved in checkpoints, so a run stopped after
epoch k and resumed ends bit-identical on the CPU to an unbroken run.

Per-epoch metrics: epoch (1-based), genotype (most likely architecture), train_loss, train_acc (weight steps),
valid_loss, valid_acc (from the architecture steps: the 0-d tensors "arch_loss" and "arch_acc" (a fraction)
that `update` returns; NaN for a method that returns none, e.g. SNAS), any other key `update` returns
(averaged over the epoch's architecture steps), entropy, op_probs (JSON {group: [[p, ...], ...]}), lr,
steps, arch_steps, epoch_time_s, the distribution's `extra_metrics()`, and the ground truth of the genotype
(bench_* columns) when `benchmark` is configured, and its cost columns (`cost_params_M`, `cost_flops_M`,
`cost_latency_<device>_ms`: `search_spaces.costs`, at the space's proxy size). Accuracies are in percent, as
NB201 reports them.

Divergence: the epoch's one synchronisation also carries whether the weight loss, the architecture loss and every
floating-point tensor of the distribution's state (its parameters and optimizer moments) are finite; if one is
not, `run_epoch` raises `NonFiniteSearch`, naming the epoch and the quantity, with the epoch's metrics (genotype
None: a NaN distribution has no meaningful argmax) attached. The run is deterministic, so going on (or retrying
from a checkpoint) would only repeat it.

API: `SearchRun(config)`, `.run_epoch()`, `.save(path)`, `SearchRun.from_checkpoint(path)`,
`load_distribution(path)`, `run_search(config)`, `NonFiniteSearch`, `nonfinite_state(distribution)`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from search_spaces.data import dataset_spec, load_splits
from search_spaces.data.device import DeviceDataset
from search_spaces.space import get_space
from trainables.methods import ArchDistribution, ArchStepContext, EdgeWeights, make_distribution
from trainables.methods.arch_params import detached_copy
from trainables.runs.checkpoints import load_rng_state, rng_state, save_atomic
from trainables.runs.memory_format import resolve_channels_last
from trainables.search.budget import BudgetTerm
from trainables.search.config import SearchConfig, default_channels_last, parse_config

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
#: the SearchRun file's name inside a Tune checkpoint folder.
CHECKPOINT_FILE = "search.pt"


#: at most this many non-finite distribution tensors are named in a `NonFiniteSearch` message
_NAMED_TENSORS = 4


class NonFiniteSearch(RuntimeError):
    """A search loss or the distribution's state became NaN or infinite. The message names the epoch and the
    quantity; `metrics` holds that epoch's metrics (losses as measured, genotype None) for inspection."""

    def __init__(self, message: str, metrics: dict[str, Any] | None = None):
        super().__init__(message)
        self.metrics = dict(metrics or {})

    def __reduce__(self):  # picklable with its metrics (Ray ships exceptions between processes)
        return type(self), (str(self), self.metrics)


def state_tensors(state: Any, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """(dotted name, tensor) of every floating-point tensor in a nested state dict (parameters, optimizer moments;
    not generator states or integer counters)."""
    if isinstance(state, torch.Tensor):
        if state.is_floating_point() or state.is_complex():
            yield prefix or "state", state
    elif isinstance(state, dict):
        for k, v in state.items():
            yield from state_tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(state, (list, tuple)):
        for i, v in enumerate(state):
            yield from state_tensors(v, f"{prefix}.{i}" if prefix else str(i))


def nonfinite_state(distribution: ArchDistribution) -> list[str]:
    """Names of the distribution's state tensors holding NaN or infinite values (host syncs: for checks outside the
    loop, e.g. before sampling from a stored distribution)."""
    return [name for name, t in state_tensors(distribution.state_dict()) if not bool(torch.isfinite(t).all())]


def _divergence_message(quantities: list[str], epoch: int, total: int) -> str:
    return f"non-finite {'; '.join(quantities)} in epoch {epoch} of {total}"


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when present, else CPU; an unavailable accelerator is a ValueError naming it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={name!r}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device={name!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={name!r}: MPS is not available on this machine")
    return device


class _Batches:
    """Draws batches (augmented or not, channels_last or not) from a DeviceDataset for the loop."""

    def __init__(self, data: DeviceDataset, augment: bool, channels_last: bool):
        self.data, self.augment, self.channels_last = data, augment, channels_last

    def __len__(self) -> int:
        return len(self.data)

    def __call__(self, index: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.batch(index, augment=self.augment, generator=generator, channels_last=self.channels_last)


def _loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), labels)


class SearchRun:
    """One search: supernet, distribution, data and optimizers on one device, advanced an epoch at a time."""

    def __init__(self, config: dict[str, Any], *, splits: dict[str, DeviceDataset] | None = None):
        """`splits` ({"search-train": ..., "search-valid": ...}) replaces reading `data_root` (benchmarks,
        notebooks with data already in memory); they are moved to the run's device."""
        cfg: SearchConfig = parse_config(config)
        self.cfg = cfg
        self.config: dict[str, Any] = cfg.model_dump()
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels
        self.space = get_space(cfg.space)
        self.spec = dataset_spec(cfg.dataset)
        if splits is None:
            # train_size keeps the first n of each half (the halves are already shuffled): the same data for
            # every seed, so seeds differ only in initialisation, data order and sampling
            splits = load_splits(cfg.dataset, cfg.data_root, ["search-train", "search-valid"],
                                 subset=cfg.train_size, subset_seed=None, device=self.device,
                                 split_file=cfg.split_file, download=cfg.download)
        else:
            missing = {"search-train", "search-valid"} - set(splits)
            if missing:
                raise ValueError(f"splits is missing {', '.join(sorted(missing))}")
            splits = {k: splits[k].to(self.device) for k in ("search-train", "search-valid")}
        self.num_classes = splits["search-train"].num_classes

        torch.manual_seed(cfg.seed)
        model = self.space.supernet(num_classes=self.num_classes, **cfg.size).to(self.device)
        # "auto" keeps NCHW on a supernet whose convolutions the CPU backward crashes on (runs/memory_format.py)
        self.channels_last = resolve_channels_last(cfg.channels_last, model, self.device.type,
                                                   preferred=default_channels_last(self.device.type))
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.train = _Batches(splits["search-train"], cfg.augment, self.channels_last)
        self.valid = _Batches(splits["search-valid"], cfg.augment, self.channels_last)
        self.model = model.train()
        # the compiled forward shares self.model's parameters; sparse (active-list) forwards stay eager, since
        # each new list of sampled ops would be a new graph
        self._compiled = None if cfg.compile is None else torch.compile(self.model, mode=cfg.compile, dynamic=False)
        self.distribution: ArchDistribution = make_distribution(
            cfg.method, self.space, cfg.params, num_valid=len(self.valid), device=self.device,
            seed=cfg.seed)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.w_lr, momentum=cfg.w_momentum,
                                         weight_decay=cfg.w_weight_decay,
                                         nesterov=cfg.w_nesterov and cfg.w_momentum > 0)
        # Cosine from w_lr to w_lr_min over the epochs, stepped once per epoch as in DARTS (Liu et al.);
        # NB201's xautodl steps the same curve per iteration, which differs by under one epoch's decay.
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=cfg.epochs,
                                                                    eta_min=cfg.w_lr_min)
        self.data_generator = torch.Generator(device=self.device)
        self.data_generator.manual_seed(cfg.seed)
        self.epoch = 0
        self.global_step = 0
        # a budget on the architecture's cost: the same term for every method (trainables/search/budget.py)
        self.budget = None if cfg.cost is None else BudgetTerm(cfg.cost, self.space, cfg.dataset, self.device)
        self.benchmark = None
        if cfg.benchmark is not None:
            from search_spaces.benchmarks import open_benchmark  # loaded only when ground truth is asked for
            if self.space.benchmark_name is None:
                raise ValueError(f"benchmark={cfg.benchmark!r}: space {cfg.space!r} has no ground-truth benchmark")
            self.benchmark = open_benchmark(self.space.benchmark_name, cfg.benchmark)

    # ----- properties the Trainable uses ------------------------------------------------------------
    @property
    def total_epochs(self) -> int:
        return self.cfg.epochs

    @property
    def done(self) -> bool:
        return self.epoch >= self.cfg.epochs

    @property
    def steps_per_epoch(self) -> int:
        steps = math.ceil(len(self.train) / self.cfg.batch_size)
        return steps if self.cfg.steps_per_epoch is None else min(steps, self.cfg.steps_per_epoch)

    # ----- the loop ---------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, edge_weights: EdgeWeights) -> torch.Tensor:
        """The supernet forward under the run's autocast setting (bf16 when `amp`)."""
        model = self.model if self._compiled is None or edge_weights.active is not None else self._compiled
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.cfg.amp):
            return model(x, edge_weights.weights, edge_weights.active)

    def _budgeted(self):
        """(forward, loss_fn) for an architecture step under a budget: the loss of a forward adds the budget term
        of the weights that forward used (each method's own relaxation or draw)."""
        used: list[EdgeWeights] = []

        def forward(x: torch.Tensor, edge_weights: EdgeWeights) -> torch.Tensor:
            used.append(edge_weights)
            return self.forward(x, edge_weights)

        def loss_fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            loss = _loss_fn(logits, labels)
            return self.budget.add_to(loss, used[-1].weights) if used else loss

        return forward, loss_fn

    def _valid_order(self, count: int) -> torch.Tensor:
        """`count` validation indices: successive random permutations of the validation half."""
        n = len(self.valid)
        perms = [torch.randperm(n, generator=self.data_generator, device=self.device)
                 for _ in range(math.ceil(count / n))]
        return torch.cat(perms)[:count]

    def step(self, train_index: torch.Tensor, valid_index: torch.Tensor, lr: float, interval: int = 1
             ) -> tuple[torch.Tensor, torch.Tensor, int, dict[str, torch.Tensor] | None, int]:
        """One iteration: draw both batches, the weight step, then the architecture step when this is an
        `interval`-th weight step. Returns (train loss, correct count, batch size, the update's outputs or
        None, validation batch size); values are device tensors, so no host sync happens here unless the
        method needs one by design (GDAS: the sampled op indices). benchmarks/gpu_check.py runs this under
        torch.cuda.set_sync_debug_mode("error")."""
        cfg, dist = self.cfg, self.distribution
        if cfg.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # one training iteration for CUDA graph trees
        x, y = self.train(train_index, self.data_generator)
        xv, yv = self.valid(valid_index, self.data_generator)
        weights = dist.weights_for_weight_step()
        logits = self.forward(x, weights)
        loss = _loss_fn(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        # the budget term reaches the architecture through the weight step where the method's weights carry
        # gradients (SNAS); it has none w.r.t. the network weights
        (loss if self.budget is None else self.budget.add_to(loss, weights.weights)).backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        correct = (logits.detach().argmax(dim=-1) == y).sum()
        self.global_step += 1
        out = None
        if self.global_step % interval == 0:
            relaxed = self.budget is not None and not dist.cost_by_sampling
            forward, loss_fn = self._budgeted() if relaxed else (self.forward, _loss_fn)
            ctx = ArchStepContext(self.model, forward, loss_fn, (x, y), (xv, yv), self.optimizer, lr,
                                  self.global_step, self.epoch, self.total_epochs,
                                  None if self.budget is None else self.budget.of_archs)
            out = dist.update(ctx)
            if self.budget is not None:
                self.budget.dual_step()
        # a copy: under CUDA graphs the loss lives in the graph's memory, which the next replay overwrites
        return loss.detach().clone(), correct, y.shape[0], out, yv.shape[0]

    def run_epoch(self) -> dict[str, Any]:
        """One search epoch; returns its metrics (JSON-able values)."""
        if self.done:
            raise RuntimeError(f"the search is complete ({self.epoch}/{self.total_epochs} epochs)")
        cfg, dist = self.cfg, self.distribution
        start = time.perf_counter()
        dist.on_epoch_start(self.epoch, self.total_epochs)
        lr = float(self.optimizer.param_groups[0]["lr"])
        B, steps = cfg.batch_size, self.steps_per_epoch
        train_order = torch.randperm(len(self.train), generator=self.data_generator, device=self.device)
        valid_order = self._valid_order(min(steps * B, len(self.train)))
        interval = max(int(dist.update_interval), 1)

        zero = torch.zeros((), device=self.device)
        train_loss, train_correct, n_train = zero.clone(), zero.clone(), 0
        arch_sums: dict[str, torch.Tensor] = {}
        n_valid, arch_steps = 0, 0
        for i in range(steps):
            loss, correct, nb, out, nv = self.step(train_order[i * B:(i + 1) * B], valid_order[i * B:(i + 1) * B],
                                                   lr, interval)
            train_loss += loss * nb
            train_correct += correct
            n_train += nb
            if out is not None:
                for k, v in out.items():
                    arch_sums[k] = arch_sums.get(k, zero) + v.detach().float() * nv
                n_valid += nv
                arch_steps += 1
        self.scheduler.step()
        self.epoch += 1

        keys = sorted(arch_sums)
        # the distribution's parameters and optimizer moments, checked on the device: one 0/1 flag per tensor
        # (tensors elsewhere, e.g. Adam's CPU step counters, are counters, not parameters)
        state = [(name, t) for name, t in state_tensors(dist.state_dict()) if t.device == train_loss.device]
        flags = [torch.isfinite(t).all().to(train_loss.dtype) for _, t in state]
        host = torch.stack([train_loss, train_correct] + [arch_sums[k] for k in keys] + flags).tolist()  # the one sync
        sums = host[:2 + len(keys)]
        arch = {k: v / max(n_valid, 1) if n_valid else float("nan") for k, v in zip(keys, sums[2:])}
        diverged = self._nonfinite(sums[0] / n_train, arch.get("arch_loss"),
                                   [name for (name, _), ok in zip(state, host[2 + len(keys):]) if not ok])
        metrics: dict[str, Any] = {
            "epoch": self.epoch,
            "genotype": None if diverged else dist.most_likely(),
            "train_loss": sums[0] / n_train,
            "train_acc": 100.0 * sums[1] / n_train,
            "valid_loss": arch.pop("arch_loss", float("nan")),
            "valid_acc": 100.0 * arch.pop("arch_acc", float("nan")),
            "entropy": dist.entropy(),
            "op_probs": json.dumps({g: p.detach().float().cpu().tolist()
                                    for g, p in dist.op_probabilities().items()}),
            "lr": lr,
            "steps": steps,
            "arch_steps": arch_steps,
        }
        metrics.update(arch)
        metrics.update({k: float(v) for k, v in dist.extra_metrics().items()})
        if diverged:
            metrics["epoch_time_s"] = time.perf_counter() - start
            message = _divergence_message(diverged, self.epoch, self.total_epochs)
            log.error("%s %s: %s", cfg.method, cfg.dataset, message)
            raise NonFiniteSearch(message, metrics)
        if self.benchmark is not None:
            # a partial table (e.g. a published sample) has no row for most architectures: missing, not invented
            genotype = metrics["genotype"]
            record = self.benchmark.record(genotype) if genotype in self.benchmark else {}
            metrics.update({(k if k.startswith("bench_") else f"bench_{k}"): float(v) for k, v in record.items()})
        metrics.update(self._argmax_costs(metrics["genotype"]))
        if self.budget is not None:
            metrics.update(self.budget.metrics(dist.op_probabilities(), metrics["genotype"]))
        metrics["epoch_time_s"] = time.perf_counter() - start
        log.info("%s %s epoch %d/%d: train loss %.4f acc %.2f | valid loss %.4f acc %.2f | entropy %.3f | %s "
                 "(%.1fs)", cfg.method, cfg.dataset, self.epoch, self.total_epochs, metrics["train_loss"],
                 metrics["train_acc"], metrics["valid_loss"], metrics["valid_acc"], metrics["entropy"],
                 metrics["genotype"], metrics["epoch_time_s"])
        return metrics

    def _argmax_costs(self, arch: str) -> dict[str, float]:
        """Cost columns of the argmax architecture (`search_spaces.costs.cost_columns` of its derived network at
        the space's proxy size and the search data set: params, multiply-adds, latency on every device of the
        space's latency source), cached per architecture. Built on the CPU outside the run's random streams
        (`fork_rng`), so the search is the same with or without them; a failure costs the columns, not the epoch."""
        cache = self.__dict__.setdefault("_cost_cache", {})
        if arch not in cache:
            from search_spaces.costs import check_devices, cost_columns

            try:
                with torch.random.fork_rng(devices=[]):
                    cache[arch] = cost_columns(self.space, arch, None, self.cfg.dataset, check_devices(self.space))
            except (ValueError, KeyError, RuntimeError) as err:
                log.warning("no cost columns for %s (%s: %s)", arch, type(err).__name__, err)
                cache[arch] = {}
        return dict(cache[arch])

    @staticmethod
    def _nonfinite(train_loss: float, arch_loss: float | None, state: list[str]) -> list[str]:
        """The quantities of an epoch that are NaN or infinite, as `NonFiniteSearch` names them (empty: none)."""
        found = []
        if not math.isfinite(train_loss):
            found.append(f"weight loss (train_loss={train_loss})")
        if arch_loss is not None and not math.isfinite(arch_loss):
            found.append(f"architecture loss (valid_loss={arch_loss})")
        if state:
            more = f", ... ({len(state)} tensors)" if len(state) > _NAMED_TENSORS else ""
            found.append(f"distribution parameters ({', '.join(state[:_NAMED_TENSORS])}{more})")
        return found

    # ----- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (tensors and plain containers: loads with weights_only)."""
        rng = rng_state(self.data_generator, self.device)
        return detached_copy({
            "format": CHECKPOINT_FORMAT, "config": dict(self.config), "method": self.cfg.method,
            "epoch": self.epoch, "global_step": self.global_step, "num_valid": len(self.valid),
            "num_classes": self.num_classes, "model": self.model.state_dict(),
            "distribution": self.distribution.state_dict(), "weight_optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": rng,
            **({} if self.budget is None else {"budget": self.budget.state_dict()})})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}")
        if state["method"] != self.cfg.method:
            raise ValueError(f"checkpoint method {state['method']!r} differs from the run's {self.cfg.method!r}")
        if state["num_valid"] != len(self.valid):
            raise ValueError(f"checkpoint was written with {state['num_valid']} validation examples, this run "
                             f"has {len(self.valid)} (different data_root/train_size?)")
        self.model.load_state_dict(state["model"])
        self.distribution.load_state_dict(state["distribution"])
        self.optimizer.load_state_dict(state["weight_optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        load_rng_state(state["rng"], self.data_generator, self.device)
        if self.budget is not None and "budget" in state:
            self.budget.load_state_dict(state["budget"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])

    def save(self, path: str | os.PathLike) -> Path:
        """Write the checkpoint atomically (a crash mid-write leaves the previous file in place)."""
        return save_atomic(self.state_dict(), path)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, overrides: dict[str, Any] | None = None, *,
                        splits: dict[str, DeviceDataset] | None = None) -> SearchRun:
        """Rebuild a run from `save`'s file; `overrides` may change e.g. data_root or device; `splits` as in
        the constructor (data already in memory)."""
        state = _load(path, "cpu")
        run = cls({**state["config"], **(overrides or {})}, splits=splits)
        run.load_state_dict(state)
        return run


def checkpoint_file(path: str | os.PathLike) -> str:
    """The SearchRun file of a trial: `path` itself, or `CHECKPOINT_FILE` inside a Tune checkpoint folder."""
    p = Path(path)
    return str(p / CHECKPOINT_FILE if p.is_dir() else p)


def _load(path: str | os.PathLike, map_location) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"search checkpoint not found: {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


def load_distribution(checkpoint_path: str | os.PathLike,
                      device: torch.device | str = "cpu") -> tuple[ArchDistribution, dict[str, Any]]:
    """The trained distribution of a checkpoint file or Tune checkpoint folder (and the run's config),
    without supernet or data."""
    state = _load(checkpoint_file(checkpoint_path), device)
    config = state["config"]
    dist = make_distribution(state["method"], get_space(config["space"]), dict(config["method_params"]),
                             num_valid=state["num_valid"], device=device, seed=config["seed"])
    dist.load_state_dict(state["distribution"])
    return dist, config


def run_search(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Run a whole search without Ray; one metrics dict per epoch."""
    run = SearchRun(config)
    return [run.run_epoch() for _ in range(run.total_epochs)]
