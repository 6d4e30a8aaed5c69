"""Fine-tuning from a pretrained language model, and ULMFiT's fine-tuning tools."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from compose import compose

from rnnlab.checkpoint import CheckpointError
from rnnlab.data.synthetic import write_dataset
from rnnlab.finetune import (
    SlantedTriangularLR,
    discriminative_param_groups,
    layer_groups,
)
from rnnlab.models.classifier import RecurrentClassifier
from rnnlab.pretrain import pretrain
from rnnlab.train import build, train

LM_SIZES = ["lm.embed_dim=16", "lm.hidden_size=24", "lm.num_layers=2"]
TINY_LM = [
    "lm=ulmfit",
    *LM_SIZES,
    "lm.batch_size=4",
    "lm.bptt=12",
    "lm.segments=1",
    "lm.epochs=1",
    "data.val_reviews=40",
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("ft"), 400, "archive", unlabeled=200)


@pytest.fixture(scope="module")
def language_models(archive, tmp_path_factory) -> dict[str, Path]:
    """A tiny forward and backward language model (lm=ulmfit's text, 2 layers)."""
    found = {}
    for direction in ("forward", "backward"):
        out = tmp_path_factory.mktemp(direction)
        cfg = compose(
            "pretrain", [f"data.path={archive}", *TINY_LM, f"lm.direction={direction}"], out
        )
        pretrain(cfg)
        found[direction] = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    return found


def finetune_cfg(archive: Path, checkpoint: Path, tmp_path: Path, *overrides: str):
    return compose(
        "train",
        [
            "experiment=ulmfit",
            f"data.path={archive}",
            f"pretrained={checkpoint}",
            *LM_SIZES,
            "trainer.max_epochs=2",
            *overrides,
        ],
        tmp_path,
    )


def test_the_classifier_starts_from_the_language_model(archive, language_models, tmp_path):
    lm = torch.load(language_models["forward"], weights_only=False)
    datamodule, model, _ = build(finetune_cfg(archive, language_models["forward"], tmp_path))
    assert datamodule.vocab.itos == lm["hyper_parameters"]["vocab"]
    assert model.hparams.vocab == lm["hyper_parameters"]["vocab"]
    state = model.net.state_dict()
    for key, value in lm["state_dict"].items():
        if key.startswith(("net.embed.", "net.encoder.")):
            assert torch.equal(state[key.removeprefix("net.")], value), key
    assert not model.net.reverse


def test_a_backward_language_model_makes_a_classifier_that_reads_backward(
    archive, language_models, tmp_path
):
    _, model, _ = build(finetune_cfg(archive, language_models["backward"], tmp_path))
    assert model.net.reverse
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    lengths = torch.tensor([3, 2])
    model.net.eval()
    backward_logits = model.net(ids, lengths)
    model.net.reverse = False
    flipped = torch.tensor([[7, 6, 5, 0], [9, 8, 0, 0]])
    torch.testing.assert_close(model.net(flipped, lengths), backward_logits)


@pytest.mark.parametrize(
    "override,named",
    [
        ("model.hidden_size=32", "model.hidden_size=32"),
        ("model.bidirectional=true", "model.bidirectional=true"),
        ("data.preprocess.remove_stopwords=true", "remove_stopwords"),
    ],
)
def test_a_mismatched_classifier_is_refused_by_name(
    archive, language_models, tmp_path, override, named
):
    cfg = finetune_cfg(archive, language_models["forward"], tmp_path, override)
    with pytest.raises(CheckpointError, match=named):
        build(cfg)


def test_a_classifier_checkpoint_is_not_a_language_model(archive, language_models, tmp_path):
    cfg = compose(
        "train", [f"data.path={archive}", "trainer.max_epochs=1", "model.hidden_size=8"], tmp_path
    )
    train(cfg)
    classifier = next(Path(cfg.paths.output_dir).glob("checkpoints/last.ckpt"))
    with pytest.raises(CheckpointError, match="not a language model's checkpoint"):
        build(finetune_cfg(archive, classifier, tmp_path / "ft"))
    with pytest.raises(CheckpointError, match="does not exist"):
        build(finetune_cfg(archive, tmp_path / "missing.ckpt", tmp_path / "ft"))


def test_ulmfit_fine_tuning_trains_and_tests(archive, language_models, tmp_path):
    metrics = train(finetune_cfg(archive, language_models["forward"], tmp_path))
    assert 0.0 <= metrics["test/acc"] <= 1.0


def net(layers: int = 2) -> RecurrentClassifier:
    return RecurrentClassifier(50, embed_dim=8, hidden_size=8, num_layers=layers, pooling="final")


def test_layer_groups_go_from_the_embedding_to_the_head():
    model = net()
    groups = layer_groups(model)
    assert [len(g) for g in groups] == [1, 1, 1, 1]
    assert groups[0] == [model.embed] and groups[-1] == [model.head]
    assert groups[1][0] is model.encoder.layers[0] and groups[2][0] is model.encoder.layers[1]
    covered = {id(p) for g in groups for m in g for p in m.parameters()}
    assert covered == {id(p) for p in model.parameters()}


def test_discriminative_rates_divide_by_the_factor_per_group_down():
    groups = discriminative_param_groups(net(), lr=0.01, factor=2.6)
    rates = [g["lr"] for g in groups]
    assert rates[-1] == pytest.approx(0.01)
    for lower, upper in zip(rates, rates[1:], strict=False):
        assert upper / lower == pytest.approx(2.6)


def test_slanted_triangular_rises_for_the_cut_then_falls_to_its_floor():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.32)
    schedule = SlantedTriangularLR(optimizer, total_steps=100, cut_frac=0.1, ratio=32)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    peak = max(range(100), key=rates.__getitem__)
    assert peak == 10 and rates[peak] == pytest.approx(0.32)
    assert rates[0] == pytest.approx(0.01)  # 1/ratio of the peak
    assert all(a < b for a, b in zip(rates[:10], rates[1:11], strict=False))
    assert all(a > b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert rates[-1] == pytest.approx(0.01)  # the last step


class _Recorder(L.Callback):
    """Which layer groups train in each epoch."""

    def __init__(self):
        self.trainable: list[list[bool]] = []

    def on_train_epoch_start(self, trainer, pl_module):
        groups = layer_groups(pl_module.net)
        self.trainable.append(
            [all(p.requires_grad for m in g for p in m.parameters()) for g in groups]
        )


def test_gradual_unfreezing_unfreezes_one_group_down_per_epoch(train_cfg):
    cfg = train_cfg(
        "model=lstm",
        "model.num_layers=2",
        "model.hidden_size=8",
        "trainer.max_epochs=4",
        "callbacks=[default,gradual_unfreezing]",
    )
    datamodule, model, trainer = build(cfg)
    recorder = _Recorder()
    trainer.callbacks.append(recorder)  # after GradualUnfreezing: sees what it left
    embedding_before = model.net.embed.weight.detach().clone()
    trainer.fit(model, datamodule=datamodule)
    # groups: embedding, layer 0, layer 1, head
    assert recorder.trainable == [
        [False, False, False, True],
        [False, False, True, True],
        [False, True, True, True],
        [True, True, True, True],
    ]
    assert not torch.equal(model.net.embed.weight, embedding_before)  # trained in epoch 4


def test_a_folder_as_pretrained_names_the_checkpoint_inside(archive, language_models, tmp_path):
    run = language_models["forward"].parents[1]
    with pytest.raises(CheckpointError, match="is a folder"):
        build(finetune_cfg(archive, run, tmp_path))
