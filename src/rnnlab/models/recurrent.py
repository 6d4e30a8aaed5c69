"""Recurrent encoders that run densely over right-padded batches with packed-sequence semantics.

`pack_padded_sequence` makes PyTorch step through shrinking batches one time step at a time; a
dense run over the padded batch is several times faster (and uses cuDNN's fused kernels on GPU).
Padding sits after each review, so the forward direction never sees it before the true last
token. The backward direction runs over each review's valid part reversed in place (padding
stays at the end), so it too starts at the true last token. Results equal a packed `nn.LSTM` /
`nn.GRU` / `nn.RNN` (tested to 1e-5 on logits and gradients).

On CPU with several torch threads, a batch is split into row shards that run on their own
threads, one core each (`_Sharded`); not for the tanh RNN, whose step loop is Python. A
recurrence is a chain of small matmuls: with every thread on every step each step ends in a
barrier, and on a shared machine, where another process holds one of the cores, each barrier
waits for a time slice. One shard per core needs no barrier, and each shard runs only up to its
own longest review.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch
from torch import nn

from rnnlab import runtime
from rnnlab.models import weight_drop
from rnnlab.models.fast_rnn import FastRNN

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
# what make_direction builds: PyTorch's modules with a `weight_hh` argument for weight drop, and
# for the tanh RNN its hand-differentiated subclass
DIRECTIONS: dict[str, type[nn.RNNBase]] = {
    "rnn": FastRNN,
    "lstm": weight_drop.LSTM,
    "gru": weight_drop.GRU,
}
_SHARDABLE = frozenset({*CELLS.values(), *DIRECTIONS.values()})  # keep no per-call state


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
    return DIRECTIONS[cell](input_size, hidden_size, batch_first=True)


class RecurrentEncoder(nn.Module):
    """Stacked (bi)directional RNN/LSTM/GRU over padded batches.

    `direction_factory(cell, input_size, hidden_size)` builds each layer's direction modules, so a
    hand-written cell can stand in for PyTorch's. Each must accept `weight_hh=` (a thinned
    recurrent weight for one call) when `weight_drop` > 0.
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
        weight_drop: float = 0.0,
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
        # in training, this fraction of each direction's recurrent weights is zeroed per batch
        self.weight_drop = weight_drop
        # CPU row shards run in parallel: None = one per torch thread (at most one per
        # MIN_SHARD_ROWS rows); 1 = the whole batch on the calling thread.
        self.shards: int | None = None

    MIN_SHARD_ROWS = 8

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, I) right-padded -> per-step outputs (B, T, H*D) and final states (B, H*D).

        The final state is the forward direction's output at each review's true last token,
        joined with the backward direction's output at its first token.
        """
        shards = self._shard_count(x)
        weight_masks = self._weight_masks()  # one per batch: every shard runs the same weights
        if shards <= 1:
            return self._dense(x, lengths, weight_masks=weight_masks)
        lengths = lengths.to(x.device)
        bounds = [(len(x) * k // shards, len(x) * (k + 1) // shards) for k in range(shards)]
        steps = [int(lengths[lo:hi].max()) for lo, hi in bounds]
        masks = self._dropout_masks(x)  # drawn here, in order: a seeded run repeats exactly
        if torch.is_grad_enabled():
            params = tuple(p for p in self.parameters() if p.requires_grad)
            return _Sharded.apply(self, lengths, bounds, steps, (masks, weight_masks), x, *params)
        inference = torch.is_inference_mode_enabled()

        outputs = x.new_empty((len(x), x.size(1), self.output_size), dtype=_output_dtype(x))

        def run(k: int) -> torch.Tensor:
            (lo, hi), t = bounds[k], steps[k]
            with torch.inference_mode() if inference else torch.no_grad():
                out, final = self._dense(
                    x[lo:hi, :t], lengths[lo:hi], _rows(masks, lo, hi, t), weight_masks
                )
                _place(outputs, lo, hi, out)  # inference mode is per thread, as is its tensor
            return final

        return outputs, torch.cat(_in_parallel(run, shards))

    def _shard_count(self, x: torch.Tensor) -> int:
        if x.device.type != "cpu":
            return 1
        if not all(type(d) in _SHARDABLE for layer in self.layers for d in layer):
            return 1  # a hand-written cell may keep per-call state; keep it on one thread
        if self.shards is not None:
            return max(1, min(self.shards, len(x)))
        if any(isinstance(d, FastRNN) for layer in self.layers for d in layer):
            # FastRNN steps in Python, two small ops per step: on two shards its training steps
            # ran slower than the whole batch on the calling thread (docs/performance.md)
            return 1
        return max(1, min(torch.get_num_threads(), len(x) // self.MIN_SHARD_ROWS))

    def _dropout_masks(self, x: torch.Tensor) -> list[torch.Tensor | None]:
        p = self.dropout.p
        if not (self.training and p > 0):
            return [None] * len(self.layers)
        shape = (x.size(0), x.size(1), self.output_size)
        keep = [torch.empty(shape, dtype=x.dtype).bernoulli_(1 - p) for _ in self.layers[1:]]
        return [None, *(m.div_(1 - p) for m in keep)]

    def _weight_masks(self) -> list[list[torch.Tensor | None]]:
        """Weight-drop masks per layer and direction, or None where the weights run as they are."""
        drop = self.training and self.weight_drop > 0
        return [
            [
                weight_drop.weight_mask(d.weight_hh_l0, self.weight_drop) if drop else None
                for d in ds
            ]
            for ds in self.layers
        ]

    def _dense(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        masks: Sequence[torch.Tensor | None] | None = None,
        weight_masks: Sequence[Sequence[torch.Tensor | None]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole batch on the calling thread (inter-layer dropout from `masks` if given,
        thinned recurrent weights from `weight_masks`)."""
        for i, directions in enumerate(self.layers):
            if i > 0:
                x = self.dropout(x) if masks is None else _dropped(x, masks[i])
            hh = weight_masks[i] if weight_masks else [None] * len(directions)
            outputs = [_run(directions[0], x, hh[0])]
            if self.directions == 2:
                backward = _run(directions[1], reverse_valid(x, lengths), hh[1])
                outputs.append(reverse_valid(backward, lengths))
            x = torch.cat(outputs, dim=-1) if self.directions == 2 else outputs[0]
        rows = torch.arange(x.size(0), device=x.device)
        final = x[rows, lengths.to(x.device) - 1, : self.hidden_size]
        if self.directions == 2:
            final = torch.cat([final, x[:, 0, self.hidden_size :]], dim=-1)
        return x, final


def _run(direction: nn.Module, x: torch.Tensor, weight_mask: torch.Tensor | None) -> torch.Tensor:
    """One direction's per-step outputs; with a weight-drop mask, the thinned recurrent weight
    is made here, in the calling thread's graph, so its gradient reaches `weight_hh_l0`."""
    if weight_mask is None:
        return direction(x)[0]
    return direction(x, weight_hh=direction.weight_hh_l0 * weight_mask)[0]


def _output_dtype(x: torch.Tensor) -> torch.dtype:
    """What the recurrent layers return for input x: under CPU autocast, its lower precision."""
    return torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype


def _dropped(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


def _rows(masks: list, lo: int, hi: int, steps: int) -> list:
    return [None if m is None else m[lo:hi, :steps] for m in masks]


def _place(target: torch.Tensor, lo: int, hi: int, part: torch.Tensor) -> None:
    """Write one shard's rows into the batch's tensor, zeros past the shard's last step. Each
    shard copies from its own thread; joined on the main thread, the copies were serial work."""
    target[lo:hi, : part.size(1)].copy_(part)
    target[lo:hi, part.size(1) :].zero_()


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _reset_pool() -> None:
    global _POOL
    _POOL = None  # a forked child has none of the parent's threads


os.register_at_fork(after_in_child=_reset_pool)


def _in_parallel(work: Callable[[int], object], shards: int) -> list:
    """Run work(0..shards-1) on pool threads with one intra-op thread each; results in order.

    What is per thread comes along from the calling thread: the subnormal flush (a pool thread
    may predate the process's choice, see rnnlab.runtime) and CPU autocast (bf16-mixed).
    """
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < shards:
            _POOL = ThreadPoolExecutor(shards, thread_name_prefix="rnnlab-shard")
        pool = _POOL
    autocast = torch.is_autocast_enabled("cpu")
    autocast_dtype = torch.get_autocast_dtype("cpu")

    def single_threaded(k: int):
        torch.set_num_threads(1)  # this pool thread's own OpenMP team: itself
        runtime.apply_to_this_thread()
        with torch.autocast("cpu", dtype=autocast_dtype, enabled=autocast):
            return work(k)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # also what threads the pool starts inherit
    try:
        return list(pool.map(single_threaded, range(shards)))
    finally:
        torch.set_num_threads(threads)


# how many backward passes the row shards of a forward pass must serve (see backward_passes)
_BACKWARD_PASSES = contextvars.ContextVar("rnnlab_backward_passes", default=1)


@contextmanager
def backward_passes(passes: int) -> Iterator[None]:
    """Row shards computed inside keep their graphs for `passes` backward passes instead of one,
    as `retain_graph=True` would for ordinary autograd nodes: adversarial training first takes
    the gradient of the input, then trains through the same graph."""
    token = _BACKWARD_PASSES.set(passes)
    try:
        yield
    finally:
        _BACKWARD_PASSES.reset(token)


class _Sharded(torch.autograd.Function):
    """Forward and backward of row shards on parallel threads, as one autograd node.

    Each shard records its own graph from a detached copy of its rows; backward runs
    `torch.autograd.grad` on every shard in parallel and sums the parameter gradients, so
    parameters receive ordinary gradients (hooks, DDP and `autograd.grad` all see them).
    """

    @staticmethod
    def forward(ctx, encoder, lengths, bounds, steps, all_masks, x, *params):
        outputs = x.new_empty((len(x), x.size(1), encoder.output_size), dtype=_output_dtype(x))
        masks, weight_masks = all_masks

        def run(k: int):
            (lo, hi), t = bounds[k], steps[k]
            with torch.enable_grad():
                rows = x[lo:hi, :t].detach().requires_grad_(x.requires_grad)
                out, final = encoder._dense(
                    rows, lengths[lo:hi], _rows(masks, lo, hi, t), weight_masks
                )
            _place(outputs, lo, hi, out.detach())
            return rows, out, final

        ctx.set_materialize_grads(False)  # per-step outputs often get no gradient (final pooling)
        ctx.shards = _in_parallel(run, len(bounds))
        ctx.bounds, ctx.params, ctx.input_shape = bounds, params, x.shape
        ctx.input_needs_grad = x.requires_grad
        ctx.backwards_left = _BACKWARD_PASSES.get()
        return outputs, torch.cat([final.detach() for _, _, final in ctx.shards])

    @staticmethod
    def backward(ctx, grad_out, grad_final):
        ctx.backwards_left -= 1
        retain = ctx.backwards_left > 0
        if grad_out is None and grad_final is None:
            if not retain:
                ctx.shards = None
            return (None,) * (6 + len(ctx.params))

        some_grad = grad_out if grad_out is not None else grad_final
        grad_x = some_grad.new_empty(ctx.input_shape) if ctx.input_needs_grad else None

        def run(k: int):
            rows, out, final = ctx.shards[k]
            lo, hi = ctx.bounds[k]
            inputs = ([rows] if ctx.input_needs_grad else []) + list(ctx.params)
            pairs = [
                (tensor, grad[lo:hi, : tensor.size(1)] if tensor.dim() == 3 else grad[lo:hi])
                for tensor, grad in ((out, grad_out), (final, grad_final))
                if grad is not None
            ]
            outputs, grads = zip(*pairs, strict=True)
            grads = torch.autograd.grad(
                outputs, inputs, grads, retain_graph=retain, allow_unused=True
            )
            if grad_x is None:
                return grads
            _place(grad_x, lo, hi, grads[0])
            return grads[1:]

        per_shard = _in_parallel(run, len(ctx.shards))
        if not retain:
            ctx.shards = None  # free the shards' graphs
        grad_params = []
        for i in range(len(ctx.params)):
            parts = [g[i] for g in per_shard if g[i] is not None]
            grad_params.append(torch.stack(parts).sum(0) if parts else None)
        return (None, None, None, None, None, grad_x, *grad_params)
