"""Loading checkpoints with a clear error when the file is not one."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from rnnlab.module import SentimentModule


class CheckpointError(ValueError):
    """The file given as a checkpoint cannot be used as one."""


def load_checkpoint(path: str | Path) -> tuple[SentimentModule, dict]:
    """The model and the raw checkpoint dict (for the datamodule settings it carries)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {path} does not exist. Pass ckpt_path=<run dir>/checkpoints/last.ckpt "
            "(or the epoch_*.ckpt written there) of a finished training run."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        model = SentimentModule.load_from_checkpoint(path, map_location="cpu", weights_only=False)
    except (
        RuntimeError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        EOFError,
        KeyError,
        TypeError,
    ) as err:
        raise CheckpointError(
            f"{path} is not an rnnlab checkpoint ({type(err).__name__}: {str(err)[:200]}). Pass a "
            ".ckpt file written by `python train.py` under <run dir>/checkpoints/."
        ) from err
    return model, checkpoint
