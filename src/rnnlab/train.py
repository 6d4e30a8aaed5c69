"""Training entry point: compose objects from the Hydra config, fit, test, report."""

from __future__ import annotations

import logging
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig, OmegaConf

from rnnlab.callbacks import MetricsJson
from rnnlab.data.datamodule import IMDBDataModule
from rnnlab.module import SentimentModule

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[IMDBDataModule, SentimentModule, L.Trainer]:
    """Instantiate datamodule, model (sized from the vocabulary) and trainer from the config."""
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
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False
    )
    return datamodule, model, trainer


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
