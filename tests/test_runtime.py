"""The subnormal flush reaches every thread rnnlab computes on, importing rnnlab changes nothing in
the process, and the entry points apply `runtime` from their config (rnnlab/runtime.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# Every thread is started (and computes once) before the flush is switched, so each check fails
# unless the setting reaches threads that already exist: torch's OpenMP team, the row-shard pool,
# and a DataLoader worker started by `spawn` (a fresh process that inherits nothing).
THREADS_PROBE = """
import json, sys
sys.path.insert(0, {tests!r})
import torch
from torch.utils.data import DataLoader
from runtime_probe import SubnormalProbe, subnormal_times_one
from rnnlab.data.datamodule import IMDBDataModule
from rnnlab.models.recurrent import _in_parallel
from rnnlab.runtime import flush_subnormals, flushes_subnormals

torch.set_num_threads(2)
datamodule = IMDBDataModule(path={data!r}, cache_dir=None, num_workers=1, batch_size=16)
datamodule.prepare_data()
datamodule.setup("fit")

def state():
    loader = DataLoader(
        SubnormalProbe(), batch_size=None, num_workers=1, multiprocessing_context="spawn",
        worker_init_fn=datamodule.train_dataloader().worker_init_fn,
    )
    return {{
        "main and OpenMP threads": flushes_subnormals(),
        "row-shard threads": [v == 0 for v in _in_parallel(lambda k: subnormal_times_one(), 2)],
        "DataLoader worker": next(iter(loader)) == 0,
    }}

before = state()
flush_subnormals(True)
on = state()
flush_subnormals(False)
print(json.dumps({{"before": before, "on": on, "off": state()}}))
"""


def probe(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=os.environ | env,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_flush_reaches_main_openmp_shard_threads_and_dataloader_workers(synthetic_archive):
    states = json.loads(probe(THREADS_PROBE.format(tests=str(TESTS), data=str(synthetic_archive))))
    computing = {
        "main and OpenMP threads": False,
        "row-shard threads": [False, False],
        "DataLoader worker": False,
    }
    assert states["before"] == computing  # the checks can fail: subnormals survive by default
    assert states["on"] == {
        "main and OpenMP threads": True,
        "row-shard threads": [True, True],
        "DataLoader worker": True,
    }
    assert states["off"] == computing  # off is as before, on threads that flushed a moment ago


def test_importing_rnnlab_changes_nothing_in_the_process():
    code = """
import json, os
import torch, lightning, hydra, sklearn, matplotlib  # what they set is theirs
before = dict(os.environ)
import rnnlab, rnnlab.train, rnnlab.evaluate, rnnlab.predict, rnnlab.runtime, rnnlab.sweeps
from omegaconf import OmegaConf
print(json.dumps({
    "environment": {k: v for k, v in os.environ.items() if before.get(k) != v},
    "resolver": OmegaConf.has_resolver("rnnlab.unique_dir"),
    "subnormal": float(torch.tensor(1e-39) * 1),
}))
"""
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    effects = json.loads(done.stdout)
    assert effects == {"environment": {}, "resolver": False, "subnormal": pytest.approx(1e-39)}


@pytest.mark.parametrize(
    ("setting", "logged"),
    [("true", "subnormal floats: flushed to zero"), ("false", "subnormal floats: computed")],
)
def test_train_py_applies_runtime_flush_from_its_config(
    synthetic_archive, tmp_path, setting, logged
):
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "train.py",
            f"data.path={synthetic_archive}",
            "data.max_reviews=200",
            "model=gru",
            "trainer.max_epochs=1",
            "test=false",
            "runtime.threads=1",
            f"runtime.flush_denormal={setting}",
            f"paths.root_dir={tmp_path}",
            f"hydra.run.dir={run_dir}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    log = (run_dir / "train.log").read_text()
    assert logged in log and "torch threads: 1 (runtime.threads)" in log


def test_a_runtime_value_that_is_not_a_switch_is_refused_in_one_paragraph(tmp_path):
    done = subprocess.run(
        [sys.executable, "train.py", "runtime.flush_denormal=maybe", f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 1
    assert "runtime.flush_denormal='maybe' must be true or false" in done.stderr
    assert "Traceback" not in done.stderr
