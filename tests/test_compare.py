"""rnnlab.compare on hand-made run directories: configurations over seeds, the paired bootstrap
on the same test reviews, comparison.json, and the refusal of runs tested on other reviews."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from rnnlab import compare
from rnnlab.record import write_metrics, write_predictions
from rnnlab.significance import holm, paired_tests

N_REVIEWS = 600


def make_run(
    sweep: Path,
    model: str,
    seed: int,
    correct: np.ndarray,
    ids: np.ndarray | None = None,
    status: str = "completed",
    predictions: bool = True,
) -> Path:
    """A run directory as a sweep job leaves it: .hydra/, metrics.json, predictions.npz."""
    run = sweep / f"model={model},seed={seed}"
    (run / ".hydra").mkdir(parents=True)
    config = {"seed": seed, "model": {"name": model, "hidden_size": 16}, "paths": {"x": str(run)}}
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (run / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump([f"model={model}", f"seed={seed}"])
    )
    ids = np.arange(len(correct)) if ids is None else ids
    labels = np.arange(len(correct)) % 2
    probabilities = np.where(correct == 1, labels, 1 - labels) * 0.8 + 0.1
    acc = float(correct.mean())
    history = [{"epoch": 1, "val/acc": acc, "val/loss": 0.5}]
    record = {"status": status, "model": model, "seed": seed, "epochs": 1, "history": history}
    record["test"] = {"test/acc": acc} if status == "completed" else {}
    write_metrics(run / "metrics.json", record)
    if predictions:
        write_predictions(run / "predictions.npz", ids, labels, probabilities)
    return run


def correct_at(rate: float, rng: np.random.Generator, n: int = N_REVIEWS) -> np.ndarray:
    return (rng.random(n) < rate).astype(float)


def run_compare(*args: str) -> int:
    return compare.main([*args, "--resamples", "2000"])


def test_configurations_pool_seeds_with_a_t_interval(tmp_path):
    rng = np.random.default_rng(0)
    sweep = tmp_path / "sweep"
    accs: dict[str, list[float]] = {"gru": [], "lstm": [], "rnn": []}
    for model, rate, seeds in (("gru", 0.8, (1, 2, 3)), ("lstm", 0.75, (1, 2)), ("rnn", 0.6, (1,))):
        for seed in seeds:
            correct = correct_at(rate, rng)
            make_run(sweep, model, seed, correct)
            accs[model].append(float(correct.mean()))
    make_run(sweep, "gru", 9, correct_at(0.8, rng), status="failed")
    assert run_compare(str(sweep)) == 0
    result = json.loads((sweep / "comparison.json").read_text())
    configurations = {c["name"]: c for c in result["configurations"]}
    assert list(configurations) == ["model=gru", "model=lstm", "model=rnn"]  # best mean first
    for model, values in accs.items():
        c = configurations[f"model={model}"]
        assert c["n_seeds"] == len(values) and sorted(c["seeds"]) == list(range(1, len(values) + 1))
        assert c["test_acc_mean"] == pytest.approx(statistics.mean(values))
        if len(values) == 1:  # one seed: no spread to report
            assert c["test_acc_std"] is None and c["test_acc_ci95"] is None
            continue
        assert c["test_acc_std"] == pytest.approx(statistics.stdev(values))
        low, high = stats.t.interval(
            0.95, len(values) - 1, loc=statistics.mean(values), scale=stats.sem(values)
        )
        assert c["test_acc_ci95"] == pytest.approx([low, high])
    # the failed run stays in the table, not in the statistics
    text = (sweep / "comparison.md").read_text()
    assert "| model=gru,seed=9 | gru | failed |" in text
    assert "| model=gru | 3 (" in text
    # each pair's difference is the difference of the seed-averaged accuracies
    pairs = {(p["a"], p["b"]): p for p in result["pairs"]}
    assert len(pairs) == 3
    pair = pairs[("model=gru", "model=lstm")]
    expected = statistics.mean(accs["gru"]) - statistics.mean(accs["lstm"])
    assert pair["diff"] == pytest.approx(expected) and pair["reviews"] == N_REVIEWS
    assert (sweep / "comparison.png").stat().st_size > 10_000


def test_paired_bootstrap_agrees_with_the_normal_approximation():
    rng = np.random.default_rng(1)
    n = 4000
    a = correct_at(0.85, rng, n)
    b = np.where(rng.random(n) < 0.9, a, 1 - a)  # mostly the same reviews right: paired
    (pair,) = paired_tests({"a": a, "b": b}, resamples=4000, seed=0)
    d = a - b
    se = d.std(ddof=1) / math.sqrt(n)
    assert pair["diff"] == pytest.approx(d.mean())
    low, high = pair["diff_ci95"]
    assert low == pytest.approx(d.mean() - 1.96 * se, abs=0.15 * 1.96 * se)
    assert high == pytest.approx(d.mean() + 1.96 * se, abs=0.15 * 1.96 * se)
    p_normal = 2 * stats.norm.sf(abs(d.mean()) / se)
    assert pair["p_value"] == pytest.approx(p_normal, abs=0.02)
    # the same predictions: no difference at all
    (same,) = paired_tests({"a": a, "b": a.copy()}, resamples=500)
    assert same["diff"] == 0 and same["p_value"] == 1.0 and not same["significant"]


def test_seeds_that_scatter_widen_the_paired_interval():
    """A lead inside one configuration's seed-to-seed scatter is no win, however many reviews
    the two share: the bootstrap resamples seeds as well as reviews."""
    rng = np.random.default_rng(3)
    n = 4000
    a = np.stack([correct_at(rate, rng, n) for rate in (0.79, 0.86, 0.93)])  # mean 0.86
    b = np.stack([correct_at(0.845, rng, n) for _ in range(3)])
    (pair,) = paired_tests({"a": a, "b": b}, resamples=2000, seed=0)
    low, high = pair["diff_ci95"]
    assert pair["diff"] == pytest.approx(a.mean() - b.mean())
    assert low < 0 < high and not pair["significant"]
    # the seeds averaged away first, only the reviews resampled: the same lead looks certain
    (reviews_only,) = paired_tests({"a": a.mean(0), "b": b.mean(0)}, resamples=2000, seed=0)
    assert reviews_only["diff_ci95"][0] > 0 and reviews_only["significant"]


def test_holm_adjustment():
    # sorted: 0.01 * 3, 0.03 * 2, 0.04 * 1, then made non-decreasing
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_markdown_marks_which_differences_are_significant(tmp_path):
    rng = np.random.default_rng(2)
    sweep = tmp_path / "sweep"
    base = correct_at(0.6, rng)
    make_run(sweep, "gru", 1, np.maximum(base, correct_at(0.8, rng)))  # far better
    make_run(sweep, "lstm", 1, base)
    make_run(sweep, "rnn", 1, np.where(rng.random(N_REVIEWS) < 0.01, 1 - base, base))  # ~same
    assert run_compare(str(sweep)) == 0
    result = json.loads((sweep / "comparison.json").read_text())
    pairs = {(p["a"], p["b"]): p for p in result["pairs"]}
    text = (sweep / "comparison.md").read_text()
    for (a, b), pair in pairs.items():
        (line,) = [x for x in text.splitlines() if x.startswith(f"| {a} | {b} |")]
        assert line.endswith("| **yes** |" if pair["significant"] else "| no |")
    assert pairs[("model=gru", "model=lstm")]["significant"]
    assert not [p for k, p in pairs.items() if "model=gru" not in k][0]["significant"]


def test_runs_on_different_reviews_are_refused_unless_pairs_are_skipped(tmp_path, capsys):
    rng = np.random.default_rng(3)
    sweep = tmp_path / "sweep"
    make_run(sweep, "gru", 1, correct_at(0.8, rng))
    other = make_run(sweep, "lstm", 1, correct_at(0.8, rng), ids=np.arange(N_REVIEWS) + 7)
    assert run_compare(str(sweep)) == 1
    error = capsys.readouterr().err
    assert "cover different test reviews" in error and str(other / "predictions.npz") in error
    assert "--no-pairs" in error and "\n" not in error.strip()
    assert not (sweep / "comparison.json").exists()
    assert run_compare(str(sweep), "--no-pairs") == 0
    result = json.loads((sweep / "comparison.json").read_text())
    assert result["pairs"] == [] and len(result["configurations"]) == 2


def test_runs_without_readable_predictions_are_left_out_of_the_pairs_only(tmp_path):
    rng = np.random.default_rng(4)
    sweep = tmp_path / "sweep"
    make_run(sweep, "gru", 1, correct_at(0.8, rng))
    make_run(sweep, "lstm", 1, correct_at(0.7, rng))
    make_run(sweep, "rnn", 1, correct_at(0.6, rng), predictions=False)
    broken = make_run(sweep, "bilstm", 1, correct_at(0.5, rng)) / "predictions.npz"
    broken.write_bytes(b"not a zip file")
    assert run_compare(str(sweep)) == 0
    result = json.loads((sweep / "comparison.json").read_text())
    assert len(result["configurations"]) == 4
    assert [(p["a"], p["b"]) for p in result["pairs"]] == [("model=gru", "model=lstm")]
    left = {x["configuration"]: x["reason"] for x in result["pairs_left_out"]}
    assert "no predictions.npz" in left["model=rnn"]
    assert f"{broken} is not a readable predictions.npz" in left["model=bilstm"]
    assert "Not in the paired tests: model=rnn" in (sweep / "comparison.md").read_text()


def test_runs_given_one_by_one_beside_a_folder_are_named_with_their_parent(tmp_path):
    rng = np.random.default_rng(0)
    first = make_run(tmp_path / "scratch", "lstm", 1, correct_at(0.8, rng))
    last = make_run(tmp_path / "ulmfit", "lstm", 1, correct_at(0.9, rng))
    make_run(tmp_path / "ablation", "gru", 1, correct_at(0.85, rng))
    rows = compare.collect([first, tmp_path / "ablation", last])
    assert sorted(r["run"] for r in rows) == [
        "ablation/model=gru,seed=1",
        "scratch/model=lstm,seed=1",
        "ulmfit/model=lstm,seed=1",
    ]
    assert [r["run"] for r in compare.collect([first])] == ["model=lstm,seed=1"]


def test_a_run_without_a_config_leaves_the_others_labels_as_they_were(tmp_path):
    """scripts/ensemble.py's averages have no .hydra/: the settings every configured run shares
    (split=official) stay out of the configuration names."""
    rng = np.random.default_rng(0)
    for model in ("lstm", "gru"):
        run = make_run(tmp_path / "single", model, 1, correct_at(0.85, rng))
        overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*overrides, "split=x"]))
    average = tmp_path / "ensemble" / "seed=1"
    average.mkdir(parents=True)
    record = {"status": "completed", "model": "ensemble of lstm + gru", "seed": 1, "epochs": 0}
    write_metrics(average / "metrics.json", record | {"history": [], "test": {"test/acc": 0.9}})
    labels = {r["configuration"] for r in compare.collect([tmp_path / "single", average])}
    assert labels == {"model=lstm", "model=gru", "ensemble of lstm + gru"}


def test_configurations_from_several_machines_name_their_machine(tmp_path, capsys):
    rng = np.random.default_rng(5)
    sweep = tmp_path / "sweep"
    for model, machine in (("gru", "NVIDIA H200"), ("lstm", "AMD EPYC (AVX2)")):
        for seed in (1, 2):
            run = make_run(sweep, model, seed, correct_at(0.7, rng))
            record = json.loads((run / "metrics.json").read_text())
            write_metrics(run / "metrics.json", {**record, "machine": machine})
    assert run_compare(str(sweep), "--markdown") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("| config")][0].endswith("| machine |")
    rows = {line.split(" | ")[0]: line for line in lines if " | 2 (1, 2) | " in line}
    assert rows["| model=gru"].endswith("| NVIDIA H200 |")
    assert rows["| model=lstm"].endswith("| AMD EPYC (AVX2) |")
    # one machine for all: the protocol names it once, the rows do not
    record = json.loads((sweep / "model=gru,seed=1" / "metrics.json").read_text())
    for seed in (1, 2):
        run = sweep / f"model=gru,seed={seed}"
        write_metrics(run / "metrics.json", {**record, "machine": "AMD EPYC (AVX2)", "seed": seed})
    assert run_compare(str(sweep), "--markdown") == 0
    header = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| config")]
    assert header and all("machine" not in line for line in header)
