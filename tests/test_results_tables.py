"""scripts/results_tables.py: every planned run composes, and a finished one is not run again."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from compose import ROOT, compose
from hydra.utils import get_class
from omegaconf import OmegaConf

spec = importlib.util.spec_from_file_location(
    "results_tables", ROOT / "scripts" / "results_tables.py"
)
results_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results_tables)

RUNS = results_tables.planned_runs(
    list(results_tables.TABLES),
    [1, 2, 3],
    Path("/OUT"),
    lm="/LM/epoch_007.ckpt",
    lm_backward="/LM_BWD/epoch_007.ckpt",
)


@pytest.mark.parametrize(
    "run_dir, overrides", [r for r in RUNS if r[0].name == "seed=1"], ids=lambda v: str(v)
)
def test_every_planned_run_composes_on_the_official_split(run_dir, overrides, tmp_path):
    cfg = compose("train", overrides, tmp_path)
    assert cfg.data.split.name == "official" and cfg.seed == 1
    if "ablation" in str(run_dir):
        assert cfg.test is False  # the ablation is read on validation only
    if "scheduler" in cfg.model and cfg.model.scheduler is not None:
        resolved = OmegaConf.to_container(cfg.model.scheduler, resolve=True)
        assert get_class(resolved["_target_"])
    if "backward" in str(run_dir):
        assert cfg.pretrained == "/LM_BWD/epoch_007.ckpt"
    elif "pretrained" in str(run_dir) and "scratch" not in str(run_dir):
        assert cfg.pretrained == "/LM/epoch_007.ckpt"


def test_the_backward_row_is_the_forward_recipe_on_the_backward_model_every_seed():
    forward = {d.name: o for d, o in RUNS if d.parent.name == "ulmfit"}
    backward = {d.name: o for d, o in RUNS if d.parent.name == "ulmfit_backward"}
    assert sorted(backward) == ["seed=1", "seed=2", "seed=3"]
    for seed, overrides in backward.items():
        assert [o.replace("/LM_BWD/", "/LM/") for o in overrides] == forward[seed]
    plain = results_tables.planned_runs(["linear"], [1], Path("/OUT"), lm="/LM/epoch_007.ckpt")
    assert not any(d.parent.name == "ulmfit_backward" for d, _ in plain)


def test_seeds_come_one_after_another_and_single_fits_run_once():
    seeds = [int(str(d).rsplit("=", 1)[1]) for d, _ in RUNS]
    assert seeds == sorted(seeds)
    linear = [d for d, _ in RUNS if "/linear/" in str(d)]
    assert {d.name for d in linear} == {"seed=1"}


def test_a_completed_run_is_skipped_and_a_stopped_one_resumes(tmp_path):
    run = tmp_path / "run"
    assert results_tables.run_state(run) == "new"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (run / "metrics.json").write_text(json.dumps({"status": "interrupted"}))
    assert results_tables.run_state(run) == "resumable"
    (run / "metrics.json").write_text(json.dumps({"status": "completed"}))
    assert results_tables.run_state(run) == "completed"


def test_calls_side_by_side_share_the_runs_and_skip_the_one_another_holds(tmp_path, monkeypatch):
    out = tmp_path / "results"
    runs = [(out / "official" / "t" / row / "seed=1", [f"x={row}"]) for row in ("a", "b", "c")]
    monkeypatch.setattr(results_tables, "planned_runs", lambda *args: runs)
    trained = []

    def fake_train(command):
        trained.append(next(c for c in command if c.startswith("x=")))
        run_dir = Path(command[-1].split("=", 1)[1].strip("'"))
        run_dir.mkdir(parents=True)
        (run_dir / "metrics.json").write_text(json.dumps({"status": "completed"}))
        return 0

    monkeypatch.setattr(results_tables.subprocess, "call", fake_train)
    with results_tables.run_lock(out, runs[1][0]) as locked:  # another call trains row b
        assert locked
        assert results_tables.main(["--data", "d", "--out", str(out)]) == 0
    assert trained == ["x=a", "x=c"]
    assert results_tables.main(["--data", "d", "--out", str(out)]) == 0  # b is free now
    assert trained == ["x=a", "x=c", "x=b"]


def test_no_planned_run_trains_what_another_one_trains(tmp_path):
    """The ablation's ends (from scratch, the whole recipe) are the pretrained table's runs: a
    row that only drops the test would train the same epochs twice."""
    trained = {}
    for run_dir, overrides in (r for r in RUNS if r[0].name == "seed=1"):
        cfg = OmegaConf.to_container(compose("train", overrides, tmp_path))
        cfg.pop("test")
        key = OmegaConf.to_yaml(cfg)
        assert key not in trained, f"{run_dir} trains what {trained[key]} trains"
        trained[key] = run_dir


def test_the_summary_is_the_readme_table_of_finished_runs_best_first(tmp_path, capsys):
    official = tmp_path / "official"

    def run(key: str, seed: int, acc: float | None, status: str = "completed") -> None:
        folder = official / key / f"seed={seed}"
        folder.mkdir(parents=True)
        record = {"status": status, "test": {} if acc is None else {"test/acc": acc}}
        (folder / "metrics.json").write_text(json.dumps(record))

    run("linear/nbsvm", 1, 0.9118)
    for seed, acc in ((1, 0.85), (2, 0.86), (3, 0.87)):
        run("tutorial/gru", seed, acc)
    run("tutorial/lstm", 1, 0.84)
    run("tutorial/lstm", 2, None, status="interrupted")  # not finished: left out
    run("ablation/1_pretrained_plain", 1, None)  # not a headline row
    assert results_tables.main(["--summary", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:] == [
        "| NB-SVM (`experiment=nbsvm`) | 91.18 (1 fit) |",
        "| GRU, tutorial settings | 86.00 ± 1.00 (3) |",
        "| LSTM, tutorial settings | 84.00 (1) |",
    ]


def test_the_commands_it_prints_at_the_end_read_the_ablation_and_the_learning_curve(
    tmp_path, monkeypatch, capsys
):
    """The ablation command reads from scratch, rows 1-4 and the whole recipe; the learning-curve
    command reads each curve's sizes and the full training part."""
    from fake_runs import write_record

    from rnnlab import compare, learning_curve

    out = tmp_path / "results"

    def fake_train(command):
        run_dir = Path(command[-1].split("=", 1)[1].strip("'"))
        sizes = [int(c.split("=")[1]) for c in command if c.startswith("data.train_reviews=")]
        write_record(run_dir, seed=1, test_acc=0.9, train_reviews=(sizes or [22500])[0])
        return 0

    monkeypatch.setattr(results_tables.subprocess, "call", fake_train)
    argv = ["--data", "d", "--out", str(out), "--lm", "lm.ckpt", "--seeds", "1"]
    argv += ["--table", "linear"]  # + the pretrained, ablation and curve tables (--lm)
    assert results_tables.main(argv) == 0
    printed = capsys.readouterr().out

    def printed_command(label: str) -> list[str]:
        words = printed.split(f"{label}: python ")[1].split(";")[0].split()
        return [w.replace("OUT", str(out)) for w in words]

    command = printed_command("ablation (validation)")
    assert command[0] == "scripts/compare.py"
    assert compare.main([*command[1:], "--out", str(tmp_path / "cmp")]) == 0
    compared = (tmp_path / "cmp" / "comparison.csv").read_text()
    expected = ["ulmfit_scratch/seed=1", "ulmfit/seed=1"]
    expected += [f"ablation/{row}/seed=1" for row in results_tables.ABLATION_TABLE]
    for run in expected:
        assert f"\n{run}," in compared

    command = printed_command("learning curve")
    assert command[0] == "scripts/learning_curve.py"
    assert learning_curve.main(command[1:]) == 0
    curve = (out / "learning_curve" / "learning_curve.md").read_text()
    for size in ("100", "1,000", "10,000", "22,500"):
        assert f"| {size} |" in curve
