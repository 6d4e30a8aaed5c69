"""The shape every text classifier shares: embedding, then a body, then pooling, then a head.

A model family is a subclass of `TextClassifier` that builds its body (the `encoder`) and
declares its own config keys (`config_rules`); its YAML names the subclass as `_target_`.
`SentimentModule` only ever calls `net(ids, lengths) -> logits`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from rnnlab import rules
from rnnlab.data.vocab import UNK_ID
from rnnlab.errors import ConfigError
from rnnlab.models.recurrent import reverse_valid


class Encoded(NamedTuple):
    """What a body hands to pooling.

    steps: (B, T, F) features per position; valid: bool, broadcastable to steps, True where a
    position belongs to the review (padding and windows past it are False); final: (B, F)
    summary state, or None for bodies without one (pooling "final" is then not offered).
    """

    steps: torch.Tensor
    valid: torch.Tensor
    final: torch.Tensor | None


def bigram_ids(ids: torch.Tensor, buckets: int) -> torch.Tensor:
    """(B, T) token ids -> ids of each (previous, current) pair hashed into [0, buckets).

    The first token pairs with the padding id 0. A multiplicative hash spreads the pairs of one
    frequent word over the table instead of into neighbouring rows."""
    previous = torch.nn.functional.pad(ids[:, :-1], (1, 0))
    return (previous * 2_654_435_761 + ids) % buckets


def valid_steps(lengths: torch.Tensor, steps: int, device: torch.device) -> torch.Tensor:
    """(B, T, 1) bool: True at each review's own positions (right padding is False)."""
    positions = torch.arange(steps, device=device)[None, :]
    return (positions < lengths.to(device)[:, None])[..., None]


class TextClassifier(nn.Module):
    """ids (B, T) right-padded with 0, lengths (B,) -> one logit per review (positive sentiment).

    `encoder(embed_dim)` builds the body: a module with `output_size` whose `encode` result (see
    `encode`) is pooled by `pooling` (names from POOLINGS joined with '+', e.g. "final+max"),
    passed through dropout and a linear head.
    """

    POOLINGS: tuple[str, ...] = ("final", "max", "mean")

    def __init__(
        self,
        vocab_size: int,
        encoder: Callable[[int], nn.Module],
        embed_dim: int = 128,
        dropout: float = 0.0,
        embed_dropout: float = 0.0,
        pooling: str = "final",
        bigram_buckets: int = 0,
        word_dropout: float = 0.0,
        reverse: bool = False,
    ):
        super().__init__()
        # read every review from its last word to its first (a backward language model's body)
        self.reverse = reverse
        self.poolings = pooling.split("+")
        if unknown := set(self.poolings) - set(self.POOLINGS):
            raise ValueError(
                f"unknown pooling {sorted(unknown)} for {type(self).__name__}; combine "
                f"{self.POOLINGS} with '+'"
            )
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        # fastText-style: each step's input also gets an embedding of its (previous, current)
        # token pair, hashed into this many rows; 0 = words only
        self.bigram_embed = nn.Embedding(bigram_buckets, embed_dim) if bigram_buckets else None
        self.embed_dropout = nn.Dropout(embed_dropout)
        # in training, this fraction of the words becomes <unk>: the model cannot lean on one
        # telling word (often a title or a name) and must read the rest of the review
        self.word_dropout = word_dropout
        self.encoder = encoder(embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.output_size * len(self.poolings), 1)

    @classmethod
    def config_rules(cls) -> dict[str, rules.Rule]:
        """Checks of this family's keys under `model.` (validate.py applies them)."""
        return {
            "embed_dim": rules.integer(1),
            "dropout": rules.fraction(low_open=False, high_open=True),
            "embed_dropout": rules.fraction(low_open=False, high_open=True),
            "word_dropout": rules.fraction(low_open=False, high_open=True),
            "bigram_buckets": rules.integer(0),
            "pooling": rules.combination(cls.POOLINGS),
            "reverse": rules.boolean(),
        }

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (B, T) right-padded with 0, lengths (B,) -> logits (B,)."""
        return self.classify(self.embed_reviews(ids, lengths), lengths)

    def embed_reviews(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> the embedded reviews (B, T, E) that `classify` reads (in reading
        order, word dropout applied in training): adversarial training perturbs these."""
        if self.reverse:
            ids = reverse_valid(ids, lengths)
        if self.training and self.word_dropout:
            dropped = torch.rand(ids.shape, device=ids.device) < self.word_dropout
            ids = ids.masked_fill(dropped & (ids != 0), UNK_ID)
        embedded = self.embed(ids)
        if self.bigram_embed is not None:
            embedded = embedded + self.bigram_embed(
                bigram_ids(ids, self.bigram_embed.num_embeddings)
            )
        return embedded

    def classify(self, embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Embedded reviews (B, T, E) -> logits (B,): embedding dropout, body, pooling, head."""
        encoded = self.encode(self.embed_dropout(embedded), lengths)
        return self.head(self.dropout(self.pool(encoded))).squeeze(-1)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> Encoded:
        """The body over embedded reviews (B, T, E); a family whose encoder returns something
        else than `Encoded` overrides this."""
        return self.encoder(x, lengths)

    def pool(self, encoded: Encoded) -> torch.Tensor:
        """Features from the body: final state and/or max/mean over each review's valid steps."""
        steps, valid, final = encoded
        features = []
        for name in self.poolings:
            if name == "final":
                features.append(final)
            elif name == "max":
                features.append(steps.masked_fill(~valid, float("-inf")).amax(dim=1))
            else:
                summed = (steps * valid).sum(dim=1)
                features.append(summed / valid.sum(dim=1).to(steps.dtype))
        return torch.cat(features, dim=-1)


class UnsupportedModel(ConfigError):
    """An analysis tool was handed a model family it cannot read."""


def require(
    net: nn.Module | type, family: type[nn.Module], tool: str, reads: str, name: Any
) -> None:
    """Refuse `net` (a net or its class) unless it is of `family`, in one paragraph naming both."""
    kind = net if isinstance(net, type) else type(net)
    if issubclass(kind, family):
        return
    raise UnsupportedModel(
        f"{tool} cannot read model {name!r} (net {kind.__module__}.{kind.__qualname__}): it "
        f"reads {reads}. Pass a checkpoint or config of one of those models."
    )
