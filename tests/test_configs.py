"""Every config in conf/ composes, and the sweep-related ones say what they promise."""

from __future__ import annotations

import os

import pytest
from compose import CONF, compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from hydra.utils import get_class, get_object, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

# config groups of train.yaml and the key each option must set
GROUPS = {
    "data": "data._target_",
    "preprocess": "data.preprocess.mode",
    "split": "data.split.name",
    "model": "model._target_",
    "callbacks": "callbacks",
    "logger": "logger",
    "trainer": "trainer._target_",
    "paths": "paths.log_dir",
    "recipe": "trainer.max_epochs",
    "experiment": "seed",
    "hparams_search": "optimized_metric",
    "lm": "lm._target_",
}
# options of pretrain.py's config (conf/pretrain.yaml), composed there
PRETRAIN_ONLY = {("data", "imdb_lm"), ("callbacks", "lm_checkpoint")}
# launchers: rnnlab's own and the plugins' that the docs name
LAUNCHERS = ["basic", "joblib", "submitit_local", "submitit_slurm"] + [
    p.stem for p in (CONF / "hydra" / "launcher").glob("*.yaml")
]


def options(group: str) -> list[str]:
    """The choices of a group; model/base.yaml is the part every model shares, not a model."""
    found = (CONF / group).glob("*.yaml")
    return sorted(p.stem for p in found if (group, p.stem) != ("model", "base"))


def task_config(cfg: DictConfig) -> dict:
    """The job's config, every interpolation resolved (what train.py's task function sees)."""
    task = OmegaConf.to_container(cfg, resolve=False)
    task.pop("hydra", None)
    return OmegaConf.to_container(OmegaConf.create(task), resolve=True)


def targets(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["_target_"]] if "_target_" in node else []
        return found + [t for value in node.values() for t in targets(value)]
    if isinstance(node, list):
        return [t for value in node for t in targets(value)]
    return []


@pytest.mark.parametrize(
    "group,option", [(g, o) for g in GROUPS for o in options(g)], ids=lambda v: str(v)
)
def test_every_group_option_composes_resolves_and_names_importable_targets(group, option, tmp_path):
    entry = "pretrain" if (group, option) in PRETRAIN_ONLY else "train"
    cfg = compose(entry, [f"{group}={option}"], tmp_path)
    resolved = task_config(cfg)
    assert OmegaConf.select(cfg, GROUPS[group]) is not None
    for target in targets(resolved):
        assert callable(get_object(target)), target


def test_model_yamls_hold_only_what_differs_from_their_base(tmp_path):
    """base.yaml holds what every net shares and leaves the net unset; each family's YAML
    starts from base (or another family) and sets no key to the value it already has."""
    base = OmegaConf.load(CONF / "model" / "base.yaml")
    assert OmegaConf.is_missing(base, "_target_")
    for option in options("model"):
        own = OmegaConf.to_container(OmegaConf.load(CONF / "model" / f"{option}.yaml"))
        if option in ("tfidf_logreg", "nbsvm"):  # fitted without the LightningModule: not nets
            continue
        parent = [d for d in own.pop("defaults") if d != "_self_"]
        inherited = (
            base if parent == ["base"] else compose("train", [f"model={parent[0]}"], tmp_path)
        )
        inherited = OmegaConf.to_container(inherited.get("model", inherited))
        repeated = {k for k, v in own.items() if k in inherited and inherited[k] == v}
        assert not repeated, f"model/{option}.yaml repeats {sorted(repeated)} of {parent[0]}"
        composed = compose("train", [f"model={option}"], tmp_path).model
        assert set(base) <= set(composed) and composed._target_ != "???", option
        assert composed.name == option


@pytest.mark.parametrize("name", sorted(p.stem for p in CONF.glob("*.yaml") if p.stem != "train"))
def test_other_entry_configs_compose(name):
    """eval.yaml, predict.yaml and the other scripts' configs (mandatory values left unset)."""
    cfg = compose(name, hydra=True)
    assert isinstance(cfg, DictConfig) and "hydra" in cfg


@pytest.mark.parametrize("launcher", sorted(set(LAUNCHERS)))
def test_every_launcher_composes(launcher, tmp_path):
    cfg = compose("train", [f"hydra/launcher={launcher}"], tmp_path, hydra=True)
    assert get_class(cfg.hydra.launcher._target_)


def test_rnn_vs_lstm_is_the_tips_comparison_as_one_sweep(tmp_path):
    cfg = compose("train", ["experiment=rnn_vs_lstm"], tmp_path, hydra=True)
    assert cfg.hydra.mode == RunMode.MULTIRUN  # no -m needed
    assert cfg.hydra.sweeper.params.model.split(",") == ["rnn", "lstm", "bilstm", "gru"]
    for model, (cell, bidirectional) in {
        "rnn": ("rnn", False),
        "lstm": ("lstm", False),
        "bilstm": ("lstm", True),
        "gru": ("gru", False),
    }.items():
        job = compose("train", ["experiment=rnn_vs_lstm", f"model={model}"], tmp_path)
        m, d = job.model, job.data
        assert (m.name, m.cell, m.bidirectional) == (model, cell, bidirectional)
        assert (m.embed_dim, m.hidden_size, m.num_layers, m.pooling) == (128, 128, 1, "final")
        assert (m.dropout, m.optimizer._target_, m.optimizer.lr) == (0.0, "torch.optim.AdamW", 1e-3)
        assert (d.batch_size, d.vocab.min_freq, d.vocab.max_size) == (64, 2, 30000)
        assert (job.trainer.max_epochs, d.split.name, d.preprocess.mode) == (
            15,
            "tutorial",
            "words",
        )


def test_tutorial_is_the_tutorial_exactly(tmp_path):
    cfg = compose("train", ["experiment=tutorial"], tmp_path)
    d, m = cfg.data, cfg.model
    assert d.preprocess.mode == "seed_tip" and d.bucket is False
    assert (d.vocab.fit_on, d.vocab.order, d.vocab.min_freq, d.vocab.max_size) == (
        "all",
        "first_seen",
        2,
        30000,
    )
    assert (d.split.name, d.split.test_size, d.split.random_state) == ("tutorial", 0.2, 42)
    assert (m.name, m.embed_dim, m.hidden_size, m.pooling, m.dropout) == (
        "bilstm",
        128,
        128,
        "final",
        0.0,
    )
    assert (m.optimizer.lr, m.optimizer.weight_decay, d.batch_size) == (1e-3, 0.01, 64)
    assert cfg.trainer.max_epochs == 15 and cfg.trainer.gradient_clip_val is None


def test_bilstm_tuned_builds_its_schedule_and_early_stopping(tmp_path):
    import torch
    from lightning.pytorch.callbacks import EarlyStopping

    cfg = compose("train", ["experiment=bilstm_tuned", "split=official"], tmp_path)
    assert cfg.data.split.name == "official"  # composes with the other choices
    assert cfg.model.pooling == "final+max" and cfg.model.dropout > 0
    assert cfg.trainer.gradient_clip_val > 0 and cfg.data.preprocess.max_len
    stopper = instantiate(cfg.callbacks.early_stopping)
    assert isinstance(stopper, EarlyStopping) and stopper.monitor == "val/acc"
    optimizer = instantiate(cfg.model.optimizer)(params=[torch.nn.Parameter(torch.zeros(1))])
    scheduler = instantiate(cfg.model.scheduler)(optimizer=optimizer)
    assert scheduler.T_max == cfg.trainer.max_epochs


def test_bilstm_tuned_official_is_the_seed_recipe_wider_with_word_dropout_and_longer_schedule(
    tmp_path,
):
    import torch

    seed = compose("train", ["experiment=bilstm_tuned"], tmp_path)
    official = compose("train", ["experiment=bilstm_tuned_official"], tmp_path)
    # recipe=tuned takes the run's split (the default, holdout); tuned_official sets its own
    assert (seed.data.split.name, official.data.split.name) == ("holdout", "official")
    assert official.data.split.val_fraction == 0.04
    assert seed.model.word_dropout == 0 and official.model.word_dropout == 0.25
    assert (seed.model.hidden_size, official.model.hidden_size) == (128, 192)
    assert (seed.trainer.max_epochs, official.trainer.max_epochs) == (5, 9)
    optimizer = instantiate(official.model.optimizer)(params=[torch.nn.Parameter(torch.zeros(1))])
    assert instantiate(official.model.scheduler)(optimizer=optimizer).T_max == 9
    patience = "callbacks.early_stopping.patience"
    assert (OmegaConf.select(seed, patience), OmegaConf.select(official, patience)) == (2, 3)
    for key in ("data.preprocess", "data.vocab", "model.optimizer", "callbacks.model_checkpoint"):
        assert OmegaConf.select(official, key) == OmegaConf.select(seed, key)
    seed_model, official_model = (OmegaConf.to_container(c.model) for c in (seed, official))
    official_model |= {"word_dropout": 0, "hidden_size": 128}
    assert official_model == seed_model


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
def test_tuned_family_experiments_share_the_bilstm_recipe(tmp_path, family):
    bilstm = compose("train", ["experiment=bilstm_tuned"], tmp_path)
    cfg = compose("train", [f"experiment={family}_tuned"], tmp_path)
    assert (cfg.model.cell, cfg.model.name, cfg.model.bidirectional) == (family, family, False)
    for key in ("trainer", "callbacks.early_stopping", "model.optimizer"):
        assert OmegaConf.select(cfg, key) == OmegaConf.select(bilstm, key)
    assert cfg.model.pooling == bilstm.model.pooling == "final+max"
    preprocess = OmegaConf.to_container(cfg.data.preprocess)
    if family == "rnn":  # letter runs cut at 500: the tanh RNN's better tokens (docs/results.md)
        assert (preprocess["letters_only"], preprocess["max_len"]) == (True, 500)
        preprocess |= {"letters_only": False, "max_len": 600}
    assert preprocess == OmegaConf.to_container(bilstm.data.preprocess)


def test_optuna_search_space_names_real_keys(tmp_path):
    cfg = compose("train", ["hparams_search=optuna"], tmp_path, hydra=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and cfg.hydra.mode == RunMode.MULTIRUN
    assert sweeper.direction == "maximize" and cfg.optimized_metric == "val/acc_best"
    assert sweeper.storage is None  # in memory unless asked
    assert sweeper.max_failure_rate == 1.0  # failed trials never end the study
    parser = OverridesParser.create()
    expected = {"model.optimizer.lr", "model.hidden_size", "model.embed_dim"}
    expected |= {"model.num_layers", "model.dropout", "data.batch_size"}
    assert set(sweeper.params) == expected
    for key, space in sweeper.params.items():
        assert OmegaConf.select(cfg, key) is not None, key  # a typo would fail every trial
        assert parser.parse_override(f"{key}={space}").is_sweep_override()


def test_slurm_launcher_turns_into_a_valid_sbatch_script(tmp_path, monkeypatch):
    """hydra/launcher=slurm: the settings reach sbatch the way the submitit launcher passes them."""
    import submitit

    fake_bin = tmp_path / "bin"  # submitit looks for srun before it writes a script
    fake_bin.mkdir()
    (fake_bin / "srun").write_text("#!/bin/sh\n")
    (fake_bin / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{os.environ['PATH']}")
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    cfg = compose(
        "train",
        ["hydra/launcher=slurm", "trainer=ddp", "hydra.launcher.partition=gpu"],
        tmp_path,
        True,
    )
    launcher = cfg.hydra.launcher
    with open_dict(cfg):
        cfg.hydra.job.name = "train"
        launcher.submitit_folder = str(tmp_path / "submitit")
    params = OmegaConf.to_container(launcher, resolve=True)
    params.pop("_target_")
    executor = submitit.AutoExecutor(
        cluster="slurm", folder=params.pop("submitit_folder"), slurm_max_num_timeout=0
    )
    params.pop("max_num_timeout")
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python train.py", "uid")
    for line in [
        "#SBATCH --partition=gpu",
        "#SBATCH --time=120",
        "#SBATCH --mem=32GB",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --ntasks-per-node=2",
        "#SBATCH --cpus-per-task=4",
    ]:
        assert line in script, script


def test_sweep_job_directories_are_named_by_rnnlab(tmp_path):
    hydra = OmegaConf.to_container(compose("train", [], tmp_path, hydra=True).hydra)
    assert hydra["sweep"]["subdir"].startswith("${rnnlab.job_dirname:")
    assert hydra["sweep"]["dir"].startswith("${rnnlab.unique_dir:")
    assert hydra["run"]["dir"].startswith("${rnnlab.unique_dir:")
    assert [c["_target_"] for c in hydra["callbacks"].values()] == [
        "rnnlab.sweeps.SweepSetup",
        "rnnlab.renames.RenamedOptionsNotice",
    ]
