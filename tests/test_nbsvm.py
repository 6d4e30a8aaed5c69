"""NB-SVM (experiment=nbsvm): its naive-Bayes features on a hand-made example, and a run through
the linear-baseline path on the synthetic archive."""

from __future__ import annotations

import json
import math
from pathlib import Path

import hydra
import numpy as np
import pytest

from rnnlab.errors import ConfigError
from rnnlab.nbsvm import NBSVM, log_count_ratio
from rnnlab.record import read_predictions
from rnnlab.train import train

# vocabulary (alphabetical): bad, film, fun, good
REVIEWS = [["good", "film"], ["good", "good", "fun"], ["bad", "film"]]
LABELS = np.array([1, 1, 0])
# with alpha = 1: p = 1 + (bad 0, film 1, fun 1, good 2) = (1, 2, 2, 3), |p|_1 = 8;
# q = 1 + (bad 1, film 1, fun 0, good 0) = (2, 2, 1, 1), |q|_1 = 6; r = log((p / 8) / (q / 6))
EXPECTED_RATIO = {
    "bad": math.log((1 / 8) / (2 / 6)),
    "film": math.log((2 / 8) / (2 / 6)),
    "fun": math.log((2 / 8) / (1 / 6)),
    "good": math.log((3 / 8) / (1 / 6)),
}


def test_log_count_ratio_and_scaled_binary_features_on_a_hand_made_example():
    model = NBSVM(ngram_max=1, Cs=[1.0])
    model.fit(REVIEWS, LABELS)
    column = model.vectorizer.vocabulary_
    assert set(column) == set(EXPECTED_RATIO)
    for word, expected in EXPECTED_RATIO.items():
        assert model.ratio[column[word]] == pytest.approx(expected, rel=1e-12)
    # "good" twice still counts once (binarized), scaled by its ratio
    features = model.nb_features([["good", "good", "fun", "unseen"]]).toarray()[0]
    expected = np.zeros(len(column))
    expected[column["good"]] = EXPECTED_RATIO["good"]
    expected[column["fun"]] = EXPECTED_RATIO["fun"]
    np.testing.assert_allclose(features, expected, rtol=1e-12)
    # the function itself, with another smoothing: p = 0.5 + counts, q likewise
    binary = model.vectorizer.transform(REVIEWS)
    ratio = log_count_ratio(binary, LABELS, alpha=0.5)
    p = np.array([0.5, 1.5, 1.5, 2.5])
    q = np.array([1.5, 1.5, 0.5, 0.5])
    order = [column[w] for w in ("bad", "film", "fun", "good")]
    np.testing.assert_allclose(ratio[order], np.log((p / p.sum()) / (q / q.sum())), rtol=1e-12)


def test_trigrams_are_features():
    model = NBSVM(Cs=[1.0])  # ngram_max=3 by default
    model.fit(REVIEWS + [["not", "good", "film"]], np.array([1, 1, 0, 0]))
    assert {"not good film", "not good", "good film"} <= set(model.vectorizer.vocabulary_)
    assert model.features == len(model.vectorizer.vocabulary_)
    assert model.parameters == model.features + 1


def noisy_reviews(rng: np.random.Generator, n: int) -> tuple[list[list[str]], np.ndarray]:
    """Random words; the label leans on a few of them, so C changes the validation accuracy."""
    labels = rng.integers(0, 2, n)
    words = [f"w{i}" for i in range(200)]
    cue = {1: ["good", "fine"], 0: ["bad", "poor"]}
    reviews = [
        list(rng.choice(words, 20)) + list(rng.choice(cue[y if rng.random() < 0.7 else 1 - y], 1))
        for y in labels
    ]
    return reviews, labels


def test_C_is_chosen_by_validation_accuracy():
    rng = np.random.default_rng(0)
    train_set, val_set = noisy_reviews(rng, 200), noisy_reviews(rng, 200)
    Cs = [1e-3, 1e-2, 0.1, 1.0, 100.0]
    model = NBSVM(ngram_max=1, Cs=Cs)
    model.fit(*train_set)
    assert model.selected == {"C": 1e-3}  # without validation reviews: the first C
    model.fit(*train_set, *val_set)
    by_c = model.selected["val_acc_by_C"]
    assert list(by_c) == [f"{c:g}" for c in Cs]
    assert len(set(by_c.values())) > 1, by_c  # the candidates differ on validation
    best = Cs[int(np.argmax(list(by_c.values())))]
    assert model.selected["C"] == best
    kept = ((model.logits(val_set[0]) > 0) == val_set[1]).mean()
    assert kept == pytest.approx(max(by_c.values()))
    # the validation labels decide: flipped, they pick the C that was worst
    model.fit(*train_set, val_set[0], 1 - val_set[1])
    assert model.selected["C"] == Cs[int(np.argmin(list(by_c.values())))]


def test_nbsvm_run_beats_chance_and_writes_the_run_record(train_cfg):
    cfg = train_cfg("experiment=nbsvm", "split=official")
    metrics = train(cfg)
    assert metrics["val/acc"] > 0.9 and metrics["test/acc"] > 0.9, metrics
    run_dir = Path(cfg.paths.output_dir)
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and record["model"] == "nbsvm"
    assert record["single_fit"] is True and record["seed"] == 42
    chosen = record["selected"]
    by_c = chosen["val_acc_by_C"]
    assert set(by_c) == {"0.1", "0.3", "1", "3"}
    assert by_c[f"{chosen['C']:g}"] == max(by_c.values()) == pytest.approx(metrics["val/acc"])
    assert (run_dir / "checkpoints" / "nbsvm.joblib").is_file()
    # predictions.npz: the official test reviews, the same test/acc
    predictions = read_predictions(run_dir / "predictions.npz")
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    datamodule.token_splits()
    np.testing.assert_array_equal(predictions.review_ids, np.sort(datamodule.review_ids["test"]))
    assert predictions.correct().mean() == pytest.approx(metrics["test/acc"])


@pytest.mark.parametrize(
    "override,message",
    [
        ("model.Cs=[]", "model.Cs=[] must be a non-empty list of numbers > 0"),
        ("model.Cs=[1.0,-1]", "model.Cs=[1.0, -1] must be a non-empty list of numbers > 0"),
        ("model.alpha=0", "model.alpha=0 must be a number > 0"),
    ],
)
def test_bad_nbsvm_setting_is_refused_before_data_is_read(train_cfg, tmp_path, override, message):
    cfg = train_cfg("experiment=nbsvm", override, f"data.path={tmp_path / 'absent.tar.gz'}")
    with pytest.raises(ConfigError) as info:
        train(cfg)
    assert message in str(info.value)
