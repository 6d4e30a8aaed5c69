"""The strong linear baseline: TF-IDF word n-grams and logistic regression on rnnlab's tokens.

A recurrent model is worth its cost only if it beats this. It trains on the datamodule's own
train split (the tokens the Preprocessor produced) and writes its run directory the way a
recurrent run does: metrics.json in MetricsJson's schema (one "epoch": a single fit), TensorBoard
scalars and hparams, and the fitted model under checkpoints/, so compare.py, TensorBoard and
sweeps treat it as one more run.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import joblib
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from rnnlab.atomic import atomic_write
from rnnlab.errors import ConfigError
from rnnlab.module import _metrics

log = logging.getLogger(__name__)


def _same(tokens: list[str]) -> list[str]:
    """The reviews arrive tokenized: the vectorizer only forms the n-grams."""
    return tokens


class TfidfLogReg:
    """TF-IDF over word n-grams (1..ngram_max, in at least min_df reviews), then L2-regularized
    logistic regression (inverse strength C). Saved whole with joblib, preprocessing settings
    included, so `joblib.load(path).predict_texts([...])` scores raw reviews."""

    def __init__(
        self,
        name: str = "tfidf_logreg",
        ngram_max: int = 2,
        min_df: int = 2,
        sublinear_tf: bool = True,
        C: float = 4.0,
        solver: str = "liblinear",
        max_iter: int = 1000,
        random_state: int | None = None,
    ):
        self.name = name
        self.preprocess: dict[str, Any] = {}
        self.vectorizer = TfidfVectorizer(
            preprocessor=_same,
            tokenizer=_same,
            token_pattern=None,
            lowercase=False,
            ngram_range=(1, ngram_max),
            min_df=min_df,
            sublinear_tf=sublinear_tf,
        )
        self.classifier = LogisticRegression(
            C=C, solver=solver, max_iter=max_iter, random_state=random_state
        )

    def fit(self, reviews: Sequence[list[str]], labels: np.ndarray) -> np.ndarray:
        """Fit on tokenized reviews; returns the training reviews' logits."""
        features = self.vectorizer.fit_transform(reviews)
        self.classifier.fit(features, labels)
        return self.classifier.decision_function(features)

    def logits(self, reviews: Sequence[list[str]]) -> np.ndarray:
        """log(p / (1 - p)) of the positive class, as the recurrent models output."""
        return self.classifier.decision_function(self.vectorizer.transform(reviews))

    def predict_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Positive-class probabilities for raw texts, through the training run's preprocessing."""
        from rnnlab.data.preprocess import Preprocessor

        preprocess = Preprocessor(**self.preprocess)
        return 1 / (1 + np.exp(-self.logits([preprocess(t) for t in texts])))

    @property
    def parameters(self) -> int:
        """Learned weights: one per feature, plus the bias."""
        return self.classifier.coef_.size + self.classifier.intercept_.size


def is_linear(model_cfg: DictConfig) -> bool:
    """Whether the model config builds the linear baseline (trained without a Lightning Trainer)."""
    try:
        target = hydra.utils.get_class(model_cfg._target_)
    except (ImportError, ValueError):  # reported when the model is built, like any bad target
        return False
    return issubclass(target, TfidfLogReg)


def scores(prefix: str, logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """acc, f1, auroc and loss (mean binary cross-entropy) exactly as SentimentModule logs them."""
    logits_t = torch.as_tensor(logits, dtype=torch.float64)
    labels_t = torch.as_tensor(labels)
    values = {k: float(v) for k, v in _metrics(prefix)(logits_t, labels_t.int()).items()}
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits_t, labels_t.double())
    return values | {f"{prefix}loss": float(loss)}


def _refuse_resume(cfg: DictConfig) -> None:
    if cfg.get("ckpt_path") or not cfg.get("train", True):
        raise ConfigError(
            f"model={cfg.model.name} fits in one pass and has no checkpoint to resume or test: "
            f"ckpt_path={cfg.get('ckpt_path')!r}, train={cfg.get('train', True)!r} do not apply. "
            "Leave ckpt_path=null and train=true; a finished run's model is "
            "<run dir>/checkpoints/<name>.joblib (joblib.load(...).predict_texts([...]))."
        )


def train_linear(cfg: DictConfig) -> dict[str, float]:
    """Fit the baseline on the train split, score val (and test), write the run directory."""
    from rnnlab.train import log_hyperparameters
    from rnnlab.validate import validate_train_config

    validate_train_config(cfg)
    _refuse_resume(cfg)
    out = Path(cfg.paths.output_dir)
    metrics_path = Path(
        OmegaConf.select(cfg, "callbacks.metrics_json.path", default=None) or out / "metrics.json"
    )
    checkpoints = Path(
        OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
        or out / "checkpoints"
    )
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model: TfidfLogReg = hydra.utils.instantiate(cfg.model, random_state=cfg.seed, _convert_="all")
    model.preprocess = datamodule.preprocessor.config()
    record: dict[str, Any] = {"status": "running", "error": None, "model": model.name}

    def write() -> None:
        text = json.dumps(record, indent=2)
        atomic_write(metrics_path, lambda f: f.write(text.encode()))

    write()
    try:
        splits = datamodule.token_splits()
        start = time.perf_counter()
        train_logits = model.fit(*splits["train"])
        seconds = round(time.perf_counter() - start, 2)
        val = scores("val/", model.logits(splits["val"][0]), splits["val"][1])
        row = {"epoch": 1, **val, "val/acc_best": val["val/acc"]}
        row |= scores("train/", train_logits, splits["train"][1])
        test = {}
        if cfg.get("test", False):
            test = scores("test/", model.logits(splits["test"][0]), splits["test"][1])
        path = checkpoints / f"{model.name}.joblib"
        atomic_write(path, lambda f: joblib.dump(model, f))
    except BaseException as error:
        record["status"] = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        record["error"] = f"{type(error).__name__}: {error}"
        write()
        raise
    summary = datamodule.summary()
    summary["sizes"]["features"] = len(model.vectorizer.vocabulary_)
    record |= {
        "status": "completed",
        "parameters": model.parameters,
        "epochs": 1,
        "train_seconds": seconds,
        "final": {k: v for k, v in row.items() if k != "epoch"},
        "best": {
            "val/acc": val["val/acc"],
            "val/loss": val["val/loss"],
            "epoch": 1,
            "checkpoint": str(path),
        },
        "test": test,
        **summary,
        # no epochs: compare.py says so instead of drawing a one-point curve
        "single_fit": True,
        "history": [row],
    }
    write()
    log.info(
        "%s: %d features, fit in %.1fs; val/acc %.4f%s. Wrote %s",
        model.name,
        summary["sizes"]["features"],
        seconds,
        val["val/acc"],
        f", test/acc {test['test/acc']:.4f}" if test else "",
        metrics_path,
    )
    metrics = {k: v for k, v in row.items() if k != "epoch"} | test
    loggers = [hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values() if c]
    log_hyperparameters(cfg, model.parameters, loggers)
    for logger in loggers:
        logger.log_metrics(metrics, step=0)
        logger.finalize("success")
    return metrics
