"""Faults injected into real training runs, wired in as Hydra callbacks from the command line.

`python train.py ... +callbacks.fault._target_=faults.KillAt +callbacks.fault.epoch=1` (with this
folder on PYTHONPATH) kills the process with SIGKILL at a chosen point: nothing gets to clean up,
exactly as with `kill -9` from a shell, but at a step the test can name.
"""

from __future__ import annotations

import builtins
import os
import signal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillAt(Callback):
    """SIGKILL right after training batch `batch` of epoch `epoch` (0-based)."""

    def __init__(self, epoch: int, batch: int = 0):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer: L.Trainer, *args, **kwargs) -> None:
        batch_idx = args[-1]
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            _die()


class TermAt(Callback):
    """SIGTERM (`kill`, a cluster's preemption) right after training batch `batch` of epoch
    `epoch` (0-based): Lightning stops the run at the next batch boundary."""

    def __init__(self, epoch: int, batch: int = 0):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_end(self, trainer: L.Trainer, *args, **kwargs) -> None:
        if trainer.current_epoch == self.epoch and args[-1] == self.batch:
            os.kill(os.getpid(), signal.SIGTERM)


class KillDuringCheckpointWrite(Callback):
    """SIGKILL half-way through writing the `nth` save of checkpoint file `name` (1-based).

    During that save, the first file opened for writing (wherever the checkpoint writer stages
    its bytes) receives half of what is written to it, then the process dies: a writer that
    writes in place leaves a torn checkpoint behind.
    """

    def __init__(self, name: str = "last.ckpt", nth: int = 2):
        self.name, self.nth, self.count = name, nth, 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        io = trainer.strategy.checkpoint_io
        save = io.save_checkpoint

        def save_checkpoint(checkpoint, path, *args, **kwargs):
            if os.path.basename(str(path)) == self.name:
                self.count += 1
                if self.count == self.nth:
                    builtins.open = _tearing_open
            return save(checkpoint, path, *args, **kwargs)

        io.save_checkpoint = save_checkpoint


_real_open = builtins.open


def _tearing_open(file, mode="r", *args, **kwargs):
    handle = _real_open(file, mode, *args, **kwargs)
    if not set(mode) & set("wax+"):  # opened for reading only
        return handle

    class Torn:
        def __init__(self, inner):
            self.inner = inner

        def write(self, data):
            self.inner.write(bytes(data)[: max(1, len(data) // 2)])
            self.inner.flush()
            os.fsync(self.inner.fileno())
            _die()

        def __getattr__(self, item):
            return getattr(self.inner, item)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

    return Torn(handle)


class PoisonWeightsAfterEpoch(Callback):
    """Fill every weight with NaN at the end of training epoch `epoch`, before it is saved."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.fill_(float("nan"))


class PoisonWeightsAt(Callback):
    """Fill every weight with NaN before training batch `batch` of epoch `epoch`."""

    def __init__(self, epoch: int, batch: int = 0, value: float = float("nan")):
        self.epoch, self.batch, self.value = epoch, batch, value

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.fill_(self.value)
