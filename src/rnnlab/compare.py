"""Compare training runs: tables, pictures and paired significance tests for any number of runs.

    python scripts/compare.py outputs/multiruns/2026-01-01_12-00-00
    python scripts/compare.py SWEEP_A SWEEP_B outputs/runs/2026-01-01_13-00-00_gru --out cmp/
    python scripts/compare.py outputs/results/official/tuned --markdown   # docs/results.md's tables

Each DIR is a run directory or any folder above run directories (a sweep, `outputs/`). A run
directory is one with a `metrics.json` (written by every training run) or a `.hydra/` folder
(a job Hydra started); a job that died before writing metrics.json is listed as failed.
Per-epoch curves come from metrics.json's history, or from the run's TensorBoard event files
where the history is missing.

Writes into --out (by default the DIR when there is one, else ./comparison):
- comparison.md and comparison.csv: one row per run (model, parameters, best and final
  validation accuracy, test accuracy, epochs, seconds per epoch, ...); the Markdown adds the
  configurations (runs that differ only in their seed) with their mean test accuracy over seeds
  and its 95% t interval (and each one's machine, when the runs come from more than one), and
  the paired differences between configurations, marked where significant. Accuracies in the
  Markdown are percentages; the CSV keeps fractions.
- comparison.json: per configuration n_seeds, test_acc_mean, test_acc_std, test_acc_ci95 and
  machines (from each run's metrics.json); per pair of configurations diff, diff_ci95, p_value
  from a paired two-level bootstrap over the seeds and the test reviews (rnnlab.significance),
  which needs every run's predictions.npz to cover the same reviews.
- comparison.png: validation accuracy and loss per epoch, every run on shared axes, and the test
  accuracy of each configuration with error bars over its seeds.
A run fitted in one pass (the linear baselines) has no epochs: the table says "single fit" and
the picture draws its validation accuracy and loss as dotted levels across the epoch axis.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from rnnlab.atomic import atomic_write
from rnnlab.compare_plot import plot
from rnnlab.record import finite as _finite
from rnnlab.runs import collect
from rnnlab.significance import ALPHA, RESAMPLES, ComparisonError, comparison

__all__ = ["COLUMNS", "collect", "frame", "main", "markdown", "plot"]

# the pairs the Markdown lists when there are more configurations (comparison.json has all)
MAX_PAIR_CONFIGURATIONS = 8
COLUMNS = [
    "run",
    "model",
    "status",
    "parameters",
    "best_val_acc",
    "best_epoch",
    "final_val_acc",
    "test_acc",
    "epochs",
    "single_fit",
    "seconds_per_epoch",
    "train_seconds",
    "best_val_loss",
    "split",
    "train_reviews",
    "settings",
    "seed",
    "configuration",
    "error",
    "path",
]


# -- table ------------------------------------------------------------------------------------------
def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    table = pd.DataFrame([{c: r.get(c) for c in COLUMNS} for r in rows], columns=COLUMNS)
    for column in ("parameters", "best_epoch", "epochs", "train_reviews"):
        table[column] = table[column].astype("Int64")  # whole numbers, blank where unknown
    return table


def _pct(value: Any) -> str:
    value = _finite(value)
    return "" if value is None else f"{100 * value:.2f}"


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(
    rows: list[dict[str, Any]],
    dirs: Sequence[Path],
    image: str | None,
    result: dict[str, Any] | None = None,
) -> str:
    """The runs' table, then (with comparison.json's `result`) the configurations and pairs."""
    # a settings column when run names do not already say what differs
    show_settings = any(o not in r["run"] for r in rows for o in r["settings"].split())
    header = ["run", "model", "status", "parameters", "best val acc % (epoch)"]
    header += ["final val acc %", "test acc %", "epochs", "s/epoch"]
    header += ["settings"] if show_settings else []
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        best = _pct(r["best_val_acc"])
        if best and r["best_epoch"] is not None and not r["single_fit"]:
            best += f" ({r['best_epoch']})"
        cells = [
            r["run"],
            r["model"],
            r["status"],
            f"{r['parameters']:,}" if r["parameters"] is not None else "",
            best,
            _pct(r["final_val_acc"]),
            _pct(r["test_acc"]),
            "single fit" if r["single_fit"] else r["epochs"],
            r["seconds_per_epoch"],
        ] + ([r["settings"]] if show_settings else [])
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    failed = sum(r["status"] != "completed" for r in rows)
    out = [f"# Comparison of {len(rows)} runs" + (f" ({failed} not completed)" if failed else "")]
    out += ["", "From: " + ", ".join(f"`{d}`" for d in dirs), "", *lines]
    errors = [r for r in rows if r["error"]]
    if errors:
        out += ["", "Runs that did not complete:", ""]
        out += [f"- `{r['run']}` ({r['status']}): {_cell(r['error'])}" for r in errors]
    if result is not None:
        out += significance_markdown(result)
    if image:
        out += ["", f"![validation accuracy and loss per epoch]({image})"]
    return "\n".join(out) + "\n"


def _interval(ci: list[float] | None, scale: float = 100) -> str:
    return "" if ci is None else f"[{scale * ci[0]:.2f}, {scale * ci[1]:.2f}]"


def significance_markdown(result: dict[str, Any]) -> list[str]:
    """Configurations with their spread over seeds; pairs with their paired test."""
    configurations = result["configurations"]
    if not configurations:
        return []
    out = ["", "## Configurations (runs that differ only in their seed)", ""]
    # runs from more than one machine (a GPU beside the CPU): each row names its own
    machines = {m for c in configurations for m in c.get("machines") or []}
    per_row = len(machines) > 1
    out += [
        "| configuration | seeds | best val acc % mean | test acc % mean | std | 95% CI (t over "
        "seeds) |" + (" machine |" if per_row else "")
    ]
    out += ["|---|---|---|---|---|---|" + ("---|" if per_row else "")]
    for c in configurations:
        std = "" if c["test_acc_std"] is None else f"{100 * c['test_acc_std']:.2f}"
        seeds = ", ".join(str(s) for s in c["seeds"])
        cells = [c["name"], f"{c['n_seeds']} ({seeds})", _pct(c.get("val_acc_mean"))]
        cells += [_pct(c["test_acc_mean"]), std, _interval(c["test_acc_ci95"])]
        if per_row:
            cells.append("; ".join(c.get("machines") or []) or "not recorded")
        out.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    pairs = result.get("pairs") or []
    if pairs:
        names = [c["name"] for c in configurations]
        shown = pairs
        note = ""
        if len(names) > MAX_PAIR_CONFIGURATIONS:
            shown = [p for p in pairs if names[0] in (p["a"], p["b"])]
            note = f" Only the pairs with the best configuration are listed; comparison.json has all {len(pairs)}."
        boot = result["bootstrap"]
        out += [
            "",
            "## Paired differences on the same test reviews",
            "",
            f"Paired two-level bootstrap over the {boot['reviews']:,} test reviews and each "
            f"configuration's seeds ({boot['resamples']:,} resamples). diff = a - b in "
            f"percentage points; **yes** = significant at {ALPHA} after Holm's adjustment over "
            f"all {len(pairs)} pairs.{note}",
            "",
            "| a | b | diff (points) | 95% CI | p | p (Holm) | significant |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in shown:
            cells = [p["a"], p["b"], f"{100 * p['diff']:+.2f}", _interval(p["diff_ci95"])]
            cells += [f"{p['p_value']:.4f}", f"{p['p_holm']:.4f}"]
            cells += ["**yes**" if p["significant"] else "no"]
            out.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    for left in result.get("pairs_left_out") or []:
        out += ["", f"Not in the paired tests: {left['configuration']}: {left['reason']}."]
    if result.get("pairs_note"):
        out += ["", f"Paired tests: {result['pairs_note']}."]
    return out


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def main(argv: Sequence[str] | None = None) -> int:
    """`scripts/compare.py DIR... [--out OUT] [--no-pairs] [--resamples N] [--markdown]`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    parser.add_argument("--out", type=Path, help="where to write (default: see module doc)")
    parser.add_argument(
        "--no-pairs",
        action="store_true",
        help="skip the paired tests (runs tested on different reviews can then share a table)",
    )
    parser.add_argument(
        "--resamples", type=int, default=RESAMPLES, help="bootstrap resamples of the reviews"
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print only the configurations and paired differences (the tables of "
        "docs/results.md) instead of the whole comparison.md",
    )
    args = parser.parse_args(argv)
    if args.resamples < 1:
        parser.error(f"--resamples={args.resamples} must be a whole number >= 1")
    out = args.out or (args.dirs[0] if len(args.dirs) == 1 else Path("comparison"))
    rows = collect(args.dirs)
    try:
        result = comparison(rows, args.dirs, pairs=not args.no_pairs, resamples=args.resamples)
    except ComparisonError as error:
        print(f"compare.py: {error}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    _write_text(out / "comparison.csv", frame(rows).to_csv(index=False))
    _write_text(out / "comparison.json", json.dumps(result, indent=2))
    plot(rows, out / "comparison.png", result["configurations"])
    text = markdown(rows, args.dirs, "comparison.png", result)
    _write_text(out / "comparison.md", text)
    print("\n".join(significance_markdown(result)).strip() + "\n" if args.markdown else text)
    written = ", ".join(str(out / f"comparison.{x}") for x in ("md", "csv", "json", "png"))
    print(f"Wrote {written}")
    return 0
