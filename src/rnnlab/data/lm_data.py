"""The language model's corpus as a LightningDataModule of windows over one token stream.

Corpus: the training part of the chosen split (train minus validation: never a test review, nor
a review the classifiers are selected on) plus the archive's unlabeled reviews (train/unsup),
less `val_reviews` unlabeled ones held out to measure perplexity. The vocabulary is built on
that corpus, most frequent first (adaptive softmax's clusters are frequency bands), after
`<pad>`, `<unk>` and `<eos>`.

Stream: each pass over the corpus shuffles the reviews (seeded by the seed and the pass), joins
them with `<eos>` after each, and cuts the stream into `batch_size` parallel rows; a batch is
the next `bptt` steps of every row, so each row reads on where the previous batch stopped
(truncated backpropagation through time). `direction=backward` reverses the stream: a backward
language model reads every review from its end.

Epochs: a pass is cut into `segments` epochs. Each ends with validation and a checkpoint, so a
long pretraining can be stopped (even killed) and resumed from its last epoch with nothing but
that epoch's progress lost, and the resumed run repeats the uninterrupted one exactly: which
windows an epoch trains on follows from its number alone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from rnnlab.data.corpus import Corpus, cached_corpus
from rnnlab.data.datamodule import IMDBDataModule
from rnnlab.data.sources import DataError, read_unlabeled, require_path
from rnnlab.data.vocab import PAD, UNK, Vocab

log = logging.getLogger(__name__)

EOS = "<eos>"
EOS_ID = 2
DIRECTIONS = ("forward", "backward")


class TokenWindows:
    """(inputs, targets) of windows [start, stop) of `bptt` steps over a (B, L) stream: window w
    reads steps w*bptt .. w*bptt + bptt - 1 of every row and predicts the step after each."""

    def __init__(self, stream: torch.Tensor, bptt: int, start: int = 0, stop: int | None = None):
        self.stream, self.bptt = stream, bptt
        self.start, self.stop = start, window_count(stream.size(1), bptt) if stop is None else stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for w in range(self.start, self.stop):
            chunk = self.stream[:, w * self.bptt : w * self.bptt + self.bptt + 1]
            yield chunk[:, :-1], chunk[:, 1:]


def window_count(length: int, bptt: int) -> int:
    """Windows of a row of `length` tokens (the last may be shorter; each needs a target)."""
    return max(0, math.ceil((length - 1) / bptt))


def join_reviews(reviews: list[np.ndarray], order: np.ndarray) -> np.ndarray:
    """The reviews in `order`, each followed by <eos>, as one int64 stream."""
    eos = np.array([EOS_ID], dtype=np.int64)
    parts = [part for i in order for part in (reviews[i], eos)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def batchify(stream: np.ndarray, rows: int) -> torch.Tensor:
    """(rows, len // rows): row r is the r-th consecutive stretch of the stream."""
    length = len(stream) // rows
    return torch.from_numpy(np.ascontiguousarray(stream[: rows * length].reshape(rows, length)))


class LMDataModule(L.LightningDataModule):
    """Windows of the language-model corpus (see the module docstring).

    Args beyond IMDBDataModule's (path, data_dir, cache_dir, split, preprocess, csv,
    max_reviews, empty_reviews, seed):
        vocab: {"min_freq", "max_size"} (max_size includes <pad>, <unk> and <eos>).
        max_unlabeled: read only this many unlabeled reviews (quick runs); null = all.
        val_reviews: unlabeled reviews held out to measure perplexity (from the training part
            when the source has no unlabeled reviews, as a CSV has none).
        batch_size: parallel rows of the stream; bptt: steps per window.
        segments: epochs per pass over the corpus.
        direction: forward, or backward (every review read from its end).
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
        empty_reviews: str = "skip",
        max_unlabeled: int | None = None,
        val_reviews: int = 1000,
        batch_size: int = 64,
        bptt: int = 70,
        segments: int = 1,
        direction: str = "forward",
        seed: int = 42,
    ):
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self.save_hyperparameters()
        self.labeled = IMDBDataModule(
            path=path,
            data_dir=data_dir,
            cache_dir=cache_dir,
            split=split,
            preprocess=preprocess,
            csv=csv,
            max_reviews=max_reviews,
            empty_reviews=empty_reviews,
            seed=seed,
        )
        self.preprocessor = self.labeled.preprocessor
        self.vocab_settings = {"min_freq": 2, "max_size": 30_000, **(vocab or {})}
        self.vocab: Vocab | None = None
        self.train_reviews: list[np.ndarray] = []
        self.val_stream: torch.Tensor | None = None
        self.sizes: dict[str, int] = {}
        self.rows: dict[str, np.ndarray] = {}
        self.val_source = ""
        self._pass: tuple[int, torch.Tensor] | None = None

    def prepare_data(self) -> None:
        self.labeled.prepare_data()

    def _unlabeled(self) -> Corpus:
        source = require_path(self.labeled.source_path())
        settings = {"preprocess": self.preprocessor.config(), "part": "unlabeled"}
        cache_dir = self.hparams.cache_dir
        return cached_corpus(
            source,
            lambda: read_unlabeled(source),
            self.preprocessor,
            Path(cache_dir) if cache_dir else None,
            settings,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.vocab is not None:
            return
        labeled, parts = self.labeled.split_rows()
        unlabeled = self._unlabeled()
        unlabeled_rows = np.arange(len(unlabeled))
        if self.hparams.max_unlabeled is not None:
            unlabeled_rows = unlabeled_rows[: self.hparams.max_unlabeled]
        # perplexity is measured on held-out unlabeled reviews (or training ones without any)
        held_out = self.hparams.val_reviews
        shuffled = np.random.default_rng(self.labeled.split["random_state"])
        train_rows = parts["train"]
        if len(unlabeled_rows) >= 2 * held_out:
            unlabeled_rows = shuffled.permutation(unlabeled_rows)
            source, rows = "unlabeled", unlabeled_rows[:held_out]
            unlabeled_rows = unlabeled_rows[held_out:]
        else:
            if len(train_rows) < 2 * held_out:
                raise DataError(
                    f"The language model's corpus is too small for data.val_reviews={held_out}: "
                    f"{len(train_rows)} training reviews and {len(unlabeled_rows)} unlabeled "
                    "ones. Lower data.val_reviews or use more reviews."
                )
            train_rows = shuffled.permutation(train_rows)
            source, rows = "labeled", train_rows[:held_out]
            train_rows = train_rows[held_out:]
        train_rows, unlabeled_rows = np.sort(train_rows), np.sort(unlabeled_rows)
        # which reviews went where: labeled rows of the source as read, unlabeled rows in
        # file-number order
        self.rows = {"train": train_rows, "unlabeled": unlabeled_rows, "val": np.sort(rows)}
        self.val_source = source
        self.vocab = self._build_vocab(labeled, train_rows, unlabeled, unlabeled_rows)
        to_labeled = self.vocab.remap(labeled.tokens)
        to_unlabeled = self.vocab.remap(unlabeled.tokens) if unlabeled.tokens else None
        self.train_reviews = [to_labeled[labeled.review(i)] for i in train_rows]
        if to_unlabeled is not None:
            self.train_reviews += [to_unlabeled[unlabeled.review(i)] for i in unlabeled_rows]
        corpus, lookup = (
            (unlabeled, to_unlabeled) if source == "unlabeled" else (labeled, to_labeled)
        )
        val_reviews = [lookup[corpus.review(i)] for i in np.sort(rows)]
        self.val_stream = batchify(
            self._directed(join_reviews(val_reviews, np.arange(len(val_reviews)))),
            self._val_rows(sum(len(r) + 1 for r in val_reviews)),
        )
        train_tokens = sum(len(r) + 1 for r in self.train_reviews)
        self.sizes = {
            "train_reviews": len(train_rows),
            "unlabeled_reviews": len(unlabeled_rows),
            "val_reviews": len(rows),
            "train_tokens": train_tokens,
            "val_tokens": int(self.val_stream.numel()),
            "vocab": len(self.vocab),
        }
        log.info(
            "Language-model corpus (split=%s, %s): %d training reviews + %d unlabeled, %d tokens; "
            "perplexity on %d held-out %s reviews; vocabulary %d; %d windows per pass in %d "
            "epoch(s).",
            self.labeled.split["name"],
            self.hparams.direction,
            len(train_rows),
            len(unlabeled_rows),
            train_tokens,
            len(rows),
            source,
            len(self.vocab),
            self.windows_per_pass(),
            self.hparams.segments,
        )

    def _val_rows(self, tokens: int) -> int:
        """Validation rows: the training batch size, fewer when the held-out text is short."""
        return max(1, min(self.hparams.batch_size, tokens // (2 * self.hparams.bptt)))

    def _build_vocab(
        self, labeled: Corpus, rows: np.ndarray, unlabeled: Corpus, unlabeled_rows: np.ndarray
    ) -> Vocab:
        counts: dict[str, int] = {}
        for corpus, picked in ((labeled, rows), (unlabeled, unlabeled_rows)):
            if not len(picked):
                continue
            for i in np.flatnonzero(tally := corpus.counts(picked)):
                token = corpus.tokens[i]
                counts[token] = counts.get(token, 0) + int(tally[i])
        kept = sorted((-n, t) for t, n in counts.items() if n >= self.vocab_settings["min_freq"])
        specials = [PAD, UNK, EOS]
        kept = [t for _, t in kept if t not in specials]
        if self.vocab_settings["max_size"] is not None:
            kept = kept[: self.vocab_settings["max_size"] - len(specials)]
        return Vocab([*specials, *kept])

    def _directed(self, stream: np.ndarray) -> np.ndarray:
        return stream[::-1].copy() if self.hparams.direction == "backward" else stream

    def windows_per_pass(self) -> int:
        tokens = sum(len(r) + 1 for r in self.train_reviews)
        return window_count(tokens // self.hparams.batch_size, self.hparams.bptt)

    def train_stream(self, pass_number: int) -> torch.Tensor:
        """The (batch_size, L) stream of one pass: the reviews in a seeded order."""
        if self._pass is None or self._pass[0] != pass_number:
            order = np.random.default_rng([self.hparams.seed, pass_number]).permutation(
                len(self.train_reviews)
            )
            stream = self._directed(join_reviews(self.train_reviews, order))
            self._pass = (pass_number, batchify(stream, self.hparams.batch_size))
        return self._pass[1]

    def epoch_windows(self, epoch: int) -> TokenWindows:
        """Epoch `epoch`'s windows: segment epoch % segments of pass epoch // segments."""
        segments = self.hparams.segments
        pass_number, segment = divmod(epoch, segments)
        stream = self.train_stream(pass_number)
        count = window_count(stream.size(1), self.hparams.bptt)
        start, stop = count * segment // segments, count * (segment + 1) // segments
        return TokenWindows(stream, self.hparams.bptt, start, stop)

    def train_dataloader(self) -> TokenWindows:
        # rebuilt every epoch (trainer.reload_dataloaders_every_n_epochs=1): the epoch number
        # alone says which windows it reads, also in a resumed run
        return self.epoch_windows(self.trainer.current_epoch if self.trainer else 0)

    def val_dataloader(self) -> TokenWindows:
        return TokenWindows(self.val_stream, self.hparams.bptt)

    def summary(self) -> dict[str, Any]:
        """What metrics.json records about the data."""
        return {
            "source": str(self.hparams.path),
            "split": self.labeled.split["name"],
            "direction": self.hparams.direction,
            "sizes": dict(self.sizes),
            "max_reviews": self.hparams.max_reviews,
            "preprocess": self.preprocessor.config(),
        }
