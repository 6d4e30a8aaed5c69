"""scripts/learning_curve.py: test accuracy per number of labelled training reviews."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_runs import write_record

from rnnlab.learning_curve import main as learning_curve


def fake_run(run: Path, train_reviews: int, seed: int, test_acc: float) -> None:
    write_record(run, seed, test_acc, train_reviews=train_reviews)


def test_curves_average_seeds_per_size(tmp_path):
    for size, accs in ((100, (0.70, 0.74)), (1000, (0.85, 0.87))):
        for seed, acc in enumerate(accs, start=1):
            run = tmp_path / "pretrained" / f"n={size},seed={seed}"
            run.mkdir(parents=True)
            fake_run(run, size, seed, acc)
    (tmp_path / "scratch" / "n=100").mkdir(parents=True)
    fake_run(tmp_path / "scratch" / "n=100", 100, 1, 0.55)
    out = tmp_path / "out"
    assert (
        learning_curve([str(tmp_path / "pretrained"), str(tmp_path / "scratch"), "--out", str(out)])
        == 0
    )
    curves = json.loads((out / "learning_curve.json").read_text())["curves"]
    assert [p["train_reviews"] for p in curves["pretrained"]] == [100, 1000]
    assert (
        curves["pretrained"][0]["test_acc_mean"] == 0.72 and curves["pretrained"][0]["seeds"] == 2
    )
    assert curves["scratch"][0]["test_acc_std"] is None
    table = (out / "learning_curve.md").read_text()
    assert "| 100 | 72.00 ± 2.83 (2 seeds) | 55.00 (1 seed) |" in table
    assert (out / "learning_curve.png").stat().st_size > 0


def test_an_empty_curve_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "run").mkdir()
    assert learning_curve([str(tmp_path / "empty" / "run"), "--out", str(tmp_path / "o")]) == 1


def test_the_baseline_curve_is_matched_by_interpolation_in_log_reviews(tmp_path):
    points = {"pretrained": ((100, 0.80), (1000, 0.88)), "scratch": ((100, 0.60), (1000, 0.70))}
    points["scratch"] += ((10000, 0.90),)
    for name, sizes in points.items():
        for size, acc in sizes:
            run = tmp_path / name / f"n={size}"
            run.mkdir(parents=True)
            fake_run(run, size, 1, acc)
    out = tmp_path / "out"
    dirs = [str(tmp_path / "pretrained"), str(tmp_path / "scratch")]
    assert learning_curve([*dirs, "--out", str(out)]) == 0
    result = json.loads((out / "learning_curve.json").read_text())
    assert result["baseline"] == "scratch"
    first, second = result["matching"]
    # 80% lies halfway from 70% (1,000) to 90% (10,000): 10^3.5 reviews, 31.6 times 100
    assert first["baseline_reviews"] == pytest.approx(10**3.5)
    assert first["ratio"] == pytest.approx(10**1.5)
    assert second["baseline_reviews"] == pytest.approx(10**3.9)
    assert "| pretrained | 100 | 80.00 | 3,162 | 31.6× |" in (out / "learning_curve.md").read_text()
    # a baseline that never gets there, and one named that is not a curve
    assert learning_curve([*dirs, "--out", str(out), "--baseline", "pretrained"]) == 0
    result = json.loads((out / "learning_curve.json").read_text())
    below, _, beyond = result["matching"]
    assert (below["baseline_reviews"], below["bound"]) == (100, "<=")
    assert (beyond["baseline_reviews"], beyond["bound"]) == (1000, ">")
    assert (
        "| scratch | 10,000 | 90.00 | > 1,000 | > 0.1× |" in (out / "learning_curve.md").read_text()
    )
    with pytest.raises(SystemExit):
        learning_curve([*dirs, "--out", str(out), "--baseline", "nope"])


def test_a_named_curve_joins_runs_from_several_directories(tmp_path):
    fake_run(tmp_path / "curve" / "n=100", 100, 1, 0.70)
    (tmp_path / "full" / "seed=1").mkdir(parents=True)
    fake_run(tmp_path / "full" / "seed=1", 22500, 1, 0.90)
    (tmp_path / "other" / "n=100").mkdir(parents=True)
    fake_run(tmp_path / "other" / "n=100", 100, 1, 0.60)
    out = tmp_path / "out"
    joined = f"pretrained={tmp_path / 'curve'},{tmp_path / 'full'}"
    assert learning_curve([joined, str(tmp_path / "other"), "--out", str(out)]) == 0
    curves = json.loads((out / "learning_curve.json").read_text())["curves"]
    assert list(curves) == ["pretrained", "other"]
    assert [p["train_reviews"] for p in curves["pretrained"]] == [100, 22500]
    # a mistyped folder in a joined curve is refused, not left out of the curve
    with pytest.raises(SystemExit):
        learning_curve([f"{joined},{tmp_path / 'typo'}", "--out", str(out)])
