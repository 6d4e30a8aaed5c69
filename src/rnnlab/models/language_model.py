"""A recurrent language model on the classifiers' own embedding and body, for pretraining.

    embedding -> RecurrentEncoder's layers (one direction, state carried between windows)
              -> projection -> adaptive softmax over a frequency-sorted vocabulary

The embedding and the recurrent layers are built exactly as `RecurrentClassifier` builds them,
under the same parameter names (`embed.weight`, `encoder.layers.<i>.0.*`), so a classifier of
the same sizes loads them from a pretrained checkpoint (`python train.py pretrained=...`).

AWD-LSTM's regularisation (Merity et al. 2017), each a fraction set in conf/lm/:
- embed_dropout: whole words dropped from the embedding matrix for a batch (every occurrence of
  a dropped word reads zeros);
- input_dropout, hidden_dropout, output_dropout: "locked" dropout, one mask per sequence shared
  by all its steps, on the embeddings, between layers and before the softmax;
- weight_drop: DropConnect on each layer's recurrent weights (rnnlab.models.weight_drop).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rnnlab import rules
from rnnlab.models.recurrent import CELLS, RecurrentEncoder
from rnnlab.models.weight_drop import weight_mask

State = list  # per layer: (h, c) for an LSTM, h for a GRU; each (1, B, H)


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout on (B, T, F) with one mask per sequence for all of its steps."""
    if not training or p == 0:
        return x
    mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1 - p).div_(1 - p)
    return x * mask


def embedding_dropout(embed: nn.Embedding, ids: torch.Tensor, p: float, training: bool):
    """Look up `ids`, with whole rows (words) of the embedding matrix dropped with probability
    p and the rest scaled by 1/(1-p)."""
    weight = embed.weight
    if training and p > 0:
        keep = weight.new_empty(weight.size(0), 1).bernoulli_(1 - p).div_(1 - p)
        weight = weight * keep
    return nn.functional.embedding(ids, weight, embed.padding_idx)


def usable_cutoffs(cutoffs: Sequence[int], vocab_size: int) -> list[int]:
    """The adaptive softmax's cluster boundaries that fit the vocabulary: those below its size,
    or, for a vocabulary smaller than every cutoff, one boundary at half its size (the module
    needs one)."""
    fitting = sorted(c for c in set(cutoffs) if 0 < c < vocab_size - 1)
    return fitting or [max(1, vocab_size // 2)]


def detach_state(state: State | None) -> State | None:
    """Truncated backpropagation: the next window starts from this state, not through it."""
    if state is None:
        return None
    return [tuple(s.detach() for s in h) if isinstance(h, tuple) else h.detach() for h in state]


class LanguageModel(nn.Module):
    """ids (B, T) -> next-token log-likelihood, with the recurrent state carried across calls."""

    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        embed_dim: int = 400,
        hidden_size: int = 1150,
        num_layers: int = 3,
        cutoffs: Sequence[int] = (2000, 10000),
        div_value: float = 4.0,
        embed_dropout: float = 0.1,
        input_dropout: float = 0.6,
        hidden_dropout: float = 0.3,
        output_dropout: float = 0.4,
        weight_drop: float = 0.5,
    ):
        super().__init__()
        self.cell = cell
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.encoder = RecurrentEncoder(cell, embed_dim, hidden_size, num_layers, False)
        self.project = nn.Linear(hidden_size, embed_dim)
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(
            embed_dim, vocab_size, usable_cutoffs(cutoffs, vocab_size), div_value=div_value
        )
        self.embed_dropout = embed_dropout
        self.input_dropout = input_dropout
        self.hidden_dropout = hidden_dropout
        self.output_dropout = output_dropout
        self.weight_drop = weight_drop

    @classmethod
    def config_rules(cls) -> dict[str, rules.Rule]:
        """Checks of the keys under `lm.` (validate.py applies them)."""
        fraction = rules.fraction(low_open=False, high_open=True)
        return {
            "cell": rules.choice(sorted(c for c in CELLS if c != "rnn")),
            "embed_dim": rules.integer(1),
            "hidden_size": rules.integer(1),
            "num_layers": rules.integer(1),
            "cutoffs": rules.integers(1),
            "div_value": rules.positive(),
            "embed_dropout": fraction,
            "input_dropout": fraction,
            "hidden_dropout": fraction,
            "output_dropout": fraction,
            "weight_drop": fraction,
        }

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """ids (B, T) -> features (B, T, E) for the softmax, and the state after the last step."""
        x = embedding_dropout(self.embed, ids, self.embed_dropout, self.training)
        x = locked_dropout(x, self.input_dropout, self.training)
        new_state = []
        for i, (layer,) in enumerate(self.encoder.layers):
            if i > 0:
                x = locked_dropout(x, self.hidden_dropout, self.training)
            weight_hh = None
            if self.training and self.weight_drop > 0:
                weight_hh = layer.weight_hh_l0 * weight_mask(layer.weight_hh_l0, self.weight_drop)
            x, layer_state = layer(x, None if state is None else state[i], weight_hh=weight_hh)
            new_state.append(layer_state)
        x = locked_dropout(x, self.output_dropout, self.training)
        return self.project(x), new_state

    def loss(
        self, ids: torch.Tensor, targets: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """Mean negative log-likelihood (nats per token) of `targets` (B, T) after `ids`."""
        features, state = self(ids, state)
        out = self.softmax(features.reshape(-1, features.size(-1)).float(), targets.reshape(-1))
        return out.loss, state
