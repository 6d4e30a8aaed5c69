"""Run directories written by hand (metrics.json, predictions.npz) for the tools that read runs.

A plain module (tests/ is on sys.path, as for compose.py)."""

from __future__ import annotations

from pathlib import Path

from rnnlab.record import build_record, write_metrics


def write_record(
    run: Path, seed: int, test_acc: float, train_reviews: int | None = None, model: str = "lstm"
) -> Path:
    """A completed run's metrics.json: one epoch, its test accuracy, its training-set size."""
    run.mkdir(parents=True, exist_ok=True)
    record = build_record(
        status="completed",
        error=None,
        model=model,
        seed=seed,
        parameters=10,
        history=[{"epoch": 1, "val/acc": 0.5}],
        train_seconds=1.0,
        test={"test/acc": test_acc},
        checkpoint=None,
        data={"split": "official", "sizes": {"train": train_reviews}},
    )
    write_metrics(run / "metrics.json", record)
    return run
