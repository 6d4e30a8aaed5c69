"""The recurrent family: embedding -> RecurrentEncoder (RNN/LSTM/GRU, or the hand-written LSTM
of lstm_scratch.py) -> final state and/or max/mean pooling -> one logit (positive sentiment)."""

from __future__ import annotations

import torch

from rnnlab import rules
from rnnlab.models.lstm_scratch import SCRATCH_CELLS, make_direction
from rnnlab.models.net import Encoded, TextClassifier, bigram_ids, valid_steps
from rnnlab.models.recurrent import CELLS, RecurrentEncoder

__all__ = ["POOLINGS", "RecurrentClassifier", "bigram_ids"]

POOLINGS = TextClassifier.POOLINGS


class RecurrentClassifier(TextClassifier):
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
        reverse: bool = False,
    ):
        def encoder(input_size: int) -> RecurrentEncoder:
            return RecurrentEncoder(
                cell,
                input_size,
                hidden_size,
                num_layers,
                bidirectional,
                dropout if num_layers > 1 else 0.0,
                direction_factory=make_direction,  # cell="lstm_scratch": the hand-written LSTM
                weight_drop=weight_drop,
            )

        super().__init__(
            vocab_size,
            encoder,
            embed_dim=embed_dim,
            dropout=dropout,
            embed_dropout=embed_dropout,
            pooling=pooling,
            bigram_buckets=bigram_buckets,
            word_dropout=word_dropout,
            reverse=reverse,
        )
        self.cell = cell  # what explain.py and gradient_flow.py read

    @classmethod
    def config_rules(cls) -> dict[str, rules.Rule]:
        return {
            "cell": rules.choice([*CELLS, *SCRATCH_CELLS]),
            "bidirectional": rules.boolean(),
            "hidden_size": rules.integer(1),
            "num_layers": rules.integer(1),
            "weight_drop": rules.fraction(low_open=False, high_open=True),
            **super().config_rules(),
        }

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> Encoded:
        steps, final = self.encoder(x, lengths)
        return Encoded(steps, valid_steps(lengths, steps.size(1), steps.device), final)
