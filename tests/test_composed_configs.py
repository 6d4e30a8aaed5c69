"""Experiments compose a model and a recipe, and callbacks compose as a list, with the values
they had before: tests/composed_configs.json holds the resolved train configs composed on main
before that change (the same overrides, every path under /ROOT), keyed by the old overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
BEFORE = json.loads((ROOT / "tests" / "composed_configs.json").read_text())
PATHS = ["paths.root_dir=/ROOT", "paths.output_dir=/ROOT/run"]
# callbacks=<name> used to name a set that included the defaults; now each name is one callback
NEW_SPELLING = {
    "callbacks=early_stopping": "callbacks=[default,early_stopping]",
    "callbacks=ema": "callbacks=[default,early_stopping,ema]",
    "callbacks=gradient_flow": "callbacks=[default,gradient_flow]",
}
# keys removed on purpose: task_name was never read
REMOVED = ("task_name",)
# the model each experiment trains, as Hydra records the choice (None: the sweep picks it)
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


def compose_train(overrides: list[str], hydra: bool = False):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[*overrides, *PATHS], return_hydra_config=hydra)


def resolved(overrides: list[str]) -> dict:
    config = OmegaConf.to_container(compose_train(overrides), resolve=True)
    config["data"].pop("path")  # ${oc.env:RNNLAB_DATA,null}: the environment's, not the config's
    return config


@pytest.mark.parametrize("old", sorted(BEFORE), ids=lambda key: key or "defaults")
def test_every_experiment_and_callback_set_composes_the_values_it_had(old):
    new = [NEW_SPELLING.get(override, override) for override in old.split()]
    expected = dict(BEFORE[old])
    expected["data"] = {k: v for k, v in expected["data"].items() if k != "path"}
    for key in REMOVED:
        expected.pop(key)
    assert resolved(new) == expected


def test_the_fixture_covers_every_experiment():
    experiments = {p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")}
    composed = {k.removeprefix("experiment=") for k in BEFORE if k.startswith("experiment=")}
    assert experiments == {k for k in composed if " " not in k} == set(EXPERIMENT_MODELS)


@pytest.mark.parametrize("experiment", sorted(EXPERIMENT_MODELS))
def test_an_experiment_records_the_model_it_trains(experiment):
    """Hydra's record of the run (hydra.runtime.choices, the run directory named after
    model.name, metrics.json's model) names the real model, not the one a recipe started from."""
    cfg = compose_train([f"experiment={experiment}"], hydra=True)
    model = EXPERIMENT_MODELS[experiment]
    assert cfg.hydra.runtime.choices.model == model
    assert cfg.model.name == model
    if experiment.endswith("_tuned") or experiment.endswith("_tuned_official"):
        recipe = "tuned_official" if experiment.endswith("official") else "tuned"
        assert cfg.hydra.runtime.choices.recipe == recipe


def test_a_recipe_trains_any_recurrent_model():
    """model=gru recipe=tuned is experiment=gru_tuned."""
    by_hand = OmegaConf.to_container(compose_train(["model=gru", "recipe=tuned"]), resolve=True)
    assert by_hand == OmegaConf.to_container(compose_train(["experiment=gru_tuned"]), resolve=True)


def test_ema_composes_without_early_stopping():
    callbacks = compose_train(["callbacks=[default,ema]"]).callbacks
    assert "ema" in callbacks and "early_stopping" not in callbacks
    assert {"model_checkpoint", "last_checkpoint", "metrics_json"} <= set(callbacks)
