"""Callbacks the training config wires in."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback, EMAWeightAveraging, ModelCheckpoint, Timer
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from rnnlab.record import RecordError, build_record, read_metrics, write_metrics, write_predictions
from rnnlab.record import finite as _number
from rnnlab.runtime import machine_description

log = logging.getLogger(__name__)


class MetricsJson(Callback):
    """Writes `metrics.json` in the run directory (schema: rnnlab.record): per-epoch history,
    final and best values, test metrics, timing, the seed, the split and dataset sizes. Rewritten
    after every epoch, so a killed or failed run still leaves a readable record (with `"status"`
    saying how it ended)."""

    def __init__(self, path: str, seed: int | None = None):
        self.path = Path(path)
        self.seed = seed
        self.history: list[dict[str, float | None]] = []
        self.test: dict[str, float | None] = {}
        self.status = "running"
        self.error: str | None = None
        self.extra: dict[str, Any] = {}
        self.fitted_here = False
        self.epoch_started: float | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # a resumed run continues its history; testing a checkpoint keeps the full one
        if not self.history:
            self.history = list(state_dict.get("history", []))

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fitted_here = True

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # With a spawning strategy (trainer=ddp_sim) fit and test run in different processes:
        # testing starts from a copy that never saw the fit. Carry on from the record the fit
        # wrote instead of overwriting it with an empty one.
        if stage == "fit" or self.fitted_here or not self.path.exists():
            return
        if not trainer.is_global_zero:
            return
        try:
            record = read_metrics(self.path)
        except RecordError:
            return
        self.history = list(record.get("history") or self.history)
        self.status = record.get("status", self.status)
        self.error = record.get("error", self.error)
        if record.get("train_seconds") is not None:
            self.extra.setdefault("train_seconds", record["train_seconds"])

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        row = {"epoch": trainer.current_epoch + 1}
        row |= {k: _number(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        self.history.append(row)
        self.write(trainer, pl_module)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_started = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.history and trainer.is_global_zero:
            train = {
                k: _number(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")
            }
            self.history[-1].update(train)
            self.write(trainer, pl_module)
            self.log_epoch(trainer, self.history[-1])

    def log_epoch(self, trainer: L.Trainer, row: dict[str, Any]) -> None:
        """One line per epoch in the run's log (train.log, pretrain.log), for runs without a
        progress bar: `epoch 3/6: val/acc 0.9036 val/loss 0.2479 train/loss 0.3120 (612 s)`."""
        values = " ".join(
            f"{k} {v:.4f}"
            for k, v in row.items()
            if isinstance(v, float) and not k.endswith("_step")
        )
        of = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        took = f" ({time.monotonic() - self.epoch_started:.0f} s)" if self.epoch_started else ""
        log.info(f"epoch {row['epoch']}{of}: {values}{took}")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.status = "completed"
        # read the Timer now: testing a checkpoint later restores its saved clock into the Timer
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        if timer is not None:
            self.extra["train_seconds"] = round(timer.time_elapsed("train"), 2)
        self.write(trainer, pl_module)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.test = {
            k: _number(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")
        }
        self.write(trainer, pl_module)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        # Ctrl+C, or SIGTERM (kill, a cluster's preemption): stopped from outside, resumable
        stopped = isinstance(exception, (KeyboardInterrupt, SIGTERMException))
        self.status = "interrupted" if stopped else "failed"
        self.error = f"{type(exception).__name__}: {exception}"
        self.write(trainer, pl_module)

    def summary(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        checkpoint = (
            trainer.checkpoint_callback
            if isinstance(trainer.checkpoint_callback, ModelCheckpoint)
            else None
        )
        datamodule = getattr(trainer, "datamodule", None)
        return build_record(
            status=self.status,
            error=self.error,
            model=pl_module.hparams.get("name"),
            seed=self.seed,
            parameters=sum(p.numel() for p in pl_module.parameters()),
            history=self.history,
            train_seconds=round(timer.time_elapsed("train"), 2) if timer else None,
            test=self.test,
            checkpoint=checkpoint.best_model_path if checkpoint else None,
            data=datamodule.summary() if hasattr(datamodule, "summary") else {},
            extra=self.extra,
            machine=machine_description(trainer.strategy.root_device.type),
        )

    def write(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            write_metrics(self.path, self.summary(trainer, pl_module))


class PredictionsNpz(Callback):
    """Writes `predictions.npz` in the run directory (schema: rnnlab.record): for every test
    review its id, label and the tested model's probability that it is positive, so that
    `scripts/compare.py` can pair runs review by review.

    The model's logits are read with a forward hook while `trainer.test` runs (test_step calls
    the module once per batch); the reviews of each batch come from the test loader's batch
    sampler, which is deterministic in evaluation, and their ids from the datamodule's
    `review_ids["test"]`. With DDP every rank's batches are gathered onto rank 0, which writes.
    """

    def __init__(self, path: str):
        self.path = Path(path)
        self._hook: torch.utils.hooks.RemovableHandle | None = None
        self._logits: list[torch.Tensor] = []
        self._batches: list[list[int]] = []
        self._rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def _capture(self, module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
        self._logits.append(output.detach().float().cpu())

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loader = trainer.test_dataloaders
        loader = loader[0] if isinstance(loader, list | tuple) else loader
        sampler = getattr(loader, "batch_sampler", None)
        self._batches = [list(b) for b in sampler] if sampler is not None else []
        self._logits, self._rows = [], []
        self._hook = pl_module.register_forward_hook(self._capture)

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        logits = torch.cat(self._logits) if self._logits else torch.zeros(0)
        self._logits = []
        labels = batch[-1].detach().cpu().numpy()
        positions = self._batches[batch_idx] if batch_idx < len(self._batches) else []
        if not len(positions) == len(logits) == len(labels):
            return  # not one forward call per batch: on_test_end reports the gap
        probabilities = torch.sigmoid(logits).numpy()
        self._rows.append((np.asarray(positions), labels, probabilities))

    def _unhook(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._unhook()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._unhook()
        rows = self._rows
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, rows)
            rows = [r for part in gathered for r in part]
        if not trainer.is_global_zero:
            return
        datamodule = getattr(trainer, "datamodule", None)
        ids = getattr(datamodule, "review_ids", {}).get("test")
        tested = sum(len(b) for b in self._batches)
        if ids is None or not rows or sum(len(r[0]) for r in self._rows) != tested:
            log.warning(
                "No %s: the test batches' predictions could not be matched to review ids "
                "(a datamodule without review_ids, or a model that is not called once per test "
                "batch). compare.py leaves this run out of its paired tests.",
                self.path.name,
            )
            return
        positions = np.concatenate([r[0] for r in rows])
        # DDP pads short shards with batches from the start: keep each review once
        positions, first = np.unique(positions, return_index=True)
        labels = np.concatenate([r[1] for r in rows])[first]
        probabilities = np.concatenate([r[2] for r in rows])[first]
        write_predictions(self.path, np.asarray(ids)[positions], labels, probabilities)


class EMA(EMAWeightAveraging):
    """An exponential moving average of the weights (Lightning's `EMAWeightAveraging`).
    Validation, early stopping and checkpoints see the average, and training ends with the
    average in the model.

    Lightning's callback keeps the raw weights in each checkpoint too (`current_model_state`,
    for resuming) and loads them whenever a checkpoint is restored, so `trainer.test(ckpt_path=
    "best")` after `fit` would test the raw weights of the epoch that the average won. Outside
    fitting this restores nothing: the model keeps the checkpoint's `state_dict`, the average
    that was validated, which is also what `eval.py` and `predict.py` load."""

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
