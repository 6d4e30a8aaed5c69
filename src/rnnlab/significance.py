"""How sure a comparison is: runs grouped into configurations (everything but the seed), each
configuration's test accuracy over its seeds with a t interval, and a paired two-level bootstrap
(seeds and test reviews) for every pair of configurations.

The pairs need each run's predictions.npz (rnnlab.record). A configuration's accuracy is its
runs' correctness averaged over seeds and reviews. The bootstrap resamples both sources of
chance, as a reviewer would: each resample draws every configuration's seeds with replacement
(its own runs) and the test reviews with replacement (the same draws for every configuration,
which pairs them), from a fixed random seed. A pair's difference is the first configuration's
accuracy minus the other's, its interval the 2.5 and 97.5 percentiles of the resampled
differences (so two configurations whose seeds scatter widely get a wide interval, however many
reviews they share), and its p-value twice the share of resampled differences on the far side
of 0 (two-sided, the same percentiles: p < 0.05 exactly when the interval leaves 0 out). Over
many pairs some come out below 0.05 by chance, so `significant` uses Holm's adjustment of the
p-values over all pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from rnnlab.errors import UserError
from rnnlab.record import PREDICTIONS_FILE, Predictions, RecordError, read_predictions

RESAMPLES = 10_000
ALPHA = 0.05
CI_METHOD = (
    "Student t interval over seeds: mean +/- t(0.975, n-1) * std / sqrt(n), with the sample "
    "standard deviation (n-1); null for a single seed"
)
PAIR_METHOD = (
    "paired two-level bootstrap (predictions.npz): each resample draws every configuration's "
    "seeds with replacement and the test reviews with replacement (the same reviews for every "
    "configuration); diff = accuracy of a - accuracy of b; diff_ci95 = "
    "2.5/97.5 percentiles of the resampled differences; p_value = two-sided, twice the share of "
    "resampled differences on the far side of 0; p_holm = Holm-adjusted over all pairs; significant = "
    "p_holm < 0.05"
)


class ComparisonError(UserError, ValueError):
    """Runs that cannot be compared as asked; the message names the runs, files and the fix."""


def t_interval(values: Sequence[float]) -> tuple[float, float | None, list[float] | None]:
    """Mean, sample standard deviation and 95% t interval of the values (None for one value)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, None, None
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(values) - 1)) * std / math.sqrt(len(values))
    return mean, std, [mean - half, mean + half]


def group(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Completed runs with a test accuracy, one entry per configuration, best mean first."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "completed" and row.get("test_acc") is not None:
            groups.setdefault(row["config_key"], []).append(row)
    configurations = []
    for members in groups.values():
        mean, std, ci = t_interval([r["test_acc"] for r in members])
        val = [r["best_val_acc"] for r in members if r.get("best_val_acc") is not None]
        configurations.append(
            {
                "name": members[0]["configuration"],
                "model": members[0]["model"],
                "runs": [r["run"] for r in members],
                "seeds": [r["seed"] for r in members],
                "n_seeds": len(members),
                "test_accs": [r["test_acc"] for r in members],
                "test_acc_mean": mean,
                "test_acc_std": std,
                "test_acc_ci95": ci,
                # the validation accuracy each run was selected on (its best epoch's)
                "val_acc_mean": float(np.mean(val)) if val else None,
                "machines": sorted({r["machine"] for r in members if r.get("machine")}),
                "paths": [r["path"] for r in members],
            }
        )
    configurations.sort(key=lambda c: (-c["test_acc_mean"], c["name"]))
    return configurations


def _refuse_mismatch(first: tuple[str, Predictions], other: tuple[str, Predictions]) -> None:
    (path_a, a), (path_b, b) = first, other
    same_ids = np.array_equal(a.review_ids, b.review_ids)
    if same_ids and np.array_equal(a.labels, b.labels):
        return
    if same_ids:
        what = "give different labels to the same review ids (different data sources)"
    else:
        shared = len(np.intersect1d(a.review_ids, b.review_ids))
        what = (
            f"cover different test reviews ({len(a.review_ids)} and {len(b.review_ids)} reviews, "
            f"{shared} in common)"
        )
    raise ComparisonError(
        f"Cannot pair runs review by review: {path_a} and {path_b} {what}. A paired test needs "
        "every run tested on the same reviews: the same data.path, split, split.random_state, "
        "split.val_fraction / test_size and data.max_reviews. Compare such runs separately, or "
        "pass --no-pairs to get the tables without the paired tests."
    )


def correctness(
    configurations: Sequence[dict[str, Any]],
) -> tuple[dict[str, np.ndarray], list[dict[str, str]], np.ndarray | None]:
    """Per configuration whose runs all have predictions.npz: its runs' correctness, (seeds,
    reviews) of 0/1. Also the configurations left out (and why), and the shared review ids."""
    correct: dict[str, np.ndarray] = {}
    left_out: list[dict[str, str]] = []
    reference: tuple[str, Predictions] | None = None
    for configuration in configurations:
        files = [Path(p) / PREDICTIONS_FILE for p in configuration["paths"]]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            reason = f"no {PREDICTIONS_FILE} in {', '.join(missing)} (run before it was written)"
            left_out.append({"configuration": configuration["name"], "reason": reason})
            continue
        try:
            runs = [(str(file), read_predictions(file)) for file in files]
        except RecordError as error:  # the tables still show the run; only its pairs go
            left_out.append({"configuration": configuration["name"], "reason": str(error)})
            continue
        for run in runs:
            reference = reference or run
            _refuse_mismatch(reference, run)
        correct[configuration["name"]] = np.stack([p.correct() for _, p in runs]).astype(float)
    return correct, left_out, None if reference is None else reference[1].review_ids


def bootstrap_accuracies(
    correct: Sequence[np.ndarray], resamples: int = RESAMPLES, seed: int = 0, chunk: int = 100
) -> np.ndarray:
    """(resamples, configurations): each configuration's accuracy on resamples of its seeds
    (rows of its (seeds, reviews) array, drawn with replacement) and of the reviews (columns,
    drawn with replacement, the same draws for every configuration)."""
    n = correct[0].shape[1]
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, len(correct)))
    for start in range(0, resamples, chunk):
        m = min(chunk, resamples - start)
        draws = rng.integers(0, n, (m, n)) + (np.arange(m) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=m * n).reshape(m, n)
        for c, runs in enumerate(correct):
            s = runs.shape[0]
            picks = rng.integers(0, s, (m, s)) + (np.arange(m) * s)[:, None]
            weights = np.bincount(picks.ravel(), minlength=m * s).reshape(m, s) / s
            out[start : start + m, c] = (counts * (weights @ runs)).sum(axis=1) / n
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error over all the p-values)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def paired_tests(
    correct: dict[str, np.ndarray], resamples: int = RESAMPLES, seed: int = 0
) -> list[dict[str, Any]]:
    """Every pair of configurations (in the given order): a, b, diff, diff_ci95, p_value,
    p_holm, significant, reviews. `correct[name]` is (seeds, reviews), or (reviews,) for one."""
    names = list(correct)
    if len(names) < 2:
        return []
    runs = [np.atleast_2d(np.asarray(correct[name], dtype=float)) for name in names]
    boot = bootstrap_accuracies(runs, resamples, seed)
    observed = np.array([r.mean() for r in runs])
    pairs = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            diff = float(observed[i] - observed[j])
            resampled = boot[:, i] - boot[:, j]
            far_side = min((resampled <= 0).sum(), (resampled >= 0).sum())
            low, high = np.percentile(resampled, [2.5, 97.5])
            pairs.append(
                {
                    "a": names[i],
                    "b": names[j],
                    "diff": diff,
                    "diff_ci95": [float(low), float(high)],
                    "p_value": float(min(1.0, 2 * (1 + far_side) / (resamples + 1))),
                    "reviews": int(runs[0].shape[1]),
                }
            )
    for pair, adjusted in zip(pairs, holm([p["p_value"] for p in pairs]), strict=True):
        pair["p_holm"] = adjusted
        pair["significant"] = adjusted < ALPHA
    return pairs


def comparison(
    rows: Sequence[dict[str, Any]],
    dirs: Sequence[Path],
    pairs: bool = True,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """comparison.json's content."""
    configurations = group(rows)
    result: dict[str, Any] = {
        "from": [str(d) for d in dirs],
        "test_acc_ci95_method": CI_METHOD,
        "configurations": [{k: v for k, v in c.items() if k != "paths"} for c in configurations],
    }
    if not pairs:
        return result | {"pairs": [], "pairs_note": "not computed (--no-pairs)"}
    correct, left_out, ids = correctness(configurations)
    result["pairs_method"] = PAIR_METHOD
    reviews = 0 if ids is None else len(ids)
    result["bootstrap"] = {"resamples": resamples, "seed": seed, "reviews": reviews}
    result["pairs"] = paired_tests(correct, resamples, seed)
    result["pairs_left_out"] = left_out
    return result
