"""The hyperparameters a run reports: the whole composed config to every logger, and the flat
keys TensorBoard's HParams tab compares runs by. Shared by the recurrent and linear training
paths (train.py and linear.py), which is why it lives in neither."""

from __future__ import annotations

from typing import Any

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

# What TensorBoard's HParams tab lists per run (the whole config goes to hparams.yaml): the model,
# the settings people vary, and every key overridden on the command line or by a sweeper.
HPARAM_KEYS = (
    "data.batch_size",
    "data.max_reviews",
    "data.preprocess.max_len",
    "data.split.name",
    "trainer.max_epochs",
    "trainer.gradient_clip_val",
    "trainer.precision",
    "seed",
)
# file locations are not hyperparameters
UNCOMPARED = ("data.path", "data.cache_dir", "data.data_dir", "ckpt_path", "paths.", "hydra.")
# its metric columns; TensorBoard fills each with the run's last logged value of that scalar
HPARAM_METRICS = ("val/acc", "val/acc_best", "val/loss", "test/acc", "test/loss")
# a language model's (pretrain.py, whose model node is `lm`)
LM_HPARAM_METRICS = ("val/loss", "val/ppl", "train/loss")


def _flatten(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            if key == "_partial_" or (key == "_target_" and prefix in ("model", "lm")):
                continue  # plumbing; an optimizer's or scheduler's _target_ is a choice
            flat |= _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return flat
    if node is None or isinstance(node, bool | list | tuple):
        node = str(node)  # TensorBoard shows True/False/None, not 1/0/nothing
    return {prefix: node}


def tensorboard_hparams(cfg: DictConfig, n_params: int) -> dict[str, Any]:
    """The hyperparameters the HParams tab compares runs by: flat keys, scalar values."""
    node = "model" if "model" in cfg else "lm"
    params = _flatten(OmegaConf.to_container(cfg[node], resolve=True), node)
    for key in HPARAM_KEYS:
        params |= _flatten(OmegaConf.select(cfg, key, default=None), key)
    if HydraConfig.initialized():
        choices = HydraConfig.get().runtime.choices
        for override in HydraConfig.get().overrides.task:
            # a group appended at a package (+callbacks@callbacks=ema) is recorded by its group
            key = override.split("=", 1)[0].lstrip("+~").split("@")[0]
            value = OmegaConf.select(cfg, key, default=None)
            if key in choices:
                params[key] = str(choices[key])
            elif not OmegaConf.is_config(value) and not key.startswith(UNCOMPARED):
                params |= _flatten(value, key)
    params["model/params"] = n_params
    return params


@rank_zero_only
def log_hyperparameters(cfg: DictConfig, n_params: int, loggers: list[Logger]) -> None:
    """Record the whole composed config with every logger, and give TensorBoard's HParams tab
    this run's hyperparameters beside its final val/acc and test/acc."""
    if not loggers:
        return
    params = OmegaConf.to_container(cfg, resolve=True)
    params.pop("paths", None)
    params["model/params"] = n_params
    for logger in loggers:
        logger.log_hyperparams(params)
        if isinstance(logger, TensorBoardLogger):
            from torch.utils.tensorboard.summary import hparams

            # only the metric names: no placeholder values in the val/acc and test/acc curves
            metrics = HPARAM_METRICS if "model" in cfg else LM_HPARAM_METRICS
            summaries = hparams(tensorboard_hparams(cfg, n_params), dict.fromkeys(metrics))
            writer = logger.experiment._get_file_writer()
            for summary in summaries:
                writer.add_summary(summary)
