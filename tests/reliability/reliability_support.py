"""Helpers of the reliability suite: quick settings, and real CLI runs (configs are composed with
tests/compose.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# small and quick: a run of a few epochs takes seconds, so faults can hit real training runs
QUICK = [
    "model=lstm",
    "model.embed_dim=16",
    "model.hidden_size=16",
    "model.dropout=0.3",  # dropout draws random numbers: an exact resume must restore them
    "model.embed_dropout=0.1",
    "data.batch_size=32",
    "logger=[]",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
]


def start_script(script: str, *overrides: str, cwd: Path) -> subprocess.Popen:
    """Start `python <script> <overrides>` as a user would; `faults` is importable by `_target_`."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",  # as `one_thread` in-process: same numbers, and no slow-down
    }
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen(
        [sys.executable, str(ROOT / script), *overrides],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_script(script: str, *overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    return finish(start_script(script, *overrides, cwd=cwd))


def assert_one_paragraph_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit status 1, no traceback, and the last paragraph of stderr holds every needle."""
    assert result.returncode == 1, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    paragraph = result.stderr.strip().split("\n\n")[-1]
    message = paragraph.strip().splitlines()[-1]
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def metrics_without_timing(run_dir: Path) -> dict:
    """metrics.json minus what legitimately differs between two runs: time and file paths."""
    report = json.loads((run_dir / "metrics.json").read_text())
    report.pop("train_seconds", None)
    report["best"].pop("checkpoint", None)
    return report
