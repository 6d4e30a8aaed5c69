"""Embedding -> recurrent encoder -> pooled features -> one logit (positive sentiment)."""

from __future__ import annotations

import torch
from torch import nn

from rnnlab.models.lstm_scratch import make_direction
from rnnlab.models.recurrent import RecurrentEncoder

POOLINGS = ("final", "max", "mean")


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
    ):
        super().__init__()
        self.poolings = pooling.split("+")
        if unknown := set(self.poolings) - set(POOLINGS):
            raise ValueError(f"unknown pooling {sorted(unknown)}; combine {POOLINGS} with '+'")
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.encoder = RecurrentEncoder(
            cell,
            embed_dim,
            hidden_size,
            num_layers,
            bidirectional,
            dropout if num_layers > 1 else 0.0,
            direction_factory=make_direction,  # cell="lstm_scratch" picks the hand-written LSTM
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.output_size * len(self.poolings), 1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (B, T) right-padded with 0, lengths (B,) -> logits (B,)."""
        steps, final = self.encoder(self.embed_dropout(self.embed(ids)), lengths)
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
