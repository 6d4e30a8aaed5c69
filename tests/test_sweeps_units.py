"""Sweep plumbing without training: directory names, collisions, threads, DDP hand-over, and
compare.py's picture with many runs."""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from compose import compose
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from rnnlab import compare, sweeps


def hydra_cfg(overrides: list[str], mode: RunMode = RunMode.RUN):
    """The train config with its hydra node, as a job of a run (or sweep) in `mode` sees it."""
    cfg = compose("train", overrides, hydra=True)
    with open_dict(cfg):
        cfg.hydra.mode = mode
        cfg.hydra.runtime.output_dir = "/tmp/unused"
    return cfg


@pytest.fixture
def fixed_now():
    """Call to make every `${now:...}` resolved afterwards give the same second (composing a
    config registers Hydra's own `now` again)."""

    def freeze():
        OmegaConf.register_new_resolver(
            "now", lambda pattern: "2030-01-01_00-00-00", use_cache=True, replace=True
        )

    yield freeze
    from hydra.core.utils import setup_globals

    setup_globals()  # Hydra's own `now` again


def test_unique_dir_never_hands_out_a_directory_twice(tmp_path):
    base = tmp_path / "multiruns" / "2030-01-01_00-00-00"
    with ThreadPoolExecutor(8) as pool:
        claimed = list(pool.map(lambda _: sweeps.unique_dir(str(base)), range(8)))
    assert len(set(claimed)) == 8
    assert sorted(Path(c).name for c in claimed) == sorted(
        [base.name] + [f"{base.name}_{n}" for n in range(2, 9)]
    )
    assert all(Path(c).is_dir() for c in claimed)


def test_two_launches_in_the_same_second_get_different_directories(tmp_path, fixed_now):
    """What conf/hydra/default.yaml resolves for a sweep and for a single run, twice."""
    logs = tmp_path / "outputs"
    overrides = [f"paths.log_dir={logs}", "model=gru"]
    first, second = hydra_cfg(overrides), hydra_cfg(overrides)
    fixed_now()
    claimed = first.hydra.sweep.dir
    sweep_dirs = {claimed, second.hydra.sweep.dir}
    run_dirs = {first.hydra.run.dir, second.hydra.run.dir}
    assert sweep_dirs == {
        str(logs / "multiruns" / "2030-01-01_00-00-00"),
        str(logs / "multiruns" / "2030-01-01_00-00-00_2"),
    }
    assert run_dirs == {
        str(logs / "runs" / "2030-01-01_00-00-00_gru"),
        str(logs / "runs" / "2030-01-01_00-00-00_gru_2"),
    }
    # resolving again (as every job of a sweep does) keeps the directory its launcher claimed
    assert first.hydra.sweep.dir == claimed and len(list((logs / "multiruns").iterdir())) == 2


def swept(keys: list[str], numbered: bool = False) -> str:
    return json.dumps({"keys": keys, "numbered": numbered})


def test_job_dirname_names_jobs_by_swept_overrides_only():
    overrides = ["model=bilstm", "data.max_reviews=2000", "seed=1", "data.path=/x/a.tar.gz"]
    assert sweeps.job_dirname(overrides, 0, [], swept(["seed", "model"])) == "model=bilstm,seed=1"


def test_job_dirname_never_nests_directories():
    name = sweeps.job_dirname(["experiment=tuned/bilstm", "data.path=/a/b"], 3, [], None)
    assert "/" not in name and name == "data.path=_a_b,experiment=tuned_bilstm"
    assert sweeps.job_dirname([], 3, [], swept([])) == "job=3"


def test_job_dirname_without_sweep_info_drops_excluded_keys():
    name = sweeps.job_dirname(
        ["model=gru", "data.path=/a/b.csv", "++trainer.x=1"], 0, ["data.path"]
    )
    assert name == "model=gru,trainer.x=1"


def test_optuna_trials_are_numbered_and_their_floats_short():
    overrides = ["model.dropout=0.17890863497893333", "model.hidden_size=128", "data.path=/d"]
    info = swept(["model.dropout", "model.hidden_size"], numbered=True)
    assert sweeps.job_dirname(overrides, 7, [], info) == (
        "trial=7,model.dropout=0.1789,model.hidden_size=128"
    )


def test_job_dirname_caps_the_length_of_a_name():
    long_names = [sweeps.job_dirname([f"x={c * 400}"], 0, [], None) for c in "ab"]
    assert all(len(n.encode()) <= sweeps.MAX_NAME for n in long_names)
    assert long_names[0] != long_names[1]


def test_swept_keys_come_from_the_command_line_and_sweeper_params():
    cfg = hydra_cfg(["experiment=rnn_vs_lstm", "data.max_reviews=2000"])
    with open_dict(cfg):
        cfg.hydra.overrides.task = ["experiment=rnn_vs_lstm", "data.max_reviews=2000", "seed=1,2"]
    assert sweeps.swept_keys(cfg) == {"keys": ["seed", "model"], "numbered": False}
    optuna = hydra_cfg(["hparams_search=optuna"])
    info = sweeps.swept_keys(optuna)
    assert info["numbered"] and set(info["keys"]) == set(optuna.hydra.sweeper.params)


@pytest.fixture
def hydra_config_set():
    def set_config(cfg):
        HydraConfig.instance().set_config(cfg)

    yield set_config
    HydraConfig.instance().cfg = None


def test_parallel_joblib_jobs_share_the_cores(hydra_config_set, monkeypatch):
    monkeypatch.setattr(sweeps, "_cores", lambda: 8)
    hydra_config_set(hydra_cfg(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]))
    assert sweeps.torch_threads(None)[0] == 4
    assert sweeps.torch_threads(3)[0] == 3  # `threads=` wins


def test_submitit_jobs_use_their_cpus_and_single_runs_keep_torch_default(hydra_config_set):
    hydra_config_set(hydra_cfg(["hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=3"]))
    assert sweeps.torch_threads(None)[0] == 3
    hydra_config_set(hydra_cfg([]))
    assert sweeps.torch_threads(None)[0] is None


def test_ddp_children_of_a_sweep_job_rerun_that_job_alone(hydra_config_set, monkeypatch):
    """Lightning re-runs sys.argv + hydra.run.dir=<HydraConfig run.dir> for the other ranks."""
    cfg = hydra_cfg(["model=gru"], mode=RunMode.MULTIRUN)
    with open_dict(cfg):
        cfg.hydra.overrides.task = ["model=gru", "seed=3"]
        cfg.hydra.runtime.output_dir = "/sweep/model=gru,seed=3"
    hydra_config_set(cfg)
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", "model=rnn,gru", "seed=3"])
    monkeypatch.setenv("MASTER_PORT", "1234")
    with sweeps.ddp_children_follow_this_job(world_size=2):
        assert sys.argv == ["train.py", "model=gru", "seed=3", "hydra.mode=RUN"]
        assert HydraConfig.get().run.dir == "/sweep/model=gru,seed=3"
        os.environ["LOCAL_RANK"] = "0"  # what the launcher leaves behind
        os.environ["MASTER_PORT"] = "999"
    assert sys.argv == ["train.py", "-m", "model=rnn,gru", "seed=3"]
    assert "LOCAL_RANK" not in os.environ and os.environ["MASTER_PORT"] == "1234"
    with sweeps.ddp_children_follow_this_job(world_size=1):
        assert sys.argv[1] == "-m"  # one process: nothing to hand over


def test_compare_picture_stays_readable_with_many_runs(tmp_path):
    """30 runs: the 10 best get colours and names, the rest one grey entry; failures named."""
    for i in range(30):
        run = tmp_path / f"trial={i}"
        run.mkdir()
        status = "failed" if i in (4, 13) else "completed"
        history = [
            {"epoch": e + 1, "val/acc": 0.5 + i / 100 + e / 50, "val/loss": 0.7 - e / 20}
            for e in range(2 if status == "failed" else 4)
        ]
        record = {"status": status, "model": "gru", "epochs": len(history), "history": history}
        (run / "metrics.json").write_text(json.dumps(record))
    rows = compare.collect([tmp_path])
    labels = compare.plot(rows, tmp_path / "many.png")
    assert len(labels) == 10 + 1 + 2
    assert labels[0].startswith("trial=29 ") and "18 more completed runs" in labels
    assert sum("FAILED" in label for label in labels) == 2
    assert (tmp_path / "many.png").stat().st_size > 10_000


def test_user_errors_fail_only_their_sweep_job(hydra_config_set, monkeypatch):
    """A bad value in one trial must not end the study: in a sweep job the error propagates to
    Hydra (which marks the job failed) instead of exiting the process."""
    from rnnlab.errors import ConfigError, exit_on_error

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    hydra_config_set(hydra_cfg([], mode=RunMode.MULTIRUN))
    with pytest.raises(ConfigError), exit_on_error():
        raise ConfigError("model.pooling='bogus' must be one of final, max, mean")
    hydra_config_set(hydra_cfg([], mode=RunMode.RUN))
    with pytest.raises(SystemExit), exit_on_error():
        raise ConfigError("model.pooling='bogus' must be one of final, max, mean")
