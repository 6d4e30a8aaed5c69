"""The user's path, as subprocesses: train.py -> eval.py -> predict.py, data deleted in between."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rnnlab.data.synthetic import write_dataset

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    result = subprocess.run(
        [sys.executable, str(ROOT / args[0]), *args[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_train_eval_predict_round_trip(tmp_path):
    data = write_dataset(tmp_path / "data", 1200, "csv")
    run_dir = tmp_path / "run"
    run(
        "train.py",
        "model=lstm",
        f"data.path={data}",
        "trainer.max_epochs=3",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    report = json.loads((run_dir / "metrics.json").read_text())
    assert report["status"] == "completed" and report["test"]["test/acc"] > 0.85

    ckpt = run_dir / "checkpoints" / "last.ckpt"
    evaluated = run(
        "eval.py", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'eval'}", cwd=tmp_path
    )
    assert "test/acc" in evaluated.stdout + evaluated.stderr
    eval_report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert eval_report["sizes"]["test"] == report["sizes"]["test"]

    shutil.rmtree(tmp_path / "data")  # prediction needs only the checkpoint
    good = run(
        "predict.py", f"ckpt_path={ckpt}", "text='A wonderful, moving masterpiece.'", cwd=tmp_path
    )
    label, probability = good.stdout.strip().split("\t")
    assert label == "positive" and float(probability) > 0.5

    reviews = tmp_path / "reviews.txt"
    reviews.write_text("Awful, boring and predictable.\nBrilliant and beautiful film.\n")
    out = run("predict.py", f"ckpt_path={ckpt}", f"file={reviews}", "format=json", cwd=tmp_path)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["label"] for r in rows] == ["negative", "positive"]
    assert set(rows[0]) == {"label", "positive_probability"}
    assert rows[0]["positive_probability"] < 0.5 < rows[1]["positive_probability"]
