"""Training entry point: compose objects from the Hydra config, fit, test, report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from rnnlab.callbacks import MetricsJson
from rnnlab.checkpoint import AtomicCheckpointIO, load_checkpoint
from rnnlab.data.datamodule import IMDBDataModule
from rnnlab.module import SentimentModule
from rnnlab.validate import validate_train_config

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[IMDBDataModule, SentimentModule, L.Trainer]:
    """Instantiate datamodule, model (sized from the vocabulary) and trainer from the config.

    An invalid config (ConfigError) or resume checkpoint (CheckpointError) is refused first,
    before any data is read.
    """
    validate_train_config(cfg)
    if cfg.get("ckpt_path"):
        load_checkpoint(cfg.ckpt_path)
    datamodule: IMDBDataModule = hydra.utils.instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    model: SentimentModule = hydra.utils.instantiate(
        cfg.model,
        vocab=datamodule.vocab.itos,
        preprocess=datamodule.preprocessor.config(),
        _convert_="all",
    )
    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    # checkpoints are written atomically unless the config brings its own plugins
    plugins = {} if cfg.trainer.get("plugins") else {"plugins": [AtomicCheckpointIO()]}
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, **plugins
    )
    return datamodule, model, trainer


def _warn_if_resuming_elsewhere(ckpt_path: str, trainer: L.Trainer) -> None:
    """A resumed run continues exactly only in its own run directory, where the best-checkpoint
    tracking (and so the final test) carries on; elsewhere Lightning restarts that tracking."""
    checkpoint = trainer.checkpoint_callback
    here = Path(checkpoint.dirpath).resolve() if checkpoint and checkpoint.dirpath else None
    origin = Path(ckpt_path).expanduser().resolve().parent
    if here is not None and here != origin:
        log.warning(
            "Resuming from %s into a new run directory (%s): the best checkpoint so far stays "
            "there and is not compared against. To continue that run in place, with the same "
            "final metrics as an uninterrupted run, add hydra.run.dir=%s.",
            ckpt_path,
            here.parent,
            origin.parent,
        )


def log_hyperparameters(cfg: DictConfig, model: SentimentModule, trainer: L.Trainer) -> None:
    """Record the whole composed config (and parameter count) with every logger."""
    if not trainer.loggers:
        return
    params = OmegaConf.to_container(cfg, resolve=True)
    params.pop("paths", None)
    params["model/params"] = sum(p.numel() for p in model.parameters())
    for logger in trainer.loggers:
        logger.log_hyperparams(params)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit (and test) one configuration; returns the trainer's final metrics."""
    L.seed_everything(cfg.seed, workers=True)
    datamodule, model, trainer = build(cfg)
    log_hyperparameters(cfg, model, trainer)
    if cfg.get("train", True):
        if cfg.get("ckpt_path"):
            _warn_if_resuming_elsewhere(cfg.ckpt_path, trainer)
        # rnnlab's own checkpoints hold the optimizer as a functools.partial: trusted pickles
        trainer.fit(
            model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=False
        )
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if cfg.get("test", False):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not cfg.get("train", True):
            best = cfg.get("ckpt_path")
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=False)
        metrics |= {k: float(v) for k, v in trainer.callback_metrics.items()}
    summary = next((c for c in trainer.callbacks if isinstance(c, MetricsJson)), None)
    if summary is not None and trainer.is_global_zero:
        log.info("Wrote %s", summary.path)
    return metrics


def run(cfg: DictConfig) -> float | None:
    """What `train.py` does: train, then hand the optimized metric to a Hydra sweeper."""
    metrics = train(cfg)
    name = cfg.get("optimized_metric")
    if name and name not in metrics:
        raise KeyError(f"optimized_metric={name!r} was not logged; logged: {sorted(metrics)}")
    return metrics.get(name) if name else None
