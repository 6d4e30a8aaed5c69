"""atomic_write: the one way rnnlab replaces a file it keeps."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rnnlab.atomic import atomic_write


def test_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "metrics.json"
    atomic_write(target, lambda f: f.write(b"old"))
    atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]


def test_a_failing_writer_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "model.ckpt"
    target.write_bytes(b"previous")

    def half_then_fail(f) -> None:
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]


def test_files_get_umask_permissions_not_private_temp_ones(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = atomic_write(tmp_path / "run.joblib", lambda f: f.write(b"x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # shareable like any other output
