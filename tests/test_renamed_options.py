"""The tutorial's split, preprocessing and preset are named `tutorial`; their earlier names
(`split=seed`, `preprocess=seed_tip`, `experiment=seed_tip`) compose the same config and say
the new name in a one-line notice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from compose import CONF, ROOT, compose
from omegaconf import OmegaConf

from rnnlab.data.datamodule import IMDBDataModule
from rnnlab.errors import refuse_null_groups
from rnnlab.renames import RENAMED_OPTIONS, RenamedOptionsNotice, renamed_notices

RENAMES = [(g, old, new) for g, names in RENAMED_OPTIONS.items() for old, new in names.items()]


@pytest.mark.parametrize("group, old, new", RENAMES)
def test_the_old_name_composes_exactly_the_new_one(tmp_path: Path, group, old, new) -> None:
    before = OmegaConf.to_container(compose("train", [f"{group}={old}"], tmp_path))
    after = OmegaConf.to_container(compose("train", [f"{group}={new}"], tmp_path))
    assert before == after


@pytest.mark.parametrize("group, old, new", RENAMES)
def test_the_old_name_file_only_selects_the_new_one(group, old, new) -> None:
    """An alias holds no settings of its own, so the two names cannot drift apart."""
    alias = yaml.safe_load((CONF / group / f"{old}.yaml").read_text())
    assert alias == {"defaults": [new]}
    assert (CONF / group / f"{new}.yaml").is_file()


def test_every_alias_file_is_in_the_table() -> None:
    """A config that only selects a sibling is a renamed option, and must give its notice."""
    for path in CONF.glob("*/*.yaml"):
        content = yaml.safe_load(path.read_text())
        if isinstance(content, dict) and set(content) == {"defaults"}:
            target = content["defaults"]
            if len(target) == 1 and isinstance(target[0], str):
                assert RENAMED_OPTIONS[path.parent.name][path.stem] == target[0], path


def test_the_default_split_selects_on_validation_and_the_tutorials_keeps_its_name(
    tmp_path: Path,
) -> None:
    cfg = compose("train", [], tmp_path)
    assert OmegaConf.to_container(cfg.data.split) == {
        "name": "holdout",
        "test_size": 0.2,
        "val_fraction": 0.1,
        "random_state": 42,
    }
    assert compose("train", hydra=True).hydra.runtime.choices.split == "holdout"
    tutorial = compose("train", ["split=tutorial"], tmp_path)
    assert OmegaConf.to_container(tutorial.data.split) == {
        "name": "tutorial",
        "test_size": 0.2,
        "random_state": 42,
    }


@pytest.mark.parametrize("group, old, new", RENAMES)
def test_the_notice_names_the_new_option(capsys, group, old, new) -> None:
    RenamedOptionsNotice().on_job_start(config=compose("train", [f"{group}={old}"], hydra=True))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{group}={old} is now called {group}={new}" in err
    RenamedOptionsNotice().on_job_start(config=compose("train", [f"{group}={new}"], hydra=True))
    assert capsys.readouterr().err == ""


def test_no_notice_for_current_names() -> None:
    choices = OmegaConf.to_container(
        compose("train", ["experiment=tutorial"], hydra=True).hydra.runtime.choices
    )
    assert renamed_notices(choices) == []
    assert renamed_notices({"split": "official", "experiment": None}) == []


def test_split_named_seed_in_an_older_checkpoint_reads_as_tutorial(synthetic_archive) -> None:
    """eval.py rebuilds the data from a checkpoint's saved settings, which may say "seed"."""
    old = IMDBDataModule(path=str(synthetic_archive), split={"name": "seed"})
    new = IMDBDataModule(path=str(synthetic_archive), split={"name": "tutorial"})
    old.setup("fit")
    new.setup("fit")
    assert old.summary()["split"] == "tutorial" and old.sizes == new.sizes
    for part in ("train", "val", "test"):
        assert [r.tolist() for r in old._sets[part].reviews] == [
            r.tolist() for r in new._sets[part].reviews
        ]


def test_train_py_prints_the_notice_at_job_start(tmp_path: Path) -> None:
    """Through the real entry point: the notice comes before anything else the job reports
    (here, a data path that does not exist), on stderr and in the run's log file."""
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "split=seed",
            f"data.path={tmp_path / 'absent.csv'}",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    notice = "Notice: split=seed is now called split=tutorial"
    lines = result.stderr.splitlines()
    assert lines[0].startswith(notice) and lines[-1].startswith("Error: Data path")
    assert notice in (run_dir / "train.log").read_text()


def test_a_null_group_lists_only_the_current_names(capsys) -> None:
    with pytest.raises(SystemExit):
        refuse_null_groups(["split=null"], CONF)
    message = capsys.readouterr().err
    assert "one of: holdout, official, tutorial (files in" in message and "seed" not in message
