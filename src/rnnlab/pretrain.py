"""Pretraining entry point: compose the language model, its corpus and the trainer from the Hydra
config (conf/pretrain.yaml), fit, and say where the checkpoint for fine-tuning is."""

from __future__ import annotations

import logging
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from rnnlab.checkpoint import CheckpointError
from rnnlab.data.lm_data import LMDataModule
from rnnlab.hparams import log_hyperparameters
from rnnlab.lm_module import LanguageModelModule
from rnnlab.trainer import instantiate_trainer
from rnnlab.validate import validate_pretrain_config

log = logging.getLogger(__name__)

# keys of the lm config that are not the net's
NOT_NET_KEYS = (
    "name",
    "optimizer",
    "scheduler",
    "direction",
    "batch_size",
    "bptt",
    "segments",
    "epochs",
)


def instantiate_language_model(
    lm_cfg: DictConfig, vocab: list[str], preprocess: dict[str, Any]
) -> LanguageModelModule:
    """The lm config, sized from a vocabulary: its `_target_` and net keys build the net as a
    partial that the module calls with the vocabulary size."""
    settings = OmegaConf.to_container(lm_cfg, resolve=True)
    other = {key: settings.pop(key, None) for key in NOT_NET_KEYS}
    return LanguageModelModule(
        vocab=vocab,
        preprocess=preprocess,
        net=hydra.utils.instantiate(settings, _partial_=True, _convert_="all"),
        direction=other["direction"] or "forward",
        name=other["name"] or "lm",
        optimizer=hydra.utils.instantiate(other["optimizer"], _convert_="all"),
        scheduler=hydra.utils.instantiate(other["scheduler"], _convert_="all"),
    )


def _check_resumed_vocabulary(ckpt_path: str, vocab: list[str]) -> None:
    """A resumed pretraining must read the same corpus: same data, preprocessing, vocabulary."""
    try:
        saved = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    except (RuntimeError, OSError, EOFError, ValueError) as error:
        raise CheckpointError(
            f"{ckpt_path} is not a readable checkpoint ({type(error).__name__}: {error}). Pass "
            "ckpt_path=<run dir>/checkpoints/last.ckpt of a pretraining run."
        ) from error
    hparams = saved.get("hyper_parameters") or {}
    if "rnnlab_language_model" not in saved:
        raise CheckpointError(
            f"{ckpt_path} is not a language model's checkpoint (it was not written by "
            "`python pretrain.py`). To fine-tune a classifier, use train.py; to resume a "
            "pretraining, pass its own checkpoints/last.ckpt."
        )
    if list(hparams.get("vocab") or []) != list(vocab):
        raise CheckpointError(
            f"{ckpt_path} was pretrained with another vocabulary ({len(hparams.get('vocab') or [])}"
            f" tokens) than this config builds ({len(vocab)}): the data, the split, the "
            "preprocessing or data.vocab differ from that run's. Resume with the run's own "
            "settings (its .hydra/overrides.yaml lists them)."
        )


def build(cfg: DictConfig) -> tuple[LMDataModule, LanguageModelModule, L.Trainer]:
    validate_pretrain_config(cfg)
    datamodule: LMDataModule = hydra.utils.instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    if cfg.get("ckpt_path"):
        _check_resumed_vocabulary(cfg.ckpt_path, datamodule.vocab.itos)
    model = instantiate_language_model(
        cfg.lm, datamodule.vocab.itos, datamodule.preprocessor.config()
    )
    return datamodule, model, instantiate_trainer(cfg)


def pretrain(cfg: DictConfig) -> dict[str, float]:
    """Fit the language model; returns the trainer's final metrics."""
    L.seed_everything(cfg.seed, workers=True)
    datamodule, model, trainer = build(cfg)
    log_hyperparameters(cfg, sum(p.numel() for p in model.parameters()), trainer.loggers)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=False)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:
        log.info(
            "Best language model (lowest val/loss): %s. Fine-tune a classifier on it with "
            "`python train.py model=lstm pretrained=%s` (with the language model's sizes; experiment=ulmfit sets them).",
            best,
            best,
        )
    return {k: float(v) for k, v in trainer.callback_metrics.items()}
