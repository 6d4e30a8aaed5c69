"""Training entry point: compose objects from the Hydra config, fit, test, report."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rnnlab.callbacks import MetricsJson
from rnnlab.checkpoint import CheckpointError, load_checkpoint
from rnnlab.data.datamodule import IMDBDataModule
from rnnlab.hparams import log_hyperparameters
from rnnlab.linear import is_linear, train_linear
from rnnlab.module import MODULE_KEYS, SentimentModule
from rnnlab.pretrained import PretrainedLM, check_compatible, load_weights, read_pretrained
from rnnlab.runtime import cpu_description, has_bf16_units
from rnnlab.sweeps import ddp_children_follow_this_job, standard_start_method
from rnnlab.trainer import instantiate_trainer
from rnnlab.validate import validate_train_config

log = logging.getLogger(__name__)


def instantiate_model(
    model_cfg: DictConfig,
    vocab: list[str],
    preprocess: dict[str, Any],
    net_overrides: dict[str, Any] | None = None,
) -> SentimentModule:
    """The model config, sized from a vocabulary.

    The config's `_target_` is the net's class (its family): it and every key but MODULE_KEYS
    build the net as a partial (`_partial_`), which the module calls with the vocabulary size.
    The net's keys sit flat in the config, so `model.hidden_size=256` stays a short override.
    The vocabulary goes to the module directly, never through instantiate(): Hydra would first
    merge the whole word list into the config, node by node.
    """
    settings = OmegaConf.to_container(model_cfg, resolve=True) | (net_overrides or {})
    module = {key: settings.pop(key, None) for key in MODULE_KEYS}
    net = hydra.utils.instantiate(settings, _partial_=True, _convert_="all")
    return SentimentModule(
        vocab=vocab,
        preprocess=preprocess,
        net=net,
        name=module["name"] or "model",
        optimizer=hydra.utils.instantiate(module["optimizer"], _convert_="all"),
        scheduler=hydra.utils.instantiate(module["scheduler"], _convert_="all"),
        discriminative_lr=module["discriminative_lr"],
        adversarial_epsilon=module["adversarial_epsilon"],
    )


def build(cfg: DictConfig) -> tuple[IMDBDataModule, SentimentModule, L.Trainer]:
    """Instantiate datamodule, model (sized from the vocabulary) and trainer from the config.

    An invalid config (ConfigError) or resume checkpoint (CheckpointError) is refused first,
    before any data is read.
    """
    validate_train_config(cfg)
    if cfg.get("ckpt_path"):
        load_checkpoint(cfg.ckpt_path)
    datamodule: IMDBDataModule = hydra.utils.instantiate(cfg.data, _convert_="all")
    lm = _pretrained(cfg, datamodule)
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = instantiate_model(
        cfg.model,
        datamodule.vocab.itos,
        datamodule.preprocessor.config(),
        net_overrides={"reverse": lm.reverse} if lm else None,
    )
    if lm is not None and not cfg.get("ckpt_path"):  # a resumed run has its own weights
        load_weights(model.net, lm)
        log.info(
            "Embedding and %s body from the %s language model %s (vocabulary %d).",
            lm.settings.get("cell", "lstm"),
            lm.direction,
            lm.path,
            len(lm.vocab),
        )
    trainer = instantiate_trainer(cfg)
    _warn_if_bf16_is_emulated(cfg.trainer)
    return datamodule, model, trainer


def _pretrained(cfg: DictConfig, datamodule: IMDBDataModule) -> PretrainedLM | None:
    """cfg.pretrained's language model, checked against the classifier and its data, whose
    vocabulary it becomes; None without one."""
    if not cfg.get("pretrained"):
        return None
    lm = read_pretrained(cfg.pretrained)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    check_compatible(lm, model, datamodule.preprocessor.config())
    if model.get("reverse") and not lm.reverse:
        raise CheckpointError(
            f"model.reverse=true reads reviews backward, but pretrained={lm.path} is a forward "
            "language model. Leave model.reverse unset: it follows the language model's direction."
        )
    datamodule.use_vocabulary(lm.vocab)
    return lm


def _warn_if_bf16_is_emulated(trainer_cfg: DictConfig) -> None:
    """bf16-mixed on a CPU without bf16 units runs, but slower than fp32: say so."""
    precision = str(trainer_cfg.get("precision", ""))
    if trainer_cfg.get("accelerator") != "cpu" or not precision.startswith("bf16"):
        return
    model, units = cpu_description()
    if not has_bf16_units(units):
        log.warning(
            "trainer.precision=%s on %s, which has no bf16 units (AVX512-BF16, AMX): bfloat16 "
            "is emulated there and trains slower than fp32. Leave trainer.precision at 32-true "
            "on this CPU.",
            precision,
            model,
        )


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


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit (and test) one configuration; returns the final metrics (the trainer's, or the linear
    baseline's, named alike)."""
    validate_train_config(cfg)  # before is_linear reads model._target_
    if is_linear(cfg.model):  # fits in one pass, without a Trainer
        return train_linear(cfg)
    standard_start_method()
    L.seed_everything(cfg.seed, workers=True)
    datamodule, model, trainer = build(cfg)
    log_hyperparameters(cfg, sum(p.numel() for p in model.parameters()), trainer.loggers)
    with ddp_children_follow_this_job(trainer.world_size):
        if cfg.get("train", True):
            if cfg.get("ckpt_path"):
                _warn_if_resuming_elsewhere(cfg.ckpt_path, trainer)
            # rnnlab's own checkpoints hold the optimizer as a functools.partial: trusted pickles
            trainer.fit(
                model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=False
            )
        metrics = _run_end(trainer) | {k: float(v) for k, v in trainer.callback_metrics.items()}
        if cfg.get("test", False):
            best = (
                trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
            )
            if not cfg.get("train", True):
                best = cfg.get("ckpt_path")
            trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=False)
            metrics |= {k: float(v) for k, v in trainer.callback_metrics.items()}
    summary = _metrics_json(trainer)
    if summary is not None and trainer.is_global_zero:
        log.info("Wrote %s", summary.path)
    return metrics


def _metrics_json(trainer: L.Trainer) -> MetricsJson | None:
    return next((c for c in trainer.callbacks if isinstance(c, MetricsJson)), None)


def _run_end(trainer: L.Trainer) -> dict[str, float]:
    """The run's metrics at its last epoch, from its record. A run resumed after its last epoch
    fits nothing and logs no validation metric in this process; its record still says how the
    run ended (what a sweeper optimizes, such as val/acc_best)."""
    summary = _metrics_json(trainer)
    if summary is None or not summary.history:
        return {}
    return {k: float(v) for k, v in summary.history[-1].items() if k != "epoch" and v is not None}


def _in_sweep() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def run(cfg: DictConfig) -> float | None:
    """What `train.py` does: train, then hand the optimized metric to a Hydra sweeper.

    In a sweep, a run whose loss diverged (FloatingPointError) returns None instead of raising,
    and a non-finite metric becomes None: sweepers record the trial as failed (Optuna marks it
    FAIL; NaN would abort hydra-optuna-sweeper) and go on. metrics.json says "failed" either way.
    """
    try:
        metrics = train(cfg)
    except FloatingPointError as error:
        if not _in_sweep():
            raise
        log.error("%s This sweep job counts as failed; the sweep goes on.", error)
        return None
    name = cfg.get("optimized_metric")
    if name and name not in metrics:
        raise KeyError(f"optimized_metric={name!r} was not logged; logged: {sorted(metrics)}")
    value = metrics.get(name) if name else None
    return value if value is not None and math.isfinite(value) else None
