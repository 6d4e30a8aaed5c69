"""Invalid settings are refused before any data is read, naming the key and the allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest
from compose import CONF, compose
from hydra.errors import MissingConfigException

from rnnlab.errors import ConfigError
from rnnlab.train import build
from rnnlab.validate import problems

# override -> what the message must say (the key, the value given and what is allowed)
INVALID = {
    "model.hidden_size=0": "model.hidden_size=0 must be an integer >= 1",
    "model.hidden_size=abc": "model.hidden_size='abc' must be an integer >= 1",
    "model.embed_dim=0": "model.embed_dim=0 must be an integer >= 1",
    "model.num_layers=0": "model.num_layers=0 must be an integer >= 1",
    "model.dropout=1.5": "model.dropout=1.5 must be a number in [0, 1)",
    "model.dropout=-0.1": "model.dropout=-0.1 must be a number in [0, 1)",
    "model.embed_dropout=1.0": "model.embed_dropout=1.0 must be a number in [0, 1)",
    "model.word_dropout=1.0": "model.word_dropout=1.0 must be a number in [0, 1)",
    "model.weight_drop=1.0": "model.weight_drop=1.0 must be a number in [0, 1)",
    "model.bigram_buckets=-1": "model.bigram_buckets=-1 must be an integer >= 0",
    "model.optimizer.lr=-0.001": "model.optimizer.lr=-0.001 must be a number > 0",
    "model.optimizer.lr=0": "model.optimizer.lr=0 must be a number > 0",
    "model.optimizer.weight_decay=-1": "model.optimizer.weight_decay=-1 must be a number >= 0",
    "model.cell=transformer": "model.cell='transformer' must be one of gru, lstm, lstm_scratch, rnn",
    "model.pooling=avg": "model.pooling='avg' must be one of final, max, mean, or several",
    "model.bidirectional=maybe": "model.bidirectional='maybe' must be true or false",
    "data.preprocess.max_len=0": "data.preprocess.max_len=0 must be an integer >= 1 or null",
    "data.preprocess.mode=chars": "data.preprocess.mode='chars' must be one of seed_tip, words",
    "data.batch_size=0": "data.batch_size=0 must be an integer >= 1",
    "data.eval_batch_size=0": "data.eval_batch_size=0 must be an integer >= 1 or null",
    "data.max_reviews=0": "data.max_reviews=0 must be an integer >= 2 or null",
    "data.num_workers=-1": "data.num_workers=-1 must be an integer >= 0",
    "data.empty_reviews=drop": "data.empty_reviews='drop' must be one of error, skip",
    "++data.csv.labels={pos: 2}": "data.csv.labels={'pos': 2} must be a mapping of label values",
    "data.split.name=random": "data.split.name='random' must be one of holdout, official, tutorial",
    "data.split.test_size=1.5": "data.split.test_size=1.5 must be a number in (0, 1)",
    "data.vocab.min_freq=0": "data.vocab.min_freq=0 must be an integer >= 1",
    "data.vocab.max_size=2": "data.vocab.max_size=2 must be an integer >= 3 or null",
    "data.vocab.fit_on=test": "data.vocab.fit_on='test' must be one of all, train",
    "data.vocab.order=random": "data.vocab.order='random' must be one of first_seen, frequency",
    "ckpt_path=/nonexistent/last.ckpt": "ckpt_path='/nonexistent/last.ckpt' must be an existing",
    "+model.hiden_size=256": "model.hiden_size is not a setting of model=bilstm",
    "callbacks=ema": "callbacks=ema now selects that one callback alone, without checkpoints or "
    "metrics.json; the set it selected before is callbacks=[default,early_stopping,ema]",
    "+callbacks.early_stopping.patience=2": "callbacks.early_stopping sets patience but no "
    "callback: add early_stopping to the list of callbacks, e.g. callbacks=[default,early_stopping]",
}


@pytest.mark.parametrize("override", [pytest.param(k, id=k) for k in INVALID])
def test_invalid_value_is_refused_before_data_is_read(tmp_path: Path, override: str) -> None:
    # the data path does not exist: reading data first would raise DataError instead
    cfg = compose("train", [f"data.path={tmp_path / 'absent.tar.gz'}", override], tmp_path)
    with pytest.raises(ConfigError) as info:
        build(cfg)
    message = str(info.value)
    assert INVALID[override] in message, message
    assert "\n" not in message and "on the command line" in message


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    overrides = ["model.hidden_size=0", "model.dropout=1.5", "model.optimizer.lr=-1"]
    cfg = compose("train", overrides, tmp_path)
    assert [p.split(" ")[0] for p in problems(cfg)] == [
        "model.hidden_size=0",
        "model.dropout=1.5",
        "model.optimizer.lr=-1",
    ]


SHIPPED = [
    f"{group}={path.stem}"
    for group in ("model", "experiment", "recipe", "split", "preprocess")
    for path in sorted((CONF / group).glob("*.yaml"))
    if (group, path.stem) != ("model", "base")  # the part every model shares, not a model
]


@pytest.mark.parametrize("choice", SHIPPED)
def test_every_shipped_config_is_valid(tmp_path: Path, choice: str) -> None:
    """The rules refuse mistakes, never a configuration the project itself ships."""
    cfg = compose("train", [choice], tmp_path)
    assert problems(cfg) == []


def test_unknown_model_is_refused_by_hydra_with_the_choices() -> None:
    with pytest.raises(MissingConfigException) as info:
        compose("train", ["model=transformer"])
    message = str(info.value)
    assert "Could not find 'model/transformer'" in message
    assert all(name in message for name in ("rnn", "lstm", "bilstm", "gru"))
