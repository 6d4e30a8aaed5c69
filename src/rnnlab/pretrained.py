"""Fine-tuning a classifier from a pretrained language model: `python train.py pretrained=<ckpt>`.

The language model's checkpoint (`python pretrain.py`) carries its vocabulary, its preprocessing,
its net's settings and its direction. The classifier takes all four: it encodes reviews with
that vocabulary, must read them with the same preprocessing (max_len aside), must have the same
embedding and body (cell, sizes, layers, one direction), and reads reviews backward when the
language model did. Its embedding and body then start from the language model's weights; its
head starts fresh. Anything that does not match is refused in one paragraph that names it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnlab.checkpoint import CheckpointError, refuse_folder
from rnnlab.lm_module import CHECKPOINT_KEY
from rnnlab.models.language_model import LanguageModel

# the net settings a classifier must share with the language model to take its weights
SHARED_SETTINGS = ("cell", "embed_dim", "hidden_size", "num_layers")
# preprocessing settings that may differ (the classifier may cut reviews shorter)
FREE_PREPROCESSING = ("max_len",)


@dataclass
class PretrainedLM:
    path: Path
    vocab: list[str]
    preprocess: dict[str, Any]
    direction: str
    settings: dict[str, Any]  # the LanguageModel's keyword arguments
    weights: dict[str, torch.Tensor]  # embed.* and encoder.* of the language model

    @property
    def reverse(self) -> bool:
        return self.direction == "backward"


def read_pretrained(path: str | Path) -> PretrainedLM:
    """The language model in a `pretrain.py` checkpoint; CheckpointError for anything else."""
    path = Path(path).expanduser()
    refuse_folder(path, "pretrained", "epoch_NNN.ckpt")
    if not path.is_file():
        raise CheckpointError(
            f"pretrained={path} does not exist. Pass a language model's checkpoint, e.g. "
            "pretrained=<pretraining run dir>/checkpoints/epoch_NNN.ckpt (python pretrain.py)."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same answer
        raise CheckpointError(
            f"pretrained={path} is not a readable checkpoint ({type(error).__name__}: "
            f"{str(error)[:200]}). Pass a .ckpt file written by `python pretrain.py`."
        ) from error
    if not isinstance(checkpoint, dict) or CHECKPOINT_KEY not in checkpoint:
        raise CheckpointError(
            f"pretrained={path} is not a language model's checkpoint: it was not written by "
            "`python pretrain.py` (a classifier's checkpoint resumes with ckpt_path= instead). "
            "Pass <pretraining run dir>/checkpoints/epoch_NNN.ckpt."
        )
    hparams = checkpoint.get("hyper_parameters") or {}
    net = hparams.get("net")
    settings = dict(getattr(net, "keywords", {}) or {})
    weights = {
        key.removeprefix("net."): value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(("net.embed.", "net.encoder."))
    }
    return PretrainedLM(
        path=path,
        vocab=list(hparams["vocab"]),
        preprocess=dict(hparams["preprocess"]),
        direction=checkpoint[CHECKPOINT_KEY]["direction"],
        settings=settings,
        weights=weights,
    )


def check_compatible(lm: PretrainedLM, model: dict[str, Any], preprocess: dict[str, Any]) -> None:
    """Refuse a classifier config (`model`, resolved) or preprocessing the language model's
    weights and vocabulary do not fit."""
    defaults = inspect.signature(LanguageModel).parameters  # what the partial left unset
    expected = {key: lm.settings.get(key, defaults[key].default) for key in SHARED_SETTINGS}
    given = {key: model.get(key) for key in SHARED_SETTINGS}
    different = [
        f"model.{k}={given[k]!r} (the language model's: {expected[k]!r})"
        for k in SHARED_SETTINGS
        if given[k] != expected[k]
    ]
    if model.get("bidirectional"):
        different.append("model.bidirectional=true (a language model reads one way: false)")
    if different:
        fix = " ".join(f"model.{k}={v}" for k, v in expected.items())
        raise CheckpointError(
            f"pretrained={lm.path} does not fit this classifier: {'; '.join(different)}. Its "
            f"embedding and body load only into a one-direction recurrent model of the same "
            f"cell and sizes: add {fix} model.bidirectional=false (experiment=ulmfit sets them "
            "from lm=...)."
        )
    ours = {k: v for k, v in preprocess.items() if k not in FREE_PREPROCESSING}
    theirs = {k: v for k, v in lm.preprocess.items() if k not in FREE_PREPROCESSING}
    if ours != theirs:
        keys = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        wanted = " ".join(f"data.preprocess.{k}={theirs.get(k)}" for k in keys)
        raise CheckpointError(
            f"pretrained={lm.path} was trained on text preprocessed otherwise: "
            + ", ".join(f"{k} {ours.get(k)!r} here, {theirs.get(k)!r} there" for k in keys)
            + f". Its vocabulary only fits text read the same way: add {wanted}."
        )


def load_weights(net: nn.Module, lm: PretrainedLM) -> None:
    """Copy the language model's embedding and body into `net` (whose head stays as it is)."""
    own = net.state_dict()
    missing = [k for k in lm.weights if k not in own]
    mismatched = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in lm.weights.items()
        if k in own and own[k].shape != v.shape
    ]
    body = [k for k in own if k.startswith(("embed.", "encoder."))]
    uncovered = [k for k in body if k not in lm.weights]
    if missing or mismatched or uncovered:
        raise CheckpointError(
            f"pretrained={lm.path} does not fit this classifier's embedding and body ("
            + "; ".join(
                part
                for part in (
                    f"not in the classifier: {', '.join(missing[:3])}" if missing else "",
                    f"other shapes: {', '.join(mismatched[:3])}" if mismatched else "",
                    f"not in the language model: {', '.join(uncovered[:3])}" if uncovered else "",
                )
                if part
            )
            + "). Use the language model's vocabulary and sizes (experiment=ulmfit sets them)."
        )
    net.load_state_dict(lm.weights, strict=False)
