"""Compare training runs: tables, pictures and paired significance tests for any number of runs.

    python scripts/compare.py outputs/multiruns/2026-01-01_12-00-00
    python scripts/compare.py SWEEP_A SWEEP_B outputs/runs/2026-01-01_13-00-00_gru --out cmp/

Each DIR is a run directory or any folder above run directories (a sweep, `outputs/`). A run
directory is one with a `metrics.json` (written by every training run) or a `.hydra/` folder
(a job Hydra started); a job that died before writing metrics.json is listed as failed.
Per-epoch curves come from metrics.json's history, or from the run's TensorBoard event files
where the history is missing.

Writes into --out (by default the DIR when there is one, else ./comparison):
- comparison.md and comparison.csv: one row per run (model, parameters, best and final
  validation accuracy, test accuracy, epochs, seconds per epoch, ...); the Markdown adds the
  configurations (runs that differ only in their seed) with their mean test accuracy over seeds
  and its 95% t interval, and the paired differences between configurations, marked where
  significant. Accuracies in the Markdown are percentages; the CSV keeps fractions.
- comparison.json: per configuration n_seeds, test_acc_mean, test_acc_std, test_acc_ci95; per
  pair of configurations diff, diff_ci95, p_value from a paired bootstrap over the test reviews
  (rnnlab.significance), which needs every run's predictions.npz to cover the same reviews.
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
import yaml

from rnnlab.atomic import atomic_write
from rnnlab.compare_plot import plot
from rnnlab.record import METRICS_FILE, RecordError, read_metrics
from rnnlab.record import finite as _finite
from rnnlab.significance import ALPHA, RESAMPLES, ComparisonError, comparison

# never directories of runs
SKIP_DIRS = {".hydra", ".submitit", "checkpoints", "__pycache__"}
# overrides that locate files rather than choose settings
PATH_KEYS = ("data.path", "data.cache_dir", "data.data_dir", "paths.", "hydra.", "ckpt_path")
# config keys that do not make a configuration: the seed, file locations, and settings that
# change neither what is trained nor how (threads, progress bars, logging)
NOT_CONFIGURATION = (
    "seed",
    "task_name",
    "threads",
    "logger.",
    "data.num_workers",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    *PATH_KEYS,
)
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


# -- finding and reading runs ---------------------------------------------------------------------
def is_run_dir(path: Path) -> bool:
    return (path / METRICS_FILE).is_file() or (path / ".hydra" / "overrides.yaml").is_file()


def find_runs(root: Path) -> list[Path]:
    """Run directories at or below `root`, in name order."""
    if is_run_dir(root):
        return [root]
    found: list[Path] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in SKIP_DIRS):
        found += find_runs(child)
    return found


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


def run_config(run: Path) -> dict[str, Any]:
    """The run's composed config (.hydra/config.yaml), or {} when absent or unreadable."""
    path = run / ".hydra" / "config.yaml"
    if not path.is_file():
        return {}
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return {}
    return config if isinstance(config, dict) else {}


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat |= _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return flat
    return {prefix: node}


def configuration(config: dict[str, Any], record: dict[str, Any], kept: list[str]) -> str:
    """What makes runs the same configuration: the composed config without the seed and file
    locations; for a run without .hydra/config.yaml, its model, split and overrides."""
    if config:
        settings = {
            k: v
            for k, v in _flatten(config).items()
            if k != "seed" and not k.startswith(NOT_CONFIGURATION)
        }
    else:
        model = (record.get("model"), record.get("split"))
        settings = {"model": model, "overrides": sorted(kept)}
    return json.dumps(settings, sort_keys=True, default=str)


def _seed(record: dict[str, Any], config: dict[str, Any], run_overrides: list[str]) -> Any:
    if record.get("seed") is not None:
        return record["seed"]
    if config.get("seed") is not None:
        return config["seed"]
    given = [o.split("=", 1)[1] for o in run_overrides if o.lstrip("+").startswith("seed=")]
    return given[-1] if given else None


def read_run(run: Path, name: str) -> dict[str, Any]:
    """One row of the table plus the run's per-epoch history."""
    record: dict[str, Any] = {}
    metrics_file = run / METRICS_FILE
    if metrics_file.is_file():
        try:
            record = read_metrics(metrics_file)
        except RecordError as error:
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
    config = run_config(run)
    model_config = config.get("model")
    model = record.get("model") or (
        model_config.get("name") if isinstance(model_config, dict) else None
    )
    given = overrides(run)
    kept = [o for o in given if not o.lstrip("+~").startswith(PATH_KEYS)]
    not_seed = [o for o in kept if not o.lstrip("+~").startswith("seed=")]
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
        "overrides": kept,
        "seed": _seed(record, config, given),
        "config_key": configuration(config, record, not_seed),
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
    _label_configurations(rows)
    # best first; failed and unfinished runs after the completed ones
    rows.sort(key=lambda r: (r["status"] != "completed", -(r["best_val_acc"] or -1.0), r["run"]))
    return rows


def _label_configurations(rows: list[dict[str, Any]]) -> None:
    """Name each configuration by the settings that tell its runs apart from the others', the
    seed left out; by its model when nothing does. Distinct configurations keep distinct names."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for row in rows:
        key = row["config_key"]
        if key not in names:
            base = " ".join(
                o
                for o in row["settings"].split()
                if not o.lstrip("+~").split("=", 1)[0].startswith(NOT_CONFIGURATION)
            )
            base = base or str(row["model"] or row["run"])
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base} [{n}]"
            names[key] = name
            taken.add(name)
        row["configuration"] = names[key]


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
    out += ["| configuration | seeds | test acc % mean | std | 95% CI (t over seeds) |"]
    out += ["|---|---|---|---|---|"]
    for c in configurations:
        std = "" if c["test_acc_std"] is None else f"{100 * c['test_acc_std']:.2f}"
        seeds = ", ".join(str(s) for s in c["seeds"])
        cells = [c["name"], f"{c['n_seeds']} ({seeds})", _pct(c["test_acc_mean"]), std]
        out.append("| " + " | ".join(_cell(x) for x in [*cells, _interval(c["test_acc_ci95"])]))
        out[-1] += " |"
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
            f"Paired bootstrap over the {boot['reviews']:,} test reviews ({boot['resamples']:,} "
            "resamples; each configuration's seeds averaged per review). diff = a - b in "
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
    """`scripts/compare.py DIR... [--out OUT] [--no-pairs] [--resamples N]`."""
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
    print(text)
    written = ", ".join(str(out / f"comparison.{x}") for x in ("md", "csv", "json", "png"))
    print(f"Wrote {written}")
    return 0
