"""The token cache: a damaged file is detected and rebuilt, never loaded; runs that build the same
cache at once, or die while writing it, leave a cache that is whole."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rnnlab.data.corpus import cached_corpus, load_corpus
from rnnlab.data.preprocess import Preprocessor
from rnnlab.data.sources import load_reviews
from rnnlab.data.synthetic import write_dataset

SETTINGS = {"preprocess": Preprocessor().config()}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data", 300, "archive")


def _build(source: Path, cache: Path):
    return cached_corpus(source, lambda: load_reviews(source), Preprocessor(), cache, SETTINGS)


def _same(a, b) -> bool:
    return (
        a.tokens == b.tokens
        and np.array_equal(a.ids, b.ids)
        and np.array_equal(a.offsets, b.offsets)
        and np.array_equal(a.labels, b.labels)
    )


def _truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def _flip_a_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))


def _edit_by_hand(file: Path) -> None:
    """Change the arrays and rewrite a well-formed file that keeps the old metadata."""
    with np.load(file) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["labels"] = 1 - arrays["labels"]  # e.g. someone "fixing" labels in place
    with open(file, "wb") as f:
        np.savez(f, **arrays)


def _garbage(file: Path) -> None:
    file.write_text("this is not a cache")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(_truncate, id="truncated"),
        pytest.param(_flip_a_byte, id="byte-flipped"),
        pytest.param(_edit_by_hand, id="edited-by-hand"),
        pytest.param(_garbage, id="not-a-cache"),
    ],
)
def test_damaged_cache_is_detected_and_rebuilt(
    source: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage
) -> None:
    cache = tmp_path / "cache"
    fresh = _build(source, cache)
    (file,) = cache.glob("corpus-*.npz")
    damage(file)
    assert load_corpus(file) is None  # never loaded
    with caplog.at_level(logging.WARNING, logger="rnnlab.data.corpus"):
        rebuilt = _build(source, cache)
    assert "rebuilding it" in caplog.text and str(file) in caplog.text
    assert _same(rebuilt, fresh)
    assert _same(load_corpus(file), fresh)  # the file on disk is whole again


_RACER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from rnnlab.data import corpus
    from rnnlab.data.preprocess import Preprocessor
    from rnnlab.data.sources import load_reviews

    source, cache, me, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    real_replace = os.replace

    def replace(src, dst):
        if mode == "race":  # both writers hold a finished temp file before either renames
            (cache / f"ready-{me}").touch()
            deadline = time.time() + 60
            while len(list(cache.glob("ready-*"))) < 2 and time.time() < deadline:
                time.sleep(0.01)
        if mode == "die":  # killed after writing, before the rename: like kill -9 mid-write
            os.kill(os.getpid(), 9)
        real_replace(src, dst)

    corpus.os.replace = replace
    settings = {"preprocess": Preprocessor().config()}
    built = corpus.cached_corpus(
        source, lambda: load_reviews(source), Preprocessor(), cache, settings
    )
    print(len(built))
    """
)


def _racer(source: Path, cache: Path, me: str, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _RACER, str(source), str(cache), me, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def test_two_runs_building_the_same_cache_at_once(source: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    racers = [_racer(source, cache, name, "race") for name in ("a", "b")]
    for racer in racers:
        out, err = racer.communicate(timeout=300)
        assert racer.returncode == 0, err[-2000:]
        assert out.strip() == "300"
    assert len(list(cache.glob("ready-*"))) == 2  # both really were mid-write together
    (file,) = cache.glob("corpus-*.npz")
    assert not list(cache.glob("*.tmp"))
    assert _same(load_corpus(file), _build(source, tmp_path / "fresh"))


def test_a_run_killed_while_writing_the_cache_leaves_none_to_load(
    source: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    racer = _racer(source, cache, "a", "die")
    racer.communicate(timeout=300)
    assert racer.returncode == -9
    assert not list(cache.glob("corpus-*.npz"))  # only a temp file, which nothing loads
    assert list(cache.glob("*.tmp"))
    rebuilt = _build(source, cache)
    (file,) = cache.glob("corpus-*.npz")
    assert _same(load_corpus(file), rebuilt)
