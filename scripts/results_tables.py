"""Train every run of the results tables (docs/results.md), resuming where an earlier call stopped.

    python scripts/results_tables.py --data ../shared/data/aclImdb_v1.tar.gz
    python scripts/results_tables.py --data $D --table tutorial --seeds 1 2 3
    python scripts/results_tables.py --data $D --list          # what is done, what is left
    python scripts/results_tables.py --summary                 # the README's results table
    python scripts/results_tables.py --data $D --lm <LM run>/checkpoints/epoch_NNN.ckpt   # + ULMFiT
    python scripts/results_tables.py --data $D --lm <LM> --lm-backward <backward LM>   # + its pair
    python scripts/results_tables.py --data $D --extra runtime.threads=1   # one per core, side by side
    python scripts/compare.py outputs/results/official/tutorial --out docs/results/tutorial

Each row is a configuration fixed beforehand (a model and a recipe on split=official); each
(row, seed) is one `python train.py` run in `OUT/official/<table>/<row>/seed=<n>`. A run whose
metrics.json says "completed" is skipped; one with a checkpoints/last.ckpt resumes from it, so a
killed call continues where it stopped. Calls side by side share the runs: each run is locked
while it trains (OUT/.locks), and a call skips the runs another call holds. Runs go seed by
seed (every row's seed 1 first), so an interrupted table is complete for the first seeds. The linear baselines are fitted once: they
have no random initialisation or data order.

The epoch, the hyperparameters and the recipe are all chosen on validation (4-10% of the
official training part); the test reviews are scored once, at the end of each run, on the best
validation checkpoint. Nothing here looks at a test number to decide anything.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rnnlab.record import read_metrics
from rnnlab.significance import t_interval

# table -> row -> overrides of `python train.py` (all on split=official)
TABLES: dict[str, dict[str, list[str]]] = {
    # fitted once (deterministic)
    "linear": {
        "tfidf_logreg": ["experiment=tfidf_logreg"],
        "nbsvm": ["experiment=nbsvm"],
    },
    # the tutorial's training settings (recipe=tutorial: embedding and hidden 128, final state, no
    # dropout, AdamW 1e-3, batch 64, up to 15 epochs) on the official split; early stopping
    # (patience 3) ends runs whose validation accuracy has stopped rising, the best epoch on
    # validation being the one tested either way
    "tutorial": {
        model: [
            f"model={model}",
            "recipe=tutorial",
            "callbacks=[default,early_stopping]",
            *(["model.pooling=max"] if model == "cnn" else []),
        ]
        for model in ("rnn", "lstm", "gru", "bilstm", "cnn")
    },
    # the tuned recipes (conf/recipe/tuned*.yaml)
    "tuned": {
        "rnn": ["experiment=rnn_tuned"],
        "lstm": ["experiment=lstm_tuned"],
        "gru": ["experiment=gru_tuned"],
        "bilstm": ["experiment=bilstm_tuned"],
        "bilstm_official": ["experiment=bilstm_tuned_official"],
        "cnn": ["experiment=cnn_tuned"],
    },
}
SINGLE_FIT_TABLES = {"linear"}
# with --lm (a pretrained forward language model, python pretrain.py lm=ulmfit): ULMFiT against
# the same classifier from scratch
PRETRAINED_TABLE = {
    "ulmfit": ["experiment=ulmfit", "pretrained={lm}"],
    "ulmfit_scratch": ["experiment=ulmfit_scratch"],
}
# with --lm: what each fine-tuning ingredient adds, measured on validation only (test=false), one
# seed. The ablation runs from scratch (the pretrained table's ulmfit_scratch, seed 1), then the
# pretrained model fine-tuned plainly (final-state pooling, one rate, a cosine schedule, all layers
# at once), then each of ULMFiT's tools added in turn, up to the whole recipe (the pretrained
# table's ulmfit, seed 1). Its two ends are those runs, not trained again: the same configuration
# and seed train the same epochs whether or not the test set is scored afterwards.
PLAIN = [
    "model.pooling=final",
    "model.discriminative_lr=null",
    "model.scheduler._target_=torch.optim.lr_scheduler.CosineAnnealingLR",
    "~model.scheduler.cut_frac",
    "~model.scheduler.ratio",
    "+model.scheduler.T_max=${trainer.max_epochs}",
    "callbacks=[default,early_stopping]",
]
CURVE_SIZES = (100, 1000, 10000)
ABLATION_TABLE = {
    "1_pretrained_plain": ["experiment=ulmfit", "pretrained={lm}", "test=false", *PLAIN],
    "2_concat_pooling": [
        "experiment=ulmfit",
        "pretrained={lm}",
        "test=false",
        *[o for o in PLAIN if o != "model.pooling=final"],
    ],
    "3_discriminative": [
        "experiment=ulmfit",
        "pretrained={lm}",
        "test=false",
        *[o for o in PLAIN if o not in ("model.pooling=final", "model.discriminative_lr=null")],
    ],
    "4_slanted_triangular": [
        "experiment=ulmfit",
        "pretrained={lm}",
        "test=false",
        "callbacks=[default,early_stopping]",
    ],
}
# the README's results table: the headline tables' rows, in words (`--summary`)
MODEL_NAMES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "bilstm": "BiLSTM", "cnn": "CNN"}
SUMMARY_LABELS = {
    "ensemble/ulmfit_fwd+bwd": "LSTM 512 fine-tuned from the forward and from the backward "
    "language model, predictions averaged (`experiment=ulmfit` twice, `scripts/ensemble.py`)",
    "linear/nbsvm": "NB-SVM (`experiment=nbsvm`)",
    "linear/tfidf_logreg": "TF-IDF + logistic regression (`experiment=tfidf_logreg`)",
    "pretrained/ulmfit": "LSTM 512 fine-tuned from the forward language model (`experiment=ulmfit`)",
    "pretrained/ulmfit_backward": "LSTM 512 fine-tuned from the backward language model "
    "(`experiment=ulmfit`)",
    "pretrained/ulmfit_scratch": "LSTM 512, ULMFiT's classifier recipe from scratch "
    "(`experiment=ulmfit_scratch`)",
    **{f"tutorial/{m}": f"{name}, tutorial settings" for m, name in MODEL_NAMES.items()},
    **{
        f"tuned/{m}": f"{name}, tuned recipe (`experiment={m}_tuned`)"
        for m, name in MODEL_NAMES.items()
    },
    "tuned/bilstm_official": "BiLSTM, tuned on the official split (`experiment=bilstm_tuned_official`)",
}
COMMON = ["split=official"]
# the trained models' runs log each epoch to train.log; no progress bar in the driver's output
QUIET = ["++trainer.enable_progress_bar=false"]


def run_state(run_dir: Path) -> str:
    """completed | resumable | new."""
    metrics = run_dir / "metrics.json"
    if metrics.is_file():
        try:
            if json.loads(metrics.read_text()).get("status") == "completed":
                return "completed"
        except ValueError:
            pass
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        return "resumable"
    return "new"


@contextmanager
def run_lock(out: Path, run_dir: Path) -> Iterator[bool]:
    """Hold a run's lock while it trains (True), or say that another call holds it (False):
    several calls on one OUT, e.g. one per CPU core, share the runs out between them."""
    locks = out / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    name = "_".join(run_dir.relative_to(out).parts)
    with open(locks / f"{name}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def planned_runs(
    tables: list[str],
    seeds: list[int],
    out: Path,
    lm: str | None = None,
    lm_backward: str | None = None,
) -> list[tuple[Path, list[str]]]:
    """(run directory, overrides) of every run, seed by seed."""
    all_tables = dict(TABLES)
    if lm:
        all_tables["pretrained"] = {
            row: [o.format(lm=lm) for o in overrides] for row, overrides in PRETRAINED_TABLE.items()
        }
        if lm_backward:  # ULMFiT's backward classifier, averaged with the forward one by seed
            all_tables["pretrained"]["ulmfit_backward"] = [
                o.format(lm=lm_backward) for o in PRETRAINED_TABLE["ulmfit"]
            ]
        all_tables["ablation"] = {
            row: [o.replace("{lm}", lm) for o in overrides]
            for row, overrides in ABLATION_TABLE.items()
        }
        # the learning curve: 100, 1,000 and 10,000 labelled training reviews
        for name, base in (
            ("curve_pretrained", PRETRAINED_TABLE["ulmfit"]),
            ("curve_scratch", PRETRAINED_TABLE["ulmfit_scratch"]),
        ):
            all_tables[name] = {
                f"n{n}": [*(o.format(lm=lm) for o in base), f"data.train_reviews={n}"]
                for n in CURVE_SIZES
            }
        tables = [*tables, "pretrained", "ablation", "curve_pretrained", "curve_scratch"]
    runs = []
    for i, seed in enumerate(seeds):
        for table in tables:
            if (table in SINGLE_FIT_TABLES or table == "ablation") and i > 0:
                continue
            for row, overrides in all_tables[table].items():
                run_dir = out / "official" / table / row / f"seed={seed}"
                quiet = [] if table in SINGLE_FIT_TABLES else QUIET
                runs.append((run_dir, [*overrides, *COMMON, *quiet, f"seed={seed}"]))
    return runs


def summary(out: Path) -> str:
    """The README's results table: each headline row's test accuracy, mean ± std over its
    completed seeds (the seeds in brackets), best first."""
    rows = []
    for key, label in SUMMARY_LABELS.items():
        accuracies = []
        for metrics in sorted((out / "official" / key).glob("seed=*/metrics.json")):
            record = read_metrics(metrics)
            accuracy = (record.get("test") or {}).get("test/acc")
            if record.get("status") == "completed" and accuracy is not None:
                accuracies.append(100 * accuracy)
        if not accuracies:
            continue
        if key.split("/")[0] in SINGLE_FIT_TABLES:
            cell = f"{accuracies[0]:.2f} (1 fit)"
        elif len(accuracies) == 1:
            cell = f"{accuracies[0]:.2f} (1)"
        else:
            mean, std, _ = t_interval(accuracies)  # as compare.py pools seeds
            cell = f"{mean:.2f} ± {std:.2f} ({len(accuracies)})"
        rows.append((sum(accuracies) / len(accuracies), f"| {label} | {cell} |"))
    lines = ["| model | test acc % (seeds) |", "| --- | ---: |"]
    return "\n".join(lines + [line for _, line in sorted(rows, key=lambda r: -r[0])]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="aclImdb_v1.tar.gz or its folder (to train)")
    parser.add_argument("--table", nargs="+", choices=list(TABLES), default=list(TABLES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=Path("outputs/results"))
    parser.add_argument(
        "--lm",
        help="a pretrained forward language model's checkpoint: adds the pretrained and "
        "ablation tables (ULMFiT)",
    )
    parser.add_argument(
        "--lm-backward",
        help="with --lm: a backward language model's checkpoint (lm.direction=backward); adds "
        "the row pretrained/ulmfit_backward, for scripts/ensemble.py to average with ulmfit",
    )
    parser.add_argument(
        "--extra",
        nargs="*",
        default=[],
        help="overrides added to every run that change how it computes, not what, e.g. "
        "runtime.threads=1 (beside another job) or trainer=gpu",
    )
    parser.add_argument(
        "--rows", nargs="+", metavar="TABLE/ROW", help="only these rows, e.g. tuned/cnn"
    )
    parser.add_argument("--list", action="store_true", help="show each run's state and stop")
    parser.add_argument(
        "--summary",
        action="store_true",
        help="print the README's results table from the finished runs in --out and stop",
    )
    args = parser.parse_args(argv)
    if args.summary:
        print(summary(args.out), end="")
        return 0
    if not args.data:
        parser.error("--data is required to train (or --list) the runs: the archive or folder")

    if args.lm_backward and not args.lm:
        parser.error("--lm-backward pairs with a forward language model: give --lm too")
    runs = planned_runs(args.table, args.seeds, args.out, args.lm, args.lm_backward)
    if args.rows:
        runs = [(d, o) for d, o in runs if f"{d.parent.parent.name}/{d.parent.name}" in args.rows]
    if args.list:
        for run_dir, _ in runs:
            print(f"{run_state(run_dir):10s} {run_dir}")
        return 0
    busy = []
    for run_dir, overrides in runs:
        if run_state(run_dir) == "completed":
            continue
        with run_lock(args.out, run_dir) as locked:
            if not locked:  # another call is training it: leave it to that call
                busy.append(run_dir)
                print(f"[busy] {run_dir}: another call is training it", flush=True)
                continue
            state = run_state(run_dir)  # again, now that no other call can change it
            if state == "completed":
                continue
            command = [sys.executable, "train.py", *overrides, *args.extra]
            command += [f"data.path={args.data}", f"hydra.run.dir='{run_dir}'"]
            if state == "resumable":
                command.append(f"ckpt_path='{run_dir / 'checkpoints' / 'last.ckpt'}'")
            print(f"[{state}] {run_dir}: {' '.join(overrides)}", flush=True)
            code = subprocess.call(command)
        if code != 0:
            print(f"results_tables.py: {run_dir} failed (exit {code}); see its train.log")
            return code
    busy = [run_dir for run_dir in busy if run_state(run_dir) != "completed"]
    if busy:
        print(f"{len(busy)} runs are still training in another call; call again later.")
        return 0
    print(
        "All runs completed. Tables: python scripts/compare.py OUT/official/<table> --markdown; "
        "learning curve: python scripts/learning_curve.py "
        "pretrained=OUT/official/curve_pretrained,OUT/official/pretrained/ulmfit "
        "scratch=OUT/official/curve_scratch,OUT/official/pretrained/ulmfit_scratch "
        "--out OUT/learning_curve; ablation (validation): python scripts/compare.py "
        "OUT/official/pretrained/ulmfit_scratch/seed=1 OUT/official/ablation "
        "OUT/official/pretrained/ulmfit/seed=1 --no-pairs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
