"""What an entry point applies from its config's `runtime` node (conf/runtime/default.yaml)
before any work: the subnormal flush and torch's threads (see rnnlab.runtime)."""

from __future__ import annotations

import logging
from typing import Any

import torch

from rnnlab.errors import ConfigError
from rnnlab.runtime import flush_subnormals, flushes_subnormals
from rnnlab.sweeps import configure_threads

log = logging.getLogger(__name__)


def tune_process(runtime: Any) -> None:
    """What an entry point applies from its config's `runtime` node (conf/runtime/default.yaml)
    before any work: the subnormal flush, then torch's threads."""
    flush = runtime.get("flush_denormal", True)
    threads = runtime.get("threads")
    if not isinstance(flush, bool):
        raise ConfigError(
            f"runtime.flush_denormal={flush!r} must be true or false "
            "(e.g. runtime.flush_denormal=false to compute with subnormal floats)."
        )
    if threads is not None and (
        not isinstance(threads, int) or isinstance(threads, bool) or threads < 1
    ):
        raise ConfigError(
            f"runtime.threads={threads!r} must be an integer >= 1, or null for torch's default "
            "(e.g. runtime.threads=1)."
        )
    flush_subnormals(flush)
    configure_threads(threads)
    threads = torch.get_num_threads()
    if flushes_subnormals():
        state = f"flushed to zero (FTZ/DAZ) on this thread and torch's {threads} threads"
    else:
        state = "computed as they are" + ("" if not flush else " (this CPU cannot flush them)")
    log.info("subnormal floats: %s", state)
