"""Learning curves: test accuracy against the number of labelled training reviews.

    python train.py -m experiment=ulmfit pretrained=LM.ckpt data.train_reviews=100,1000,10000 \
        seed=1,2,3 hydra.sweep.dir=outputs/curve/pretrained
    python train.py -m experiment=ulmfit_scratch data.train_reviews=100,1000,10000 seed=1,2,3 \
        hydra.sweep.dir=outputs/curve/scratch
    python scripts/learning_curve.py outputs/curve/pretrained outputs/curve/scratch --out docs/...

Each DIR holds the runs of one curve (its name labels the curve); runs are grouped by
`data.train_reviews` (all of the training part where unset). Writes learning_curve.md (per curve
and size: seeds, test accuracy mean and std), learning_curve.json and learning_curve.png (mean
and std over seeds, log scale of reviews).
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


def curve(root: Path) -> list[dict[str, Any]]:
    """Points of the runs under `root`: per number of training reviews, the seeds' test
    accuracies (completed runs only)."""
    points: dict[int, list[float]] = {}
    try:
        rows = collect([root])
    except SystemExit:  # not a directory, or no runs in it: an empty curve, reported by main
        return []
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
            cells.append(f"{100 * point['test_acc_mean']:.2f}{std} ({point['seeds']} seeds)")
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
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    parser.add_argument("--out", type=Path, default=Path("learning_curve"))
    args = parser.parse_args(argv)
    curves = {d.name: curve(d) for d in args.dirs}
    empty = [name for name, points in curves.items() if not points]
    if empty:
        print(
            f"learning_curve.py: no completed run with a test accuracy under {', '.join(empty)}",
            file=sys.stderr,
        )
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(curves)
    atomic_write(args.out / "learning_curve.md", lambda f: f.write(text.encode()))
    blob = json.dumps(curves, indent=2).encode()
    atomic_write(args.out / "learning_curve.json", lambda f: f.write(blob))
    plot(curves, args.out / "learning_curve.png")
    print(text)
    return 0
