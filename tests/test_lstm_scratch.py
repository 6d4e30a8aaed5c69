"""The hand-written LSTM equals nn.LSTM: same weights, same outputs and gradients (1e-5)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from compose import compose
from packed_weights import copy_packed_weights
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.data.synthetic import write_dataset
from rnnlab.models.classifier import RecurrentClassifier
from rnnlab.models.lstm_scratch import ScratchLSTM, make_direction, recording_gates
from rnnlab.models.recurrent import RecurrentEncoder, reverse_valid
from rnnlab.train import build, train

ATOL = 1e-5


def random_batch(seed: int, batch: int = 7, steps: int = 13, features: int = 5):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
    lengths[0], lengths[1] = steps, 1  # the longest and the shortest possible review
    x = torch.randn(batch, steps, features, generator=generator)
    return x, lengths


def test_state_dict_loads_both_ways_and_outputs_match():
    torch.manual_seed(0)
    reference = nn.LSTM(5, 6, batch_first=True)
    scratch = ScratchLSTM(5, 6)
    assert [n for n, _ in scratch.named_parameters()] == [
        n for n, _ in reference.named_parameters()
    ]
    scratch.load_state_dict(reference.state_dict())
    x = torch.randn(3, 9, 5)
    (out, (h, c)), (ref_out, (ref_h, ref_c)) = scratch(x), reference(x)
    for ours, theirs in ((out, ref_out), (h, ref_h), (c, ref_c)):
        torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)

    fresh = nn.LSTM(5, 6, batch_first=True)
    fresh.load_state_dict(ScratchLSTM(5, 6).state_dict())  # and back again
    state = (torch.randn(1, 3, 6), torch.randn(1, 3, 6))  # a given initial state too
    back = ScratchLSTM(5, 6)
    back.load_state_dict(fresh.state_dict())
    torch.testing.assert_close(back(x, state)[0], fresh(x, state)[0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_encoder_matches_packed_lstm_outputs_and_gradients(bidirectional, num_layers):
    torch.manual_seed(1)
    hidden = 6
    reference = nn.LSTM(
        5, hidden, num_layers=num_layers, bidirectional=bidirectional, batch_first=True
    )
    encoder = RecurrentEncoder(
        "lstm_scratch", 5, hidden, num_layers, bidirectional, direction_factory=make_direction
    )
    assert all(isinstance(d, ScratchLSTM) for layer in encoder.layers for d in layer)
    copy_packed_weights(reference, encoder)

    x, lengths = random_batch(seed=2)
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    packed = pack_padded_sequence(x_ref, lengths, batch_first=True, enforce_sorted=False)
    ref_packed_out, (ref_h, _) = reference(packed)
    ref_out, _ = pad_packed_sequence(ref_packed_out, batch_first=True, total_length=x.size(1))
    ref_final = torch.cat([ref_h[-2], ref_h[-1]], -1) if bidirectional else ref_h[-1]
    out, final = encoder(x_ours, lengths)

    valid = (torch.arange(x.size(1))[None, :] < lengths[:, None])[..., None]
    torch.testing.assert_close(out * valid, ref_out, atol=ATOL, rtol=0)
    torch.testing.assert_close(final, ref_final, atol=ATOL, rtol=0)

    # any loss that reads valid steps and the final state: gradients must agree everywhere
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(3))
    probe = torch.randn(final.shape, generator=torch.Generator().manual_seed(4))
    ((ref_out * weights).sum() + (ref_final * probe).sum()).backward()
    ((out * valid * weights).sum() + (final * probe).sum()).backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=ATOL, rtol=0)
    for name, value in reference.named_parameters():
        base, layer = name.removesuffix("_reverse").rsplit("_l", 1)
        ours = getattr(encoder.layers[int(layer)][int(name.endswith("_reverse"))], f"{base}_l0")
        torch.testing.assert_close(ours.grad, value.grad, atol=ATOL, rtol=0, msg=name)


def test_gates_are_the_tips_equations():
    """Rebuild every cell and hidden state from the returned gates alone."""
    torch.manual_seed(5)
    cell = ScratchLSTM(4, 3)
    out, (h_n, c_n), gates = cell(torch.randn(2, 8, 4), return_gates=True)
    assert set(gates) == {"forget", "input", "candidate", "output"}
    for name in ("forget", "input", "output"):
        assert gates[name].shape == (2, 8, 3)
        assert ((gates[name] > 0) & (gates[name] < 1)).all(), name
    assert (gates["candidate"].abs() < 1).all()
    c = torch.zeros(2, 3)
    for t in range(8):
        c = gates["forget"][:, t] * c + gates["input"][:, t] * gates["candidate"][:, t]
        h = gates["output"][:, t] * torch.tanh(c)
        torch.testing.assert_close(out[:, t], h, atol=1e-6, rtol=0)
    torch.testing.assert_close(c_n[0], c, atol=1e-6, rtol=0)
    torch.testing.assert_close(h_n[0], out[:, -1])


def test_recording_gates_inside_a_bidirectional_classifier():
    torch.manual_seed(6)
    model = RecurrentClassifier(20, "lstm_scratch", 8, 4, bidirectional=True).eval()
    ids = torch.randint(2, 20, (1, 6))
    lengths = torch.tensor([6])
    with recording_gates(model) as cells:
        model(ids, lengths)
    assert len(cells) == 2 and all(c.gates["forget"].shape == (1, 6, 4) for c in cells)
    assert not any(c.record_gates for c in cells)  # switched off after the block
    # the backward direction read the review reversed: its first step saw the last token
    embedded = model.embed(ids)
    _, _, gates = cells[1](reverse_valid(embedded, lengths), return_gates=True)
    torch.testing.assert_close(cells[1].gates["forget"], gates["forget"])
    assert model(ids, lengths).shape == (1,)


def test_classifier_checkpoint_converts_between_lstm_and_scratch():
    torch.manual_seed(7)
    trained = RecurrentClassifier(30, "lstm", 8, 6, num_layers=2, bidirectional=True).eval()
    scratch = RecurrentClassifier(30, "lstm_scratch", 8, 6, num_layers=2, bidirectional=True)
    scratch.load_state_dict(trained.state_dict())  # strict: identical names and shapes
    scratch.eval()
    ids = torch.randint(1, 30, (4, 11))
    lengths = torch.tensor([11, 3, 7, 1])
    ids[torch.arange(11)[None, :] >= lengths[:, None]] = 0
    torch.testing.assert_close(scratch(ids, lengths), trained(ids, lengths), atol=ATOL, rtol=0)


def test_unknown_cell_names_the_scratch_choice():
    with pytest.raises(ValueError, match="lstm_scratch"):
        make_direction("transformer", 4, 4)


def test_model_lstm_scratch_trains_like_model_lstm(tmp_path):
    """Through config, module and trainer: same seed, same initial weights, same training."""
    archive = write_dataset(tmp_path / "syn", 200)
    runs = {}
    for name in ("lstm", "lstm_scratch"):
        cfg = compose(
            "train",
            [
                f"model={name}",
                f"data.path={archive}",
                "model.hidden_size=8",
                "model.embed_dim=8",
                "trainer.max_epochs=1",
                "++trainer.limit_train_batches=2",
                "++trainer.enable_progress_bar=false",
                "test=false",
                "logger=[]",
                "callbacks=[]",
            ],
            tmp_path / name,
            cache_dir=tmp_path / "cache",
        )
        L.seed_everything(cfg.seed)
        initial = {k: v.clone() for k, v in build(cfg)[1].state_dict().items()}
        runs[name] = (initial, train(cfg))
    (lstm_init, lstm), (scratch_init, scratch) = runs["lstm"], runs["lstm_scratch"]
    assert lstm_init.keys() == scratch_init.keys()
    assert all(torch.equal(lstm_init[k], scratch_init[k]) for k in lstm_init)
    assert scratch["train/loss"] == pytest.approx(lstm["train/loss"], abs=1e-5)
    assert scratch["val/loss"] == pytest.approx(lstm["val/loss"], abs=1e-5)


@pytest.mark.parametrize(
    ("name", "bidirectional"), [("lstm_scratch", False), ("bilstm_scratch", True)]
)
def test_scratch_model_configs_are_their_torch_twins_with_the_scratch_cell(name, bidirectional):
    scratch = compose("train", [f"model={name}"]).model
    torch_twin = compose("train", [f"model={name.removesuffix('_scratch')}"]).model
    assert scratch.cell == "lstm_scratch" and scratch.name == name
    assert scratch.bidirectional is bidirectional
    differing = {k for k in torch_twin if scratch[k] != torch_twin[k]}
    assert differing == {"cell", "name"}
