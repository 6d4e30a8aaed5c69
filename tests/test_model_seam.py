"""A model is a net built from its config: the composed families equal hand-built nets, the
checkpoint rebuilds the net from its partial, and each family checks its own keys."""

from __future__ import annotations

import functools
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from compose import compose
from torch import nn
from torch.utils.data import DataLoader

from rnnlab.checkpoint import load_checkpoint
from rnnlab.data.batching import EncodedReviews, collate
from rnnlab.errors import ConfigError
from rnnlab.models.classifier import RecurrentClassifier
from rnnlab.models.cnn import KimCNN
from rnnlab.models.recurrent import RecurrentEncoder
from rnnlab.train import instantiate_model, train
from rnnlab.validate import problems

VOCAB = ["<pad>", "<unk>", *(f"w{i}" for i in range(60))]


def padded(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, len(VOCAB), (len(lengths), max(lengths)), generator=generator)
    lengths_t = torch.tensor(lengths)
    return ids.masked_fill(torch.arange(max(lengths))[None, :] >= lengths_t[:, None], 0), lengths_t


def test_composed_bilstm_is_the_hand_built_recurrent_net(tmp_path):
    """model=bilstm: embedding 128 -> one BiLSTM layer of 128 per direction -> both final
    states -> linear head, with the parameters a seeded hand-built net draws."""
    cfg = compose("train", ["model=bilstm"], tmp_path)
    torch.manual_seed(11)
    module = instantiate_model(cfg.model, VOCAB, {}).eval()
    torch.manual_seed(11)
    embed = nn.Embedding(len(VOCAB), 128, padding_idx=0)
    encoder = RecurrentEncoder("lstm", 128, 128, num_layers=1, bidirectional=True)
    head = nn.Linear(256, 1)
    hand_built = nn.ModuleList([embed, encoder, head]).eval()
    count = sum(p.numel() for p in module.parameters())
    assert count == sum(p.numel() for p in hand_built.parameters())
    assert count == len(VOCAB) * 128 + 2 * (4 * 128 * (128 + 128) + 2 * 4 * 128) + 257
    ids, lengths = padded([7, 3, 5])
    with torch.no_grad():
        _, final = encoder(embed(ids), lengths)
        torch.testing.assert_close(module(ids, lengths), head(final).squeeze(-1), rtol=0, atol=0)
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["lr"] == 1e-3


def test_composed_cnn_has_kims_shape(tmp_path):
    cfg = compose("train", ["model=cnn"], tmp_path)
    module = instantiate_model(cfg.model, VOCAB, {})
    convs = [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in module.net.encoder.convs]
    assert convs == [(128, 100, 3), (128, 100, 4), (128, 100, 5)]
    assert module.net.head.in_features == 300 and module.net.dropout.p == 0.5
    assert module.net.poolings == ["max"]


def save_checkpoint(module: L.LightningModule, path: Path) -> Path:
    reviews = EncodedReviews([np.arange(2, 9), np.arange(10, 14)], np.array([1, 0]))
    trainer = L.Trainer(
        max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(module, DataLoader(reviews, batch_size=2, collate_fn=collate))
    trainer.save_checkpoint(path)
    return path


@pytest.mark.parametrize("model", ["cnn", "gru"])  # a new family and a recurrent one
def test_checkpoint_rebuilds_the_net_from_its_partial(tmp_path, model):
    cfg = compose("train", [f"model={model}", "model.embed_dim=8"], tmp_path)
    module = instantiate_model(cfg.model, VOCAB, {"lowercase": True})
    path = save_checkpoint(module, tmp_path / "model.ckpt")
    loaded, checkpoint = load_checkpoint(path)
    net = checkpoint["hyper_parameters"]["net"]
    assert isinstance(net, functools.partial) and net.keywords["embed_dim"] == 8
    assert type(loaded.net) is type(module.net) and loaded.hparams.name == model
    ids, lengths = padded([6, 2])
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(ids, lengths), module.eval()(ids, lengths))


def test_checkpoint_from_before_the_seam_still_loads(tmp_path):
    """Its recurrent settings were the module's own hyperparameters; the weights' names hold."""
    cfg = compose("train", ["model=bilstm", "model.embed_dim=8", "model.hidden_size=6"], tmp_path)
    cfg.model.pooling = "final+max"
    module = instantiate_model(cfg.model, VOCAB, {})
    path = save_checkpoint(module, tmp_path / "model.ckpt")
    checkpoint = torch.load(path, weights_only=False)
    hparams = checkpoint["hyper_parameters"]
    hparams.update(
        hparams.pop("net").keywords
    )  # cell, embed_dim, hidden_size, bidirectional, pooling, ...
    torch.save(checkpoint, path)
    loaded, _ = load_checkpoint(path)
    assert isinstance(loaded.net, RecurrentClassifier) and loaded.net.poolings == ["final", "max"]
    ids, lengths = padded([5, 3])
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(ids, lengths), module.eval()(ids, lengths))


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (["model=cnn", "model.num_filters=0"], "model.num_filters=0 must be an integer >= 1"),
        (["model=cnn", "model.filter_sizes=[]"], "model.filter_sizes=[] must be a non-empty"),
        (["model=cnn", "model.filter_sizes=[3,0]"], "model.filter_sizes=[3, 0] must be"),
        (["model=cnn", "model.pooling=final"], "model.pooling='final' must be one of max, mean"),
        (["model=cnn", "model.dropout=1.0"], "model.dropout=1.0 must be a number in [0, 1)"),
        (
            ["model=gru", "model.pooling=final+avg"],
            "model.pooling='final+avg' must be one of final, max, mean",
        ),
    ],
)
def test_each_family_checks_its_own_keys(tmp_path, overrides, expected):
    found = problems(compose("train", overrides, tmp_path))
    assert len(found) == 1 and found[0].startswith(expected), found


def test_family_rules_accept_what_the_family_offers(tmp_path):
    assert problems(compose("train", ["model=cnn", "model.pooling=max+mean"], tmp_path)) == []
    assert set(KimCNN.config_rules()) >= {"filter_sizes", "num_filters", "pooling", "embed_dim"}
    assert "cell" not in KimCNN.config_rules() and "cell" in RecurrentClassifier.config_rules()


def test_model_base_alone_is_refused_before_data_is_read(tmp_path):
    cfg = compose("train", ["model=base", f"data.path={tmp_path / 'absent.tar.gz'}"], tmp_path)
    with pytest.raises(ConfigError, match="model=base .* is what every model config shares"):
        train(cfg)
