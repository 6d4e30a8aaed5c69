"""NB-SVM (Wang & Manning 2012) as Mesnil et al. (2014) use it: logistic regression on
naive-Bayes-scaled binarized word n-grams.

Each review becomes the binary indicator vector x of its word 1..ngram_max-grams (present or
not). The naive-Bayes log-count ratio of the training reviews,

    p = alpha + sum of x over positive reviews,  q = alpha + sum of x over negative reviews,
    r = log((p / |p|_1) / (q / |q|_1)),

scales every feature (x -> r * x), and an L2-regularized logistic regression is fitted on the
scaled features. Wang & Manning's own NBSVM fits a linear SVM and interpolates its weights with
their mean (beta = 0.25); the logistic regression here is the variant of Mesnil et al., which
also gives the probabilities predictions.npz records. The inverse regularization strength C is
chosen from `Cs` by validation accuracy (the test split is never looked at), and the model
fitted on the training split with that C is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from rnnlab import rules
from rnnlab.linear import LinearBaseline, _same


def log_count_ratio(features: sp.spmatrix, labels: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """r = log((p / |p|_1) / (q / |q|_1)) with p, q the alpha-smoothed feature sums of the
    positive and the negative reviews."""
    features = sp.csr_matrix(features)
    labels = np.asarray(labels)
    p = alpha + np.asarray(features[labels == 1].sum(axis=0)).ravel()
    q = alpha + np.asarray(features[labels == 0].sum(axis=0)).ravel()
    return np.log(p / p.sum()) - np.log(q / q.sum())


class NBSVM(LinearBaseline):
    """Binarized word n-grams (1..ngram_max, in at least min_df training reviews) scaled by
    their naive-Bayes log-count ratio (smoothing alpha), then L2 logistic regression with C
    chosen from Cs on the validation split."""

    def __init__(
        self,
        name: str = "nbsvm",
        ngram_max: int = 3,
        min_df: int = 1,
        alpha: float = 1.0,
        Cs: Sequence[float] = (0.1, 0.3, 1.0, 3.0),
        solver: str = "liblinear",
        max_iter: int = 1000,
        random_state: int | None = None,
    ):
        self.name = name
        self.preprocess: dict[str, Any] = {}
        self.alpha = alpha
        self.Cs = [float(c) for c in Cs]
        self.solver = solver
        self.max_iter = max_iter
        self.random_state = random_state
        self.vectorizer = CountVectorizer(
            preprocessor=_same,
            tokenizer=_same,
            token_pattern=None,
            lowercase=False,
            ngram_range=(1, ngram_max),
            min_df=min_df,
            binary=True,
            dtype=np.float64,
        )
        self.ratio = np.zeros(0)
        self.classifier: LogisticRegression | None = None
        self.val_acc_by_C: dict[str, float] = {}

    @classmethod
    def config_rules(cls) -> dict[str, rules.Rule]:
        """Checks of this family's `model.*` keys (rnnlab/validate.py applies them)."""
        return {**super().config_rules(), "alpha": rules.positive(), "Cs": rules.positive_list()}

    def nb_features(self, reviews: Sequence[list[str]]) -> sp.csr_matrix:
        """Binary n-gram indicators of the reviews, scaled by the log-count ratio."""
        return sp.csr_matrix(self.vectorizer.transform(reviews).multiply(self.ratio))

    def _classifier(self, C: float) -> LogisticRegression:
        return LogisticRegression(
            C=C,
            solver=self.solver,
            # the dual problem is the smaller one: far more n-grams than reviews
            dual=self.solver == "liblinear",
            max_iter=self.max_iter,
            random_state=self.random_state,
        )

    def fit(
        self,
        reviews: Sequence[list[str]],
        labels: np.ndarray,
        val_reviews: Sequence[list[str]] | None = None,
        val_labels: np.ndarray | None = None,
    ) -> np.ndarray:
        """Fit on the training reviews, pick C on the validation reviews (the first C when
        there are none, or only one C); returns the training reviews' logits."""
        binary = self.vectorizer.fit_transform(reviews)
        self.ratio = log_count_ratio(binary, labels, self.alpha)
        train = sp.csr_matrix(binary.multiply(self.ratio))
        candidates = self.Cs if val_reviews is not None and len(self.Cs) > 1 else self.Cs[:1]
        val = self.nb_features(val_reviews) if len(candidates) > 1 else None
        best_acc = -1.0
        self.val_acc_by_C = {}
        for C in candidates:
            classifier = self._classifier(C).fit(train, labels)
            if val is None:
                self.classifier = classifier
                break
            acc = float(((classifier.decision_function(val) > 0) == val_labels).mean())
            self.val_acc_by_C[f"{C:g}"] = acc
            if acc > best_acc:  # ties keep the earlier (listed first) C
                best_acc, self.classifier = acc, classifier
        return self.classifier.decision_function(train)

    def logits(self, reviews: Sequence[list[str]]) -> np.ndarray:
        """log(p / (1 - p)) of the positive class, as the recurrent models output."""
        return self.classifier.decision_function(self.nb_features(reviews))

    @property
    def parameters(self) -> int:
        """Learned weights: one per n-gram, plus the bias."""
        return self.classifier.coef_.size + self.classifier.intercept_.size

    @property
    def features(self) -> int:
        return len(self.vectorizer.vocabulary_)

    @property
    def selected(self) -> dict[str, Any]:
        """The C kept and every candidate's validation accuracy."""
        if not self.val_acc_by_C:
            return {"C": self.classifier.C}
        return {"C": self.classifier.C, "val_acc_by_C": dict(self.val_acc_by_C)}
