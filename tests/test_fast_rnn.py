"""FastRNN, the hand-differentiated CPU tanh RNN, equals nn.RNN: outputs, states, gradients.

The dense encoder built on it is checked against packed `nn.RNN` in test_equivalence.py; these
tests pin the direction module itself: its backward against finite differences (gradcheck), the
initial state, edge shapes, gradient accumulation, and that every case it does not handle goes
to `nn.RNN.forward` unchanged.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence

from rnnlab.models.fast_rnn import FastRNN
from rnnlab.models.recurrent import RecurrentEncoder, make_direction

FAST_NODE = "_TanhRecurrenceBackward"


def pair(dtype=torch.float64, **options) -> tuple[nn.RNN, FastRNN]:
    """An nn.RNN and a FastRNN with the same weights."""
    torch.manual_seed(0)
    reference = nn.RNN(5, 6, **options).to(dtype)
    fast = FastRNN(5, 6, **options).to(dtype)
    fast.load_state_dict(reference.state_dict())
    return reference, fast


def run(module: nn.Module, x: torch.Tensor, hx: torch.Tensor | None):
    """Outputs, h_n and every gradient of a loss that reads all outputs and h_n."""
    module.zero_grad()
    x = x.clone().requires_grad_()
    hx = None if hx is None else hx.clone().requires_grad_()
    out, h_n = module(x, hx)
    (out.sin().sum() + (h_n * h_n).sum()).backward()
    grads = [x.grad, *(p.grad for p in module.parameters()), *([] if hx is None else [hx.grad])]
    return out, h_n, grads


@pytest.mark.parametrize(
    "batch,steps", [(4, 7), (1, 9), (3, 1)], ids=["mixed", "one-row", "1-step"]
)
@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("batch_first", [True, False])
def test_matches_nn_rnn(batch_first, with_h0, batch, steps):
    reference, fast = pair(batch_first=batch_first)
    shape = (batch, steps, 5) if batch_first else (steps, batch, 5)
    x = torch.randn(*shape, dtype=torch.float64)
    hx = torch.randn(1, batch, 6, dtype=torch.float64) if with_h0 else None
    out, h_n, grads = run(fast, x, hx)
    assert out.grad_fn is not None and FAST_NODE in str(_nodes(out)), "fast path not taken"
    ref_out, ref_h_n, ref_grads = run(reference, x, hx)
    torch.testing.assert_close(out, ref_out, atol=1e-12, rtol=0)
    torch.testing.assert_close(h_n, ref_h_n, atol=1e-12, rtol=0)
    assert len(grads) == len(ref_grads)
    for ours, theirs in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)


def test_float32_matches_within_rounding():
    reference, fast = pair(torch.float32, batch_first=True)
    x = torch.randn(8, 40, 5)
    out, h_n, grads = run(fast, x, None)
    ref_out, ref_h_n, ref_grads = run(reference, x, None)
    for ours, theirs in zip([out, h_n, *grads], [ref_out, ref_h_n, *ref_grads], strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)  # sums of 320 terms


@pytest.mark.parametrize("with_h0", [False, True])
def test_backward_passes_gradcheck(with_h0):
    """Analytic gradients of inputs, h0 and all four parameters against finite differences."""
    _, fast = pair(batch_first=True)
    params = {name: p.detach().clone().requires_grad_() for name, p in fast.named_parameters()}
    x = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, 3, 6, dtype=torch.float64, requires_grad=True)
    names = list(params)

    def outputs(x, h0, *weights):
        out, h_n = functional_call(fast, dict(zip(names, weights, strict=True)), (x, h0))
        return out, h_n

    inputs = (x, h0 if with_h0 else None, *params.values())
    assert FAST_NODE in str(_nodes(outputs(*inputs)[0]))
    assert torch.autograd.gradcheck(outputs, inputs)


def test_gradients_accumulate_and_biases_do_not_share_a_tensor():
    reference, fast = pair(batch_first=True)
    x = torch.randn(4, 6, 5, dtype=torch.float64)
    ref_grads = run(reference, x, None)[2]
    fast.zero_grad(set_to_none=True)
    for _ in range(2):
        fast(x)[0].sin().sum().backward()
        (fast(x)[1] ** 2).sum().backward()
    assert fast.bias_ih_l0.grad.data_ptr() != fast.bias_hh_l0.grad.data_ptr()
    for theirs, p in zip(ref_grads[1:], fast.parameters(), strict=True):
        torch.testing.assert_close(p.grad, 2 * theirs, atol=1e-12, rtol=0)


def test_no_grad_and_inference_mode_give_the_same_outputs():
    _, fast = pair(batch_first=True)
    x = torch.randn(4, 6, 5, dtype=torch.float64)
    expected = fast(x)[0]
    with torch.no_grad():
        torch.testing.assert_close(fast(x)[0], expected, atol=0, rtol=0)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x)[0], expected, atol=0, rtol=0)


@pytest.mark.parametrize(
    "options,packed",
    [
        ({"nonlinearity": "relu"}, False),
        ({"num_layers": 2}, False),
        ({"bidirectional": True}, False),
        ({"bias": False}, False),
        ({}, True),
    ],
    ids=["relu", "two-layers", "bidirectional", "no-bias", "packed"],
)
def test_unhandled_cases_fall_back_to_nn_rnn(options, packed):
    reference, fast = pair(batch_first=True, **options)
    x = torch.randn(4, 6, 5, dtype=torch.float64)
    if packed:
        lengths = torch.tensor([6, 2, 5, 1])
        x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    ours, theirs = fast(x), reference(x)
    data = (lambda o: o.data) if packed else (lambda o: o)
    assert FAST_NODE not in str(_nodes(data(ours[0])))
    torch.testing.assert_close(data(ours[0]), data(theirs[0]), atol=0, rtol=0)
    torch.testing.assert_close(ours[1], theirs[1], atol=0, rtol=0)


def test_unbatched_input_and_autocast_fall_back():
    reference, fast = pair(torch.float32, batch_first=True)
    x = torch.randn(6, 5)  # one sequence, no batch dimension
    torch.testing.assert_close(fast(x)[0], reference(x)[0], atol=0, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fast(torch.randn(2, 6, 5))[0]
    assert out.dtype == torch.bfloat16 and FAST_NODE not in str(_nodes(out))


def test_wrong_initial_state_gets_nn_rnns_error():
    _, fast = pair(batch_first=True)
    with pytest.raises(RuntimeError, match="hidden"):
        fast(torch.randn(4, 6, 5, dtype=torch.float64), torch.zeros(1, 3, 6, dtype=torch.float64))


def test_encoder_builds_it_shards_it_and_loads_nn_rnn_weights():
    direction = make_direction("rnn", 5, 6)
    assert type(direction) is FastRNN
    assert list(direction.state_dict()) == list(nn.RNN(5, 6).state_dict())
    direction.load_state_dict(nn.RNN(5, 6, batch_first=True).state_dict())
    encoder = RecurrentEncoder("rnn", 5, 6)
    encoder.shards = 2
    assert encoder._shard_count(torch.zeros(8, 3, 5)) == 2


def test_encoder_runs_a_fast_rnn_batch_unsharded_unless_told(monkeypatch):
    """By default only encoders whose recurrence is one ATen call are split into row shards."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    batch = torch.zeros(64, 3, 5)
    assert RecurrentEncoder("rnn", 5, 6)._shard_count(batch) == 1
    assert RecurrentEncoder("rnn", 5, 6, bidirectional=True)._shard_count(batch) == 1
    assert RecurrentEncoder("lstm", 5, 6)._shard_count(batch) == 2
    assert RecurrentEncoder("gru", 5, 6)._shard_count(batch) == 2


def _nodes(tensor: torch.Tensor) -> list[str]:
    """Names of every autograd node behind `tensor`."""
    seen, stack, names = set(), [tensor.grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return names
