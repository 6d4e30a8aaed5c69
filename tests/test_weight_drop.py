"""Weight drop (model.weight_drop): in training each direction runs with its recurrent weight
thinned by one mask per batch, on every shard and every cell; evaluation uses the weight as is."""

from __future__ import annotations

import pytest
import torch
from packed_weights import copy_packed_weights, encoder_counterpart
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.models import weight_drop
from rnnlab.models.classifier import RecurrentClassifier
from rnnlab.models.fast_rnn import FastRNN
from rnnlab.models.lstm_scratch import ScratchLSTM
from rnnlab.models.recurrent import CELLS, RecurrentEncoder

FEATURES, HIDDEN, STEPS, P = 5, 6, 13, 0.4


@pytest.mark.parametrize("shards", [1, 3], ids=["one-thread", "3-shards"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_training_runs_a_packed_reference_with_the_thinned_weights(cell, shards):
    """The masks come from the global generator, in order, before anything else in forward:
    drawn again from the same seed, they give a reference whose outputs and gradients match."""
    torch.manual_seed(3)
    encoder = RecurrentEncoder(
        cell, FEATURES, HIDDEN, num_layers=2, bidirectional=True, weight_drop=P
    ).double()
    encoder.shards = shards
    reference = CELLS[cell](
        FEATURES, HIDDEN, num_layers=2, bidirectional=True, batch_first=True
    ).double()
    copy_packed_weights(reference, encoder)
    lengths = torch.tensor([STEPS, 1, 7, 4, 11, 9, 2, 13, 5])
    x = torch.randn(len(lengths), STEPS, FEATURES, dtype=torch.float64)
    step_weights = torch.randn(len(lengths), STEPS, 2 * HIDDEN, dtype=torch.float64)
    valid = (torch.arange(STEPS)[None, :] < lengths[:, None])[..., None]

    torch.manual_seed(11)
    masks = {
        name: weight_drop.weight_mask(encoder_counterpart(encoder, name), P)
        for name, _ in reference.named_parameters()
        if name.startswith("weight_hh")
    }
    with torch.no_grad():
        for name, mask in masks.items():
            getattr(reference, name).mul_(mask)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    ref_out = pad_packed_sequence(reference(packed)[0], batch_first=True, total_length=STEPS)[0]
    (ref_out * step_weights).sum().backward()

    torch.manual_seed(11)
    out, _ = encoder.train()(x, lengths)
    (out * valid * step_weights).sum().backward()

    torch.testing.assert_close(out * valid, ref_out, atol=1e-9, rtol=0)
    for name, ref_param in reference.named_parameters():
        expected = ref_param.grad * masks[name] if name in masks else ref_param.grad
        torch.testing.assert_close(encoder_counterpart(encoder, name).grad, expected)
    for name, mask in masks.items():  # a weight dropped for this batch learns nothing from it
        dropped = mask == 0
        assert 0.2 < dropped.float().mean() < 0.6
        assert not encoder_counterpart(encoder, name).grad[dropped].any()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "lstm_scratch"])
def test_evaluation_uses_the_whole_weights(cell):
    torch.manual_seed(0)
    sizes = {"bidirectional": True, "pooling": "final+max"}
    dropped = RecurrentClassifier(40, cell, 8, 6, **sizes, weight_drop=0.5)
    plain = RecurrentClassifier(40, cell, 8, 6, **sizes)
    plain.load_state_dict(dropped.state_dict())
    ids = torch.randint(2, 40, (5, 12))
    lengths = torch.tensor([12, 3, 8, 1, 12])
    torch.testing.assert_close(dropped.eval()(ids, lengths), plain.eval()(ids, lengths))
    torch.manual_seed(1)
    trained = dropped.train()(ids, lengths)
    torch.manual_seed(1)
    assert not torch.allclose(trained, plain.train()(ids, lengths))


@pytest.mark.parametrize(
    "direction",
    [FastRNN(FEATURES, HIDDEN, batch_first=True), ScratchLSTM(FEATURES, HIDDEN)],
    ids=["fast-rnn", "scratch-lstm"],
)
def test_hand_written_directions_take_the_thinned_weight_like_pytorch(direction):
    """FastRNN's own recurrence and the step-by-step LSTM use `weight_hh` as PyTorch's op does."""
    torch.manual_seed(2)
    x = torch.randn(4, STEPS, FEATURES, dtype=torch.float64)
    direction = direction.double()
    thinned = (direction.weight_hh_l0 * weight_drop.weight_mask(direction.weight_hh_l0, P)).detach()
    pytorch = (nn.RNN if isinstance(direction, FastRNN) else nn.LSTM)(
        FEATURES, HIDDEN, batch_first=True
    ).double()
    pytorch.load_state_dict(direction.state_dict())
    with torch.no_grad():
        pytorch.weight_hh_l0.copy_(thinned)
    torch.testing.assert_close(direction(x, weight_hh=thinned)[0], pytorch(x)[0])
