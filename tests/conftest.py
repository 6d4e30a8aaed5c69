"""Shared fixtures: synthetic datasets, composed configs, and the real-data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from rnnlab.data.synthetic import write_dataset
from rnnlab.sweeps import register_resolvers

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SHARED_DATA = Path(os.environ.get("RNNLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("NLTK_DATA", str(ROOT.parent / "shared" / "nltk_data"))
# as the entry points do: the configs' run and sweep directories are named with these
register_resolvers()


@pytest.fixture
def real_file():
    """Path of a real IMDB file, or skip the test saying where it was looked for."""

    def find(name: str) -> Path:
        path = SHARED_DATA / name
        if not path.exists():
            pytest.skip(f"real IMDB file {path} is absent (set RNNLAB_SHARED_DATA to its folder)")
        return path

    return find


@pytest.fixture(scope="session")
def synthetic_archive(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("synthetic"), 1200, "archive")


def compose_train(overrides: list[str], output_dir: Path) -> DictConfig:
    """The train config as `python train.py <overrides>` would see it, writing under output_dir."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=False)
    with open_dict(cfg):
        cfg.paths.root_dir = str(output_dir)
        cfg.paths.data_dir = str(output_dir / "data")
        cfg.paths.cache_dir = str(output_dir / "cache")
        cfg.paths.log_dir = str(output_dir / "logs")
        cfg.paths.output_dir = str(output_dir / "run")
    return cfg


@pytest.fixture
def train_cfg(tmp_path, synthetic_archive):
    """Compose a quick training config on the synthetic archive."""

    def make(*overrides: str) -> DictConfig:
        return compose_train(
            [f"data.path={synthetic_archive}", "trainer.max_epochs=2", *overrides], tmp_path
        )

    return make
