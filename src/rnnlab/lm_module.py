"""The LightningModule that pretrains a language model (`python pretrain.py`).

Truncated backpropagation through time: each batch continues the previous one's rows
(rnnlab.data.lm_data), so the recurrent state carries over, detached, from batch to batch, and
starts afresh with each epoch. Logs `train/loss` (nats per token), `train/tokens_per_s`,
`val/loss` and `val/ppl` (perplexity on held-out reviews).

The checkpoint holds what fine-tuning needs to rebuild the language model's input side: the
vocabulary, the preprocessing, the net's settings (a partial of `LanguageModel`) and the
direction, beside the weights (`python train.py pretrained=<ckpt>`, rnnlab.pretrained).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torchmetrics import MeanMetric

from rnnlab.models.language_model import LanguageModel, detach_state
from rnnlab.module import (
    optimizer_and_schedule,
    refuse_non_finite_weights,
    rng_states,
    set_rng_states,
)

# what marks a checkpoint as a pretrained language model's
CHECKPOINT_KEY = "rnnlab_language_model"


class LanguageModelModule(L.LightningModule):
    """Trains a `LanguageModel` built from its partial `net(vocab_size=...)`."""

    def __init__(
        self,
        vocab: Sequence[str],
        preprocess: dict,
        net: Callable[..., LanguageModel],
        direction: str = "forward",
        name: str = "lm",
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.net = net(vocab_size=len(vocab))
        self.val_loss = MeanMetric()
        self._state: list | None = None
        self._val_state: list | None = None
        self._resumed: dict[str, Any] | None = None
        self._epoch_start = 0.0
        self._epoch_tokens = 0

    def on_train_epoch_start(self) -> None:
        self._state = None  # an epoch starts a new stretch of the stream
        self._epoch_start, self._epoch_tokens = time.perf_counter(), 0
        if self._resumed and self._resumed.get("rng"):
            set_rng_states(self._resumed["rng"])
        self._resumed = None

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        ids, targets = batch
        loss, state = self.net.loss(ids, targets, self._state)
        self._state = detach_state(state)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"train/loss became {loss.item()} at step {self.global_step} (epoch "
                f"{self.current_epoch}). Training stopped; the last good checkpoint is kept in "
                "checkpoints/. Lower lm.optimizer.lr or trainer.gradient_clip_val, then resume "
                "from its last.ckpt."
            )
        self._epoch_tokens += targets.numel()
        seconds = time.perf_counter() - self._epoch_start
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        if seconds > 0:
            self.log("train/tokens_per_s", self._epoch_tokens / seconds, prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_state = None

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        ids, targets = batch
        loss, self._val_state = self.net.loss(ids, targets, self._val_state)
        self.val_loss.update(loss, weight=targets.numel())

    def on_validation_epoch_end(self) -> None:
        loss = self.val_loss.compute()
        self.val_loss.reset()
        self.log("val/loss", loss, prog_bar=True)
        self.log("val/ppl", torch.exp(loss.clamp(max=50)), prog_bar=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        refuse_non_finite_weights(self, "Lower lm.optimizer.lr or trainer.gradient_clip_val")
        checkpoint["rnnlab_run_state"] = {"rng": rng_states()}
        checkpoint[CHECKPOINT_KEY] = {"direction": self.hparams.direction, "format": 1}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resumed = checkpoint.get("rnnlab_run_state")

    def configure_optimizers(self) -> Any:
        return optimizer_and_schedule(
            self.hparams.optimizer,
            self.hparams.scheduler,
            self.parameters(),
            lambda: self.trainer.estimated_stepping_batches,
        )
