"""The entry points put torch's large CPU tensors on transparent huge pages
(`rnnlab.runtime.use_huge_pages`); THP_MEM_ALLOC_ENABLE=0 in the environment keeps small pages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")
MODE = THP.read_text() if THP.exists() else ""

# as train.py starts; lightning makes torch's first CPU allocation on import
PROBE = """
from rnnlab.runtime import use_huge_pages
use_huge_pages()
import torch, lightning
x = torch.ones(64 * 2**20)  # 256 MiB
with open("/proc/self/smaps_rollup") as f:
    print(next(int(line.split()[1]) for line in f if line.startswith("AnonHugePages")))
"""


def huge_kib(**env: str) -> int:
    """KiB of the probe process on huge pages, run with `env` on top of this environment."""
    base = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=base | env, capture_output=True, text=True, check=True
    )
    return int(done.stdout.split()[-1])


# in madvise mode only what asks for huge pages gets them: torch, when THP_MEM_ALLOC_ENABLE=1
MADVISE_ONLY = pytest.mark.skipif("[madvise]" not in MODE, reason="THP is not in madvise mode here")


@MADVISE_ONLY
def test_a_large_tensor_lands_on_huge_pages_as_train_py_starts():
    assert huge_kib() >= 128 * 1024  # at least half of the 256 MiB tensor


@MADVISE_ONLY
def test_the_environment_keeps_small_pages():
    assert huge_kib(THP_MEM_ALLOC_ENABLE="0") < 64 * 1024
