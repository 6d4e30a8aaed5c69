"""rnnlab.trainer: the Trainer built from a config, and a gloo process group closed at exit."""

import subprocess
import sys
import textwrap

from rnnlab.checkpoint import AtomicCheckpointIO
from rnnlab.trainer import CloseProcessGroupAtExit, instantiate_trainer


def test_trainer_gets_the_config_callbacks_atomic_checkpoints_and_the_exit_close(train_cfg):
    trainer = instantiate_trainer(train_cfg())
    names = {type(c).__name__ for c in trainer.callbacks}
    assert {"MetricsJson", "PredictionsNpz", "CloseProcessGroupAtExit"} <= names
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def _exit_in_a_gloo_process(tmp_path, setup_calls: int) -> subprocess.CompletedProcess:
    """A one-process gloo group, CloseProcessGroupAtExit.setup for fit and test (`setup_calls` of
    them), then the interpreter's exit: the first handler registered, which runs last, reports
    whether the group was still open."""
    code = textwrap.dedent(f"""
        import atexit
        import torch.distributed as dist
        from rnnlab.trainer import CloseProcessGroupAtExit

        store = dist.FileStore({str(tmp_path / "store")!r}, 1)
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)
        atexit.register(lambda: print("open at exit:", dist.is_initialized()))  # runs last
        for stage in ["fit", "test"][:{setup_calls}]:
            CloseProcessGroupAtExit().setup(None, None, stage)
    """)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )


def test_a_gloo_group_is_closed_at_exit_after_fit_and_test(tmp_path):
    result = _exit_in_a_gloo_process(tmp_path, setup_calls=2)
    assert "open at exit: False" in result.stdout


def test_without_the_callback_the_group_is_left_open_at_exit(tmp_path):
    """What the callback is for: nothing else closes a gloo group before finalization."""
    result = _exit_in_a_gloo_process(tmp_path, setup_calls=0)
    assert "open at exit: True" in result.stdout


def test_outside_distributed_runs_nothing_is_registered(monkeypatch):
    registered = []
    monkeypatch.setattr("rnnlab.trainer.atexit.register", registered.append)
    CloseProcessGroupAtExit().setup(None, None, "fit")
    assert registered == []
