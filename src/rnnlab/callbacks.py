"""Callbacks the training config wires in."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, EMAWeightAveraging, ModelCheckpoint, Timer
from lightning.pytorch.trainer.states import TrainerFn

from rnnlab.atomic import atomic_write


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class MetricsJson(Callback):
    """Writes `metrics.json` in the run directory: per-epoch history, final and best values,
    test metrics, timing, the split and dataset sizes. Rewritten after every epoch, so a killed or
    failed run still leaves a readable record (with `"status"` saying how it ended)."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.history: list[dict[str, float | None]] = []
        self.test: dict[str, float | None] = {}
        self.status = "running"
        self.error: str | None = None
        self.extra: dict[str, Any] = {}
        self.fitted_here = False

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
            record = json.loads(self.path.read_text())
        except (OSError, ValueError):
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

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.history and trainer.is_global_zero:
            train = {
                k: _number(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")
            }
            self.history[-1].update(train)
            self.write(trainer, pl_module)

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
        self.status = "interrupted" if isinstance(exception, KeyboardInterrupt) else "failed"
        self.error = f"{type(exception).__name__}: {exception}"
        self.write(trainer, pl_module)

    def summary(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        history = [h for h in self.history if h.get("val/acc") is not None]
        best = max(history, key=lambda h: h["val/acc"], default=None)
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        checkpoint = (
            trainer.checkpoint_callback
            if isinstance(trainer.checkpoint_callback, ModelCheckpoint)
            else None
        )
        datamodule = getattr(trainer, "datamodule", None)
        return {
            "status": self.status,
            "error": self.error,
            "model": pl_module.hparams.get("name"),
            "parameters": sum(p.numel() for p in pl_module.parameters()),
            "epochs": len(self.history),
            "train_seconds": round(timer.time_elapsed("train"), 2) if timer else None,
            "final": {k: v for k, v in self.history[-1].items() if k != "epoch"}
            if self.history
            else {},
            "best": {
                "val/acc": best["val/acc"] if best else None,
                "val/loss": min(
                    (h["val/loss"] for h in history if h.get("val/loss") is not None), default=None
                ),
                "epoch": best["epoch"] if best else None,
                "checkpoint": checkpoint.best_model_path if checkpoint else None,
            },
            "test": self.test,
            **(datamodule.summary() if hasattr(datamodule, "summary") else {}),
            **self.extra,
            "history": self.history,
        }

    def write(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        text = json.dumps(self.summary(trainer, pl_module), indent=2)
        atomic_write(self.path, lambda f: f.write(text.encode()))


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
