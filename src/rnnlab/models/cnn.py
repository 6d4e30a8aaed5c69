"""Kim (2014)'s convolutional text classifier, `model=cnn`.

Embedding, then convolutions over time of several widths (3, 4 and 5 words, 100 filters each)
with ReLU, then max over time (each filter's strongest match anywhere in the review), then
dropout 0.5 and the linear head. Padding never changes a prediction: positions past a review's
end read as zeros, and only windows that start inside the review and end within it (or, for a
review shorter than the widest filter, the first window) take part in the max.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab import rules
from rnnlab.models.net import Encoded, TextClassifier, valid_steps


class ConvEncoder(nn.Module):
    """(B, T, E) right-padded -> per-window features (B, T', filters * widths), their validity.

    Window s of width w reads positions s..s+w-1, and its features sit at step s (T' = T, or the
    widest filter's width when the batch is shorter). The body has no final state.
    """

    def __init__(self, input_size: int, filter_sizes: Sequence[int], num_filters: int):
        super().__init__()
        self.filter_sizes = tuple(filter_sizes)
        self.convs = nn.ModuleList(nn.Conv1d(input_size, num_filters, w) for w in filter_sizes)
        self.output_size = num_filters * len(self.filter_sizes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Encoded:
        lengths = lengths.to(x.device)
        # what a window reads past a review's end is zeros, however long the batch's padding
        # (padding's bigram embeddings are not zero, nor is dropout's view of them)
        x = x * valid_steps(lengths, x.size(1), x.device)
        # at least one window of the widest filter, so a short review still has one
        x = F.pad(x, (0, 0, 0, max(0, max(self.filter_sizes) - x.size(1))))
        steps = x.size(1)
        starts = torch.arange(steps, device=x.device)[None, :]
        features, masks = [], []
        for width, conv in zip(self.filter_sizes, self.convs, strict=True):
            out = F.relu(conv(x.transpose(1, 2)))  # (B, filters, steps - width + 1)
            # the review's own windows end within it; a shorter review keeps its first window
            last = (lengths - width).clamp(min=0)[:, None]
            valid = starts[:, : out.size(2)] <= last
            pad = steps - out.size(2)
            features.append(F.pad(out, (0, pad)))
            masks.append(F.pad(valid, (0, pad))[:, None, :].expand_as(features[-1]))
        steps_out = torch.cat(features, dim=1).transpose(1, 2)
        return Encoded(steps_out, torch.cat(masks, dim=1).transpose(1, 2), None)


class KimCNN(TextClassifier):
    """Embedding -> ConvEncoder -> max (or mean) over time -> dropout -> head."""

    POOLINGS = ("max", "mean")  # no final state to pool

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 128,
        filter_sizes: Sequence[int] = (3, 4, 5),
        num_filters: int = 100,
        dropout: float = 0.5,
        embed_dropout: float = 0.0,
        pooling: str = "max",
        bigram_buckets: int = 0,
        word_dropout: float = 0.0,
        reverse: bool = False,
    ):
        super().__init__(
            vocab_size,
            partial(ConvEncoder, filter_sizes=filter_sizes, num_filters=num_filters),
            embed_dim=embed_dim,
            dropout=dropout,
            embed_dropout=embed_dropout,
            pooling=pooling,
            bigram_buckets=bigram_buckets,
            word_dropout=word_dropout,
            reverse=reverse,
        )

    @classmethod
    def config_rules(cls) -> dict[str, rules.Rule]:
        return {
            "filter_sizes": rules.integers(1),
            "num_filters": rules.integer(1),
            **super().config_rules(),
        }
