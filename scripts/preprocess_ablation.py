"""Measure the preprocessing options that matter: stopwords removed or kept, negations kept or not.

Trains the same model on the same stratified subset for each variant and prints a Markdown table
of accuracy, sequence length, tokenization time and training time.

    python scripts/preprocess_ablation.py --data ../shared/data/aclImdb_v1.tar.gz \
        --reviews 10000 --epochs 2 --model bilstm
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from rnnlab.data.corpus import tokenize_reviews
from rnnlab.data.preprocess import Preprocessor
from rnnlab.data.sources import load_reviews
from rnnlab.train import train

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "stopwords removed, negations kept (default)": [],
    "stopwords removed with negations (the tip's list)": ["data.preprocess.keep_negations=false"],
    "stopwords kept": ["data.preprocess.remove_stopwords=false"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=str(ROOT.parent / "shared" / "data" / "aclImdb_v1.tar.gz")
    )
    parser.add_argument("--reviews", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--model", default="bilstm")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    reviews = load_reviews(args.data)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in VARIANTS.items():
            with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
                cfg = compose(
                    "train",
                    overrides=[
                        f"model={args.model}",
                        f"data.path={args.data}",
                        f"data.max_reviews={args.reviews}",
                        f"trainer.max_epochs={args.epochs}",
                        f"seed={args.seed}",
                        "logger=[]",
                        "test=false",
                        "++trainer.enable_progress_bar=false",
                        *overrides,
                    ],
                )
            with open_dict(cfg):
                cfg.paths.cache_dir = f"{tmp}/cache"
                cfg.paths.data_dir = f"{tmp}/data"
                cfg.paths.output_dir = f"{tmp}/{len(rows)}"
            preprocess = Preprocessor(**cfg.data.preprocess)
            start = time.perf_counter()
            corpus = tokenize_reviews(reviews, preprocess)
            tokenize_s = time.perf_counter() - start
            start = time.perf_counter()
            metrics = train(cfg)
            rows.append(
                (
                    name,
                    " ".join(overrides) or "(none)",
                    metrics["val/acc_best"],
                    float(np.mean(corpus.lengths())),
                    tokenize_s,
                    time.perf_counter() - start,
                )
            )
    print(
        f"\n{args.model}, {args.reviews} reviews (seed split), {args.epochs} epochs, seed {args.seed}\n"
    )
    print("| variant | overrides | best val acc | mean tokens/review | tokenize 50k s | train s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, overrides, acc, length, tok_s, train_s in rows:
        print(
            f"| {name} | `{overrides}` | {acc:.4f} | {length:.0f} | {tok_s:.1f} | {train_s:.0f} |"
        )


if __name__ == "__main__":
    main()
