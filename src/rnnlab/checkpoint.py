"""Loading checkpoints with a clear error when the file is not one."""

from __future__ import annotations

import functools
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from rnnlab.atomic import atomic_write, fsync_dir
from rnnlab.errors import UserError
from rnnlab.models.classifier import RecurrentClassifier
from rnnlab.module import SentimentModule

# what SentimentModule took itself before the net became a partial hyperparameter
LEGACY_NET_KEYS = (
    "cell",
    "embed_dim",
    "hidden_size",
    "num_layers",
    "bidirectional",
    "dropout",
    "embed_dropout",
    "pooling",
    "bigram_buckets",
    "word_dropout",
    "weight_drop",
)


class CheckpointError(UserError, ValueError):
    """The file given as a checkpoint cannot be used as one."""


def legacy_net(hparams: dict[str, Any]) -> dict[str, Any]:
    """For a checkpoint written before models were nets built from their config (its recurrent
    settings are hyperparameters of the module itself): the `net` partial that rebuilds the same
    RecurrentClassifier, whose parameter names are unchanged. Empty for a current checkpoint."""
    if "net" in hparams:
        return {}
    settings = {key: hparams[key] for key in LEGACY_NET_KEYS if key in hparams}
    return {"net": functools.partial(RecurrentClassifier, **settings)}


def refuse_folder(path: Path, key: str, example: str) -> None:
    """A folder given where a .ckpt file belongs: CheckpointError naming a checkpoint in it."""
    if not path.is_dir():
        return
    found = sorted(path.glob("**/*.ckpt"))[:1]
    raise CheckpointError(
        f"Checkpoint {path} is a folder. Pass the .ckpt file itself, e.g. {key}="
        + (str(found[0]) if found else f"<run dir>/checkpoints/{example}")
        + "."
    )


def load_checkpoint(path: str | Path) -> tuple[SentimentModule, dict]:
    """The model and the raw checkpoint dict (for the datamodule settings it carries)."""
    path = Path(path).expanduser()
    refuse_folder(path, "ckpt_path", "last.ckpt")
    if not path.is_file():
        raise CheckpointError(
            f"Checkpoint {path} does not exist. Pass ckpt_path=<run dir>/checkpoints/last.ckpt "
            "(or the epoch_*.ckpt written there) of a finished training run."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        upgrade = legacy_net(checkpoint.get("hyper_parameters") or {})
        model = SentimentModule.load_from_checkpoint(
            path, map_location="cpu", weights_only=False, **upgrade
        )
    except (
        RuntimeError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        EOFError,
        KeyError,
        TypeError,
        AttributeError,
        ValueError,
        IndexError,
        OSError,  # e.g. a truncated file: "Invalid argument" from the zip reader
    ) as err:
        raise CheckpointError(
            f"{path} is not an rnnlab checkpoint ({type(err).__name__}: {str(err)[:200]}). Pass a "
            ".ckpt file written by `python train.py` under <run dir>/checkpoints/."
        ) from err
    return model, checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file beside its target, fsyncs it, then renames it
    over the target, so a kill, crash or full disk mid-write leaves the previous checkpoint whole.

    Lightning's own writer stages the file in the system temp folder and moves it into place;
    where that folder is on another file system (tmpfs, a node-local disk) the move is a copy,
    which a kill can tear, and nothing is fsynced.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path):  # remote storage: Lightning's fsspec writer
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = atomic_write(path, lambda f: torch.save(checkpoint, f))
        fsync_dir(path.parent)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed writer
            stale.unlink(missing_ok=True)
