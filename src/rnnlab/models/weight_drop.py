"""Weight drop: DropConnect on the recurrent (hidden-to-hidden) weights, as in AWD-LSTM.

In training, a fraction of the entries of each direction's `weight_hh_l0` is zeroed for a whole
batch; every step of every review in it runs with the same thinned matrix. It regularizes the
recurrence itself, which dropout on the inputs and outputs does not reach, and unlike dropout on
h_t it keeps the fused LSTM/GRU kernels (oneDNN, cuDNN): only the matrix handed to them changes.
"""

from __future__ import annotations

import torch
from torch import nn

# PyTorch's functional recurrences, one per nn.RNNBase mode; the same ops nn.LSTM/GRU/RNN call
_OPS = {"LSTM": torch.lstm, "GRU": torch.gru, "RNN_TANH": torch.rnn_tanh}


class RecurrentWeightOverride(nn.RNNBase):
    """An `nn.RNNBase` whose `forward` takes `weight_hh`, used in place of `weight_hh_l0` for
    that call only. The module is not modified, so row shards on several threads can run it at
    once, each with the thinned matrix in its own autograd graph."""

    def forward(self, input, hx=None, weight_hh: torch.Tensor | None = None):
        if weight_hh is None:
            return super().forward(input, hx)
        if self.num_layers != 1 or self.bidirectional or not isinstance(input, torch.Tensor):
            raise ValueError("weight_hh replaces the weight of one layer and one direction")
        weights = [
            weight_hh if name == "weight_hh_l0" else weight
            for name, weight in zip(self._flat_weights_names, self._flat_weights, strict=True)
        ]
        if hx is None:
            batch = input.size(0 if self.batch_first else 1)
            zeros = input.new_zeros(1, batch, self.hidden_size)
            hx = (zeros, zeros.clone()) if self.mode == "LSTM" else zeros
        output, *state = _OPS[self.mode](
            input, hx, weights, self.bias, 1, 0.0, self.training, False, self.batch_first
        )
        return output, state[0] if len(state) == 1 else tuple(state)


class LSTM(RecurrentWeightOverride, nn.LSTM):
    """`nn.LSTM` that accepts `weight_hh` (weight drop); the same parameters and state dict."""


class GRU(RecurrentWeightOverride, nn.GRU):
    """`nn.GRU` that accepts `weight_hh` (weight drop); the same parameters and state dict."""


def weight_mask(weight: torch.Tensor, p: float) -> torch.Tensor:
    """A DropConnect mask for `weight`: 0 with probability p, else 1/(1-p), so the expected
    thinned matrix is the weight itself and evaluation uses the weight unchanged."""
    return torch.empty_like(weight, requires_grad=False).bernoulli_(1 - p).div_(1 - p)
