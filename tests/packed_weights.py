"""Map a packed nn.RNN/LSTM/GRU's parameters onto rnnlab's per-layer, per-direction encoder."""

import torch
from torch import nn

from rnnlab.models.recurrent import RecurrentEncoder


def encoder_counterpart(encoder: RecurrentEncoder, name: str) -> nn.Parameter:
    """`weight_ih_l{k}[_reverse]` of the reference -> `encoder.layers[k][direction].weight_ih_l0`."""
    base, layer = name.removesuffix("_reverse").rsplit("_l", 1)
    direction = 1 if name.endswith("_reverse") else 0
    return getattr(encoder.layers[int(layer)][direction], f"{base}_l0")


def copy_packed_weights(reference: nn.RNNBase, encoder: RecurrentEncoder) -> None:
    with torch.no_grad():
        for name, value in reference.named_parameters():
            encoder_counterpart(encoder, name).copy_(value)
