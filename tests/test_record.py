"""rnnlab.record: metrics.json and predictions.npz as written by recurrent and linear runs, and
read back with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import numpy as np
import pytest

from rnnlab.record import (
    RecordError,
    build_record,
    read_metrics,
    read_predictions,
    write_predictions,
)
from rnnlab.train import train


def test_build_record_derives_final_and_best_from_the_history():
    history = [
        {"epoch": 1, "val/acc": 0.7, "val/loss": 0.5},
        {"epoch": 2, "val/acc": 0.8, "val/loss": 0.45},
        {"epoch": 3, "val/acc": 0.75, "val/loss": 0.4},
    ]
    record = build_record(
        status="completed",
        error=None,
        model="gru",
        seed=3,
        parameters=10,
        history=history,
        train_seconds=1.5,
        test={"test/acc": 0.79},
        checkpoint="ck.ckpt",
        data={"split": "seed"},
    )
    assert record["best"] == {"val/acc": 0.8, "val/loss": 0.4, "epoch": 2, "checkpoint": "ck.ckpt"}
    assert record["final"] == {"val/acc": 0.75, "val/loss": 0.4} and record["epochs"] == 3
    assert record["seed"] == 3 and record["split"] == "seed" and "single_fit" not in record
    assert list(record)[-1] == "history"


def test_predictions_round_trip_sorted_by_review_id(tmp_path):
    path = write_predictions(tmp_path / "p.npz", [5, 2, 9], [1, 0, 1], [0.9, 0.6, 0.2])
    predictions = read_predictions(path)
    np.testing.assert_array_equal(predictions.review_ids, [2, 5, 9])
    np.testing.assert_array_equal(predictions.labels, [0, 1, 1])
    np.testing.assert_allclose(predictions.probabilities, [0.6, 0.9, 0.2], rtol=1e-6)
    np.testing.assert_array_equal(predictions.correct(), [0.0, 1.0, 0.0])
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temp file, then renamed


def test_bad_predictions_are_refused_naming_the_file(tmp_path):
    with pytest.raises(RecordError, match="3 review ids, 2 labels"):
        write_predictions(tmp_path / "p.npz", [1, 2, 3], [1, 0], [0.1, 0.2, 0.3])
    with pytest.raises(RecordError, match="repeat"):
        write_predictions(tmp_path / "p.npz", [1, 1], [1, 0], [0.1, 0.2])
    partial = tmp_path / "partial.npz"
    np.savez(partial, review_ids=np.arange(3), labels=np.ones(3))
    with pytest.raises(RecordError, match=r"partial\.npz lacks probabilities"):
        read_predictions(partial)
    cut = tmp_path / "cut.npz"
    write_predictions(cut, [1, 2], [1, 0], [0.1, 0.2])
    cut.write_bytes(cut.read_bytes()[:40])
    with pytest.raises(RecordError, match=r"cut\.npz is not a readable predictions\.npz"):
        read_predictions(cut)
    broken = tmp_path / "metrics.json"
    broken.write_text('{"status": ')
    with pytest.raises(RecordError, match=r"metrics\.json is not a readable metrics\.json"):
        read_metrics(broken)


def test_recurrent_run_writes_predictions_of_every_test_review(train_cfg):
    cfg = train_cfg(
        "model=gru",
        "seed=7",
        "data.max_reviews=300",
        "trainer.max_epochs=1",
        "model.embed_dim=8",
        "model.hidden_size=8",
        "data.eval_batch_size=32",  # several test batches, bucketed by length
        "~logger",
    )
    metrics = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    record = read_metrics(run_dir / "metrics.json")
    assert record["seed"] == 7 and record["status"] == "completed"
    predictions = read_predictions(run_dir / "predictions.npz")
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    test_ids = datamodule.review_ids["test"]
    np.testing.assert_array_equal(predictions.review_ids, np.sort(test_ids))
    # the labels belong to those reviews, and the probabilities give the logged test accuracy
    labels = dict(zip(test_ids.tolist(), datamodule._sets["test"].labels.tolist(), strict=True))
    assert predictions.labels.tolist() == [labels[i] for i in predictions.review_ids.tolist()]
    assert predictions.correct().mean() == pytest.approx(metrics["test/acc"], abs=1e-6)
    assert json.loads((run_dir / "metrics.json").read_text())["test"]["test/acc"] == (
        pytest.approx(metrics["test/acc"])
    )


def test_linear_run_pairs_with_a_recurrent_run_on_the_same_split(train_cfg, tmp_path):
    cfg = train_cfg("model=tfidf_logreg", "data.max_reviews=300")
    train(cfg)
    predictions = read_predictions(Path(cfg.paths.output_dir) / "predictions.npz")
    datamodule = hydra.utils.instantiate(
        train_cfg("model=gru", "data.max_reviews=300").data, _convert_="all"
    )
    datamodule.setup("fit")
    np.testing.assert_array_equal(predictions.review_ids, np.sort(datamodule.review_ids["test"]))
