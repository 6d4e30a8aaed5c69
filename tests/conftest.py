"""Shared fixtures: synthetic datasets, composed configs, and the real-data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from compose import compose
from omegaconf import DictConfig

from rnnlab.data.synthetic import write_dataset

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RNNLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("NLTK_DATA", str(ROOT.parent / "shared" / "nltk_data"))


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


@pytest.fixture
def train_cfg(tmp_path, synthetic_archive):
    """Compose a quick training config on the synthetic archive."""

    def make(*overrides: str) -> DictConfig:
        return compose(
            "train",
            [f"data.path={synthetic_archive}", "trainer.max_epochs=2", *overrides],
            tmp_path,
        )

    return make
