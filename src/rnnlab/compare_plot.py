"""comparison.png: validation accuracy and loss per epoch for every run, and each
configuration's test accuracy with its spread over seeds (rnnlab.compare draws it)."""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rnnlab.atomic import atomic_write  # noqa: E402
from rnnlab.record import finite as _finite  # noqa: E402

# the best runs get a colour and a legend entry each; the rest are drawn in grey
MAX_LABELED = 10
# configurations shown in the test-accuracy panel, best mean first
MAX_CONFIGURATIONS = 20


def _pct(value: Any) -> str:
    value = _finite(value)
    return "" if value is None else f"{100 * value:.2f}"


def plot(
    rows: list[dict[str, Any]],
    path: Path,
    configurations: Sequence[dict[str, Any]] | None = None,
) -> list[str]:
    """Validation accuracy and loss per epoch, one line per run on shared axes. The best
    MAX_LABELED completed runs and the failed ones get colours and legend entries; any further
    completed runs are grey lines under one entry. With `configurations` (rnnlab.significance),
    a third panel shows each one's test accuracy: every seed's as a dot, the mean with its 95%
    interval over seeds as an error bar. Returns the legend's entries."""
    completed = [r for r in rows if r["status"] == "completed"]
    others = [r for r in rows if r["status"] != "completed"]
    labeled, grey = completed[:MAX_LABELED], completed[MAX_LABELED:]
    failed_labeled, failed_grey = others[:MAX_LABELED], others[MAX_LABELED:]
    colours = plt.get_cmap("tab10" if len(labeled) <= 10 else "tab20")
    shown = list(configurations or [])[:MAX_CONFIGURATIONS]
    if shown:
        fig, (acc_ax, loss_ax, test_ax) = plt.subplots(
            1, 3, figsize=(18, 4.5), layout="constrained", width_ratios=[1, 1, 1.1]
        )
        loss_ax.sharex(acc_ax)
        accuracy_panel(test_ax, shown, len(configurations or []))
    else:
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
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=120)
    atomic_write(path, lambda f: f.write(image.getvalue()))
    plt.close(fig)
    return labels


def _tick(label: str, width: int = 34, lines: int = 3) -> str:
    """A configuration's name on at most `lines` lines, shortened with [...] beyond that."""
    return "\n".join(textwrap.wrap(label, width, max_lines=lines, placeholder=" [...]"))


def accuracy_panel(ax: plt.Axes, configurations: Sequence[dict[str, Any]], total: int) -> None:
    """Test accuracy per configuration, best at the top: seeds as dots, the mean as a square
    with its 95% t interval over seeds (none for a single seed)."""
    for y, configuration in enumerate(configurations):
        runs = [
            (acc, configuration["seeds"][i])
            for i, acc in enumerate(configuration.get("test_accs", []))
        ]
        ax.scatter([a for a, _ in runs], [y] * len(runs), s=12, color="0.45", zorder=2)
        mean, ci = configuration["test_acc_mean"], configuration["test_acc_ci95"]
        error = None if ci is None else [[mean - ci[0]], [ci[1] - mean]]
        ax.errorbar(mean, y, xerr=error, fmt="s", color="C0", capsize=4, markersize=5, zorder=3)
    ax.set_yticks(
        range(len(configurations)),
        [_tick(f"{c['name']} (n={c['n_seeds']})") for c in configurations],
        fontsize=8,
    )
    ax.invert_yaxis()
    more = f", best {len(configurations)} of {total}" if total > len(configurations) else ""
    ax.set_title(f"test accuracy: seeds, mean and 95% CI{more}")
    ax.grid(alpha=0.3, axis="x")
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.1f}%"))
