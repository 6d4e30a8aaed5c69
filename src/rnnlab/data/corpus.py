"""Tokenized reviews, built in parallel once and cached on disk under a content-derived key.

A corpus stores every review as ids into a corpus-wide token table (tokens in order of first
appearance). Training vocabularies are then derived from it in milliseconds with `np.bincount`,
for whichever split, size cap and frequency floor a run asks for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab.atomic import atomic_write
from rnnlab.data.preprocess import Preprocessor
from rnnlab.data.sources import Reviews

log = logging.getLogger(__name__)

CACHE_FORMAT = 2  # 2: letters-only tokens split "wanna" at a text's end too, as NLTK does
_CHUNK = 2000


@dataclass
class Corpus:
    tokens: list[str]  # corpus-wide token table, first-seen order
    ids: np.ndarray  # int32, all reviews' token ids concatenated
    offsets: np.ndarray  # int64, review i is ids[offsets[i]:offsets[i + 1]]
    labels: np.ndarray  # int64
    official: np.ndarray | None  # "train"/"test" per review, or None

    def __len__(self) -> int:
        return len(self.labels)

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def review(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def counts(self, rows: np.ndarray | None = None) -> np.ndarray:
        """How often each corpus token occurs in the given reviews (all reviews by default)."""
        if rows is None:
            return np.bincount(self.ids, minlength=len(self.tokens))
        times = np.bincount(np.asarray(rows, dtype=np.int64), minlength=len(self))
        weights = np.repeat(times, self.lengths())  # each token, as often as its review is picked
        return np.bincount(self.ids, weights=weights, minlength=len(self.tokens)).astype(np.int64)

    def remapped(self, lookup: np.ndarray) -> list[np.ndarray]:
        """Every review's ids through `lookup` (corpus token -> vocabulary id), in one pass."""
        return np.split(lookup[self.ids], self.offsets[1:-1])


def tokenize_reviews(
    reviews: Reviews, preprocess: Preprocessor, workers: int | None = None
) -> Corpus:
    """Tokenize every review, in parallel processes for large inputs."""
    chunks = [reviews.texts[i : i + _CHUNK] for i in range(0, len(reviews.texts), _CHUNK)]
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers > 1 and len(chunks) > 1:
        preprocess.config()  # fail fast on bad settings before forking
        if preprocess.remove_stopwords or preprocess.mode == "seed_tip":
            from rnnlab.data.preprocess import english_stopwords

            english_stopwords()  # load once here so a missing corpus fails with one message
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_tokenize_chunk, chunks, [preprocess] * len(chunks)))
    else:
        parts = [_tokenize_chunk(chunk, preprocess) for chunk in chunks]

    table: dict[str, int] = {}
    ids, lengths = [], []
    for local_tokens, local_ids, local_lengths in parts:
        remap = np.array([table.setdefault(t, len(table)) for t in local_tokens], dtype=np.int32)
        ids.append(remap[local_ids] if len(local_ids) else local_ids)
        lengths.append(local_lengths)
    lengths_all = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    return Corpus(
        tokens=list(table),
        ids=np.concatenate(ids) if ids else np.zeros(0, dtype=np.int32),
        offsets=np.concatenate([[0], np.cumsum(lengths_all)]).astype(np.int64),
        labels=np.asarray(reviews.labels, dtype=np.int64),
        official=reviews.official,
    )


def _tokenize_chunk(texts: list[str], preprocess: Preprocessor):
    table: dict[str, int] = {}
    ids: list[int] = []
    lengths = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        tokens = preprocess(text)
        ids.extend(table.setdefault(t, len(table)) for t in tokens)
        lengths[i] = len(tokens)
    return list(table), np.array(ids, dtype=np.int32), lengths


def fingerprint(path: str | Path) -> str:
    """Content hash of a file; for a folder, a hash of its review files' names, sizes and mtimes."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for file in sorted(path.rglob("*.txt")):
            stat = file.stat()
            digest.update(
                f"{file.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
    else:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def cache_key(source_fingerprint: str, settings: dict) -> str:
    blob = json.dumps(
        {"format": CACHE_FORMAT, "source": source_fingerprint, **settings}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def save_corpus(corpus: Corpus, file: Path, meta: dict) -> None:
    """Write atomically (temp file + rename): readers never see a half-written cache."""
    arrays = {
        "tokens": np.frombuffer("\n".join(corpus.tokens).encode("utf-8"), dtype=np.uint8),
        "ids": corpus.ids,
        "offsets": corpus.offsets,
        "labels": corpus.labels,
        "official": corpus.official if corpus.official is not None else np.array([], dtype="<U5"),
    }
    meta = {**meta, "checksum": _checksum(arrays)}
    atomic_write(file, lambda f: np.savez(f, meta=np.array(json.dumps(meta)), **arrays))


def load_corpus(file: Path) -> Corpus | None:
    """The cached corpus, or None if absent or damaged (a damaged file is reported and ignored)."""
    if not file.exists():
        return None
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ("tokens", "ids", "offsets", "labels", "official")}
            meta = json.loads(str(npz["meta"]))
    except (
        OSError,
        ValueError,
        KeyError,
        EOFError,
        zipfile.BadZipFile,
        json.JSONDecodeError,
    ) as err:
        log.warning("Cache %s is unreadable (%s); rebuilding it.", file, err)
        return None
    if meta.get("checksum") != _checksum(arrays):
        log.warning("Cache %s fails its checksum (edited or truncated); rebuilding it.", file)
        return None
    tokens = arrays["tokens"].tobytes().decode("utf-8")
    return Corpus(
        tokens=tokens.split("\n") if tokens else [],
        ids=arrays["ids"],
        offsets=arrays["offsets"],
        labels=arrays["labels"],
        official=arrays["official"] if len(arrays["official"]) else None,
    )


def cached_corpus(
    source: Path, read, preprocess: Preprocessor, cache_dir: Path | None, settings: dict
) -> Corpus:
    """Load the corpus for (source, settings) from the cache, or read + tokenize + cache it."""
    if cache_dir is None:
        return tokenize_reviews(read(), preprocess)
    key = cache_key(fingerprint(source), settings)
    file = Path(cache_dir) / f"corpus-{key}.npz"
    start = time.perf_counter()
    corpus = load_corpus(file)
    if corpus is not None:
        log.info(
            "Loaded tokenized reviews from cache %s in %.2fs (tokenization skipped).",
            file,
            time.perf_counter() - start,
        )
        return corpus
    reviews = read()
    corpus = tokenize_reviews(reviews, preprocess)
    save_corpus(corpus, file, {"key": key, "source": str(source), **settings})
    log.info(
        "Tokenized %d reviews in %.1fs; cached as %s.",
        len(corpus),
        time.perf_counter() - start,
        file,
    )
    return corpus
