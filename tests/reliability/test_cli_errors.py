"""train.py / eval.py / predict.py report a user's mistake as one paragraph on stderr with exit
status 1, never a traceback. Most cases run the scripts in this process (as `python train.py`
would, through Hydra's main); two run as real processes to pin down the exit status and stderr."""

from __future__ import annotations

import logging
import runpy
import sys
from pathlib import Path

import nltk
import pytest
from nltk.corpus.reader import WordListCorpusReader
from nltk.corpus.util import LazyCorpusLoader
from reliability_support import ROOT, assert_one_paragraph_error, finish, start_script

from rnnlab.checkpoint import CheckpointError
from rnnlab.data import preprocess
from rnnlab.data.synthetic import write_dataset
from rnnlab.errors import refuse_null_groups


def run_cli(
    script: str, *overrides: str, capsys, monkeypatch, cwd: Path, full_error: bool = False
) -> tuple[int, str]:
    """(exit status, stderr) of `python <script> <overrides>`, run in this process."""
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", [str(ROOT / script), *overrides])
    if full_error:
        monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    else:
        monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(str(ROOT / script), run_name="__main__")
    finally:  # Hydra configured logging for the job: put the test process's back
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:], root.level = handlers, level
    return exit_info.value.code, capsys.readouterr().err


def _last_paragraph(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    return stderr.strip().split("\n\n")[-1].strip().splitlines()[-1]


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    def call(script: str, *overrides: str) -> str:
        extra = () if script == "predict.py" else (f"hydra.run.dir={tmp_path / 'run'}",)
        code, stderr = run_cli(
            script, *overrides, *extra, capsys=capsys, monkeypatch=monkeypatch, cwd=tmp_path
        )
        assert code == 1, stderr
        return stderr

    return call


def test_train_missing_data_path(cli, tmp_path: Path) -> None:
    message = _last_paragraph(cli("train.py", f"data.path={tmp_path / 'nope.tar.gz'}"))
    assert message.startswith("Error: Data path") and "Point data.path" in message
    # the run's log file keeps the message too
    assert "does not exist" in (tmp_path / "run" / "train.log").read_text()


@pytest.mark.parametrize("script", ["train.py", "eval.py", "predict.py"])
@pytest.mark.parametrize("override", ["logger=null", "+logger=NULL"])
def test_a_config_group_set_to_null_says_how_to_drop_it(cli, script: str, override: str) -> None:
    """Hydra itself fails on `logger=null` while composing; the scripts catch it first."""
    message = _last_paragraph(cli(script, override))
    assert message.startswith(f"Invalid configuration: {override} cannot set the config group")
    assert "write ~logger instead" in message and "one of: tensorboard" in message


@pytest.mark.parametrize("override", ["logger=tensorboard,null", "logger= Null ,tensorboard"])
def test_a_sweep_over_a_null_config_group_is_refused_too(override: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        refuse_null_groups(["-m", override], ROOT / "conf")
    assert exit_info.value.code == 1
    message = capsys.readouterr().err
    assert message.startswith(f"Invalid configuration: {override} cannot set the config group")
    assert "write ~logger instead" in message


def test_a_null_value_outside_config_groups_passes() -> None:
    refuse_null_groups(["-m", "model.scheduler=null", "ckpt_path=null,foo"], ROOT / "conf")


def test_train_invalid_values_before_reading_data(cli, tmp_path: Path) -> None:
    stderr = cli("train.py", f"data.path={tmp_path / 'nope'}", "model.hidden_size=0")
    message = _last_paragraph(stderr)
    assert message.startswith("Invalid configuration: model.hidden_size=0 must be")
    assert "Data path" not in stderr  # refused before any data was looked at


def test_train_unknown_model_lists_the_choices(cli) -> None:
    stderr = cli("train.py", "model=transformer")
    assert "Traceback" not in stderr
    assert "Could not find 'model/transformer'" in stderr and "Available options" in stderr
    assert all(f"\t{name}\n" in stderr for name in ("rnn", "lstm", "bilstm", "gru"))


def test_train_unmapped_labels_suggest_the_override(cli, tmp_path: Path) -> None:
    csv = tmp_path / "reviews.csv"
    csv.write_text("review,sentiment\nGreat film,pos\nAwful film,neg\n")
    message = _last_paragraph(cli("train.py", f"data.path={csv}"))
    assert message.startswith(f"Error: {csv} data row 1")
    assert "'data.csv.labels={neg: 0, pos: 1}'" in message


def test_train_resume_from_a_file_that_is_not_a_checkpoint(cli, tmp_path: Path) -> None:
    fake = tmp_path / "last.ckpt"
    fake.write_text("not a checkpoint")
    data = write_dataset(tmp_path / "data", 40, "csv")
    message = _last_paragraph(cli("train.py", f"data.path={data}", f"ckpt_path={fake}"))
    assert message.startswith(f"Error: {fake} is not an rnnlab checkpoint")


def test_train_missing_stopword_corpus(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(preprocess, "_STOPWORDS", None)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "no_nltk_data")])
    monkeypatch.setattr(
        nltk.corpus,
        "stopwords",
        LazyCorpusLoader("stopwords", WordListCorpusReader, r"(?!README|\.).*", encoding="utf8"),
    )
    data = write_dataset(tmp_path / "data", 40, "csv")
    message = _last_paragraph(cli("train.py", f"data.path={data}"))
    assert message.startswith("Error: NLTK's English stopword corpus was not found")
    assert "preprocess.remove_stopwords=false" in message


def test_eval_missing_checkpoint(cli, tmp_path: Path) -> None:
    message = _last_paragraph(cli("eval.py", f"ckpt_path={tmp_path / 'none.ckpt'}"))
    assert message.startswith("Error: Checkpoint") and "does not exist" in message


def test_eval_without_ckpt_path(cli) -> None:
    message = _last_paragraph(cli("eval.py"))
    assert message.startswith("Invalid configuration: Missing mandatory value: ckpt_path")


def test_predict_with_a_file_that_is_not_a_checkpoint(cli, tmp_path: Path) -> None:
    fake = tmp_path / "model.ckpt"
    fake.write_bytes(b"\x00" * 100)
    message = _last_paragraph(cli("predict.py", f"ckpt_path={fake}", "text=Great film"))
    assert message.startswith(f"Error: {fake} is not an rnnlab checkpoint")


def test_full_traceback_on_request(capsys, monkeypatch, tmp_path: Path) -> None:
    """HYDRA_FULL_ERROR=1, Hydra's own switch, brings the traceback back for debugging."""
    with pytest.raises(CheckpointError):
        run_cli(
            "eval.py",
            f"ckpt_path={tmp_path / 'none.ckpt'}",
            capsys=capsys,
            monkeypatch=monkeypatch,
            cwd=tmp_path,
            full_error=True,
        )


def test_real_processes_exit_1_with_one_paragraph_on_stderr(tmp_path: Path) -> None:
    """The same, as separate processes (started together: they mostly spend their time
    importing)."""
    fake = tmp_path / "model.ckpt"
    fake.write_text("{}")
    train = start_script("train.py", f"data.path={tmp_path / 'x.csv'}", cwd=tmp_path)
    predict = start_script("predict.py", f"ckpt_path={fake}", "text=Great film", cwd=tmp_path)
    assert_one_paragraph_error(finish(train), "Error: Data path", "does not exist", "data.path")
    assert_one_paragraph_error(
        finish(predict), f"Error: {fake} is not an rnnlab checkpoint", ".ckpt"
    )
