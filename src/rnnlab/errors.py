"""Mistakes a user can fix, and how the command-line scripts report them.

Library code raises typed exceptions (DataError, CheckpointError, ConfigError, ...) so callers can
catch them; `train.py`, `pretrain.py`, `eval.py` and `predict.py` run inside `exit_on_error()`,
which turns them into one paragraph on stderr and exit status 1 instead of a traceback
(HYDRA_FULL_ERROR=1 brings the traceback back), and a run stopped by SIGTERM into exit status
143.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("rnnlab")


class UserError(Exception):
    """A mistake the user can fix (a config value, a data file, a checkpoint, a download): its
    message names what is wrong and the fix. rnnlab's typed errors all derive from it."""


class ConfigError(UserError, ValueError):
    """A configuration value that cannot work; the message names the key and the allowed values."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message tells the user what to fix: no traceback helps with these."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return (
        UserError,  # ConfigError, DataError, CheckpointError, DownloadError, StopwordsMissing, ...
        FloatingPointError,
        HydraException,  # e.g. InstantiationException: a _target_ that cannot be built
        OmegaConfBaseException,  # e.g. a mandatory value (???) left unset
    )


def describe(error: BaseException) -> str:
    """One paragraph: a short label for the kind of error, then its message on one line."""
    label = {
        "ConfigError": "Invalid configuration",
        "MissingMandatoryValue": "Invalid configuration",
        "InstantiationException": "Invalid configuration",
    }.get(type(error).__name__, "Error")
    message = re.sub(r"\s*\n\s*", " ", str(error)).strip()
    return f"{label}: {message}"


@contextmanager
def exit_on_error() -> Iterator[None]:
    """Run a command-line job; a user error ends it with its message and exit status 1."""
    try:
        yield
    except SystemExit as stop:
        _exit_like_a_terminated_process(stop)
        raise
    except user_errors() as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":  # Hydra's switch for full tracebacks
            raise
        text = describe(error)
        _log_to_files(text)
        print(text, file=sys.stderr, flush=True)
        if _in_sweep_job():
            # a sweep records the job as failed and goes on (Optuna: a FAIL trial); SystemExit
            # would end the whole sweep at its first failed job
            raise
        raise SystemExit(1) from None


def _exit_like_a_terminated_process(stop: SystemExit) -> None:
    """Lightning ends a run stopped by SIGTERM (`kill`, a cluster's preemption) with its
    SIGTERMException, a SystemExit whose status is 0: a shell, a scheduler or results_tables.py
    would take the run for finished. Exit with 143 (128 + SIGTERM), as a process the signal
    killed does, and say how to resume."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    if not isinstance(stop, SIGTERMException) or stop.code not in (None, 0):
        return
    text = "Stopped by SIGTERM (exit status 143)."
    where = _run_dir()
    if where and (Path(where) / "checkpoints" / "last.ckpt").is_file():
        text += (
            " The run's record says interrupted, and checkpoints/last.ckpt holds its last "
            f"finished epoch: to continue it, add \"ckpt_path='{where}/checkpoints/last.ckpt'\" "
            f"\"hydra.run.dir='{where}'\" to the same command (quoted: a path may hold '=')."
        )
    _log_to_files(text)
    print(text, file=sys.stderr, flush=True)
    raise SystemExit(128 + signal.SIGTERM) from None


def _run_dir() -> str | None:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else None


def refuse_null_groups(argv: Sequence[str], config_dir: Path) -> None:
    """Hydra cannot set a config group to null: `logger=null` (or a sweep over `null,NAME`) fails
    with a traceback while the config is composed, before any job code runs. Say how to drop or
    swap the group instead."""
    from rnnlab.renames import RENAMED_OPTIONS

    for arg in argv:
        key, eq, value = arg.partition("=")
        group = key.lstrip("+")
        values = [v.strip().lower() for v in value.split(",")]  # a multirun list, e.g. null,NAME
        if eq and "null" in values and (config_dir / group).is_dir():
            earlier = RENAMED_OPTIONS.get(group, {})  # earlier names: not advertised
            names = (p.stem for p in (config_dir / group).glob("*.yaml"))
            options = ", ".join(sorted(n for n in names if n not in earlier))
            print(
                f"Invalid configuration: {arg} cannot set the config group {group!r} to null. "
                f"To run without it, write ~{group} instead; to pick another, write "
                f"{group}=NAME with NAME one of: {options} (files in {config_dir / group}).",
                file=sys.stderr,
                flush=True,
            )
            raise SystemExit(1)


def _in_sweep_job() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _log_to_files(text: str) -> None:
    """Keep the message in the run's log file too (the console already gets it on stderr)."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, text, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
