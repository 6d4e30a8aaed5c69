"""A run's record on disk: the `metrics.json` schema and the per-review `predictions.npz`.

Every training run writes both into its run directory, whatever trained it (the Lightning
callbacks in callbacks.py, the linear baselines in linear.py), and `rnnlab.compare` reads them
back; this module is the one place that says what they hold. Both are written atomically
(rnnlab.atomic): a reader sees the previous version or the new one, never half a file.

metrics.json (JSON object):
    status        "running", "completed", "failed" or "interrupted"
    error         "<ExceptionType>: <message>" when the run did not complete, else null
    model         the model config's `name`
    seed          the run's `seed` (null when unknown)
    parameters    learned weights
    epochs        validation epochs run (1 for a model fitted in one pass)
    train_seconds seconds the fit took
    final         the last epoch's train/* and val/* metrics
    best          {"val/acc", "val/loss", "epoch", "checkpoint"}: best validation accuracy (and
                  its epoch), lowest validation loss, the best checkpoint's path (a language
                  model has no accuracy: its epoch is that of the lowest loss)
    test          test/* metrics when tested, else {}
    machine       what it computed on: the GPU's name, or the CPU model and its vector units
    source, split, sizes, max_reviews, preprocess   what the datamodule read (its `summary()`)
    single_fit    true for a model fitted in one pass (no per-epoch curve)
    history       one object per epoch: "epoch" and that epoch's val/* and train/* metrics
A model may add keys of its own (the NB-SVM's validation-selected `selected`).

predictions.npz (numpy archive), one entry per test review, sorted by review id:
    review_ids     int64: the review's row in the data source as read (the Stanford archive or
                   folder in train/pos, train/neg, test/pos, test/neg order by file number, a CSV
                   in row order; empty reviews skipped), so two runs on the same data and split
                   hold the same ids and pair up review by review
    labels         int8: the true label, 1 = positive
    probabilities  float32: the model's probability that the review is positive
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.atomic import atomic_write
from rnnlab.errors import UserError

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.npz"
PREDICTION_KEYS = ("review_ids", "labels", "probabilities")


class RecordError(UserError, ValueError):
    """A run record that cannot be read or written as it is; the message names the file."""


def finite(value: Any) -> float | None:
    """A float, or None for anything missing, non-numeric or not finite (JSON has no NaN)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def build_record(
    *,
    status: str,
    error: str | None,
    model: str | None,
    seed: int | None,
    parameters: int | None,
    history: Sequence[dict[str, Any]],
    train_seconds: float | None,
    test: dict[str, float | None],
    checkpoint: str | None,
    data: dict[str, Any],
    single_fit: bool = False,
    extra: dict[str, Any] | None = None,
    machine: str | None = None,
) -> dict[str, Any]:
    """metrics.json's content: final and best values derived from the per-epoch history."""
    history = list(history)
    scored = [h for h in history if finite(h.get("val/acc")) is not None]
    best = max(scored, key=lambda h: h["val/acc"], default=None)
    losses = [finite(h.get("val/loss")) for h in history]
    if best is None:  # a language model: its best epoch has the lowest validation loss
        with_loss = [h for h in history if finite(h.get("val/loss")) is not None]
        lowest = min(with_loss, key=lambda h: h["val/loss"], default=None)
        best = {"val/acc": None, "epoch": lowest["epoch"]} if lowest else None
    record: dict[str, Any] = {
        "status": status,
        "error": error,
        "model": model,
        "seed": seed,
        "parameters": parameters,
        "epochs": len(history),
        "train_seconds": train_seconds,
        "final": {k: v for k, v in history[-1].items() if k != "epoch"} if history else {},
        "best": {
            "val/acc": best["val/acc"] if best else None,
            "val/loss": min((v for v in losses if v is not None), default=None),
            "epoch": best["epoch"] if best else None,
            "checkpoint": checkpoint,
        },
        "test": dict(test),
        "machine": machine,
        **data,
        **(extra or {}),
    }
    if single_fit:
        record["single_fit"] = True  # compare.py says so instead of drawing a one-point curve
    record["history"] = history
    return record


def write_metrics(path: str | Path, record: dict[str, Any]) -> Path:
    """Write metrics.json atomically."""
    text = json.dumps(record, indent=2)
    return atomic_write(path, lambda f: f.write(text.encode()))


def read_metrics(path: str | Path) -> dict[str, Any]:
    """metrics.json as a dict; RecordError when it is unreadable or not a JSON object."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise RecordError(
            f"{path} is not a readable metrics.json ({type(error).__name__}: {error}). It is "
            "written atomically, so it was edited or copied in part: copy it again from the run, "
            "or rerun the training."
        ) from error
    if not isinstance(record, dict):
        raise RecordError(
            f"{path} holds a JSON {type(record).__name__}, not the object rnnlab writes (status, "
            "model, best, test, history, ...). Copy it again from the run, or rerun the training."
        )
    return record


@dataclass(frozen=True)
class Predictions:
    """One run's test predictions, sorted by review id."""

    review_ids: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray

    def correct(self) -> np.ndarray:
        """1.0 where the prediction (probability > 0.5) matches the label, else 0.0."""
        return ((self.probabilities > 0.5) == (self.labels == 1)).astype(np.float64)


def write_predictions(
    path: str | Path,
    review_ids: Sequence[int] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    probabilities: Sequence[float] | np.ndarray,
) -> Path:
    """Write predictions.npz atomically, sorted by review id; refuses misaligned or duplicate
    reviews, which would pair wrongly later."""
    ids = np.asarray(review_ids, dtype=np.int64).ravel()
    labels = np.asarray(labels).ravel()
    probabilities = np.asarray(probabilities, dtype=np.float32).ravel()
    if not len(ids) == len(labels) == len(probabilities):
        raise RecordError(
            f"Cannot write {path}: {len(ids)} review ids, {len(labels)} labels and "
            f"{len(probabilities)} probabilities; each test review needs one of each."
        )
    if len(np.unique(ids)) != len(ids):
        raise RecordError(f"Cannot write {path}: review ids repeat; each test review once.")
    order = np.argsort(ids, kind="stable")
    arrays = {
        "review_ids": ids[order],
        "labels": labels[order].astype(np.int8),
        "probabilities": probabilities[order],
    }
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def read_predictions(path: str | Path) -> Predictions:
    """predictions.npz; RecordError naming the file and what is wrong with it."""
    path = Path(path)
    fix = "Copy it again from the run, or rerun the training to write it anew."
    try:
        data = path.read_bytes()
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            missing = [k for k in PREDICTION_KEYS if k not in npz.files]
            if missing:
                raise RecordError(
                    f"{path} lacks {', '.join(missing)} (it holds {', '.join(npz.files)}); "
                    f"predictions.npz needs {', '.join(PREDICTION_KEYS)}. {fix}"
                )
            arrays = {k: npz[k] for k in PREDICTION_KEYS}
    except RecordError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise RecordError(
            f"{path} is not a readable predictions.npz ({type(error).__name__}: {error}). {fix}"
        ) from error
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise RecordError(f"{path} has arrays of different lengths ({lengths}). {fix}")
    order = np.argsort(arrays["review_ids"], kind="stable")
    ids = arrays["review_ids"][order].astype(np.int64)
    if len(ids) and (np.diff(ids) == 0).any():
        raise RecordError(f"{path} lists a review id twice. {fix}")
    return Predictions(
        ids, arrays["labels"][order].astype(np.int64), arrays["probabilities"][order].astype(float)
    )
