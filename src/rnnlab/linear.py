"""The linear baselines' training path, and the TF-IDF + logistic regression baseline.

A recurrent model is worth its cost only if it beats these. A `LinearBaseline` (TfidfLogReg
here, NBSVM in rnnlab.nbsvm) trains on the datamodule's own train split (the tokens the
Preprocessor produced), may choose its hyperparameters on the validation split, and
`train_linear` writes its run directory the way a recurrent run does: metrics.json and
predictions.npz (rnnlab.record; one "epoch": a single fit), TensorBoard scalars and hparams, and
the fitted model under checkpoints/, so compare.py, TensorBoard and sweeps treat it as one more
run.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
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

from rnnlab import rules
from rnnlab.atomic import atomic_write
from rnnlab.errors import ConfigError
from rnnlab.hparams import log_hyperparameters
from rnnlab.module import _metrics
from rnnlab.record import build_record, write_metrics, write_predictions
from rnnlab.runtime import machine_description

log = logging.getLogger(__name__)
# scikit-learn's LogisticRegression solvers
SOLVERS = ("lbfgs", "liblinear", "newton-cg", "newton-cholesky", "sag", "saga")


def _same(tokens: list[str]) -> list[str]:
    """The reviews arrive tokenized: the vectorizer only forms the n-grams."""
    return tokens


class LinearBaseline(ABC):
    """A model `train_linear` fits in one pass on token lists: `fit` returns the training
    reviews' logits, `logits` scores reviews, `selected` reports any hyperparameter it chose on
    the validation split. Saved whole with joblib, preprocessing settings included, so
    `joblib.load(path).predict_texts([...])` scores raw reviews."""

    @classmethod
    def config_rules(cls) -> dict[str, rules.Rule]:
        """Checks of the `model.*` keys every linear baseline has; subclasses add their own."""
        return {
            "ngram_max": rules.integer(1),
            "min_df": rules.integer(1),
            "solver": rules.choice(SOLVERS),
            "max_iter": rules.integer(1),
        }

    name: str
    preprocess: dict[str, Any]

    @abstractmethod
    def fit(
        self,
        reviews: Sequence[list[str]],
        labels: np.ndarray,
        val_reviews: Sequence[list[str]] | None = None,
        val_labels: np.ndarray | None = None,
    ) -> np.ndarray:
        """Fit on tokenized reviews (choosing on the validation ones, if at all); returns the
        training reviews' logits."""

    @abstractmethod
    def logits(self, reviews: Sequence[list[str]]) -> np.ndarray:
        """log(p / (1 - p)) of the positive class, as the recurrent models output."""

    @property
    @abstractmethod
    def parameters(self) -> int:
        """Learned weights, bias included."""

    @property
    @abstractmethod
    def features(self) -> int:
        """Size of the feature space."""

    @property
    def selected(self) -> dict[str, Any]:
        """Hyperparameters chosen on the validation split (none by default)."""
        return {}

    def predict_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Positive-class probabilities for raw texts, through the training run's preprocessing."""
        from rnnlab.data.preprocess import Preprocessor

        preprocess = Preprocessor(**self.preprocess)
        return 1 / (1 + np.exp(-self.logits([preprocess(t) for t in texts])))


class TfidfLogReg(LinearBaseline):
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

    @classmethod
    def config_rules(cls) -> dict[str, rules.Rule]:
        """Checks of this family's `model.*` keys (rnnlab/validate.py applies them)."""
        return {**super().config_rules(), "sublinear_tf": rules.boolean(), "C": rules.positive()}

    def fit(
        self,
        reviews: Sequence[list[str]],
        labels: np.ndarray,
        val_reviews: Sequence[list[str]] | None = None,
        val_labels: np.ndarray | None = None,
    ) -> np.ndarray:
        """Fit on tokenized reviews (nothing is chosen on validation); returns the training
        reviews' logits."""
        features = self.vectorizer.fit_transform(reviews)
        self.classifier.fit(features, labels)
        return self.classifier.decision_function(features)

    def logits(self, reviews: Sequence[list[str]]) -> np.ndarray:
        """log(p / (1 - p)) of the positive class, as the recurrent models output."""
        return self.classifier.decision_function(self.vectorizer.transform(reviews))

    @property
    def parameters(self) -> int:
        """Learned weights: one per feature, plus the bias."""
        return self.classifier.coef_.size + self.classifier.intercept_.size

    @property
    def features(self) -> int:
        return len(self.vectorizer.vocabulary_)


def is_linear(model_cfg: DictConfig) -> bool:
    """Whether the model config builds the linear baseline (trained without a Lightning Trainer)."""
    try:
        target = hydra.utils.get_class(model_cfg._target_)
    except (ImportError, ValueError):  # reported when the model is built, like any bad target
        return False
    return isinstance(target, type) and issubclass(target, LinearBaseline)


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


def _path(cfg: DictConfig, key: str, default: Path) -> Path:
    return Path(OmegaConf.select(cfg, key, default=None) or default)


def train_linear(cfg: DictConfig) -> dict[str, float]:
    """Fit the baseline on the train split, score val (and test), write the run directory."""
    _refuse_resume(cfg)
    out = Path(cfg.paths.output_dir)
    metrics_path = _path(cfg, "callbacks.metrics_json.path", out / "metrics.json")
    predictions_path = _path(cfg, "callbacks.predictions_npz.path", out / "predictions.npz")
    checkpoints = _path(cfg, "callbacks.model_checkpoint.dirpath", out / "checkpoints")
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    model: LinearBaseline = hydra.utils.instantiate(
        cfg.model, random_state=cfg.seed, _convert_="all"
    )
    model.preprocess = datamodule.preprocessor.config()
    fields: dict[str, Any] = {"model": model.name, "seed": cfg.seed}
    write_metrics(metrics_path, {"status": "running", "error": None, **fields})
    try:
        splits = datamodule.token_splits()
        start = time.perf_counter()
        train_logits = model.fit(*splits["train"], *splits["val"])
        seconds = round(time.perf_counter() - start, 2)
        val = scores("val/", model.logits(splits["val"][0]), splits["val"][1])
        row = {"epoch": 1, **val, "val/acc_best": val["val/acc"]}
        row |= scores("train/", train_logits, splits["train"][1])
        test = {}
        if cfg.get("test", False):
            test_logits = model.logits(splits["test"][0])
            test = scores("test/", test_logits, splits["test"][1])
            probabilities = 1 / (1 + np.exp(-test_logits))
            ids = datamodule.review_ids["test"]
            write_predictions(predictions_path, ids, splits["test"][1], probabilities)
        path = checkpoints / f"{model.name}.joblib"
        atomic_write(path, lambda f: joblib.dump(model, f))
    except BaseException as error:
        status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
        error_text = f"{type(error).__name__}: {error}"
        write_metrics(metrics_path, {"status": status, "error": error_text, **fields})
        raise
    summary = datamodule.summary()
    summary["sizes"]["features"] = model.features
    record = build_record(
        status="completed",
        error=None,
        parameters=model.parameters,
        history=[row],
        train_seconds=seconds,
        test=test,
        checkpoint=str(path),
        data=summary,
        single_fit=True,
        extra={"selected": model.selected} if model.selected else None,
        machine=machine_description(),
        **fields,
    )
    write_metrics(metrics_path, record)
    log.info(
        "%s: %d features, fit in %.1fs; val/acc %.4f%s. Wrote %s",
        model.name,
        model.features,
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
