"""scripts/ensemble.py: averaging runs' test predictions, paired by seed across sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fake_runs import write_record

from rnnlab.compare import main as compare
from rnnlab.ensemble import main as ensemble
from rnnlab.record import read_predictions, write_predictions

LABELS = np.array([1, 0, 1, 0])


def fake_run(run: Path, probabilities, seed: int, ids=(3, 5, 8, 9), model="lstm") -> Path:
    correct = ((np.asarray(probabilities) > 0.5) == (LABELS == 1)).mean()
    write_record(run, seed, float(correct), model=model)
    write_predictions(run / "predictions.npz", list(ids), LABELS, probabilities)
    return run


def test_two_runs_average_their_probabilities(tmp_path):
    forward = fake_run(tmp_path / "fwd", [0.9, 0.6, 0.4, 0.2], seed=1)  # 2 of 4 right
    backward = fake_run(tmp_path / "bwd", [0.7, 0.2, 0.8, 0.6], seed=1)  # 3 of 4 right
    assert ensemble([str(forward), str(backward), "--out", str(tmp_path / "ens")]) == 0
    averaged = read_predictions(tmp_path / "ens" / "predictions.npz")
    np.testing.assert_allclose(averaged.probabilities, [0.8, 0.4, 0.6, 0.4])
    record = json.loads((tmp_path / "ens" / "metrics.json").read_text())
    assert record["test"]["test/acc"] == 1.0 and record["seed"] == 1
    assert record["member_test_acc"] == [0.5, 0.75]


def test_sweeps_pair_by_seed_and_compare_reads_the_ensembles(tmp_path):
    for seed in (1, 2):
        fake_run(tmp_path / "fwd" / f"seed={seed}", [0.9, 0.6, 0.4, 0.2], seed=seed)
        fake_run(tmp_path / "bwd" / f"seed={seed}", [0.7, 0.2, 0.8, 0.6], seed=seed)
    fake_run(tmp_path / "bwd" / "seed=3", [0.7, 0.2, 0.8, 0.6], seed=3)  # no partner
    out = tmp_path / "ens"
    assert ensemble([str(tmp_path / "fwd"), str(tmp_path / "bwd"), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["seed=1", "seed=2"]
    assert compare([str(out), "--out", str(tmp_path / "cmp")]) == 0
    result = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert result["configurations"][0]["n_seeds"] == 2


def test_runs_on_other_reviews_are_refused(tmp_path, capsys):
    a = fake_run(tmp_path / "a", [0.9, 0.6, 0.4, 0.2], seed=1)
    b = fake_run(tmp_path / "b", [0.9, 0.6, 0.4, 0.2], seed=1, ids=(1, 2, 3, 4))
    assert ensemble([str(a), str(b), "--out", str(tmp_path / "ens")]) == 1
    assert "other reviews" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ensemble([str(a), "--out", str(tmp_path / "ens")])


def test_compare_markdown_prints_only_the_tables_for_the_docs(tmp_path, capsys):
    for seed in (1, 2):
        fake_run(tmp_path / "a" / f"seed={seed}", [0.9, 0.6, 0.4, 0.2], seed=seed, model="gru")
        fake_run(tmp_path / "b" / f"seed={seed}", [0.7, 0.2, 0.8, 0.6], seed=seed)
    assert compare([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c")]) == 0
    whole = capsys.readouterr().out
    assert (
        compare(
            [str(tmp_path / "a"), str(tmp_path / "b"), "--markdown", "--out", str(tmp_path / "c")]
        )
        == 0
    )
    tables = capsys.readouterr().out
    assert tables.startswith("## Configurations") and "## Paired differences" in tables
    assert "# Comparison of" in whole and "# Comparison of" not in tables
