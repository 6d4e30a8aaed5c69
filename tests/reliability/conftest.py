"""Fixtures of the reliability suite (helpers live in reliability_support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rnnlab.data.synthetic import write_dataset


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory) -> Path:
    """400 synthetic reviews in the Stanford archive layout."""
    return write_dataset(tmp_path_factory.mktemp("tiny"), 400, "archive")


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (and a busy 2-core machine makes two threads wait
    on each other); the CLI runs of this suite use OMP_NUM_THREADS=1 too, so numbers compare."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
