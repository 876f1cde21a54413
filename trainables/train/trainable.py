"""The final-training Trainable: one Tune trial = one architecture x one seed, one `step()` = one epoch.

`config["trial"]` is a `TrainTrialSpec.as_config()` (trainables/train/spec.py): label, arch, seed, where the
architecture came from (`selected_by`) and the `TrainRun` config. Checkpoints are `TrainRun.save` files
(weights, optimizer, scheduler, RNG states, epoch), which Tune restores a failed trial from. A non-finite
training loss ends the trial at once with an `error` result naming the epoch (retrying from the last
checkpoint would meet the same loss: the run is deterministic), so the driver's `final` row says so and the
other trials go on. A trial restored from its last epoch's checkpoint trains nothing: its one result ends it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainables.runs.trainable import RunTrainable
from trainables.train.loop import NonFiniteLoss, TrainRun

CHECKPOINT_FILE = "train.pt"
#: the ONNX file of a finished training (`export: onnx`), beside its last checkpoint's train.pt
ONNX_FILE = "model.onnx"
#: largest onnxruntime-vs-torch logit difference accepted without a warning (fp32)
ONNX_TOLERANCE = 1e-4


def progress_line(label: str, metrics: dict[str, Any], total: int) -> str:
    """`label epoch e/E: train loss .. acc .. | test acc .. | 12.3 s/epoch, ETA 4:05:00` (what the logs show)."""
    seconds = float(metrics.get("epoch_time_s", 0.0))
    eta = int(seconds * (total - int(metrics["epoch"])))
    test = f" | test acc {metrics['test_acc']:.2f}" if "test_acc" in metrics else ""
    return (f"{label} epoch {metrics['epoch']}/{total}: train loss {metrics['train_loss']:.4f} acc "
            f"{metrics['train_acc']:.2f}{test} | {seconds:.1f} s/epoch, ETA {eta // 3600}:{eta % 3600 // 60:02d}:"
            f"{eta % 60:02d}")


class TrainTrainable(RunTrainable):
    checkpoint_name = CHECKPOINT_FILE

    run_key = "train"

    def describe(self, trial: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        description = self.run.description()
        identity = {"trial_label": trial["label"], **{k: v for k, v in description.items()
                                                      if k in ("arch", "space", "dataset", "protocol", "seed")}}
        return identity, {**description, "total_epochs": self.run.total_epochs}

    def build_run(self, train_config: dict[str, Any]) -> TrainRun:
        """The TrainRun of this trial (a seam for tests that inject data or failures)."""
        return TrainRun(train_config)

    def step(self) -> dict[str, Any]:
        if self.run.done:
            # restored from the last epoch's checkpoint (a retry after a failure past the last epoch, or --resume
            # of a trial whose training ended): nothing is left to train, so the trial ends at once and the driver
            # redoes only the missing bookkeeping. No `epoch` key: the stored epoch rows stay as they are.
            return {**self.identity, **self.info, "done": True}
        try:
            metrics = self.run.run_epoch()
        except NonFiniteLoss as err:
            return self._ended(err)
        print(progress_line(self.trial["label"], metrics, self.run.total_epochs), flush=True)
        if self.run.done and "onnx" in self.run.cfg.export:
            metrics.update(self._export_onnx())
        return self._result(metrics)

    def _export_onnx(self) -> dict[str, Any]:
        """Export the trained network (kept until the last checkpoint writes it); its check as result columns.
        A failed export is reported in `onnx_error` and never costs the trained result."""
        try:
            self._onnx, diff = self.run.onnx()
        except Exception as err:  # noqa: BLE001 - the training is done: an export failure must not lose it
            self._onnx = None
            return {"onnx_error": f"{type(err).__name__}: {err}"[:500]}
        if not diff <= ONNX_TOLERANCE:
            print(f"{self.trial['label']}: WARNING: ONNX export differs from torch by {diff:.3g} (> "
                  f"{ONNX_TOLERANCE:g}) on a fixed batch", flush=True)
        return {"onnx_max_abs_diff": diff}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        super().save_checkpoint(checkpoint_dir)
        data = getattr(self, "_onnx", None)
        if data is not None and self.run.done:
            (Path(checkpoint_dir) / ONNX_FILE).write_bytes(data)
