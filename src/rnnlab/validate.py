"""Check a composed training config before any data is read.

A typo such as `model.hidden_size=0` or `model.dropout=1.5` would otherwise surface minutes
later, after reading and tokenizing 50,000 reviews, as an error from deep inside PyTorch. Every
rule names the key, the value given and the values allowed. The model's keys are checked by the
rules its family declares (`config_rules()` on the net class named by `model._target_`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from rnnlab import rules
from rnnlab.errors import ConfigError
from rnnlab.renames import RENAMED_CALLBACK_SETS
from rnnlab.rules import Rule

_ABSENT = object()


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


def model_rules(model_cfg: Any, prefix: str = "model") -> dict[str, Rule]:
    """The model family's own checks, as `<prefix>.<key>` rules: the `config_rules()` of the class
    named by `model._target_` (a net, or a linear baseline). An unknown `_target_` has none here;
    building the model reports it."""
    if not OmegaConf.is_config(model_cfg):
        return {}
    target = OmegaConf.select(model_cfg, "_target_", default=None, throw_on_missing=False)
    if not isinstance(target, str):  # unset: _model_problems says so
        return {}
    try:
        family = hydra.utils.get_class(target)
    except (ImportError, ValueError):
        return {}
    declared = getattr(family, "config_rules", None)
    return {f"{prefix}.{key}": rule for key, rule in (declared() if declared else {}).items()}


def rules_for(cfg: DictConfig) -> dict[str, Rule]:
    """Key -> (check, what is allowed). Keys absent from a config are not checked."""
    from rnnlab.data.datamodule import SPLITS
    from rnnlab.data.sources import EMPTY_REVIEWS

    return {
        **model_rules(cfg.get("model")),
        "model.optimizer.lr": rules.positive(),
        "model.adversarial_epsilon": rules.positive(nullable=True),
        "model.optimizer.weight_decay": rules.non_negative(),
        "data.batch_size": rules.integer(1),
        "data.eval_batch_size": rules.integer(1, nullable=True),
        "data.max_reviews": rules.integer(2, nullable=True),
        "data.train_reviews": rules.integer(2, nullable=True),
        "data.min_epoch_reviews": rules.integer(1, nullable=True),
        "data.num_workers": rules.integer(0),
        "data.empty_reviews": rules.choice(EMPTY_REVIEWS),
        "data.csv.labels": _label_map(),
        "data.preprocess.mode": rules.choice(("words", "seed_tip")),
        "data.preprocess.max_len": rules.integer(1, nullable=True),
        "data.split.name": rules.choice(SPLITS),
        "data.split.test_size": rules.fraction(low_open=True, high_open=True),
        "data.split.val_fraction": rules.fraction(low_open=True, high_open=True),
        "data.vocab.min_freq": rules.integer(1),
        "data.vocab.max_size": rules.integer(3, nullable=True),
        "data.vocab.fit_on": rules.choice(("train", "all")),
        "data.vocab.order": rules.choice(("frequency", "first_seen")),
    }


def problems(cfg: DictConfig, checks: dict[str, Rule] | None = None) -> list[str]:
    """Every rule the config breaks (of `checks`, by default the training config's), as
    `key=value: must be ...` lines."""
    found = []
    for key, (ok, allowed) in (rules_for(cfg) if checks is None else checks).items():
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


def _model_problems(cfg: DictConfig) -> list[str]:
    model = cfg.get("model")
    if model is None or not OmegaConf.is_missing(model, "_target_"):
        return []
    return [
        "model._target_ is unset: model=base (conf/model/base.yaml) is what every model config "
        "shares, not a model; pick one, e.g. model=bilstm or model=cnn"
    ]


def _net_key_problems(cfg: DictConfig) -> list[str]:
    """Keys of the model config that its net class does not take (a recurrent key such as
    hidden_size on model=cnn), which would otherwise fail deep inside instantiation."""
    import inspect

    from rnnlab.models.net import TextClassifier
    from rnnlab.module import MODULE_KEYS

    model = cfg.get("model")
    target = OmegaConf.select(cfg, "model._target_", default=None, throw_on_missing=False)
    if not OmegaConf.is_dict(model) or not isinstance(target, str):
        return []
    try:
        family = hydra.utils.get_class(target)
    except (ImportError, ValueError):
        return []
    if not (isinstance(family, type) and issubclass(family, TextClassifier)):
        return []
    taken = set(inspect.signature(family.__init__).parameters) - {"self", "vocab_size"}
    unknown = sorted(set(model) - taken - {"_target_", "_partial_", *MODULE_KEYS})
    if not unknown:
        return []
    return [
        f"model.{', model.'.join(unknown)} {'is not a setting' if len(unknown) == 1 else 'are not settings'}"
        f" of model={model.get('name')} ({target}), which takes {', '.join(sorted(taken))}: "
        "remove it, or use a recipe or experiment made for this family (recipe=tuned and "
        "recipe=tutorial suit the recurrent models; experiment=cnn_tuned is the CNN's)"
    ]


def _callback_problems(cfg: DictConfig) -> list[str]:
    """A callback set by keys but never selected, and an earlier set name used alone."""
    callbacks = cfg.get("callbacks") or {}
    found = [
        f"callbacks.{name} sets {', '.join(map(str, node))} but no callback: add {name} to the "
        f"list of callbacks, e.g. callbacks=[default,{name}] (conf/callbacks/{name}.yaml)"
        for name, node in callbacks.items()
        if OmegaConf.is_dict(node) and "_target_" not in node
    ]
    selected = [
        n for n, node in callbacks.items() if OmegaConf.is_dict(node) and "_target_" in node
    ]
    if len(selected) == 1 and selected[0] in RENAMED_CALLBACK_SETS:
        name = selected[0]
        found.append(
            f"callbacks={name} now selects that one callback alone, without checkpoints or "
            f"metrics.json; the set it selected before is callbacks={RENAMED_CALLBACK_SETS[name]}"
            f" (callbacks=[default,{name}] adds it to the default callbacks)"
        )
    return found


def validate_train_config(cfg: DictConfig) -> None:
    """Raise ConfigError listing every invalid value, before anything is read or built."""
    found = _model_problems(cfg) + problems(cfg) + _resume_problems(cfg) + _callback_problems(cfg)
    found += _net_key_problems(cfg)
    if found:
        raise ConfigError(
            "; ".join(found)
            + ". Fix the value(s) on the command line (e.g. model.hidden_size=128) or in conf/."
        )


def pretrain_rules(cfg: DictConfig) -> dict[str, Rule]:
    """Key -> rule for conf/pretrain.yaml: the language model's own keys (its family's
    config_rules under `lm.`), and the corpus's."""
    from rnnlab.data.datamodule import SPLITS
    from rnnlab.data.lm_data import DIRECTIONS

    return {
        **model_rules(cfg.get("lm"), prefix="lm"),
        "lm.optimizer.lr": rules.positive(),
        "lm.direction": rules.choice(DIRECTIONS),
        "lm.batch_size": rules.integer(1),
        "lm.bptt": rules.integer(2),
        "lm.segments": rules.integer(1),
        "lm.epochs": rules.integer(1),
        "data.max_reviews": rules.integer(2, nullable=True),
        "data.max_unlabeled": rules.integer(0, nullable=True),
        "data.val_reviews": rules.integer(1),
        "data.preprocess.mode": rules.choice(("words", "seed_tip")),
        "data.preprocess.max_len": rules.integer(1, nullable=True),
        "data.split.name": rules.choice(SPLITS),
        "data.split.val_fraction": rules.fraction(low_open=True, high_open=True),
        "data.vocab.min_freq": rules.integer(1),
        "data.vocab.max_size": rules.integer(4, nullable=True),
    }


def validate_pretrain_config(cfg: DictConfig) -> None:
    """Raise ConfigError listing every invalid value of a pretraining config."""
    found = problems(cfg, pretrain_rules(cfg)) + _resume_problems(cfg)
    if found:
        raise ConfigError(
            "; ".join(found) + ". Fix the value(s) on the command line (e.g. lm.hidden_size=512)"
            " or in conf/."
        )
