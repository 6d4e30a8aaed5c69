"""Atomic file writes: readers see the old file or the new one, never a half-written one.

Everything rnnlab writes for later (checkpoints, the token cache, metrics.json, the linear
baseline's model) goes through `atomic_write`: the bytes go to a temp file beside the target,
are flushed to disk, and replace the target in one rename. A writer killed mid-way leaves only a
`.<name>.<pid>.<random>.tmp` file, which nothing loads.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def fsync_dir(directory: Path) -> None:
    """Persist a rename on POSIX; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """`write(f)` fills a temp file beside `path`, which then replaces `path` in one rename.

    The temp file is opened with plain `open` (so it gets the usual umask permissions) under a
    name unique to this process, so concurrent writers of the same target never share one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
