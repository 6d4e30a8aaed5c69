"""An LSTM written step by step from the tip's equations, so its gates can be watched.

Its parameters are laid out exactly like `nn.LSTM`'s single layer (`weight_ih_l0` (4H, I),
`weight_hh_l0` (4H, H), `bias_ih_l0`, `bias_hh_l0`, gate blocks in the order input, forget,
candidate, output), so a state dict loads both ways and a checkpoint trained with `nn.LSTM` can
be replayed here. `model=lstm_scratch` / `model=bilstm_scratch` train it through the same
`RecurrentEncoder`; it is slower than PyTorch's fused kernel and exists to be read and inspected.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from rnnlab.models import recurrent

SCRATCH_CELLS = {"lstm_scratch"}
GATES = ("forget", "input", "candidate", "output")


class ScratchLSTM(nn.Module):
    """One layer, one direction, batch first: (B, T, I) -> ((B, T, H), (h_n, c_n)) like nn.LSTM.

    With `return_gates=True` the result gains a third item: each step's forget, input and output
    selectors and candidate memory, (B, T, H) each. Setting `record_gates = True` keeps the same
    dict (detached) in `self.gates` after every call, for models that call it indirectly.
    `weight_hh`, if given, stands in for `weight_hh_l0` in that call (weight drop).
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size))
        self.record_gates = False
        self.gates: dict[str, torch.Tensor] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.LSTM's initialisation: every weight uniform in +-1/sqrt(hidden_size)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def forward(
        self,
        x: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
        return_gates: bool = False,
        weight_hh: torch.Tensor | None = None,
    ):
        batch, steps, _ = x.shape
        if state is None:
            h = x.new_zeros(batch, self.hidden_size)
            c = x.new_zeros(batch, self.hidden_size)
        else:
            h, c = state[0][0], state[1][0]
        # the input's share of all four gates, for every step at once (one matmul, not T)
        from_input = x @ self.weight_ih_l0.T + self.bias_ih_l0
        # weight drop hands in a thinned copy of the recurrent weight for this call
        w_hh = self.weight_hh_l0 if weight_hh is None else weight_hh
        outputs, trace = [], {name: [] for name in GATES}
        for t in range(steps):
            pre = from_input[:, t] + h @ w_hh.T + self.bias_hh_l0
            pre_input, pre_forget, pre_candidate, pre_output = pre.chunk(4, dim=-1)
            # forget gate: selector f_t in (0, 1) scales down the old memory, f_t * c_{t-1}
            forget = torch.sigmoid(pre_forget)
            kept = forget * c
            # input gate, step 1: candidate memory in (-1, 1)
            candidate = torch.tanh(pre_candidate)
            # step 2: selector i_t picks what of the candidate to add
            selected = torch.sigmoid(pre_input)
            # step 3: cell update, c_t = f_t * c_{t-1} + i_t * candidate
            c = kept + selected * candidate
            # output gate: selector o_t over the candidate hidden state tanh(c_t)
            output = torch.sigmoid(pre_output)
            h = output * torch.tanh(c)
            outputs.append(h)
            for name, value in zip(GATES, (forget, selected, candidate, output), strict=True):
                trace[name].append(value)
        out = torch.stack(outputs, dim=1)
        final = (h.unsqueeze(0), c.unsqueeze(0))
        if not (return_gates or self.record_gates):
            return out, final
        gates = {name: torch.stack(values, dim=1) for name, values in trace.items()}
        if self.record_gates:
            self.gates = {name: value.detach() for name, value in gates.items()}
        return (out, final, gates) if return_gates else (out, final)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


def make_direction(cell: str, input_size: int, hidden_size: int) -> nn.Module:
    """`RecurrentEncoder`'s direction_factory: "lstm_scratch" -> ScratchLSTM, else PyTorch's."""
    if cell in SCRATCH_CELLS:
        return ScratchLSTM(input_size, hidden_size)
    if cell not in recurrent.CELLS:
        choices = sorted([*recurrent.CELLS, *SCRATCH_CELLS])
        raise ValueError(f"unknown cell {cell!r}; choose one of {choices}")
    return recurrent.make_direction(cell, input_size, hidden_size)


@contextmanager
def recording_gates(module: nn.Module) -> Iterator[list[ScratchLSTM]]:
    """Within the block every ScratchLSTM inside `module` keeps its last gates in `.gates`.

    Yields the ScratchLSTM modules in registration order (layer by layer, forward direction
    before backward), so `encoder.layers[i][d]` is item `i * directions + d`.
    """
    cells = [m for m in module.modules() if isinstance(m, ScratchLSTM)]
    for cell in cells:
        cell.record_gates, cell.gates = True, None
    try:
        yield cells
    finally:
        for cell in cells:
            cell.record_gates = False
