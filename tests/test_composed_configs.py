"""Experiments compose a model and a recipe, and callbacks compose as a list, with the values
they had before: tests/composed_configs.json holds the resolved train configs composed before
that change (compose.py's paths under /ROOT), keyed by the overrides of then."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compose import CONF, compose
from omegaconf import OmegaConf

BEFORE = json.loads(Path(__file__).with_name("composed_configs.json").read_text())
# callbacks=<name> used to name a set that included the defaults; now each name is one callback
NEW_SPELLING = {
    "callbacks=early_stopping": "callbacks=[default,early_stopping]",
    "callbacks=ema": "callbacks=[default,early_stopping,ema]",
    "callbacks=gradient_flow": "callbacks=[default,gradient_flow]",
}
# keys removed on purpose: task_name was never read
REMOVED = ("task_name",)
# the model each experiment trains, as Hydra records the choice (rnn_vs_lstm: its jobs pick one)
EXPERIMENT_MODELS = {
    "bilstm_tuned": "bilstm",
    "bilstm_tuned_official": "bilstm",
    "gru_tuned": "gru",
    "lstm_tuned": "lstm",
    "rnn_tuned": "rnn",
    "tutorial": "bilstm",
    "seed_tip": "bilstm",
    "rnn_vs_lstm": "bilstm",
    "tfidf_logreg": "tfidf_logreg",
    "nbsvm": "nbsvm",
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
    got = resolved(new)
    assert got == expected
    assert list(got["callbacks"]) == list(expected["callbacks"])  # Lightning runs them in order


def test_the_fixture_covers_every_experiment():
    experiments = {p.stem for p in (CONF / "experiment").glob("*.yaml")}
    composed = {k.removeprefix("experiment=") for k in BEFORE if k.startswith("experiment=")}
    assert experiments == {k for k in composed if " " not in k} == set(EXPERIMENT_MODELS)


@pytest.mark.parametrize("experiment", list(EXPERIMENT_MODELS))
def test_an_experiment_records_the_model_it_trains(experiment):
    """Hydra's record of the run (hydra.runtime.choices, the run directory named after
    model.name, metrics.json's model) names the real model, not the one a recipe started from."""
    cfg = compose("train", [f"experiment={experiment}"], hydra=True)
    model = EXPERIMENT_MODELS[experiment]
    assert cfg.hydra.runtime.choices.model == model
    assert cfg.model.name == model
    if "_tuned" in experiment:
        recipe = "tuned_official" if experiment.endswith("official") else "tuned"
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
