"""Hydra plumbing for sweeps: collision-free run directories, job directories named by what a
sweep varies, torch threads shared out among parallel jobs, and DDP inside a multirun.

`conf/hydra/default.yaml` wires these in. Entry points register the resolvers
(`register_resolvers`); in a sweep job's own process (joblib, submitit) `SweepSetup` does, as
Hydra unpickles it there, before the job's directory name is resolved.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, read_write

log = logging.getLogger(__name__)

# set by `SweepSetup` in the launching process; inherited by local, joblib and SLURM jobs
SWEPT_ENV = "RNNLAB_SWEPT_KEYS"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
# what Lightning's DDP launcher sets in the launching process's environment
DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# longest job directory name (file systems allow 255 bytes per path component)
MAX_NAME = 200


def unique_dir(path: str) -> str:
    """`path`, or `path_2`, `path_3`, ...: the first that did not exist, created here.

    `mkdir` either creates a directory or fails, so two runs or sweeps launched in the same
    second by different processes never share one. Cached by the resolver, so every job of a
    sweep (and each DDP process) sees the directory its launcher claimed.
    """
    base = Path(path)
    candidate, n = base, 1
    while True:
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return str(candidate)
        except FileExistsError:
            n += 1
            candidate = base.with_name(f"{base.name}_{n}")


def _key_and_value(override: str, parser: OverridesParser) -> tuple[str, str]:
    parsed = parser.parse_override(override)
    value = override.split("=", 1)[1] if "=" in override else ""
    return parsed.key_or_group, value


def _short_float(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return value if value.lstrip("+-").isdigit() else f"{number:.4g}"


def swept_keys(config: DictConfig) -> dict[str, Any]:
    """Which overrides a multirun varies: command-line sweeps (`model=rnn,lstm`, `lr=interval(...)`)
    and `hydra.sweeper.params`; `numbered` when the sweeper may repeat a combination (Optuna)."""
    parser = OverridesParser.create()
    keys: list[str] = []
    candidates = list(config.hydra.overrides.task)
    for key in ("params", "search_space"):
        params = OmegaConf.select(config, f"hydra.sweeper.{key}")
        if params:
            candidates += [f"{k}={v}" for k, v in params.items()]
    for override in candidates:
        try:
            parsed = parser.parse_override(override)
        except Exception:  # a sweeper-specific syntax: it varies, whatever it is
            keys.append(override.split("=", 1)[0].lstrip("+~"))
            continue
        if parsed.is_sweep_override() and parsed.key_or_group not in keys:
            keys.append(parsed.key_or_group)
    sweeper = OmegaConf.select(config, "hydra.sweeper._target_")
    return {"keys": keys, "numbered": sweeper != BASIC_SWEEPER}


def job_dirname(
    overrides: Sequence[str], num: int | str, exclude: Sequence[str] = (), swept: str | None = None
) -> str:
    """A sweep job's directory name: `key=value` of the swept overrides, comma-joined.

    `swept` is the JSON `SweepSetup` puts in the environment. Without it, every override but the
    `exclude`d ones names the job (Hydra's `override_dirname`). Constant overrides such as
    `data.max_reviews=2000` stay out of names, and `/` in values never nests directories.
    """
    info = json.loads(swept) if swept else None
    parser = OverridesParser.create()
    pairs = [_key_and_value(o, parser) for o in overrides]
    if info is not None:
        chosen = [(k, v) for k, v in pairs if k in info["keys"]]
    else:
        chosen = [(k, v) for k, v in pairs if k not in exclude]
    numbered = info is not None and info.get("numbered")
    if numbered:  # sampled floats: a few digits name them, the trial number tells them apart
        chosen = [(k, _short_float(v)) for k, v in chosen]
    parts = [f"{k}={v}" for k, v in sorted(chosen)]
    if numbered:
        parts.insert(0, f"trial={num}")
    name = ",".join(parts) or f"job={num}"
    name = name.replace(os.sep, "_").replace("/", "_")
    if name in {".", ".."}:
        name = f"job={num}"
    if len(name.encode()) > MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name.encode()[: MAX_NAME - 9].decode(errors='ignore')}~{digest}"
    return name


class SweepSetup(Callback):
    """Hydra callback run by the launching process when a multirun starts.

    1. Records which overrides the multirun sweeps, for `job_dirname` in each job: jobs are
       composed afresh from their own (concrete) overrides, so they cannot tell a swept
       `model=rnn` from a constant `data.max_reviews=2000`; the launching process can.
    2. Lets the sweeper and launcher resolve `hydra.sweep.dir`: it interpolates `paths.log_dir`,
       which rests on `${hydra:runtime.cwd}`, and Hydra sets the config that resolver reads only
       inside jobs. Without this, `python train.py -m ...` fails with "HydraConfig was not set".
    """

    def __reduce__(self) -> tuple[Any, tuple]:
        # a sweep job's process (joblib, submitit) never ran the entry point's module
        return _sweep_setup_in_job_process, ()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        os.environ[SWEPT_ENV] = json.dumps(swept_keys(config))
        if not HydraConfig.initialized():
            HydraConfig.instance().set_config(config)


def _sweep_setup_in_job_process() -> SweepSetup:
    """How `SweepSetup` is unpickled in a sweep job's process: with the resolvers registered."""
    register_resolvers()
    return SweepSetup()


def register_resolvers() -> None:
    """`${rnnlab.unique_dir:PATH}` and `${rnnlab.job_dirname:OVERRIDES,NUM,EXCLUDE}`."""
    if not OmegaConf.has_resolver("rnnlab.unique_dir"):
        OmegaConf.register_new_resolver("rnnlab.unique_dir", unique_dir, use_cache=True)
    if not OmegaConf.has_resolver("rnnlab.job_dirname"):
        OmegaConf.register_new_resolver(
            "rnnlab.job_dirname",
            lambda overrides, num, exclude=(): job_dirname(
                list(overrides), num, list(exclude or ()), os.environ.get(SWEPT_ENV)
            ),
        )


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def torch_threads(requested: int | None = None) -> tuple[int | None, str]:
    """Intra-op threads for this run and why: `requested`, else the cores shared equally among
    the jobs a parallel launcher runs at once (joblib's n_jobs), else the CPUs SLURM/submitit
    gave the task. None: torch's own default (a single run has the machine to itself)."""
    if requested:
        return int(requested), "runtime.threads"
    if not HydraConfig.initialized():
        return None, ""
    launcher = HydraConfig.get().launcher
    target = str(launcher.get("_target_", ""))
    if "joblib" in target:
        from joblib import effective_n_jobs

        n_jobs = effective_n_jobs(launcher.get("n_jobs", -1))
        return max(1, _cores() // max(1, n_jobs)), f"{_cores()} cores / {n_jobs} joblib jobs"
    if "submitit" in target and launcher.get("cpus_per_task"):
        return int(launcher.cpus_per_task), "hydra.launcher.cpus_per_task"
    return None, ""


def configure_threads(requested: int | None = None) -> None:
    """Apply `torch_threads`: parallel jobs that each take every core slow each other down."""
    import torch

    threads, why = torch_threads(requested)
    if threads is not None:
        torch.set_num_threads(threads)
        log.info("torch threads: %d (%s)", threads, why)


def standard_start_method() -> None:
    """Give DataLoader workers a standard process start method inside a joblib job.

    joblib's loky workers make "loky" the default multiprocessing start method, and a
    DataLoader with num_workers > 0 cannot start its workers with it (AttributeError: 'Process'
    object has no attribute 'env'). Anywhere else this does nothing.
    """
    import multiprocessing

    if multiprocessing.get_start_method(allow_none=True) == "loky":
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        multiprocessing.set_start_method(method, force=True)


@contextmanager
def ddp_children_follow_this_job(world_size: int) -> Iterator[None]:
    """Keep a multirun job's DDP processes in the job's own directory.

    Lightning's DDP launcher starts the other ranks by re-running `sys.argv` plus
    `hydra.run.dir=<this run's hydra.run.dir>`. Inside a multirun that command line is the whole
    sweep, and `hydra.run.dir` is not the job's directory: each rank would run every job into
    directories of its own. For the duration, point both at this job alone, as a single run.
    Afterwards close the job's process group and drop the DDP variables the launcher put in the
    environment (with LOCAL_RANK set, the next job would wait for ranks nobody starts).
    """
    if world_size <= 1 or not HydraConfig.initialized():
        yield
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        yield
        return
    argv, environ = sys.argv, {k: os.environ.get(k) for k in DDP_ENV}
    run_dir = OmegaConf.to_container(hydra_cfg.run, resolve=False)["dir"]
    sys.argv = [argv[0], *hydra_cfg.overrides.task, "hydra.mode=RUN"]
    with read_write(hydra_cfg.run):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    try:
        yield
    finally:
        sys.argv = argv
        for key, value in environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with read_write(hydra_cfg.run):
            hydra_cfg.run.dir = run_dir
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
