"""Embedding -> recurrent encoder -> pooled features -> one logit (positive sentiment)."""

from __future__ import annotations

import torch
from torch import nn

from rnnlab.data.vocab import UNK_ID
from rnnlab.models.lstm_scratch import make_direction
from rnnlab.models.recurrent import RecurrentEncoder

POOLINGS = ("final", "max", "mean")


def bigram_ids(ids: torch.Tensor, buckets: int) -> torch.Tensor:
    """(B, T) token ids -> ids of each (previous, current) pair hashed into [0, buckets).

    The first token pairs with the padding id 0. A multiplicative hash spreads the pairs of one
    frequent word over the table instead of into neighbouring rows."""
    previous = torch.nn.functional.pad(ids[:, :-1], (1, 0))
    return (previous * 2_654_435_761 + ids) % buckets


class RecurrentClassifier(nn.Module):
    """A review classifier; `pooling` joins any of final/max/mean with '+', e.g. "final+max"."""

    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        embed_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        embed_dropout: float = 0.0,
        pooling: str = "final",
        bigram_buckets: int = 0,
        word_dropout: float = 0.0,
        weight_drop: float = 0.0,
    ):
        super().__init__()
        self.poolings = pooling.split("+")
        if unknown := set(self.poolings) - set(POOLINGS):
            raise ValueError(f"unknown pooling {sorted(unknown)}; combine {POOLINGS} with '+'")
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        # fastText-style: each step's input also gets an embedding of its (previous, current)
        # token pair, hashed into this many rows; 0 = words only
        self.bigram_embed = nn.Embedding(bigram_buckets, embed_dim) if bigram_buckets else None
        self.embed_dropout = nn.Dropout(embed_dropout)
        # in training, this fraction of the words becomes <unk>: the model cannot lean on one
        # telling word (often a title or a name) and must read the rest of the review
        self.word_dropout = word_dropout
        self.encoder = RecurrentEncoder(
            cell,
            embed_dim,
            hidden_size,
            num_layers,
            bidirectional,
            dropout if num_layers > 1 else 0.0,
            direction_factory=make_direction,  # cell="lstm_scratch" picks the hand-written LSTM
            weight_drop=weight_drop,
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.output_size * len(self.poolings), 1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (B, T) right-padded with 0, lengths (B,) -> logits (B,)."""
        if self.training and self.word_dropout:
            dropped = torch.rand(ids.shape, device=ids.device) < self.word_dropout
            ids = ids.masked_fill(dropped & (ids != 0), UNK_ID)
        embedded = self.embed(ids)
        if self.bigram_embed is not None:
            embedded = embedded + self.bigram_embed(
                bigram_ids(ids, self.bigram_embed.num_embeddings)
            )
        steps, final = self.encoder(self.embed_dropout(embedded), lengths)
        return self.head(self.dropout(self.pool(steps, final, lengths))).squeeze(-1)

    def pool(self, steps: torch.Tensor, final: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Features from the encoder: final state and/or max/mean over each review's valid steps."""
        valid = (
            torch.arange(steps.size(1), device=steps.device)[None, :]
            < lengths.to(steps.device)[:, None]
        )
        features = []
        for name in self.poolings:
            if name == "final":
                features.append(final)
            elif name == "max":
                features.append(steps.masked_fill(~valid[..., None], float("-inf")).amax(dim=1))
            else:
                summed = (steps * valid[..., None]).sum(dim=1)
                features.append(summed / lengths.to(steps.device)[:, None].to(steps.dtype))
        return torch.cat(features, dim=-1)
