"""Learning curves: test accuracy against the number of labelled training reviews.

    python train.py -m experiment=ulmfit pretrained=LM.ckpt data.train_reviews=100,1000,10000 \
        seed=1,2,3 hydra.sweep.dir=outputs/curve/pretrained
    python train.py -m experiment=ulmfit_scratch data.train_reviews=100,1000,10000 seed=1,2,3 \
        hydra.sweep.dir=outputs/curve/scratch
    python scripts/learning_curve.py outputs/curve/pretrained outputs/curve/scratch --out OUT
    python scripts/learning_curve.py pretrained=outputs/curve/pretrained,<full-data runs> ...

Each argument is one curve: a DIR of runs (its name labels the curve), or NAME=DIR,DIR,... to
join runs from several places under one name (the full-data runs as the curve's last point).
Runs are grouped by `data.train_reviews` (all of the training part where unset). Writes
learning_curve.md (per curve and size: seeds, test accuracy mean and std; then, for each point
of the other curves, how many labelled reviews the baseline curve, by default the last one,
needs for the same accuracy), learning_curve.json and learning_curve.png (mean and std over
seeds, log scale of reviews).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rnnlab.atomic import atomic_write  # noqa: E402
from rnnlab.runs import collect, run_config  # noqa: E402


def curve(roots: Sequence[Path]) -> list[dict[str, Any]]:
    """Points of the runs under `roots`: per number of training reviews, the seeds' test
    accuracies (completed runs only)."""
    points: dict[int, list[float]] = {}
    rows = []
    for root in roots:
        try:
            rows += collect([root])
        except SystemExit:  # no runs in it (yet): reported by main if the curve stays empty
            continue
    for row in rows:
        if row["status"] != "completed" or row["test_acc"] is None:
            continue
        size = row["train_reviews"]
        config = run_config(Path(row["path"]))
        size = (config.get("data") or {}).get("train_reviews") or size
        points.setdefault(int(size), []).append(float(row["test_acc"]))
    return [
        {
            "train_reviews": size,
            "seeds": len(accs),
            "test_acc_mean": float(np.mean(accs)),
            "test_acc_std": float(np.std(accs, ddof=1)) if len(accs) > 1 else None,
            "test_acc": accs,
        }
        for size, accs in sorted(points.items())
    ]


def labels_to_match(baseline: list[dict[str, Any]], accuracy: float) -> tuple[float, str]:
    """How many labelled reviews the `baseline` curve needs to reach `accuracy`, interpolated
    linearly in log(reviews) between its points, as (reviews, "="). Outside its range: (its
    first size, "<=") when its first point is already as good, (its last size, ">") when not
    even its last point is."""
    for low, high in zip(baseline, baseline[1:], strict=False):
        if low["test_acc_mean"] <= accuracy <= high["test_acc_mean"]:
            gain = high["test_acc_mean"] - low["test_acc_mean"]
            t = (accuracy - low["test_acc_mean"]) / gain if gain else 0.0
            log_n = (1 - t) * np.log(low["train_reviews"]) + t * np.log(high["train_reviews"])
            return float(np.exp(log_n)), "="
    if accuracy <= baseline[0]["test_acc_mean"]:
        return float(baseline[0]["train_reviews"]), "<="
    return float(baseline[-1]["train_reviews"]), ">"


def matching(curves: dict[str, list[dict[str, Any]]], baseline: str) -> list[dict[str, Any]]:
    """Per point of every other curve: the labels the baseline curve needs for its accuracy."""
    rows = []
    for name, points in curves.items():
        if name == baseline:
            continue
        for point in points:
            needed, bound = labels_to_match(curves[baseline], point["test_acc_mean"])
            rows.append(
                {
                    "curve": name,
                    "train_reviews": point["train_reviews"],
                    "test_acc_mean": point["test_acc_mean"],
                    "baseline_reviews": needed,
                    "bound": bound,
                    "ratio": needed / point["train_reviews"],
                }
            )
    return rows


def matching_markdown(rows: list[dict[str, Any]], baseline: str) -> str:
    lines = [
        f"| curve | labelled reviews | test acc % | {baseline} needs (interpolated) | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        bound = {"=": "", "<=": "≤ ", ">": "> "}[row["bound"]]
        cells = [
            row["curve"],
            f"{row['train_reviews']:,}",
            f"{100 * row['test_acc_mean']:.2f}",
            f"{bound}{row['baseline_reviews']:,.0f}",
            f"{bound}{row['ratio']:.1f}×",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(curves: dict[str, list[dict[str, Any]]]) -> str:
    sizes = sorted({p["train_reviews"] for points in curves.values() for p in points})
    lines = ["| labelled training reviews | " + " | ".join(curves) + " |"]
    lines.append("|---:|" + "---:|" * len(curves))
    for size in sizes:
        cells = []
        for points in curves.values():
            point = next((p for p in points if p["train_reviews"] == size), None)
            if point is None:
                cells.append("")
                continue
            std = "" if point["test_acc_std"] is None else f" ± {100 * point['test_acc_std']:.2f}"
            seeds = f"{point['seeds']} seed" + ("s" if point["seeds"] != 1 else "")
            cells.append(f"{100 * point['test_acc_mean']:.2f}{std} ({seeds})")
        lines.append(f"| {size:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(curves: dict[str, list[dict[str, Any]]], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    for name, points in curves.items():
        x = [p["train_reviews"] for p in points]
        y = [100 * p["test_acc_mean"] for p in points]
        err = [100 * (p["test_acc_std"] or 0.0) for p in points]
        axes.errorbar(x, y, yerr=err, marker="o", capsize=3, label=name)
    axes.set_xscale("log")
    axes.set_xlabel("labelled training reviews")
    axes.set_ylabel("test accuracy % (mean ± std over seeds)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    atomic_write(path, lambda f: figure.savefig(f, format="png", dpi=120))
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "curves",
        nargs="+",
        metavar="[NAME=]DIR[,DIR...]",
        help="one curve: its runs' directories, named NAME (default: the first DIR's name), "
        "e.g. pretrained=outputs/curve/pretrained,outputs/results/official/pretrained/ulmfit",
    )
    parser.add_argument("--out", type=Path, default=Path("learning_curve"))
    parser.add_argument(
        "--baseline",
        help="the curve (by NAME) that the others are matched against: how many labelled "
        "reviews it needs for each of their points' accuracy (default: the last curve)",
    )
    args = parser.parse_args(argv)
    sources = {}
    for spec in args.curves:
        name, named, dirs = spec.partition("=")
        if not named or "/" in name or Path(spec.split(",")[0]).is_dir():  # a DIR with a '='
            name, dirs = "", spec
        roots = [Path(d) for d in dirs.split(",") if d]
        sources[name or roots[0].name] = roots
    missing = [str(root) for roots in sources.values() for root in roots if not root.is_dir()]
    if missing:
        parser.error(f"not a directory: {', '.join(missing)}; pass the folders that hold runs")
    curves = {name: curve(roots) for name, roots in sources.items()}
    baseline = args.baseline or list(curves)[-1]
    if baseline not in curves:
        parser.error(f"--baseline {baseline} is none of the curves: {', '.join(curves)}")
    empty = [name for name, points in curves.items() if not points]
    if empty:
        print(
            f"learning_curve.py: no completed run with a test accuracy under {', '.join(empty)}",
            file=sys.stderr,
        )
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(curves)
    matched = matching(curves, baseline) if len(curves) > 1 else []
    if matched:
        text += "\n" + matching_markdown(matched, baseline)
    atomic_write(args.out / "learning_curve.md", lambda f: f.write(text.encode()))
    result = {"curves": curves, "baseline": baseline, "matching": matched}
    blob = json.dumps(result, indent=2).encode()
    atomic_write(args.out / "learning_curve.json", lambda f: f.write(blob))
    plot(curves, args.out / "learning_curve.png")
    print(text)
    return 0
