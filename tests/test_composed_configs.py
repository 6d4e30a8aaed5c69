"""Experiments compose a model and a recipe, and callbacks compose as a list, with the values
they had before: tests/composed_configs.json holds the resolved train configs composed before
that change (compose.py's paths under /ROOT), keyed by the overrides of then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compose import CONF, compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from rnnlab.hparams import tensorboard_hparams

BEFORE = json.loads(Path(__file__).with_name("composed_configs.json").read_text())
# callbacks=<name> used to name a set that included the defaults; now each name is one callback
NEW_SPELLING = {
    "callbacks=early_stopping": "callbacks=[default,early_stopping]",
    "callbacks=ema": "callbacks=[default,early_stopping,ema]",
    "callbacks=gradient_flow": "callbacks=[default,gradient_flow]",
}
# keys removed on purpose: task_name was never read
REMOVED = ("task_name",)
# keys added since, with the values that keep every run as it was: fine-tuning from a pretrained
# language model, few-label training (and its epoch length), reading reviews backward,
# discriminative learning rates, adversarial training
ADDED = {"pretrained": None}
ADDED_DATA = {"train_reviews": None, "min_epoch_reviews": None}
ADDED_NET = {
    "reverse": False,
    "discriminative_lr": None,
    "adversarial_epsilon": None,
}  # every net's (model/base.yaml)
# the default split changed from the tutorial's (validation = test) to holdout; configs that
# choose a split (on the command line, or recipe=tutorial) keep theirs
HOLDOUT = {"name": "holdout", "test_size": 0.2, "val_fraction": 0.1, "random_state": 42}


def chooses_split(old: str) -> bool:
    experiment = next((o.split("=", 1)[1] for o in old.split() if o.startswith("experiment=")), "")
    return "split=" in old or EXPERIMENTS.get(experiment, (None, None))[1] == "tutorial"


# the model and recipe of each experiment, as Hydra records the choices (rnn_vs_lstm's jobs each
# pick a model; the linear baselines have no recipe)
EXPERIMENTS = {
    "bilstm_tuned": ("bilstm", "tuned"),
    "bilstm_tuned_official": ("bilstm", "tuned_official"),
    "gru_tuned": ("gru", "tuned"),
    "lstm_tuned": ("lstm", "tuned"),
    "rnn_tuned": ("rnn", "tuned"),
    "tutorial": ("bilstm", "tutorial"),
    "seed_tip": ("bilstm", "tutorial"),
    "rnn_vs_lstm": ("bilstm", "tutorial"),
    "tfidf_logreg": ("tfidf_logreg", None),
    "nbsvm": ("nbsvm", None),
}
# experiments added since the fixture was written (no earlier values to keep)
NEW_EXPERIMENTS = {
    "cnn_tuned": ("cnn", None),
    "ulmfit": ("lstm", None),
    "ulmfit_scratch": ("lstm", None),
    "ulmfit_gpu": ("lstm", None),
}


def resolved(overrides: list[str]) -> dict:
    config = OmegaConf.to_container(compose("train", overrides, Path("/ROOT")), resolve=True)
    config["data"].pop("path")  # ${oc.env:RNNLAB_DATA,null}: the environment's, not the config's
    return config


@pytest.mark.parametrize("old", list(BEFORE), ids=lambda key: key or "defaults")
def test_every_experiment_and_callback_set_composes_the_values_it_had(old):
    new = [NEW_SPELLING.get(override, override) for override in old.split()]
    expected = dict(BEFORE[old])
    expected["data"] = {k: v for k, v in expected["data"].items() if k != "path"}
    for key in REMOVED:
        expected.pop(key)
    expected |= ADDED
    expected["data"] |= ADDED_DATA
    if "embed_dim" in expected["model"]:  # a net, not a linear baseline
        expected["model"] |= ADDED_NET
    if expected["data"]["split"]["name"] == "tutorial" and not chooses_split(old):
        expected["data"]["split"] = HOLDOUT
    got = resolved(new)
    assert got == expected
    assert list(got["callbacks"]) == list(expected["callbacks"])  # Lightning runs them in order


def test_the_fixture_covers_every_experiment():
    experiments = {p.stem for p in (CONF / "experiment").glob("*.yaml")}
    composed = {k.removeprefix("experiment=") for k in BEFORE if k.startswith("experiment=")}
    assert experiments - set(NEW_EXPERIMENTS) == {k for k in composed if " " not in k}
    assert experiments - set(NEW_EXPERIMENTS) == set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", list(EXPERIMENTS | NEW_EXPERIMENTS))
def test_an_experiment_records_the_model_it_trains(experiment):
    """Hydra's record of the run (hydra.runtime.choices, the run directory named after
    model.name, metrics.json's model) names the real model, not the one a recipe started from."""
    cfg = compose("train", [f"experiment={experiment}"], hydra=True)
    model, recipe = (EXPERIMENTS | NEW_EXPERIMENTS)[experiment]
    assert (cfg.hydra.runtime.choices.model, cfg.model.name) == (model, model)
    assert cfg.hydra.runtime.choices.recipe == recipe


def test_a_recipe_trains_any_recurrent_model():
    """model=gru recipe=tuned is experiment=gru_tuned."""
    assert resolved(["model=gru", "recipe=tuned"]) == resolved(["experiment=gru_tuned"])


def test_ema_composes_without_early_stopping_and_adds_to_an_experiments_callbacks():
    callbacks = compose("train", ["callbacks=[default,ema]"]).callbacks
    assert "ema" in callbacks and "early_stopping" not in callbacks
    assert {"model_checkpoint", "last_checkpoint", "metrics_json"} <= set(callbacks)
    added = compose("train", ["experiment=bilstm_tuned", "+callbacks@callbacks=ema"]).callbacks
    assert list(added)[-2:] == ["early_stopping", "ema"] and added.early_stopping.patience == 2


def test_an_appended_callback_reaches_tensorboards_hparams_by_its_group():
    """+callbacks@callbacks=ema is logged as callbacks=ema, not as a key that is not in the
    config (callbacks@callbacks=None)."""
    overrides = ["experiment=bilstm_tuned", "+callbacks@callbacks=ema"]
    cfg = compose("train", overrides, Path("/ROOT"), hydra=True)
    HydraConfig.instance().set_config(cfg)
    try:
        params = tensorboard_hparams(cfg, n_params=1)
    finally:
        HydraConfig.instance().cfg = None
    assert params["callbacks"] == "ema" and params["experiment"] == "bilstm_tuned"
    assert not any("@" in key for key in params)
