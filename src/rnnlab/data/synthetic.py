"""Synthetic movie reviews with learnable sentiment, written in every format rnnlab reads.

Tests train on these in seconds instead of touching the real IMDB: each review mixes neutral
filler with more words of its own sentiment than of the other, plus HTML and punctuation noise
so the cleaning steps are exercised.
"""

from __future__ import annotations

import csv
import gzip
import io
import tarfile
from pathlib import Path

import numpy as np

POSITIVE = [
    "great",
    "excellent",
    "wonderful",
    "superb",
    "brilliant",
    "moving",
    "delightful",
    "masterpiece",
    "loved",
    "beautiful",
]
NEGATIVE = [
    "awful",
    "terrible",
    "boring",
    "dull",
    "waste",
    "predictable",
    "horrible",
    "worst",
    "bad",
    "annoying",
]
NEUTRAL = [
    "movie",
    "film",
    "plot",
    "actor",
    "actress",
    "scene",
    "story",
    "character",
    "director",
    "camera",
    "music",
    "script",
    "ending",
    "the",
    "a",
    "and",
    "of",
    "to",
    "in",
    "it",
    "was",
    "this",
    "that",
    "with",
    "for",
    "as",
    "on",
    "by",
    "an",
    "at",
    "from",
    "his",
    "her",
    "they",
]


def synthetic_reviews(
    n: int, seed: int = 0, min_len: int = 15, max_len: int = 60
) -> tuple[list[str], np.ndarray]:
    """`n` reviews, balanced labels (1 = positive)."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2)
    texts = []
    for label in labels:
        own, other = (POSITIVE, NEGATIVE) if label == 1 else (NEGATIVE, POSITIVE)
        length = int(rng.integers(min_len, max_len + 1))
        words = list(rng.choice(NEUTRAL, size=length))
        for word in rng.choice(own, size=int(rng.integers(3, 6))):
            words.insert(int(rng.integers(0, len(words) + 1)), str(word))
        for word in rng.choice(other, size=int(rng.integers(0, 2))):
            words.insert(int(rng.integers(0, len(words) + 1)), str(word))
        text = " ".join(words).capitalize() + "."
        if rng.random() < 0.3:
            text = text.replace(" the ", " the<br /><br />", 1)
        texts.append(text)
    return texts, labels


def write_dataset(
    root: str | Path, n: int, kind: str = "archive", seed: int = 0, unlabeled: int = 1
) -> Path:
    """Write `n` reviews as an aclImdb archive ("archive"), folder ("folder") or CSV.gz ("csv").

    Half the reviews go to the official train split and half to test; an archive or folder also
    gets `unlabeled` reviews in train/unsup (the language model's corpus). Returns the path to
    pass as `data.path`.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    texts, labels = synthetic_reviews(n, seed)
    if kind == "csv":
        path = root / "reviews.csv.gz"
        with gzip.open(path, "wt", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["review", "sentiment"])
            writer.writerows(
                (t, "positive" if y else "negative") for t, y in zip(texts, labels, strict=True)
            )
        return path
    files = {}
    for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
        split = "train" if i % 2 == 0 else "test"
        rating = 8 if label else 2
        files[f"aclImdb/{split}/{'pos' if label else 'neg'}/{i}_{rating}.txt"] = text.encode()
    files["aclImdb/train/unsup/0_0.txt"] = b"An unlabeled review that readers skip."
    extra, _ = synthetic_reviews(max(0, unlabeled - 1), seed + 1)
    for i, text in enumerate(extra, start=1):
        files[f"aclImdb/train/unsup/{i}_0.txt"] = text.encode()
    if kind == "folder":
        for name, data in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        return root / "aclImdb"
    if kind != "archive":
        raise ValueError(f"kind must be archive, folder or csv, got {kind!r}")
    path = root / "aclImdb_v1.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path
