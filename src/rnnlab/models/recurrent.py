"""Recurrent encoders that run densely over right-padded batches with packed-sequence semantics.

`pack_padded_sequence` makes PyTorch step through shrinking batches one time step at a time; a
dense run over the padded batch is several times faster (and uses cuDNN's fused kernels on GPU).
Padding sits after each review, so the forward direction never sees it before the true last
token. The backward direction runs over each review's valid part reversed in place (padding
stays at the end), so it too starts at the true last token. Results equal a packed `nn.LSTM` /
`nn.GRU` / `nn.RNN` (tested to 1e-5 on logits and gradients).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def reverse_valid(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first `lengths[b]` steps of each sequence in (B, T, ...); padding stays put."""
    steps = torch.arange(x.size(1), device=x.device).unsqueeze(0)
    last = lengths.to(x.device).unsqueeze(1) - 1
    index = torch.where(steps <= last, last - steps, steps)
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


def make_direction(cell: str, input_size: int, hidden_size: int) -> nn.Module:
    """One single-layer, one-direction recurrent module mapping (B, T, I) -> ((B, T, H), state)."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {sorted(CELLS)}")
    return CELLS[cell](input_size, hidden_size, batch_first=True)


class RecurrentEncoder(nn.Module):
    """Stacked (bi)directional RNN/LSTM/GRU over padded batches.

    `direction_factory(cell, input_size, hidden_size)` builds each layer's direction modules, so a
    hand-written cell can stand in for PyTorch's.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        direction_factory: Callable[[str, int, int], nn.Module] = make_direction,
    ):
        super().__init__()
        self.hidden_size = hidden_size
        self.directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.directions
        self.layers = nn.ModuleList(
            nn.ModuleList(
                direction_factory(cell, input_size if i == 0 else self.output_size, hidden_size)
                for _ in range(self.directions)
            )
            for i in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)  # between layers, as nn.LSTM(dropout=...) does

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, I) right-padded -> per-step outputs (B, T, H*D) and final states (B, H*D).

        The final state is the forward direction's output at each review's true last token,
        joined with the backward direction's output at its first token.
        """
        for i, directions in enumerate(self.layers):
            if i > 0:
                x = self.dropout(x)
            outputs = [directions[0](x)[0]]
            if self.directions == 2:
                backward = directions[1](reverse_valid(x, lengths))[0]
                outputs.append(reverse_valid(backward, lengths))
            x = torch.cat(outputs, dim=-1) if self.directions == 2 else outputs[0]
        rows = torch.arange(x.size(0), device=x.device)
        final = x[rows, lengths.to(x.device) - 1, : self.hidden_size]
        if self.directions == 2:
            final = torch.cat([final, x[:, 0, self.hidden_size :]], dim=-1)
        return x, final
