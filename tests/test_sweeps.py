"""Sweeps as users run them: `python train.py ...` in a subprocess on tiny synthetic data, then
`scripts/compare.py` on what they wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rnnlab.data.synthetic import write_dataset
from rnnlab.record import read_predictions

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["rnn", "lstm", "bilstm", "gru"]


def quick(data: Path) -> list[str]:
    """One short epoch on a 200-review slice: seconds per job."""
    return [
        f"data.path={data}",
        "data.max_reviews=200",
        "trainer.max_epochs=1",
        "++trainer.limit_train_batches=2",
        "++trainer.limit_val_batches=1",
        "++trainer.enable_progress_bar=false",
        "++trainer.enable_model_summary=false",
    ]


def run(cwd: Path, *args: str, script: str = "train.py") -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    env.pop("RNNLAB_SWEPT_KEYS", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def only_sweep_dir(cwd: Path) -> Path:
    sweeps = list((cwd / "outputs" / "multiruns").iterdir())
    assert len(sweeps) == 1, sweeps
    return sweeps[0]


def job_dirs(sweep: Path) -> dict[str, Path]:
    return {p.name: p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")}


def metrics(job: Path) -> dict:
    return json.loads((job / "metrics.json").read_text())


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("synthetic"), 300, "archive")


@pytest.fixture(scope="module")
def rnn_vs_lstm(tmp_path_factory, data) -> Path:
    """`python train.py experiment=rnn_vs_lstm` (a multirun without -m), small."""
    cwd = tmp_path_factory.mktemp("rnn_vs_lstm")
    run(cwd, "experiment=rnn_vs_lstm", *quick(data), "model.embed_dim=16", "model.hidden_size=16")
    return only_sweep_dir(cwd)


@pytest.fixture(scope="module")
def optuna_sweep(tmp_path_factory, data) -> Path:
    """Four Optuna trials; lr=inf diverges (FloatingPointError): with this sampler seed trials
    0 and 2 draw lr=0.001 and trials 1 and 3 lr=inf."""
    cwd = tmp_path_factory.mktemp("optuna")
    run(
        cwd,
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.sampler.seed=6",
        "model.optimizer.lr=choice(0.001,inf)",
        *quick(data),
    )
    return only_sweep_dir(cwd)


def test_rnn_vs_lstm_runs_four_jobs_named_by_model(rnn_vs_lstm):
    jobs = job_dirs(rnn_vs_lstm)
    # only the swept key names a job: not data.max_reviews=200 or the other constant overrides
    assert sorted(jobs) == sorted(f"model={m}" for m in MODELS)
    for model in MODELS:
        record = metrics(jobs[f"model={model}"])
        assert record["status"] == "completed" and record["model"] == model
        assert record["test"]["test/acc"] is not None


def test_hparams_tab_gets_each_runs_settings_and_final_val_and_test_acc(rnn_vs_lstm):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    for name, job in job_dirs(rnn_vs_lstm).items():
        events = EventAccumulator(str(job))
        events.Reload()
        plugin = {
            tag: plugin_data_pb2.HParamsPluginData.FromString(content)
            for tag, content in events.PluginTagToContent("hparams").items()
        }
        experiment = plugin["_hparams_/experiment"].experiment
        metric_tags = {m.name.tag for m in experiment.metric_infos}
        assert {"val/acc", "test/acc"} <= metric_tags
        hparams = plugin["_hparams_/session_start_info"].session_start_info.hparams
        assert hparams["model.name"].string_value == name.split("=")[1]
        assert hparams["model.hidden_size"].number_value == 16
        assert hparams["data.max_reviews"].number_value == 200
        # the tab shows each metric's last logged value: the run's final val/acc and test/acc
        record = metrics(job)
        assert events.Scalars("val/acc")[-1].value == pytest.approx(record["final"]["val/acc"])
        assert events.Scalars("test/acc")[-1].value == pytest.approx(record["test"]["test/acc"])


def test_optuna_study_of_four_trials_survives_diverged_trials(optuna_sweep):
    jobs = job_dirs(optuna_sweep)
    assert sorted(name.split(",")[0] for name in jobs) == [f"trial={i}" for i in range(4)]
    outcomes = {}
    for name, job in jobs.items():
        record = metrics(job)
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        lr = next(o for o in overrides if o.startswith("model.optimizer.lr="))
        outcomes[name.split(",")[0]] = (lr.split("=")[1], record["status"])
        if lr.endswith("inf"):
            assert record["status"] == "failed" and "FloatingPointError" in record["error"]
        else:
            assert record["status"] == "completed"
        # tuning never computes test metrics, nor writes test predictions
        assert not record.get("test") and not (job / "predictions.npz").exists()
    assert outcomes == {
        "trial=0": ("0.001", "completed"),
        "trial=1": ("inf", "failed"),
        "trial=2": ("0.001", "completed"),
        "trial=3": ("inf", "failed"),
    }
    result = yaml.safe_load((optuna_sweep / "optimization_results.yaml").read_text())
    best = max(metrics(jobs[n])["final"]["val/acc_best"] for n in jobs if "lr=0.001" in n)
    assert result["best_params"]["model.optimizer.lr"] == 0.001
    assert result["best_value"] == pytest.approx(best)


def compare(tmp_path: Path, *dirs: Path) -> tuple[list[dict], str]:
    out = tmp_path / "comparison"
    run(tmp_path, *map(str, dirs), "--out", str(out), script="scripts/compare.py")
    import pandas as pd

    rows = pd.read_csv(out / "comparison.csv").to_dict("records")
    image = (out / "comparison.png").read_bytes()
    assert image.startswith(b"\x89PNG") and len(image) > 10_000
    return rows, (out / "comparison.md").read_text()


def test_compare_writes_table_and_picture_of_the_four_models(rnn_vs_lstm, tmp_path):
    rows, text = compare(tmp_path, rnn_vs_lstm)
    assert sorted(r["run"] for r in rows) == sorted(f"model={m}" for m in MODELS)
    for row in rows:
        record = metrics(rnn_vs_lstm / row["run"])
        assert row["model"] == record["model"] and row["status"] == "completed"
        assert row["parameters"] == record["parameters"] and row["epochs"] == 1
        assert row["best_val_acc"] == pytest.approx(record["best"]["val/acc"])
        assert row["test_acc"] == pytest.approx(record["test"]["test/acc"])
    assert text.count("| completed |") == 4 and "comparison.png" in text


def test_compare_shows_failed_runs_as_failed(rnn_vs_lstm, optuna_sweep, tmp_path):
    # and one job that died before it wrote metrics.json
    crashed = tmp_path / "crashed" / "model=gru"
    shutil.copytree(rnn_vs_lstm / "model=gru" / ".hydra", crashed / ".hydra")
    rows, text = compare(tmp_path, rnn_vs_lstm, optuna_sweep, crashed.parent)
    status = {r["run"]: r["status"] for r in rows}
    assert len(rows) == 4 + 4 + 1
    assert status["crashed/model=gru"] == "failed"
    failed = [run for run, s in status.items() if s == "failed"]
    assert len(failed) == 3 and all(f"`{run}` (failed)" in text for run in failed)
    assert [r["status"] for r in rows][-3:] == ["failed"] * 3  # listed after the results
    assert "FloatingPointError" in text and "no metrics.json" in text


def test_joblib_runs_two_jobs_in_parallel_processes(data, tmp_path):
    run(
        tmp_path,
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "model=rnn,gru",
        "data.num_workers=1",  # DataLoader workers inside joblib's worker processes
        *quick(data),
    )
    jobs = job_dirs(only_sweep_dir(tmp_path))
    assert sorted(jobs) == ["model=gru", "model=rnn"]
    pids = set()
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    for job in jobs.values():
        assert metrics(job)["status"] == "completed"
        # each job ran in its own worker process, with its share of the cores
        # events.out.tfevents.<time>.<host>.<pid>.<n>
        pids |= {p.name.rsplit(".", 2)[1] for p in job.glob("events.out.tfevents.*")}
        log = (job / "train.log").read_text()
        assert f"torch threads: {threads} (" in log
        assert "subnormal floats: flushed to zero" in log  # in the job's own process
    assert len(pids) == 2 and str(os.getpid()) not in pids


@pytest.mark.slow
def test_submitit_local_runs_sweep_jobs(data, tmp_path):
    run(tmp_path, "-m", "hydra/launcher=submitit_local", "model=rnn,gru", *quick(data))
    sweep = only_sweep_dir(tmp_path)
    jobs = job_dirs(sweep)
    assert sorted(jobs) == ["model=gru", "model=rnn"]
    assert all(metrics(job)["status"] == "completed" for job in jobs.values())
    assert all("subnormal floats: flushed" in (j / "train.log").read_text() for j in jobs.values())
    # submitit's own records: one folder per job (named by its id), each with the job's result
    records = [p for p in (sweep / ".submitit").iterdir() if p.name.isdigit()]
    assert len(records) == 2 and all(any(p.glob("*_result.pkl")) for p in records)


@pytest.mark.slow
def test_ddp_sim_writes_one_run_directory(data, tmp_path):
    """Two CPU processes (ddp_spawn), one run directory, written once by rank 0."""
    run(tmp_path, "trainer=ddp_sim", "model=gru", *quick(data), "trainer.max_epochs=2")
    runs = list((tmp_path / "outputs" / "runs").iterdir())
    assert len(runs) == 1 and not (tmp_path / "outputs" / "multiruns").exists()
    record = metrics(runs[0])
    # fit and test ran in different processes: the record still holds the whole fit
    assert record["status"] == "completed" and record["epochs"] == 2
    assert len(record["history"]) == 2 and record["test"]["test/acc"] is not None
    # predictions.npz: both ranks' test batches gathered onto rank 0, each review once
    predictions = read_predictions(runs[0] / "predictions.npz")
    assert len(predictions.review_ids) == record["sizes"]["test"]
    assert predictions.correct().mean() == pytest.approx(record["test"]["test/acc"], abs=1e-6)
    checkpoints = sorted(p.name for p in (runs[0] / "checkpoints").iterdir())
    assert len(checkpoints) == 2 and "last.ckpt" in checkpoints


@pytest.mark.slow
def test_ddp_in_a_multirun_keeps_each_job_in_its_directory(data, tmp_path):
    """trainer=ddp re-launches the script for rank 1: in a sweep, it must rerun that job alone
    into that job's directory, and the next job must start its own ranks."""
    run(tmp_path, "-m", "trainer=ddp", "trainer.accelerator=cpu", "model=rnn,gru", *quick(data))
    jobs = job_dirs(only_sweep_dir(tmp_path))
    assert sorted(jobs) == ["model=gru", "model=rnn"]
    for job in jobs.values():
        assert metrics(job)["status"] == "completed"
        assert (job / "train_ddp_process_1.log").exists()  # rank 1 worked here too
        assert len(list((job / "checkpoints").glob("epoch_*.ckpt"))) == 1
    assert not (tmp_path / "outputs" / "runs").exists()


@pytest.mark.slow
def test_optuna_study_persists_in_sqlite_and_resumes(data, tmp_path):
    optuna = pytest.importorskip("optuna")
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = ["hparams_search=optuna", f"hydra.sweeper.storage={storage}"]
    study += ["hydra.sweeper.study_name=resume", "hydra.sweeper.n_trials=2", *quick(data)]
    run(tmp_path, *study)
    run(tmp_path, *study)  # the same command again continues the study
    trials = optuna.load_study(study_name="resume", storage=storage).trials
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    assert len(list((tmp_path / "outputs" / "multiruns").iterdir())) == 2
