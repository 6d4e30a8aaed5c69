"""The Lightning Trainer of a run, from its config: the `callbacks` and `logger` nodes composed as
lists, checkpoints written atomically, and a CPU (gloo) process group closed before exit.

Lightning closes an NCCL process group at exit but leaves a gloo one (`trainer=ddp_sim`) to the
interpreter's finalization, where gloo's worker threads can still be joinable: the process then
now and then aborts with "terminate called without an active exception" after its work is done
(pytorch/pytorch#190489). `CloseProcessGroupAtExit` closes it while Python is alive.
"""

from __future__ import annotations

import atexit

import hydra
import lightning as L
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from rnnlab.checkpoint import AtomicCheckpointIO


def _close_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class CloseProcessGroupAtExit(Callback):
    """In each DDP process with a gloo group, close the group when the process exits."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if dist.is_available() and dist.is_initialized() and dist.get_backend() == "gloo":
            atexit.unregister(_close_process_group)  # fit then test in one process: once
            atexit.register(_close_process_group)


def instantiate_trainer(cfg: DictConfig) -> L.Trainer:
    """cfg.trainer with cfg.callbacks and cfg.logger; atomic checkpoint writes unless the config
    brings its own plugins."""
    callbacks = [hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    plugins = {} if cfg.trainer.get("plugins") else {"plugins": [AtomicCheckpointIO()]}
    return hydra.utils.instantiate(
        cfg.trainer,
        callbacks=[*callbacks, CloseProcessGroupAtExit()],
        logger=loggers or False,
        **plugins,
    )
