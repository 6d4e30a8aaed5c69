"""Length-bucketed batches: reviews of similar length share a batch, so little time goes to padding.

Training stays random: each epoch shuffles the reviews, sorts them by length only within large
pools, cuts the pools into batches and shuffles the batch order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Sampler


class EncodedReviews(Dataset):
    """Token-id arrays and labels, indexable by the DataLoader."""

    def __init__(self, reviews: Sequence[np.ndarray], labels: np.ndarray):
        self.reviews = reviews
        self.labels = labels

    def __len__(self) -> int:
        return len(self.reviews)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.reviews[i], int(self.labels[i])


def collate(batch: list[tuple[np.ndarray, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad with 0 (`<pad>`); returns ids (B, T), lengths (B,), float labels (B,)."""
    lengths = torch.tensor([len(ids) for ids, _ in batch], dtype=torch.long)
    padded = torch.zeros(len(batch), int(lengths.max()), dtype=torch.long)
    for row, (ids, _) in enumerate(batch):
        padded[row, : len(ids)] = torch.from_numpy(ids)
    labels = torch.tensor([label for _, label in batch], dtype=torch.float32)
    return padded, lengths, labels


class BucketBatchSampler(Sampler[list[int]]):
    """Yields batches of indices of similar length; shards batches across DDP ranks.

    `min_samples` (shuffled training only): an epoch draws at least this many indices, passing
    over a smaller set several times, each pass a new permutation, so a few-label run takes
    enough optimizer steps per epoch for epoch-wise schedules (gradual unfreezing, early
    stopping) to mean what they mean on the full data."""

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        pool_batches: int = 50,
        seed: int = 0,
        bucket: bool = True,
        min_samples: int | None = None,
    ):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.pool = batch_size * pool_batches
        self.seed = seed
        self.bucket = bucket
        self.epoch = 0
        n = len(self.lengths)
        self.samples = max(n, min_samples or 0) if shuffle and n else n

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at each epoch start: a new, reproducible order per epoch."""
        self.epoch = epoch

    @property
    def sampler(self) -> BucketBatchSampler:
        """Lightning calls `set_epoch` on `dataloader.batch_sampler.sampler` (not on the batch
        sampler itself): pointing that here is what gives each epoch its own order, and a
        resumed run the order of the epoch it resumes at."""
        return self

    def _bucketed(self, order: np.ndarray) -> np.ndarray:
        """`order` cut into pools of `self.pool` indices, each sorted by length."""
        pools = [order[i : i + self.pool] for i in range(0, len(order), self.pool)]
        return np.concatenate([p[np.argsort(self.lengths[p], kind="stable")] for p in pools])

    def _batches(self) -> list[np.ndarray]:
        n = self.samples
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.shuffle and len(self.lengths):
            # one permutation per pass over the set (the last cut short), each pass bucketed on
            # its own: a pool never spans two passes, so sorting it by length cannot put a
            # review's copies side by side in one batch
            passes, left = [], n
            while left > 0:
                permutation = rng.permutation(len(self.lengths))[:left]
                passes.append(self._bucketed(permutation) if self.bucket else permutation)
                left -= len(permutation)
            order = np.concatenate(passes)
        elif self.bucket:
            order = np.argsort(self.lengths, kind="stable")
        else:
            order = np.arange(n)
        batches = [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _shard(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return batches
        world, rank = dist.get_world_size(), dist.get_rank()
        per_rank = len(batches) // world if self.shuffle else -(-len(batches) // world)
        shard = batches[rank::world][:per_rank]
        # every rank must run the same number of steps (or the collectives hang); evaluation
        # fills a short shard with batches from the start, also when it got none at all
        return shard + batches[: per_rank - len(shard)]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._shard(self._batches()):
            yield batch.tolist()

    def __len__(self) -> int:
        batches = -(-self.samples // self.batch_size)
        if dist.is_available() and dist.is_initialized():
            world = dist.get_world_size()
            return batches // world if self.shuffle else -(-batches // world)
        return batches
