"""`eval.py`: test a checkpoint on the split it was trained with."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from rnnlab.checkpoint import load_checkpoint
from rnnlab.data.datamodule import IMDBDataModule
from rnnlab.record import write_metrics

log = logging.getLogger(__name__)


def _overrides(data: dict[str, Any]) -> dict[str, Any]:
    """Non-null keys, recursively: the settings the user chose to change."""
    picked = {}
    for key, value in data.items():
        if isinstance(value, dict):
            value = _overrides(value)
        if value not in (None, {}):
            picked[key] = value
    return picked


def run(cfg: DictConfig) -> dict[str, float]:
    model, checkpoint = load_checkpoint(cfg.ckpt_path)
    settings = dict(checkpoint.get("datamodule_hyper_parameters") or {})
    for key, value in _overrides(OmegaConf.to_container(cfg.data, resolve=True)).items():
        settings[key] = {**(settings.get(key) or {}), **value} if isinstance(value, dict) else value
    datamodule = IMDBDataModule(**settings)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False)
    results = trainer.test(model, datamodule=datamodule)[0]
    output = Path(cfg.paths.output_dir) / "metrics.json"
    report = {"ckpt_path": str(cfg.ckpt_path), "test": results, **datamodule.summary()}
    write_metrics(output, report)  # atomically, as every run record
    log.info("Test metrics: %s (written to %s)", results, output)
    return results
