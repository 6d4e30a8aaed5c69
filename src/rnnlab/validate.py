"""Check a composed training config before any data is read.

A typo such as `model.hidden_size=0` or `model.dropout=1.5` would otherwise surface minutes
later, after reading and tokenizing 50,000 reviews, as an error from deep inside PyTorch. Every
rule names the key, the value given and the values allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rnnlab.errors import ConfigError

_ABSENT = object()
Rule = tuple[Callable[[Any], bool], str]


def _integer(low: int, nullable: bool = False) -> Rule:
    def ok(v: Any) -> bool:
        return (nullable and v is None) or (
            isinstance(v, int) and not isinstance(v, bool) and v >= low
        )

    return ok, f"an integer >= {low}" + (" or null" if nullable else "")


def _fraction(low_open: bool, high_open: bool) -> Rule:
    def ok(v: Any) -> bool:
        if not isinstance(v, int | float) or isinstance(v, bool):
            return False
        above = v > 0 if low_open else v >= 0
        below = v < 1 if high_open else v <= 1
        return above and below

    return ok, f"a number in {'(' if low_open else '['}0, 1{')' if high_open else ']'}"


def _positive() -> Rule:
    def ok(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and v > 0

    return ok, "a number > 0"


def _non_negative() -> Rule:
    def ok(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and v >= 0

    return ok, "a number >= 0"


def _choice(values: Iterable[str], nullable: bool = False) -> Rule:
    allowed = sorted(values)
    return (lambda v: v in allowed or (nullable and v is None)), "one of " + ", ".join(
        allowed + (["null"] if nullable else [])
    )


def _boolean() -> Rule:
    return (lambda v: isinstance(v, bool)), "true or false"


def _pooling() -> Rule:
    from rnnlab.models.classifier import POOLINGS

    def ok(v: Any) -> bool:
        return isinstance(v, str) and bool(v) and set(v.split("+")) <= set(POOLINGS)

    return ok, f"one of {', '.join(POOLINGS)}, or several joined by '+' (e.g. final+max)"


def _label_map() -> Rule:
    from rnnlab.data.sources import DataError, check_label_map

    def ok(v: Any) -> bool:
        if v is None:  # the default mapping, {positive: 1, negative: 0}
            return True
        try:
            check_label_map(v)
        except DataError:
            return False
        return True

    return ok, (
        "a mapping of label values to 1 (positive) and 0 (negative), with both classes and no "
        "value mapped both ways (compared case-insensitively), e.g. {pos: 1, neg: 0}"
    )


def rules() -> dict[str, Rule]:
    """Key -> (check, what is allowed). Keys absent from a config are not checked."""
    from rnnlab.data.datamodule import SPLITS
    from rnnlab.data.sources import EMPTY_REVIEWS
    from rnnlab.models.lstm_scratch import SCRATCH_CELLS
    from rnnlab.models.recurrent import CELLS

    return {
        "model.cell": _choice([*CELLS, *SCRATCH_CELLS]),
        "model.bidirectional": _boolean(),
        "model.embed_dim": _integer(1),
        "model.hidden_size": _integer(1),
        "model.num_layers": _integer(1),
        "model.dropout": _fraction(low_open=False, high_open=True),
        "model.embed_dropout": _fraction(low_open=False, high_open=True),
        "model.word_dropout": _fraction(low_open=False, high_open=True),
        "model.weight_drop": _fraction(low_open=False, high_open=True),
        "model.pooling": _pooling(),
        "model.bigram_buckets": _integer(0),
        "model.optimizer.lr": _positive(),
        "model.optimizer.weight_decay": _non_negative(),
        # the linear baseline (model=tfidf_logreg)
        "model.ngram_max": _integer(1),
        "model.min_df": _integer(1),
        "model.sublinear_tf": _boolean(),
        "model.C": _positive(),
        "model.solver": _choice(
            ("lbfgs", "liblinear", "newton-cg", "newton-cholesky", "sag", "saga")
        ),
        "model.max_iter": _integer(1),
        "data.batch_size": _integer(1),
        "data.eval_batch_size": _integer(1, nullable=True),
        "data.max_reviews": _integer(2, nullable=True),
        "data.num_workers": _integer(0),
        "data.empty_reviews": _choice(EMPTY_REVIEWS),
        "data.csv.labels": _label_map(),
        "data.preprocess.mode": _choice(("words", "seed_tip")),
        "data.preprocess.max_len": _integer(1, nullable=True),
        "data.split.name": _choice(SPLITS),
        "data.split.test_size": _fraction(low_open=True, high_open=True),
        "data.split.val_fraction": _fraction(low_open=True, high_open=True),
        "data.vocab.min_freq": _integer(1),
        "data.vocab.max_size": _integer(3, nullable=True),
        "data.vocab.fit_on": _choice(("train", "all")),
        "data.vocab.order": _choice(("frequency", "first_seen")),
    }


def problems(cfg: DictConfig) -> list[str]:
    """Every rule the config breaks, as `key=value: must be ...` lines."""
    found = []
    for key, (ok, allowed) in rules().items():
        value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
        if value is _ABSENT:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not ok(value):
            found.append(f"{key}={value!r} must be {allowed}")
    return found


def _resume_problems(cfg: DictConfig) -> list[str]:
    path = OmegaConf.select(cfg, "ckpt_path", default=None)
    if path is None or Path(str(path)).expanduser().is_file():
        return []
    return [
        f"ckpt_path={path!r} must be an existing checkpoint file, e.g. "
        "<run dir>/checkpoints/last.ckpt (or null to start from scratch)"
    ]


def validate_train_config(cfg: DictConfig) -> None:
    """Raise ConfigError listing every invalid value, before anything is read or built."""
    found = problems(cfg) + _resume_problems(cfg)
    if found:
        raise ConfigError(
            "; ".join(found)
            + ". Fix the value(s) on the command line (e.g. model.hidden_size=128) or in conf/."
        )
