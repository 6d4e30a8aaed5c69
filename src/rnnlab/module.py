"""The LightningModule: a net built from its config, BCE-with-logits, torchmetrics, optimizer."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torchmetrics import MaxMetric, MetricCollection
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, BinaryF1Score

from rnnlab.finetune import discriminative_param_groups
from rnnlab.models.recurrent import backward_passes

# keys of a model config that configure the LightningModule; the others configure the net
MODULE_KEYS = ("name", "optimizer", "scheduler", "discriminative_lr", "adversarial_epsilon")


def _metrics(prefix: str) -> MetricCollection:
    return MetricCollection(
        {"acc": BinaryAccuracy(), "f1": BinaryF1Score(), "auroc": BinaryAUROC()}, prefix=prefix
    )


def rng_states() -> dict[str, Any]:
    """The global random generators (dropout, shuffles) as tensors and plain Python values, so
    checkpoints stay loadable with `weights_only=True`."""
    _name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), gauss],
        "python": random.getstate(),
    }


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))


def refuse_non_finite_weights(module: L.LightningModule, fix: str) -> None:
    """Raise before a checkpoint of NaN or infinite weights overwrites the last good one."""
    broken = [name for name, p in module.named_parameters() if not torch.isfinite(p).all()]
    if broken:
        raise FloatingPointError(
            f"The model's weights became NaN or infinite ({', '.join(broken[:3])}) at step "
            f"{module.global_step} (epoch {module.current_epoch}); training stopped without "
            f"overwriting the last good checkpoint. {fix}, then resume from "
            "checkpoints/last.ckpt."
        )


def adversarial_perturbation(gradient: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Miyato et al. 2016: a perturbation of the embedded reviews (B, T, E) of L2 norm `epsilon`
    per review, over all its steps and dimensions, along the gradient of the loss: the direction
    that raises the loss most to first order. Padding gets none (its gradient is zero)."""
    g = gradient.detach()
    dims = tuple(range(1, g.dim()))
    # scaled to a largest entry of 1 first, so that squaring a tiny gradient cannot underflow
    g = g / g.abs().amax(dim=dims, keepdim=True).clamp_min(torch.finfo(g.dtype).tiny)
    return epsilon * g / g.square().sum(dim=dims, keepdim=True).sqrt().clamp_min(1.0)


def optimizer_and_schedule(
    make: Callable[..., torch.optim.Optimizer] | None,
    make_scheduler: Callable[..., Any] | None,
    params: Any,
    steps: Callable[[], int | float],
) -> Any:
    """What `configure_optimizers` returns for an optimizer partial (AdamW at 1e-3 if None) and
    a scheduler partial (or None). A schedule whose class says `INTERVAL = "step"` steps per
    batch and gets the run's length, `steps()`, as `total_steps`; any other steps per epoch."""
    optimizer = (make or partial(torch.optim.AdamW, lr=1e-3))(params=params)
    if make_scheduler is None:
        return optimizer
    target = make_scheduler.func if isinstance(make_scheduler, partial) else make_scheduler
    interval = getattr(target, "INTERVAL", "epoch")
    if interval == "step":
        total = int(steps())
        scheduler = make_scheduler(optimizer=optimizer, total_steps=total)
    else:
        scheduler = make_scheduler(optimizer=optimizer)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}


class SentimentModule(L.LightningModule):
    """Trains a net (any `TextClassifier` family); owns the steps, metrics and logging.

    `net` is a partial (`_partial_: true` in the model config) that builds the net for a
    vocabulary size: `net(vocab_size=len(vocab))`. It is a hyperparameter beside the vocabulary,
    the preprocessing and the optimizer and schedule partials, so the checkpoint pickles how to
    rebuild everything and `SentimentModule.load_from_checkpoint(path, weights_only=False)` works
    with the training data gone.
    """

    def __init__(
        self,
        vocab: Sequence[str],
        preprocess: dict,
        net: Callable[..., nn.Module],
        name: str = "model",
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        discriminative_lr: float | None = None,
        adversarial_epsilon: float | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.net = net(vocab_size=len(vocab))
        self.loss = nn.BCEWithLogitsLoss()
        self.train_metrics = _metrics("train/")
        self.val_metrics = _metrics("val/")
        self.test_metrics = _metrics("test/")
        self.val_acc_best = MaxMetric()
        self._resumed: dict[str, Any] | None = None  # run state read from a checkpoint

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.net(ids, lengths)

    def _step(self, batch, metrics: MetricCollection, stage: str) -> torch.Tensor:
        ids, lengths, labels = batch
        epsilon = self.hparams.get("adversarial_epsilon") if stage == "train" else None
        if epsilon:
            logits, loss, adversarial = self._adversarial_losses(ids, lengths, labels, epsilon)
            self.log(
                "train/adversarial_loss",
                adversarial,
                on_step=False,
                on_epoch=True,
                batch_size=len(labels),
            )
        else:
            logits = self(ids, lengths)
            loss = self.loss(logits, labels)
        trained = loss + adversarial if epsilon else loss  # what backward reads
        if stage == "train" and not torch.isfinite(trained):
            kept = getattr(self.trainer.checkpoint_callback, "dirpath", None) or "checkpoints/"
            raise FloatingPointError(
                f"train/loss became {trained.item()} at step {self.global_step} (epoch "
                f"{self.current_epoch}). Training stopped; the last good checkpoint is kept in "
                f"{kept}. Lower model.optimizer.lr or set trainer.gradient_clip_val=1.0, then "
                "resume from its last.ckpt."
            )
        metrics.update(logits.detach().float(), labels.int())
        # metric objects are computed and reset by Lightning at each epoch end
        self.log(
            f"{stage}/loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(labels),
        )
        self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=stage == "val")
        return trained

    def _adversarial_losses(
        self, ids: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, epsilon: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Adversarial training (model.adversarial_epsilon): the clean logits and loss, and the
        loss on the embedded reviews moved by `adversarial_perturbation`, which trains beside
        the clean one. It costs a second forward and backward pass per step."""
        embedded = self.net.embed_reviews(ids, lengths)
        if not embedded.requires_grad:  # the embedding is frozen (gradual unfreezing)
            embedded.requires_grad_()
        with backward_passes(2):  # the gradient of the input, then training
            logits = self.net.classify(embedded, lengths)
        loss = self.loss(logits, labels)
        (gradient,) = torch.autograd.grad(loss, embedded, retain_graph=True)
        perturbed = embedded + adversarial_perturbation(gradient, epsilon)
        return logits, loss, self.loss(self.net.classify(perturbed, lengths), labels)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, self.train_metrics, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, self.val_metrics, "val")

    def on_train_start(self) -> None:
        self.val_acc_best.reset()  # the sanity check's numbers are not a result
        best = (self._resumed or {}).get("val_acc_best")
        if best is not None and math.isfinite(best):  # a resumed run keeps its best so far
            self.val_acc_best.update(torch.tensor(best, device=self.device))

    def on_train_epoch_start(self) -> None:
        # Resuming: continue the random streams where the checkpointed run left them, at the
        # same point of the loop, so dropout and shuffles repeat an uninterrupted run exactly.
        if self._resumed and self._resumed.get("rng"):
            set_rng_states(self._resumed["rng"])
        self._resumed = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse to save non-finite weights (the last good checkpoint stays); record the state
        an exact resume needs beyond weights and optimizer."""
        refuse_non_finite_weights(
            self, "Lower model.optimizer.lr or set trainer.gradient_clip_val=1.0"
        )
        best = self.val_acc_best.max_value
        checkpoint["rnnlab_run_state"] = {
            "rng": rng_states(),
            "val_acc_best": float(best) if torch.isfinite(best) else None,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resumed = checkpoint.get("rnnlab_run_state")

    def on_validation_epoch_end(self) -> None:
        self.val_acc_best(self.val_metrics["acc"].compute())
        self.log("val/acc_best", self.val_acc_best.compute())

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, self.test_metrics, "test")

    def configure_optimizers(self) -> Any:
        params: Any = self.parameters()
        if self.hparams.get("discriminative_lr"):
            # ULMFiT: each layer group below the top trains at the rate above / the factor
            make = self.hparams.optimizer
            lr = make.keywords.get("lr", 1e-3) if isinstance(make, partial) else 1e-3
            params = discriminative_param_groups(self.net, lr, self.hparams.discriminative_lr)
        return optimizer_and_schedule(
            self.hparams.optimizer, self.hparams.scheduler, params, self._optimizer_steps
        )

    def _optimizer_steps(self) -> int | float:
        return self.trainer.estimated_stepping_batches

    @torch.no_grad()
    def predict_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Positive-class probabilities for raw texts, through the checkpoint's own pipeline."""
        from rnnlab.data.batching import collate
        from rnnlab.data.preprocess import Preprocessor
        from rnnlab.data.vocab import Vocab

        preprocess, vocab = Preprocessor(**self.hparams.preprocess), Vocab(self.hparams.vocab)
        self.eval()
        probabilities = []
        for start in range(0, len(texts), batch_size):
            encoded = [(vocab.encode(preprocess(t)), 0) for t in texts[start : start + batch_size]]
            ids, lengths, _ = collate(encoded)
            logits = self(ids.to(self.device), lengths)
            probabilities.append(torch.sigmoid(logits.float()).cpu())
        return torch.cat(probabilities) if probabilities else torch.zeros(0)
