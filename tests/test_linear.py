"""The linear baseline (model=tfidf_logreg) runs through train.py's path and writes a run
directory the rest of the tooling reads like a recurrent run's."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import joblib
import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rnnlab import compare
from rnnlab.data.sources import load_reviews
from rnnlab.errors import ConfigError
from rnnlab.train import run, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def linear_run(train_cfg):
    """A baseline run on the synthetic archive's official split: (config, returned metrics)."""
    cfg = train_cfg("model=tfidf_logreg", "split=official")
    return cfg, train(cfg)


def test_baseline_learns_and_writes_a_run_directory_like_a_recurrent_run(linear_run):
    cfg, metrics = linear_run
    assert metrics["val/acc"] > 0.9 and metrics["test/acc"] > 0.9, metrics
    assert metrics["val/acc_best"] == metrics["val/acc"]
    run_dir = Path(cfg.paths.output_dir)
    report = json.loads((run_dir / "metrics.json").read_text())
    assert report["status"] == "completed" and report["error"] is None
    assert report["model"] == "tfidf_logreg" and report["split"] == "official"
    assert report["epochs"] == 1 and report["single_fit"] is True
    assert report["sizes"]["train"] + report["sizes"]["val"] == 600  # the official train half
    assert report["sizes"]["test"] == 600
    assert report["parameters"] == report["sizes"]["features"] + 1  # weights and bias
    assert report["train_seconds"] > 0
    assert report["final"] == {k: v for k, v in report["history"][0].items() if k != "epoch"}
    assert report["best"]["val/acc"] == metrics["val/acc"]
    assert report["best"]["val/loss"] == metrics["val/loss"]
    assert report["test"] == {k: v for k, v in metrics.items() if k.startswith("test/")}
    assert set(report["test"]) == {"test/acc", "test/f1", "test/auroc", "test/loss"}
    assert Path(report["best"]["checkpoint"]) == run_dir / "checkpoints" / "tfidf_logreg.joblib"
    # TensorBoard: the scalars at step 0, the hyperparameters beside them
    events = EventAccumulator(str(run_dir))
    events.Reload()
    for tag in ("val/acc", "val/loss", "test/acc", "train/acc"):
        (scalar,) = events.Scalars(tag)
        assert scalar.step == 0 and scalar.value == pytest.approx(metrics[tag], rel=1e-6)
    assert "model/params" in (run_dir / "hparams.yaml").read_text()
    # what a Hydra sweeper (Optuna) gets
    assert run(cfg) == pytest.approx(metrics["val/acc_best"])


def test_numbers_match_a_direct_scikit_learn_fit_on_the_same_split(linear_run, synthetic_archive):
    cfg, metrics = linear_run
    splits = hydra.utils.instantiate(cfg.data, _convert_="all").token_splits()
    # the same model built independently: tokens joined by spaces, split on whitespace
    vectorizer = TfidfVectorizer(
        token_pattern=r"\S+", lowercase=False, ngram_range=(1, 2), min_df=2, sublinear_tf=True
    )
    features = vectorizer.fit_transform(" ".join(t) for t in splits["train"][0])
    classifier = LogisticRegression(C=4.0, solver="liblinear", max_iter=1000, random_state=42)
    classifier.fit(features, splits["train"][1])
    for part in ("val", "test"):
        texts, labels = splits[part]
        logits = classifier.decision_function(vectorizer.transform(" ".join(t) for t in texts))
        probs = 1 / (1 + np.exp(-logits))
        assert metrics[f"{part}/acc"] == pytest.approx(accuracy_score(labels, logits > 0))
        assert metrics[f"{part}/f1"] == pytest.approx(f1_score(labels, logits > 0))
        assert metrics[f"{part}/auroc"] == pytest.approx(roc_auc_score(labels, logits))
        assert metrics[f"{part}/loss"] == pytest.approx(log_loss(labels, probs), rel=1e-9)
    # the saved model gives the same logits, and scores raw reviews through its preprocessing
    saved = joblib.load(Path(cfg.paths.output_dir) / "checkpoints" / "tfidf_logreg.joblib")
    texts, labels = splits["test"]
    expected = classifier.decision_function(vectorizer.transform(" ".join(t) for t in texts))
    np.testing.assert_allclose(saved.logits(texts), expected, rtol=1e-9, atol=1e-12)
    raw = load_reviews(synthetic_archive)
    official_test = [t for t, o in zip(raw.texts, raw.official, strict=True) if o == "test"]
    probabilities = saved.predict_texts(official_test)
    assert ((probabilities > 0.5) == raw.labels[raw.official == "test"]).mean() > 0.9


@pytest.mark.parametrize("split", ["tutorial", "official"])
def test_baseline_sees_the_recurrent_models_reviews_and_tokens(train_cfg, split):
    cfg = train_cfg(f"split={split}")
    recurrent = hydra.utils.instantiate(cfg.data, _convert_="all")
    recurrent.setup("fit")
    splits = hydra.utils.instantiate(cfg.data, _convert_="all").token_splits()
    for part in ("train", "val", "test"):
        encoded = recurrent._sets[part]
        tokens, labels = splits[part]
        np.testing.assert_array_equal(labels, encoded.labels)
        # every synthetic word is in the vocabulary, so ids decode to the same tokens
        decoded = [[recurrent.vocab.itos[i] for i in ids] for ids in encoded.reviews]
        assert decoded == tokens


@pytest.mark.parametrize(
    "override,message",
    [
        ("model.C=0", "model.C=0 must be a number > 0"),
        ("model.C=-4", "model.C=-4 must be a number > 0"),
        ("model.ngram_max=0", "model.ngram_max=0 must be an integer >= 1"),
        ("model.min_df=0", "model.min_df=0 must be an integer >= 1"),
        ("model.solver=adam", "model.solver='adam' must be one of lbfgs, liblinear"),
    ],
)
def test_bad_hyperparameter_is_refused_before_data_is_read(tmp_path, train_cfg, override, message):
    cfg = train_cfg("model=tfidf_logreg", override, f"data.path={tmp_path / 'absent.tar.gz'}")
    with pytest.raises(ConfigError, match="on the command line") as info:
        train(cfg)
    assert message in str(info.value)
    assert not Path(cfg.paths.output_dir, "metrics.json").exists()


def test_resuming_the_baseline_is_refused_with_what_to_do_instead(train_cfg, tmp_path):
    checkpoint = tmp_path / "last.ckpt"
    checkpoint.write_bytes(b"")
    cfg = train_cfg("model=tfidf_logreg", f"ckpt_path={checkpoint}")
    with pytest.raises(ConfigError, match=r"fits in one pass.*ckpt_path=null.*\.joblib"):
        train(cfg)


def test_compare_lists_the_baseline_as_a_single_fit_beside_recurrent_runs(linear_run, tmp_path):
    cfg, metrics = linear_run
    sweep = tmp_path / "sweep"
    linear_dir = sweep / "model=tfidf_logreg"
    linear_dir.mkdir(parents=True)
    (linear_dir / "metrics.json").write_bytes(
        Path(cfg.paths.output_dir, "metrics.json").read_bytes()
    )
    recurrent = sweep / "model=gru"
    recurrent.mkdir()
    history = [{"epoch": e, "val/acc": 0.6 + e / 10, "val/loss": 0.7 - e / 10} for e in (1, 2, 3)]
    record = {"status": "completed", "model": "gru", "epochs": 3, "history": history}
    (recurrent / "metrics.json").write_text(json.dumps(record))
    rows = {r["run"]: r for r in compare.collect([sweep])}
    row = rows["model=tfidf_logreg"]
    assert row["single_fit"] and not rows["model=gru"]["single_fit"]
    assert row["test_acc"] == pytest.approx(metrics["test/acc"])
    assert row["best_val_acc"] == pytest.approx(metrics["val/acc"])
    text = compare.markdown(list(rows.values()), [sweep], None)
    (line,) = [x for x in text.splitlines() if x.startswith("| model=tfidf_logreg |")]
    assert "| single fit |" in line
    labels = compare.plot(list(rows.values()), tmp_path / "cmp.png")
    assert any(
        label.startswith("model=tfidf_logreg (") and "single fit" in label for label in labels
    )
