"""Faults during training: `kill -9`, a kill while a checkpoint is written, a diverging loss.

The killed runs are real `python train.py` processes that die by SIGKILL (tests/reliability/
faults.py picks the moment); the resumed runs are `python train.py ... ckpt_path=last.ckpt`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch
from compose import compose
from reliability_support import (
    QUICK,
    assert_one_paragraph_error,
    metrics_without_timing,
    run_script,
)

from rnnlab.checkpoint import AtomicCheckpointIO, load_checkpoint
from rnnlab.train import _warn_if_resuming_elsewhere, build, train

EPOCHS = 3
SIGKILL_STATUS = -9  # subprocess reports death by signal 9 as -9


def _overrides(data: Path, cache: Path, run_dir: Path) -> list[str]:
    """A quick run's overrides; hydra.run.dir last."""
    return [
        *QUICK,
        f"data.path={data}",
        f"paths.cache_dir={cache}",
        f"trainer.max_epochs={EPOCHS}",
        f"hydra.run.dir={run_dir}",
    ]


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every run here, in-process or CLI, on one thread (see conftest.one_thread)."""


@pytest.fixture(scope="module")
def uninterrupted(tiny_archive: Path, tmp_path_factory) -> dict:
    """metrics.json of the same run, never interrupted."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # module scope runs before the per-test fixture
    root = tmp_path_factory.mktemp("uninterrupted")
    cfg = compose(
        "train",
        [*QUICK, f"data.path={tiny_archive}", f"trainer.max_epochs={EPOCHS}"],
        root,
        cache_dir=root.parent / "cache",
    )
    train(cfg)
    torch.set_num_threads(before)
    return metrics_without_timing(root / "run")


def _epoch_of(checkpoint: Path) -> int:
    _model, raw = load_checkpoint(checkpoint)  # raises CheckpointError if torn
    return raw["epoch"]


def _resume_and_compare(args: list[str], run_dir: Path, tmp_path: Path, expected: dict) -> None:
    resumed = run_script(
        "train.py", *args, f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = metrics_without_timing(run_dir)
    assert report["status"] == "completed" and report["epochs"] == EPOCHS
    assert report == expected  # every metric of every epoch, the best epoch and the test


def _run_killed_by(fault: str, data: Path, tmp_path: Path, **settings) -> tuple[list, Path]:
    """Run train.py with a fault callback that SIGKILLs it; (its overrides, its run dir)."""
    run_dir = tmp_path / "run"
    args = _overrides(data, tmp_path.parent / "cache", run_dir)
    fault_args = [f"+callbacks.fault._target_=faults.{fault}"]
    fault_args += [f"+callbacks.fault.{k}={v}" for k, v in settings.items()]
    killed = run_script("train.py", *args, *fault_args, cwd=tmp_path)
    assert killed.returncode == SIGKILL_STATUS, killed.stderr[-3000:]
    return args, run_dir


def test_kill_9_mid_epoch_then_resume_ends_like_an_uninterrupted_run(
    tiny_archive: Path, tmp_path: Path, uninterrupted: dict
) -> None:
    args, run_dir = _run_killed_by("KillAt", tiny_archive, tmp_path, epoch=1, batch=3)
    assert _epoch_of(run_dir / "checkpoints" / "last.ckpt") == 0  # the last finished epoch
    _resume_and_compare(args, run_dir, tmp_path, uninterrupted)


def test_sigterm_records_an_interrupted_run_that_resumes_like_an_uninterrupted_one(
    tiny_archive: Path, tmp_path: Path, uninterrupted: dict
) -> None:
    run_dir = tmp_path / "run"
    args = _overrides(tiny_archive, tmp_path.parent / "cache", run_dir)
    fault = ["+callbacks.fault._target_=faults.TermAt", "+callbacks.fault.epoch=1"]
    stopped = run_script("train.py", *args, *fault, "+callbacks.fault.batch=3", cwd=tmp_path)
    # exits as a process the signal killed does, not 0 (Lightning's SIGTERMException is a
    # SystemExit): a script or scheduler must not take the run for finished
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert "Stopped by SIGTERM" in stopped.stderr and "checkpoints/last.ckpt" in stopped.stderr
    report = json.loads((run_dir / "metrics.json").read_text())
    assert report["status"] == "interrupted" and "SIGTERM" in report["error"]
    assert _epoch_of(run_dir / "checkpoints" / "last.ckpt") == 0
    _resume_and_compare(args, run_dir, tmp_path, uninterrupted)


def test_kill_while_writing_a_checkpoint_keeps_the_previous_one(
    tiny_archive: Path, tmp_path: Path, uninterrupted: dict
) -> None:
    # killed inside the second save of last.ckpt: the one at the end of epoch 1
    args, run_dir = _run_killed_by(
        "KillDuringCheckpointWrite", tiny_archive, tmp_path, name="last.ckpt", nth=2
    )
    checkpoints = run_dir / "checkpoints"
    assert _epoch_of(checkpoints / "last.ckpt") == 0  # whole, and the previous epoch's
    for checkpoint in checkpoints.glob("*.ckpt"):
        load_checkpoint(checkpoint)  # no torn file under a name anything would load
    torn = list(checkpoints.glob(".last.ckpt.*.tmp"))
    assert torn, "the fault should have died inside the write"
    # resumed in-process (what train.py runs) to keep this test short; the CLI path of a resume
    # is covered by the kill -9 test above
    cfg = compose(
        "train",
        [*args[:-1], f"ckpt_path={checkpoints / 'last.ckpt'}"],
        run_dir.parent,
        cache_dir=tmp_path.parent / "cache",
    )
    train(cfg)
    assert metrics_without_timing(run_dir) == uninterrupted
    assert not list(checkpoints.glob("*.tmp"))  # the next save cleared the torn temp file


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(
    tiny_archive: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    result = run_script(
        "train.py",
        *_overrides(tiny_archive, tmp_path.parent / "cache", run_dir),
        "+callbacks.fault._target_=faults.PoisonWeightsAt",
        "+callbacks.fault.epoch=1",
        "+callbacks.fault.batch=2",
        cwd=tmp_path,
    )
    assert_one_paragraph_error(
        result,
        "Error: train/loss became nan",
        "Training stopped; the last good checkpoint is kept in " + str(run_dir / "checkpoints"),
    )
    model, raw = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert raw["epoch"] == 0
    assert all(torch.isfinite(p).all() for p in model.parameters())
    report = json.loads((run_dir / "metrics.json").read_text())
    assert report["status"] == "failed" and "nan" in report["error"]


def test_non_finite_weights_are_never_saved(tiny_archive: Path, tmp_path: Path) -> None:
    """Weights that turn NaN at an epoch's end (the loss was still finite) stop the run at the
    checkpoint save: last.ckpt keeps the previous epoch."""
    cfg = compose(
        "train",
        [
            *QUICK,
            f"data.path={tiny_archive}",
            f"trainer.max_epochs={EPOCHS}",
            "+callbacks.fault._target_=faults.PoisonWeightsAfterEpoch",
            "+callbacks.fault.epoch=1",
        ],
        tmp_path,
        cache_dir=tmp_path.parent / "cache",
    )
    with pytest.raises(FloatingPointError, match="weights became NaN or infinite"):
        train(cfg)
    model, raw = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert raw["epoch"] == 0
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_each_epoch_gets_its_own_batch_order_under_lightning(tiny_archive: Path, tmp_path: Path):
    """Lightning sets the epoch on `batch_sampler.sampler`; the bucketed sampler must answer."""
    from lightning.fabric.utilities.data import _set_sampler_epoch

    cfg = compose("train", [f"data.path={tiny_archive}"], tmp_path)
    from hydra.utils import instantiate

    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    orders = []
    for epoch in (0, 1, 0):
        _set_sampler_epoch(loader, epoch)
        orders.append([tuple(batch) for batch in loader.batch_sampler])
    assert orders[0] != orders[1] and orders[0] == orders[2]


def test_checkpoint_writer_leaves_the_old_file_when_a_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk (or any error) mid-write: the previous checkpoint stays, no temp file stays."""
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 0, "state": torch.ones(3)}, path)

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"epoch": 1, "state": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["epoch"] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_checkpoints_are_renamed_into_place_from_their_own_folder(
    tiny_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training writes through AtomicCheckpointIO, whose temp file sits beside the target: the
    final step is a rename on one file system, never a copy a kill could tear."""
    cfg = compose("train", [f"data.path={tiny_archive}"], tmp_path)
    _datamodule, _model, trainer = build(cfg)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: renames.append((a, b)) or real_replace(a, b))
    trainer.strategy.checkpoint_io.save_checkpoint({"epoch": 0}, tmp_path / "c" / "last.ckpt")
    ((src, dst),) = renames
    assert Path(src).parent == Path(dst).parent == tmp_path / "c"


def test_resuming_into_another_run_directory_says_how_to_continue_in_place(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Trainer:  # what the warning reads from a Lightning Trainer
        class checkpoint_callback:  # noqa: N801
            dirpath = str(tmp_path / "new" / "checkpoints")

    ckpt = tmp_path / "old" / "checkpoints" / "last.ckpt"
    with caplog.at_level(logging.WARNING, logger="rnnlab.train"):
        _warn_if_resuming_elsewhere(str(ckpt), Trainer())
    assert f"hydra.run.dir={tmp_path / 'old'}" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rnnlab.train"):
        _warn_if_resuming_elsewhere(str(tmp_path / "new" / "checkpoints" / "last.ckpt"), Trainer())
    assert caplog.text == ""
