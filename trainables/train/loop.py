"""The final-training loop: one architecture, one seed, trained from scratch under a protocol, an epoch a time.

Per epoch: drop path probability `p * epoch / epochs` on the network (DARTS's ramp; 0 = off), one pass over a
fresh device-side permutation of the training split with crop/flip/cutout done on the device (image-folder data
sets, i.e. ImageNet, decode and augment each batch on the host instead), SGD with the
protocol's clipping and schedule, the auxiliary head's loss weighted in when the network returns
`(logits, aux_logits)` in training mode, then (every `eval_every` epochs and after the last) evaluation in eval
mode on the protocol's splits. Losses and hits accumulate as device tensors: one host synchronisation per
epoch, where a non-finite training loss is detected (`NonFiniteLoss`, naming the epoch), plus one per batch
with an image-folder data set (its index and random draws go to the host, where the files are decoded).

All randomness is seeded (global torch RNG for initialisation and drop path, a device generator for data
order and augmentation) and saved in checkpoints with weights, optimizer, scheduler and epoch, so a run
stopped after epoch k and resumed ends bit-identical on the CPU to an unbroken run.

API: `TrainRun(config, splits=None)`, `.run_epoch()`, `.save(path)`, `.load_state_dict(...)`,
`TrainRun.from_checkpoint(path)`, `run_training(config)`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.data import load_splits
from search_spaces.data.device import DeviceDataset
from search_spaces.data.image_folder import ImageFolderDataset
from search_spaces.space import get_space
from trainables.methods.arch_params import detached_copy
from trainables.runs.checkpoints import load_rng_state, rng_state, save_atomic
from trainables.runs.memory_format import resolve_channels_last
from trainables.search.loop import resolve_device
from trainables.train.config import TrainConfig, parse_train_config
from trainables.train.protocol import TrainProtocol

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
#: what the loop draws batches from: a device-resident split or an image folder decoded per batch (same interface)
Data = DeviceDataset | ImageFolderDataset
#: parameters whose name contains this belong to the auxiliary head, which exists only for training (DARTS's
#: `count_parameters_in_MB` leaves them out of the published parameter counts, and so does `param_count`).
AUXILIARY_NAME = "auxiliary"


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite; the message names the epoch."""


def network_keywords(space, protocol: TrainProtocol) -> dict[str, Any]:
    """Keywords for `space.network(arch, num_classes=..., **kw)`: the protocol's size (checked against the space's
    size keys), its `network` extras and `auxiliary`, where the space lists them in `network_extras`.

    A keyword the space's network does not take is a ValueError naming the protocol field.
    """
    space.sizes("proxy", protocol.size, field="protocol.size")  # raises naming the key; the space fills defaults
    extras = tuple(getattr(space, "network_extras", ()))
    kw: dict[str, Any] = dict(protocol.size)
    for key, value in protocol.network.items():
        if key not in extras:
            raise ValueError(f"protocol network.{key}={value!r}: space {space.name!r}'s network takes no {key!r}; "
                             f"its extras: {', '.join(extras) or '(none)'}")
        kw[key] = value
    if "auxiliary" in extras:
        kw["auxiliary"] = protocol.auxiliary
    elif protocol.auxiliary:
        raise ValueError(f"protocol auxiliary=True: space {space.name!r}'s network has no auxiliary head")
    return kw


def param_count(model: nn.Module) -> int:
    """Trainable parameters of the evaluation network (the auxiliary head left out, as DARTS counts)."""
    return sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and AUXILIARY_NAME not in n)


def flop_count(model: nn.Module, image: torch.Tensor) -> float:
    """Multiply-accumulates of one image in eval mode (trainables.proxies.flops's convention)."""
    from trainables.proxies import flops

    was_training = model.training
    model.eval()
    try:
        return flops.compute(model, image, torch.zeros(1, dtype=torch.long, device=image.device))
    finally:
        model.train(was_training)


def cost_columns_of(space, arch: str, model: nn.Module, macs: int, size: dict[str, Any],
                    dataset: str) -> dict[str, float]:
    """`search_spaces.costs.cost_columns` of the built `model` whose one-image eval forward
    `torch.utils.flop_counter.FlopCounterMode` counted as 2 x `macs` FLOPs (`search_spaces.costs.count_macs`'s
    count): `cost_params_M`, `cost_flops_M` (multiply-adds) and `cost_latency_<device>_ms` for every device of the
    space's latency source that has a figure for this network size and data set (NB201: C=16, N=5 on CIFAR
    only)."""
    from search_spaces.costs import PREFIX, check_devices, count_params, latency_columns

    return {f"{PREFIX}params_M": count_params(model) / 1e6, f"{PREFIX}flops_M": macs / 1e6,
            **latency_columns(space, arch, size, dataset, check_devices(space))}


def split_logits(out: torch.Tensor | tuple) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logits, aux_logits or None) from a network's output (a tensor, or a pair with an auxiliary head)."""
    if isinstance(out, (tuple, list)):
        return out[0], (out[1] if len(out) > 1 else None)
    return out, None


class TrainRun:
    """One final training: network, optimizer, schedule and data on one device, advanced an epoch at a time."""

    def __init__(self, config: dict[str, Any] | TrainConfig, *, splits: dict[str, Data] | None = None):
        """`splits` ({"train": ..., <eval role>: ...}, e.g. "test") replaces reading `data_root` (tests,
        benchmarks, data sets without a reader here); they are moved to the run's device."""
        cfg = parse_train_config(config)
        self.cfg = cfg
        self.protocol: TrainProtocol = cfg.resolved_protocol()
        self.config: dict[str, Any] = cfg.model_dump()
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.space = get_space(cfg.space_name)
        self.arch = self.space.canonical(cfg.arch)
        p = self.protocol
        if splits is None:
            splits = self._load_splits()
        else:
            if "train" not in splits or "test" not in splits:
                raise ValueError(f"splits must hold 'train' and 'test', got {sorted(splits)}")
            splits = {k: v.to(self.device) for k, v in splits.items()}
        self.train_data = splits["train"].subset(p.train_size)
        self.eval_data = {k: v.subset(p.eval_size) for k, v in splits.items() if k != "train"}
        self.num_classes = self.train_data.num_classes

        torch.manual_seed(cfg.seed)
        model = self.space.network(self.arch, num_classes=self.num_classes,
                                   **network_keywords(self.space, p)).to(self.device)
        if p.drop_path_prob > 0 and not hasattr(model, "drop_path_prob"):
            raise ValueError(f"protocol drop_path_prob={p.drop_path_prob}: space {self.space.name!r}'s network "
                             f"has no drop path (no `drop_path_prob` attribute)")
        if resolve_channels_last(cfg.channels_last, model, self.device.type):  # warns on a network it may crash on
            model = model.to(memory_format=torch.channels_last)
        self.model = model.train()
        self.params = param_count(model)
        image = self.train_data.batch(torch.arange(1, device=self.device))[0]
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)  # the cost columns' count, in the same (one) forward
        with counter:
            self.flops = flop_count(model, image)
        self.costs = cost_columns_of(self.space, self.arch, model, counter.get_total_flops() // 2,
                                     network_keywords(self.space, p), cfg.dataset)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=p.momentum,
                                         weight_decay=p.weight_decay, nesterov=p.nesterov and p.momentum > 0)
        self.scheduler = self._scheduler()
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(cfg.seed)
        self.epoch = 0
        self.last_eval: dict[str, float] = {}

    def _load_splits(self) -> dict[str, Data]:
        p, cfg = self.protocol, self.cfg
        if cfg.dataset not in p.splits:
            raise ValueError(f"protocol {p.name!r} has no splits for dataset {cfg.dataset!r} (it has "
                             f"{', '.join(p.splits) or 'none'}): pass the data as `splits`")
        where = p.splits[cfg.dataset]
        names = [where.train, *where.eval.values()]
        loaded = load_splits(where.data, cfg.data_root, list(dict.fromkeys(names)), device=self.device,
                             split_file=cfg.split_file)
        return {"train": loaded[where.train], **{role: loaded[split] for role, split in where.eval.items()}}

    def _scheduler(self):
        p = self.protocol
        if p.schedule == "exponential":
            return torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=1, gamma=p.gamma)
        t_max = p.epochs * (self.steps_per_epoch if p.lr_step == "iteration" else 1)
        return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=t_max, eta_min=p.lr_min)

    # ----- properties -------------------------------------------------------------------------------------
    @property
    def total_epochs(self) -> int:
        return self.protocol.epochs

    @property
    def done(self) -> bool:
        return self.epoch >= self.total_epochs

    @property
    def steps_per_epoch(self) -> int:
        steps = math.ceil(len(self.train_data) / self.protocol.batch_size)
        cap = self.protocol.steps_per_epoch
        return steps if cap is None else min(steps, cap)

    # ----- the loop ---------------------------------------------------------------------------------------
    def _forward(self, x: torch.Tensor):
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.cfg.amp):
            return self.model(x)

    def run_epoch(self) -> dict[str, Any]:
        """One training epoch (and evaluation when due); returns its metrics (JSON-able values)."""
        if self.done:
            raise RuntimeError(f"the training is complete ({self.epoch}/{self.total_epochs} epochs)")
        p = self.protocol
        start = time.perf_counter()
        self.model.train()
        drop = p.drop_path_prob * self.epoch / p.epochs
        if hasattr(self.model, "drop_path_prob"):
            self.model.drop_path_prob = drop
        lr = float(self.optimizer.param_groups[0]["lr"])
        B, steps = p.batch_size, self.steps_per_epoch
        order = self.train_data.permutation(self.generator)
        unreadable = self._unreadable_images()
        zero = torch.zeros((), device=self.device)
        loss_sum, hits, seen = zero.clone(), zero.clone(), 0
        for i in range(steps):
            x, y = self.train_data.batch(order[i * B:(i + 1) * B], augment=p.augment, generator=self.generator,
                                         channels_last=self.cfg.channels_last, cutout=p.cutout)
            logits, aux = split_logits(self._forward(x))
            loss = F.cross_entropy(logits.float(), y, label_smoothing=p.label_smoothing)
            if aux is not None and p.auxiliary:
                loss = loss + p.auxiliary_weight * F.cross_entropy(aux.float(), y, label_smoothing=p.label_smoothing)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if p.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), p.grad_clip)
            self.optimizer.step()
            if p.lr_step == "iteration":
                self.scheduler.step()
            n = y.shape[0]
            loss_sum += loss.detach() * n
            hits += (logits.detach().argmax(dim=-1) == y).sum()
            seen += n
        if p.lr_step == "epoch":
            self.scheduler.step()
        self.epoch += 1
        train_loss, train_hits = torch.stack([loss_sum, hits]).tolist()  # the epoch's one sync
        if not math.isfinite(train_loss):
            raise NonFiniteLoss(f"non-finite training loss ({train_loss}) in epoch {self.epoch} of "
                                f"{self.total_epochs}")
        train_time = time.perf_counter() - start
        metrics: dict[str, Any] = {"epoch": self.epoch, "train_loss": train_loss / seen,
                                   "train_acc": 100.0 * train_hits / seen, "lr": lr, "drop_path_prob": drop,
                                   "steps": steps, "train_time_s": train_time}
        if self.epoch % p.eval_every == 0 or self.done:
            self.last_eval = self.evaluate()
        metrics.update(self.last_eval)
        metrics["unreadable_images"] = self._unreadable_images() - unreadable  # skipped and replaced this epoch
        metrics["epoch_time_s"] = time.perf_counter() - start
        return metrics

    def _unreadable_images(self) -> int:
        """Images the splits could not read so far (an image folder skips, replaces and counts them; 0 in memory)."""
        return sum(getattr(d, "unreadable_images", 0) for d in (self.train_data, *self.eval_data.values()))

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Loss, accuracy (%) and error (%) on each evaluated split, in eval mode (no drop path, no aux head)."""
        self.model.eval()
        try:
            sums = {}
            for role, data in self.eval_data.items():
                loss_sum = torch.zeros((), device=self.device)
                hits = torch.zeros((), device=self.device)
                index = torch.arange(len(data), device=self.device)
                for chunk in index.split(self.protocol.eval_batch_size):
                    x, y = data.batch(chunk, channels_last=self.cfg.channels_last)
                    logits, _ = split_logits(self._forward(x))
                    loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
                    hits += (logits.argmax(dim=-1) == y).sum()
                sums[role] = (loss_sum, hits, len(data))
            host = torch.stack([t for loss, hit, _ in sums.values() for t in (loss, hit)]).tolist() if sums else []
        finally:
            self.model.train()
        out: dict[str, float] = {}
        for i, (role, (_, _, n)) in enumerate(sums.items()):
            acc = 100.0 * host[2 * i + 1] / n
            out.update({f"{role}_loss": host[2 * i] / n, f"{role}_acc": acc, f"{role}_error": 100.0 - acc})
        return out

    # ----- identity -----------------------------------------------------------------------------------------
    def description(self) -> dict[str, Any]:
        """What a result row says about this training besides its metrics."""
        return {"arch": self.arch, "space": self.space.name, "dataset": self.cfg.dataset,
                "protocol": self.protocol.name, "seed": self.cfg.seed, "params": self.params,
                "flops": self.flops, "device": str(self.device), **self.costs,
                "protocol_json": json.dumps(self.protocol.model_dump(mode="json"), sort_keys=True)}

    # ----- export -------------------------------------------------------------------------------------------
    def onnx(self) -> tuple[bytes, float]:
        """The trained network as ONNX (eval mode, auxiliary head left out by eval mode) and the largest absolute
        logit difference of onnxruntime from torch on a fixed batch (`search_spaces.onnx_export.checked_onnx`)."""
        from search_spaces.onnx_export import checked_onnx

        image = self.train_data.batch(torch.arange(1, device=self.device))[0]
        was_training = self.model.training
        try:
            return checked_onnx(self.model, int(image.shape[-1]), channels=int(image.shape[1]))
        finally:
            self.model.train(was_training)

    # ----- checkpoints ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (tensors and plain containers: loads with weights_only)."""
        rng = rng_state(self.generator, self.device)
        return detached_copy({
            "format": CHECKPOINT_FORMAT, "config": dict(self.config), "arch": self.arch, "epoch": self.epoch,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "rng": rng, "last_eval": dict(self.last_eval)})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}")
        if state["arch"] != self.arch:
            raise ValueError(f"checkpoint architecture {state['arch']!r} differs from this run's {self.arch!r}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        load_rng_state(state["rng"], self.generator, self.device)
        self.epoch = int(state["epoch"])
        self.last_eval = dict(state.get("last_eval", {}))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the checkpoint atomically (a crash mid-write leaves the previous file in place)."""
        return save_atomic(self.state_dict(), path)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, overrides: dict[str, Any] | None = None,
                        splits: dict[str, Data] | None = None) -> TrainRun:
        """Rebuild a run from `save`'s file; `overrides` may change e.g. data_root or device."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training checkpoint not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        run = cls({**state["config"], **(overrides or {})}, splits=splits)
        run.load_state_dict(state)
        return run


def run_training(config: dict[str, Any], splits: dict[str, Data] | None = None) -> list[dict[str, Any]]:
    """A whole training without Ray; one metrics dict per epoch."""
    run = TrainRun(config, splits=splits)
    return [run.run_epoch() for _ in range(run.total_epochs)]
