"""IMDB as a LightningDataModule: reading, cleaning, tokenizing, vocabulary and splitting."""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader

from rnnlab.data.batching import BucketBatchSampler, EncodedReviews, collate
from rnnlab.data.corpus import Corpus, cached_corpus
from rnnlab.data.preprocess import Preprocessor
from rnnlab.data.sources import (
    DEFAULT_LABELS,
    DataError,
    check_label_map,
    is_table,
    load_reviews,
    require_path,
)
from rnnlab.data.vocab import Vocab
from rnnlab.runtime import init_dataloader_worker, subnormal_flush

log = logging.getLogger(__name__)

SPLITS = ("tutorial", "holdout", "official")
# earlier names of splits: old configs, checkpoints and command lines keep working
RENAMED_SPLITS = {"seed": "tutorial"}


class IMDBDataModule(L.LightningDataModule):
    """Labeled reviews -> train/val/test loaders of padded token ids.

    Args:
        path: archive, aclImdb folder, CSV(.gz) or TSV(.gz); None downloads the Stanford archive
            to data_dir.
        split: {"name": "tutorial" | "holdout" | "official", "test_size", "val_fraction",
            "random_state"}.
            tutorial: the tutorial's protocol, all labeled reviews stratified 80/20; validation
            and test are the same 20% ("seed", its earlier name, is read as "tutorial"): for
            reproducing the tutorial only, since what is picked on validation is picked on test.
            holdout: all labeled reviews, a stratified test_size held out for test and a
            stratified val_fraction of the rest for validation.
            official: the dataset's own 25k train / 25k test; validation is a stratified
            fraction of train.
        preprocess: `Preprocessor` settings.
        vocab: {"min_freq", "max_size", "fit_on": "train" | "all", "order": "frequency" |
            "first_seen"}.
        max_reviews: a stratified subset of this many labeled reviews, for quick runs.
        train_reviews: train on a stratified subset of this many of the training part's reviews
            (validation and test stay as they are): learning curves, few-label experiments.
        min_epoch_reviews: each training epoch draws at least this many reviews, passing over a
            smaller training part several times (a new shuffle each pass): a few-label run
            then takes enough steps per epoch for epoch-wise schedules and early stopping.
        csv: {"text_column", "label_column", "labels": {value: 0/1} or None for
            {positive: 1, negative: 0}} for CSV and TSV sources.
        empty_reviews: "skip" leaves blank / whitespace-only / NaN reviews out (logged with a
            count), "error" refuses data that holds any.
    """

    def __init__(
        self,
        path: str | None = None,
        data_dir: str = "data",
        cache_dir: str | None = None,
        split: dict | None = None,
        preprocess: dict | None = None,
        vocab: dict | None = None,
        csv: dict | None = None,
        max_reviews: int | None = None,
        train_reviews: int | None = None,
        min_epoch_reviews: int | None = None,
        empty_reviews: str = "skip",
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        bucket: bool = True,
        num_workers: int = 0,
        seed: int = 42,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.split = {
            "name": "tutorial",
            "test_size": 0.2,
            "val_fraction": 0.1,
            "random_state": 42,
        }
        self.split.update(split or {})
        if self.split["name"] in RENAMED_SPLITS:
            new = RENAMED_SPLITS[self.split["name"]]
            log.info("Split %r is now called %r; reading it as that.", self.split["name"], new)
            self.split["name"] = new
        if self.split["name"] not in SPLITS:
            raise ValueError(f"split.name must be one of {SPLITS}, got {self.split['name']!r}")
        self.preprocessor = Preprocessor(**(preprocess or {}))
        self.vocab_settings = {
            "min_freq": 2,
            "max_size": 30_000,
            "fit_on": "train",
            "order": "frequency",
        }
        self.vocab_settings.update(vocab or {})
        self.csv = {
            "text_column": "review",
            "label_column": "sentiment",
            "labels": {"positive": 1, "negative": 0},
        }
        self.csv.update(csv or {})
        if self.csv["labels"] is None:  # data.csv.labels=null: the default mapping
            self.csv["labels"] = dict(DEFAULT_LABELS)
        self.vocab: Vocab | None = None
        # a vocabulary given from outside (a pretrained language model's) instead of one built
        # from the training reviews: use_vocabulary()
        self.fixed_vocab: Vocab | None = None
        self.sizes: dict[str, int] = {}
        self._sets: dict[str, EncodedReviews] = {}
        # each split's reviews as rows of the source as read: ids that pair runs review by review
        self.review_ids: dict[str, np.ndarray] = {}
        self._loaded: Corpus | None = None

    # -- where the data comes from -------------------------------------------------------------
    def source_path(self) -> Path:
        if self.hparams.path:
            return Path(self.hparams.path).expanduser()
        from rnnlab.data.download import ensure_imdb_archive

        return ensure_imdb_archive(Path(self.hparams.data_dir))

    def prepare_data(self) -> None:
        """Download (if needed) and build the token cache once, on rank 0 only."""
        self._corpus()

    def _corpus(self) -> Corpus:
        """The tokenized reviews, loaded once per process (prepare_data, then setup)."""
        if self._loaded is None:
            self._loaded = self._load_corpus()
        return self._loaded

    def _load_corpus(self) -> Corpus:
        path = require_path(self.source_path())
        settings: dict[str, Any] = {"preprocess": self.preprocessor.config()}
        if self.hparams.empty_reviews != "skip":  # keeps the keys of existing caches valid
            settings["empty_reviews"] = self.hparams.empty_reviews
        if not path.is_dir() and (".csv" in path.name.lower() or is_table(path)):
            check_label_map(self.csv["labels"])  # before a cache hit could skip reading
            settings["csv"] = {k: self.csv[k] for k in ("text_column", "label_column")}
            settings["csv"]["labels"] = {str(k): int(v) for k, v in self.csv["labels"].items()}

        def read():
            return load_reviews(
                path,
                self.csv["text_column"],
                self.csv["label_column"],
                dict(self.csv["labels"]),
                empty_reviews=self.hparams.empty_reviews,
            )

        cache_dir = self.hparams.cache_dir
        return cached_corpus(
            path, read, self.preprocessor, Path(cache_dir) if cache_dir else None, settings
        )

    # -- splits and vocabulary ------------------------------------------------------------------
    def use_vocabulary(self, itos: list[str]) -> None:
        """Encode reviews with this vocabulary (e.g. a pretrained language model's) instead of
        building one in `setup`; call before `setup`."""
        self.fixed_vocab = Vocab(itos)

    def split_rows(self) -> tuple[Corpus, dict[str, np.ndarray]]:
        """The tokenized labeled reviews and the rows of each part: train, val and test (the
        language model's pretraining reads the train rows only)."""
        corpus = self._corpus()
        _, train, val, test = self._rows(corpus)
        return corpus, {"train": train, "val": val, "test": test}

    def setup(self, stage: str | None = None) -> None:
        if self._sets:
            return
        corpus = self._corpus()
        rows, train, val, test = self._rows(corpus)
        self.vocab = self.fixed_vocab or self._build_vocab(
            corpus, rows if self.vocab_settings["fit_on"] == "all" else train
        )
        encoded = corpus.remapped(self.vocab.remap(corpus.tokens))
        for i in np.flatnonzero(corpus.lengths() == 0):
            encoded[i] = np.array([1], dtype=np.int64)  # an emptied review reads as <unk>
        max_len = self.preprocessor.max_len
        for name, part in (("train", train), ("val", val), ("test", test)):
            self._sets[name] = EncodedReviews([encoded[i] for i in part], corpus.labels[part])
            self.review_ids[name] = np.asarray(part, dtype=np.int64)
        self._loaded = None  # the sets hold what training needs
        self.sizes = {
            "train": len(train),
            "val": len(val),
            "test": len(test),
            "vocab": len(self.vocab),
        }
        log.info(
            "Split %s: %d train / %d val / %d test reviews, vocabulary %d tokens%s.",
            self.split["name"],
            len(train),
            len(val),
            len(test),
            len(self.vocab),
            f", max_len {max_len}" if max_len else "",
        )

    def _rows(self, corpus: Corpus) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The reviews used (all, or the max_reviews subset), then their train/val/test rows."""
        try:
            rows = self._subset(corpus)
            return rows, *self._split(corpus, rows)
        except DataError:
            raise
        except ValueError as err:  # scikit-learn: too few reviews of a class to stratify
            raise DataError(
                f"Cannot split the reviews of {self.source_path()} for split="
                f"{self.split['name']} ({err}). Each part needs reviews of both classes: use "
                "more reviews (a larger data.max_reviews, or null for all of them)."
            ) from err

    def token_splits(self) -> dict[str, tuple[list[list[str]], np.ndarray]]:
        """Train, val and test as (token lists, labels): the reviews `setup` splits, as words
        rather than vocabulary ids, for models that build their own features (the linear
        baseline). No vocabulary is built; `summary()` reports these split sizes."""
        corpus = self._corpus()
        _, train, val, test = self._rows(corpus)
        table = np.array(corpus.tokens, dtype=object)
        parts = {"train": train, "val": val, "test": test}
        self.sizes = {name: len(part) for name, part in parts.items()}
        self.review_ids = {name: np.asarray(part, dtype=np.int64) for name, part in parts.items()}
        self._loaded = None
        return {
            name: ([table[corpus.review(i)].tolist() for i in part], corpus.labels[part])
            for name, part in parts.items()
        }

    def _subset(self, corpus: Corpus) -> np.ndarray:
        rows = np.arange(len(corpus))
        n = self.hparams.max_reviews
        if n is None or n >= len(corpus):
            if n is not None and n > len(corpus):
                raise DataError(
                    f"data.max_reviews={n} is larger than the {len(corpus)} labeled reviews in "
                    f"{self.source_path()}. Use a smaller number or leave it unset (null)."
                )
            return rows
        strata = (
            corpus.labels
            if corpus.official is None
            else np.char.add(corpus.official, corpus.labels.astype(str))
        )
        subset, _ = train_test_split(
            rows, train_size=n, stratify=strata, random_state=self.split["random_state"]
        )
        return np.sort(subset)

    def _split(self, corpus: Corpus, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(train, val, test) rows: the protocol's test part, then validation carved out of the
        rest (the tutorial's protocol alone validates on its test part)."""
        if self.split["name"] == "official":
            train_all, test = self._official_parts(corpus, rows)
        else:
            train_all, test = train_test_split(
                rows,
                test_size=self.split["test_size"],
                random_state=self.split["random_state"],
                stratify=corpus.labels[rows],
            )
        if self.split["name"] == "tutorial":
            log.warning(
                "split=tutorial: validation and test are the same %d reviews (the tutorial's "
                "protocol, for reproducing it). An epoch or setting picked on val/acc is picked "
                "on the test set; for numbers to report, use split=holdout or split=official.",
                len(test),
            )
            return self._fewer_training_reviews(corpus, train_all), test, test
        train, val = train_test_split(
            train_all,
            test_size=self.split["val_fraction"],
            random_state=self.split["random_state"],
            stratify=corpus.labels[train_all],
        )
        return self._fewer_training_reviews(corpus, train), val, test

    def _fewer_training_reviews(self, corpus: Corpus, train: np.ndarray) -> np.ndarray:
        """data.train_reviews: a stratified subset of the training part (same seedless choice for
        every run, so runs at one size see the same reviews)."""
        n = self.hparams.train_reviews
        if n is None or n == len(train):
            return train
        if n > len(train):
            raise DataError(
                f"data.train_reviews={n} is more than the {len(train)} reviews of the training "
                f"part of split={self.split['name']}. Use at most {len(train)}, or null for all."
            )
        subset, _ = train_test_split(
            train,
            train_size=n,
            random_state=self.split["random_state"],
            stratify=corpus.labels[train],
        )
        return np.sort(subset)

    def _official_parts(self, corpus: Corpus, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The dataset's own train and test rows among `rows`."""
        if corpus.official is None:
            raise DataError(
                f"split=official needs the dataset's own train/test split, but "
                f"{self.source_path()} (a CSV or TSV) has none. Use the Stanford archive or "
                "folder as data.path, or split=tutorial."
            )
        official = corpus.official[rows]
        train_all, test = rows[official == "train"], rows[official == "test"]
        if not len(train_all) or not len(test):
            raise DataError(
                f"split=official needs reviews under both train/ and test/, but "
                f"{self.source_path()} has {len(train_all)} train and {len(test)} test reviews. "
                "Use split=tutorial, which splits the labeled reviews itself."
            )
        return train_all, test

    def _build_vocab(self, corpus: Corpus, rows: np.ndarray) -> Vocab:
        counts = corpus.counts(rows)
        build = (
            Vocab.first_seen if self.vocab_settings["order"] == "first_seen" else Vocab.from_counts
        )
        return build(
            corpus.tokens, counts, self.vocab_settings["min_freq"], self.vocab_settings["max_size"]
        )

    # -- loaders ---------------------------------------------------------------------------------
    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        data = self._sets[name]
        batch_size = (
            self.hparams.batch_size
            if shuffle
            else (self.hparams.eval_batch_size or self.hparams.batch_size)
        )
        sampler = BucketBatchSampler(
            np.array([len(r) for r in data.reviews]),
            batch_size,
            shuffle=shuffle,
            seed=self.hparams.seed,
            bucket=self.hparams.bucket,
            min_samples=self.hparams.min_epoch_reviews if shuffle else None,
        )
        workers = self.hparams.num_workers
        return DataLoader(
            data,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=workers,
            persistent_workers=workers > 0,
            # a loader of its own for the seed each iterator draws: otherwise every epoch start
            # draws from the global generator that dropout uses, at points a resumed run cannot
            # repeat, and a resumed run's dropout masks would differ from an uninterrupted one's
            generator=torch.Generator().manual_seed(self.hparams.seed),
            # workers compute with this process's subnormal flush (rnnlab.runtime)
            worker_init_fn=partial(
                init_dataloader_worker,
                flush=subnormal_flush(),
                rank=self.trainer.global_rank if self.trainer else 0,
            )
            if workers > 0
            else None,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def summary(self) -> dict[str, Any]:
        """What metrics.json records about the data."""
        return {
            "source": str(
                self.hparams.path or os.path.join(self.hparams.data_dir, "aclImdb_v1.tar.gz")
            ),
            "split": self.split["name"],
            "sizes": dict(self.sizes),
            "max_reviews": self.hparams.max_reviews,
            "preprocess": self.preprocessor.config(),
        }
