"""Fixtures of the reliability suite (helpers live in reliability_support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnlab.data.synthetic import write_dataset


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory) -> Path:
    """400 synthetic reviews in the Stanford archive layout."""
    return write_dataset(tmp_path_factory.mktemp("tiny"), 400, "archive")
