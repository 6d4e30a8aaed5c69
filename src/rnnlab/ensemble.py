"""Average the test predictions of several runs (ULMFiT's forward + backward classifiers).

    python scripts/ensemble.py RUN_FWD RUN_BWD --out outputs/ensembles/ulmfit
    python scripts/ensemble.py SWEEP_FWD SWEEP_BWD --out outputs/ensembles/ulmfit   # per seed

Each argument is a run directory or a folder of runs (a sweep). With single runs, their averaged
prediction is written to --out; with sweeps, runs are paired by seed and each seed's average
goes to --out/seed=N. Every member needs its predictions.npz (every training run writes one) on
the same test reviews. An ensemble writes predictions.npz (the mean probability that a review is
positive) and metrics.json (its test accuracy, its members and theirs), so compare.py reads it
as a run, paired with any other on the same reviews.

Averaging is fixed beforehand (equal weights, no choice made on the test), as the protocol asks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnlab.errors import UserError
from rnnlab.record import (
    METRICS_FILE,
    PREDICTIONS_FILE,
    build_record,
    read_metrics,
    read_predictions,
    write_metrics,
    write_predictions,
)
from rnnlab.runs import find_runs


class EnsembleError(UserError, ValueError):
    """Runs that cannot be averaged; the message names them and the fix."""


def _runs_by_seed(root: Path) -> dict[object, Path]:
    runs = [r for r in find_runs(root) if (r / PREDICTIONS_FILE).is_file()]
    if not runs:
        raise EnsembleError(
            f"{root} holds no run with a {PREDICTIONS_FILE}: pass run directories of completed "
            "trainings (each writes its test predictions there), or the sweep folder above them."
        )
    by_seed: dict[object, Path] = {}
    for run in runs:
        seed = (
            read_metrics(run / METRICS_FILE).get("seed") if (run / METRICS_FILE).is_file() else None
        )
        if seed in by_seed:
            raise EnsembleError(
                f"{root} holds two runs of seed {seed} ({by_seed[seed]}, {run}): pass one run "
                "per seed, e.g. the sweep of one configuration."
            )
        by_seed[seed] = run
    return by_seed


def average(members: Sequence[Path], out: Path) -> float:
    """Write the members' averaged predictions and record to `out`; returns its test accuracy."""
    predictions = [read_predictions(m / PREDICTIONS_FILE) for m in members]
    first = predictions[0]
    for member, p in zip(members[1:], predictions[1:], strict=True):
        if not (
            np.array_equal(p.review_ids, first.review_ids)
            and np.array_equal(p.labels, first.labels)
        ):
            raise EnsembleError(
                f"{member} was tested on other reviews than {members[0]}: average runs of the "
                "same data and split (data.path, split, max_reviews)."
            )
    probabilities = np.mean([p.probabilities for p in predictions], axis=0)
    labels = first.labels
    accuracy = float(((probabilities > 0.5) == (labels == 1)).mean())
    records = [
        read_metrics(m / METRICS_FILE) if (m / METRICS_FILE).is_file() else {} for m in members
    ]
    seeds = {r.get("seed") for r in records}
    out.mkdir(parents=True, exist_ok=True)
    write_predictions(out / PREDICTIONS_FILE, first.review_ids, labels, probabilities)
    record = build_record(
        status="completed",
        error=None,
        model="ensemble of "
        + " + ".join(m.parent.name if m.name.startswith("seed") else m.name for m in members),
        seed=seeds.pop() if len(seeds) == 1 else None,
        parameters=sum(r.get("parameters") or 0 for r in records) or None,
        history=[],
        train_seconds=None,
        test={"test/acc": accuracy},
        checkpoint=None,
        data={"split": records[0].get("split"), "sizes": {"test": len(labels)}},
        single_fit=True,
        extra={
            "members": [str(m) for m in members],
            "member_test_acc": [float(p.correct().mean()) for p in predictions],
        },
    )
    write_metrics(out / METRICS_FILE, record)
    return accuracy


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    parser.add_argument("--out", type=Path, required=True, help="where the ensemble goes")
    args = parser.parse_args(argv)
    if len(args.dirs) < 2:
        parser.error("pass two or more runs (or sweeps) to average")
    try:
        groups = [_runs_by_seed(d) for d in args.dirs]
        if all(len(g) == 1 for g in groups):
            members = [next(iter(g.values())) for g in groups]
            accuracy = average(members, args.out)
            print(f"{args.out}: test/acc {100 * accuracy:.2f}% from {len(members)} runs")
            return 0
        seeds = set.intersection(*(set(g) for g in groups))
        if not seeds:
            raise EnsembleError(
                "the sweeps share no seed: pair runs trained with the same seeds (-m seed=1,2,3)"
            )
        for seed in sorted(seeds, key=str):
            accuracy = average([g[seed] for g in groups], args.out / f"seed={seed}")
            print(f"{args.out / f'seed={seed}'}: test/acc {100 * accuracy:.2f}%")
    except UserError as error:
        print(f"ensemble.py: {error}", file=sys.stderr)
        return 1
    return 0
