"""What the subnormal-flush tests run inside threads and spawned DataLoader workers: importable
by name, since a spawned worker process unpickles its dataset from a module."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

SUBNORMAL = 1e-39  # below float32's smallest normal, 1.18e-38


def subnormal_times_one() -> float:
    """0.0 on a thread that flushes subnormals to zero, 1e-39 on one that computes with them."""
    return float(torch.tensor(SUBNORMAL) * 1)


class SubnormalProbe(Dataset):
    """One item: `subnormal_times_one()` as computed in the DataLoader worker that loads it."""

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> float:
        return subnormal_times_one()
