"""Compare training runs: one table and one picture for any number of runs.

    python scripts/compare.py outputs/multiruns/2026-01-01_12-00-00
    python scripts/compare.py SWEEP_A SWEEP_B outputs/runs/2026-01-01_13-00-00_gru --out cmp/

Each DIR is a run directory or any folder above run directories (a sweep, `outputs/`). A run
directory is one with a `metrics.json` (written by every training run) or a `.hydra/` folder
(a job Hydra started); a job that died before writing metrics.json is listed as failed.
Per-epoch curves come from metrics.json's history, or from the run's TensorBoard event files
where the history is missing.

Writes comparison.md and comparison.csv (model, parameters, best and final validation accuracy,
test accuracy, epochs, seconds per epoch, ...) and comparison.png (validation accuracy and loss
per epoch, every run on shared axes) into --out: by default the DIR when there is one, else
./comparison. Accuracies in the Markdown table are percentages; the CSV keeps fractions.
A run fitted in one pass (model=tfidf_logreg) has no epochs: the table says "single fit" and
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

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

# never directories of runs
SKIP_DIRS = {".hydra", ".submitit", "checkpoints", "__pycache__"}
# overrides that locate files rather than choose settings
PATH_KEYS = ("data.path", "data.cache_dir", "data.data_dir", "paths.", "hydra.", "ckpt_path")
# the best runs get a colour and a legend entry each; the rest are drawn in grey
MAX_LABELED = 10
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
    "error",
    "path",
]


# -- finding and reading runs ---------------------------------------------------------------------
def is_run_dir(path: Path) -> bool:
    return (path / "metrics.json").is_file() or (path / ".hydra" / "overrides.yaml").is_file()


def find_runs(root: Path) -> list[Path]:
    """Run directories at or below `root`, in name order."""
    if is_run_dir(root):
        return [root]
    found: list[Path] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in SKIP_DIRS):
        found += find_runs(child)
    return found


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def scalars_from_events(run: Path, tags: Sequence[str]) -> dict[str, list[float]]:
    """The logged values of `tags` (those present) in the run's TensorBoard event files."""
    if not any(run.glob("events.out.tfevents.*")):
        return {}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    present = set(events.Tags().get("scalars", []))
    return {tag: [e.value for e in events.Scalars(tag)] for tag in tags if tag in present}


def history_from_events(series: dict[str, list[float]]) -> list[dict[str, float | None]]:
    """val/acc and val/loss per epoch (Lightning logs them once per validation epoch)."""
    series = {tag: series[tag] for tag in ("val/acc", "val/loss") if tag in series}
    length = max((len(v) for v in series.values()), default=0)
    return [
        {"epoch": i + 1} | {tag: _finite(v[i]) if i < len(v) else None for tag, v in series.items()}
        for i in range(length)
    ]


def overrides(run: Path) -> list[str]:
    path = run / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    return [str(o) for o in yaml.safe_load(path.read_text()) or []]


def configured_model(run: Path) -> str | None:
    """The model a run was configured with, for runs that died before writing metrics.json."""
    path = run / ".hydra" / "config.yaml"
    if not path.is_file():
        return None
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return None
    model = config.get("model") if isinstance(config, dict) else None
    return model.get("name") if isinstance(model, dict) else None


def read_run(run: Path, name: str) -> dict[str, Any]:
    """One row of the table plus the run's per-epoch history."""
    record: dict[str, Any] = {}
    metrics_file = run / "metrics.json"
    if metrics_file.is_file():
        try:
            record = json.loads(metrics_file.read_text())
        except ValueError as error:
            record = {"status": "failed", "error": f"unreadable metrics.json: {error}"}
    else:
        record = {
            "status": "failed",
            "error": "no metrics.json: the job stopped before its first validation (see its "
            "train.log), or it is still starting",
        }
    history = [h for h in record.get("history") or [] if isinstance(h, dict)]
    events: dict[str, list[float]] = {}
    if not history or not record.get("test"):
        events = scalars_from_events(run, ("val/acc", "val/loss", "test/acc"))
    history = history or history_from_events(events)
    val_accs = [(h.get("val/acc"), h.get("epoch")) for h in history]
    val_accs = [(a, e) for a, e in val_accs if _finite(a) is not None]
    best_acc, best_epoch = max(val_accs, default=(None, None), key=lambda pair: pair[0])
    losses = [_finite(h.get("val/loss")) for h in history]
    losses = [loss for loss in losses if loss is not None]
    epochs = record.get("epochs") or len(history)
    seconds = _finite(record.get("train_seconds"))
    test_acc = _finite((record.get("test") or {}).get("test/acc"))
    if test_acc is None and events.get("test/acc"):
        test_acc = _finite(events["test/acc"][-1])
    model = record.get("model") or configured_model(run)
    return {
        "run": name,
        "model": model,
        "status": record.get("status") or "unknown",
        "parameters": record.get("parameters"),
        "best_val_acc": _finite(best_acc),
        "best_epoch": best_epoch,
        "final_val_acc": _finite(history[-1].get("val/acc")) if history else None,
        "test_acc": test_acc,
        "epochs": epochs,
        # fitted in one pass (the linear baseline): no per-epoch curve
        "single_fit": bool(record.get("single_fit")),
        "seconds_per_epoch": round(seconds / epochs, 2) if seconds and epochs else None,
        "train_seconds": seconds,
        "best_val_loss": min(losses, default=None),
        "split": record.get("split"),
        "train_reviews": (record.get("sizes") or {}).get("train"),
        "overrides": [o for o in overrides(run) if not o.lstrip("+~").startswith(PATH_KEYS)],
        "error": record.get("error"),
        "path": str(run),
        "history": history,
    }


def collect(dirs: Sequence[Path]) -> list[dict[str, Any]]:
    """Every run under `dirs`, named by its path below the DIR it was found in (prefixed with
    that DIR's name when there are several DIRs)."""
    rows = []
    for root in dirs:
        if not root.is_dir():
            raise SystemExit(
                f"compare.py: {root} is not a directory. Pass run or sweep directories, e.g. "
                "outputs/multiruns/<time> (see `ls outputs/multiruns`)."
            )
        for run in find_runs(root):
            name = run.relative_to(root).as_posix() if run != root else run.name
            if len(dirs) > 1 and run != root:
                name = f"{root.name}/{name}"
            rows.append(read_run(run, name))
    if not rows:
        raise SystemExit(
            f"compare.py: no run directories (with metrics.json or .hydra/) under "
            f"{', '.join(map(str, dirs))}. Point it at a sweep directory such as "
            "outputs/multiruns/<time>."
        )
    # settings: the overrides that tell this run apart from the others
    shared = set.intersection(*(set(r["overrides"]) for r in rows)) if len(rows) > 1 else set()
    for row in rows:
        row["settings"] = " ".join(o for o in row["overrides"] if o not in shared)
    # best first; failed and unfinished runs after the completed ones
    rows.sort(key=lambda r: (r["status"] != "completed", -(r["best_val_acc"] or -1.0), r["run"]))
    return rows


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


def markdown(rows: list[dict[str, Any]], dirs: Sequence[Path], image: str | None) -> str:
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
    if image:
        out += ["", f"![validation accuracy and loss per epoch]({image})"]
    return "\n".join(out) + "\n"


# -- picture ----------------------------------------------------------------------------------------
def plot(rows: list[dict[str, Any]], path: Path) -> list[str]:
    """Validation accuracy and loss per epoch, one line per run on shared axes. The best
    MAX_LABELED completed runs and the failed ones get colours and legend entries; any further
    completed runs are grey lines under one entry. Returns the legend's entries."""
    completed = [r for r in rows if r["status"] == "completed"]
    others = [r for r in rows if r["status"] != "completed"]
    labeled, grey = completed[:MAX_LABELED], completed[MAX_LABELED:]
    failed_labeled, failed_grey = others[:MAX_LABELED], others[MAX_LABELED:]
    colours = plt.get_cmap("tab10" if len(labeled) <= 10 else "tab20")
    fig, (acc_ax, loss_ax) = plt.subplots(
        1, 2, figsize=(12, 4.5), sharex=True, layout="constrained"
    )
    handles, labels = [], []

    def draw(row: dict[str, Any], label: str | None, **style: Any) -> None:
        epochs = [h.get("epoch") for h in row["history"]]
        line = None
        for ax, key in ((acc_ax, "val/acc"), (loss_ax, "val/loss")):
            values = [_finite(h.get(key)) for h in row["history"]]
            values = [math.nan if v is None else v for v in values]
            if row["single_fit"] and len(values) == 1:  # a level to beat, across all epochs
                line = ax.axhline(values[0], **({"linestyle": ":"} | style))
            else:
                (line,) = ax.plot(epochs, values, **({"marker": "o", "markersize": 3} | style))
        if label is not None:
            handles.append(line)
            labels.append(label)

    for i, row in enumerate(labeled):
        best = _pct(row["best_val_acc"])
        fit = ", single fit" if row["single_fit"] else ""
        draw(row, f"{row['run']} ({best}%{fit})", color=colours(i), linewidth=1.8)
    for row in grey:
        draw(row, None, color="0.7", linewidth=0.8, zorder=0)
    if grey:
        handles.append(plt.Line2D([], [], color="0.7", linewidth=0.8))
        labels.append(f"{len(grey)} more completed runs")
    for row in failed_labeled:
        draw(row, None, color="black", linestyle="--", marker="x", linewidth=1.2)
        note = "no epochs" if not row["history"] else f"{len(row['history'])} epochs"
        handles.append(plt.Line2D([], [], color="black", linestyle="--", marker="x"))
        labels.append(f"{row['run']} ({row['status'].upper()}, {note})")
    for row in failed_grey:
        draw(row, None, color="0.5", linestyle="--", linewidth=0.8)
    if failed_grey:
        handles.append(plt.Line2D([], [], color="0.5", linestyle="--"))
        labels.append(f"{len(failed_grey)} more runs that did not complete")

    for ax, title in ((acc_ax, "validation accuracy"), (loss_ax, "validation loss")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    acc_ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
    longest = max((len(label) for label in labels), default=0)
    ncol = min(len(labels), 1 if longest > 55 else 2 if longest > 30 else 4) or 1
    # the legend goes under the plots and the figure grows to hold it
    fig.set_figheight(4.5 + 0.2 * -(-len(labels) // ncol))
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return labels


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    parser.add_argument("--out", type=Path, help="where to write (default: see module doc)")
    args = parser.parse_args(argv)
    out = args.out or (args.dirs[0] if len(args.dirs) == 1 else Path("comparison"))
    out.mkdir(parents=True, exist_ok=True)
    rows = collect(args.dirs)
    frame(rows).to_csv(out / "comparison.csv", index=False)
    plot(rows, out / "comparison.png")
    text = markdown(rows, args.dirs, "comparison.png")
    (out / "comparison.md").write_text(text)
    print(text)
    print(f"Wrote {out / 'comparison.md'}, {out / 'comparison.csv'}, {out / 'comparison.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
