"""Finding runs below directories and reading each one: its metrics.json (rnnlab.record), Hydra
config and overrides, seed, and the configuration it belongs to (everything but the seed).
rnnlab.compare turns the rows into tables and tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from rnnlab.record import METRICS_FILE, RecordError, read_metrics
from rnnlab.record import finite as _finite

# never directories of runs
SKIP_DIRS = {".hydra", ".submitit", "checkpoints", "__pycache__"}
# overrides that locate files rather than choose settings
PATH_KEYS = ("data.path", "data.cache_dir", "data.data_dir", "paths.", "hydra.", "ckpt_path")
# config keys that do not make a configuration: the seed, file locations, and settings that
# change neither what is trained nor how (threads, progress bars, logging)
NOT_CONFIGURATION = (
    "seed",
    # top-level keys that earlier runs recorded (threads became runtime.threads; task_name was
    # never read)
    "task_name",
    "threads",
    # how the process computes (threads, subnormal flush), not what it trains
    "runtime.",
    "logger.",
    "data.num_workers",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    *PATH_KEYS,
)


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
        # what it computed on (the GPU, or the CPU model and its vector units); None in records
        # written before rnnlab recorded it
        "machine": record.get("machine"),
        "path": str(run),
        "history": history,
    }


def collect(dirs: Sequence[Path]) -> list[dict[str, Any]]:
    """Every run under `dirs`, named by its path below the DIR it was found in (prefixed with
    that DIR's name when there are several DIRs; a DIR that is a run itself, with its parent's)."""
    rows = []
    for root in dirs:
        if not root.is_dir():
            raise SystemExit(
                f"compare.py: {root} is not a directory. Pass run or sweep directories, e.g. "
                "outputs/multiruns/<time> (see `ls outputs/multiruns`)."
            )
        for run in find_runs(root):
            name = run.relative_to(root).as_posix() if run != root else run.name
            if len(dirs) > 1:  # a run given itself is named with its parent: ulmfit/seed=1
                name = f"{(root if run != root else root.parent).name}/{name}"
            rows.append(read_run(run, name))
    if not rows:
        raise SystemExit(
            f"compare.py: no run directories (with metrics.json or .hydra/) under "
            f"{', '.join(map(str, dirs))}. Point it at a sweep directory such as "
            "outputs/multiruns/<time>."
        )
    # settings: the overrides that tell this run apart from the others (runs without a Hydra
    # config, such as scripts/ensemble.py's averages, have none and share none)
    configured = [set(r["overrides"]) for r in rows if r["overrides"]]
    shared = set.intersection(*configured) if len(configured) > 1 else set()
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
