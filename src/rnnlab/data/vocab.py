"""Token <-> id mapping: `<pad>` = 0, `<unk>` = 1, then the most frequent tokens."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAD, UNK = "<pad>", "<unk>"
UNK_ID = 1  # every vocabulary starts with PAD (id 0), then UNK


class Vocab:
    """A fixed list of tokens; ids are positions in it."""

    def __init__(self, itos: Sequence[str]):
        if list(itos[:2]) != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD!r}, {UNK!r}; got {list(itos[:2])}")
        self.itos = list(itos)
        self.stoi = {token: i for i, token in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    @classmethod
    def from_counts(
        cls, tokens: Sequence[str], counts: np.ndarray, min_freq: int, max_size: int | None
    ) -> Vocab:
        """Most frequent first, ties broken alphabetically; `max_size` includes pad and unk."""
        kept = np.flatnonzero(counts >= min_freq)
        ranked = sorted(zip((-counts[kept]).tolist(), [tokens[i] for i in kept], strict=True))
        if max_size is not None:
            ranked = ranked[: max_size - 2]
        return cls([PAD, UNK, *(token for _, token in ranked)])

    @classmethod
    def first_seen(
        cls, tokens: Sequence[str], counts: np.ndarray, min_freq: int, max_size: int | None
    ) -> Vocab:
        """The tip's order: tokens in order of first appearance (`tokens` is in that order)."""
        kept = [tokens[i] for i in np.flatnonzero(counts >= min_freq)]
        if max_size is not None:
            kept = kept[: max_size - 2]
        return cls([PAD, UNK, *kept])

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Token ids; an empty review becomes a single `<unk>` so every review has a last token."""
        ids = np.fromiter(
            (self.stoi.get(t, UNK_ID) for t in tokens), dtype=np.int64, count=len(tokens)
        )
        return ids if len(ids) else np.array([UNK_ID], dtype=np.int64)

    def remap(self, tokens: Sequence[str]) -> np.ndarray:
        """Lookup table from a corpus-wide token list to ids of this vocabulary."""
        return np.array([self.stoi.get(t, 1) for t in tokens], dtype=np.int64)
