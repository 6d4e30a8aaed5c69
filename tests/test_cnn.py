"""model=cnn (Kim 2014): trains through train.py's composed config, reads padding and short
reviews right, and the analysis tools refuse it in one paragraph."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from compose import compose

from rnnlab.checkpoint import load_checkpoint
from rnnlab.data.synthetic import NEGATIVE, POSITIVE, write_dataset
from rnnlab.explain import trace_review
from rnnlab.gradient_flow import compare, step_gradient_norms
from rnnlab.models.cnn import KimCNN
from rnnlab.models.net import UnsupportedModel
from rnnlab.train import train

ROOT = Path(__file__).resolve().parents[1]


def tiny_cnn(**options) -> KimCNN:
    torch.manual_seed(0)
    settings = {"embed_dim": 8, "num_filters": 6, "bigram_buckets": 17} | options
    return KimCNN(40, **settings).eval()


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory) -> tuple[Path, dict[str, float]]:
    """`python train.py model=cnn` on the synthetic archive, small and short: its run directory
    and final metrics."""
    root = tmp_path_factory.mktemp("cnn_run")
    archive = write_dataset(root / "syn", 1000, "archive")
    cfg = compose(
        "train",
        [
            "model=cnn",
            f"data.path={archive}",
            "model.embed_dim=32",
            "model.num_filters=16",
            "trainer.max_epochs=4",
            "logger=[]",
            "++trainer.enable_progress_bar=false",
        ],
        root,
    )
    assert cfg.model.filter_sizes == [3, 4, 5] and cfg.model.pooling == "max"
    assert cfg.model.dropout == 0.5
    metrics = train(cfg)
    return Path(cfg.paths.output_dir), metrics


def test_model_cnn_learns_synthetic_sentiment_and_its_checkpoint_predicts(cnn_run):
    run_dir, metrics = cnn_run
    assert metrics["val/acc"] > 0.85 and metrics["test/acc"] > 0.85, metrics
    model, _ = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # data not needed
    assert isinstance(model.net, KimCNN) and model.hparams.name == "cnn"
    assert [conv.kernel_size[0] for conv in model.net.encoder.convs] == [3, 4, 5]
    good, bad = model.predict_texts([" ".join(POSITIVE * 2), " ".join(NEGATIVE * 2)])
    assert good > 0.5 > bad


@pytest.mark.parametrize("pooling", ["max", "mean", "max+mean"])
def test_padding_never_changes_a_prediction(pooling):
    net = tiny_cnn(pooling=pooling)
    lengths = [9, 2, 4, 5, 1, 7]  # shorter than, as long as, and longer than the widest filter
    generator = torch.Generator().manual_seed(1)
    reviews = [torch.randint(2, 40, (n,), generator=generator) for n in lengths]
    batch = torch.zeros(len(reviews), 12, dtype=torch.long)  # extra padding past the longest
    for row, review in enumerate(reviews):
        batch[row, : len(review)] = review
    with torch.no_grad():
        together = net(batch, torch.tensor(lengths))
        for row, review in enumerate(reviews):
            alone = net(review[None, :], torch.tensor([len(review)]))
            torch.testing.assert_close(together[row], alone[0], rtol=0, atol=1e-6)


def test_reviews_shorter_than_the_widest_filter_are_read_by_their_words():
    net = tiny_cnn()
    ids = torch.tensor([[5, 0, 0], [6, 0, 0], [5, 6, 7]])  # the batch is shorter than 5
    lengths = torch.tensor([1, 1, 3])
    logits = net.train()(ids, lengths)
    assert torch.isfinite(logits).all()
    assert logits[0] != logits[1]  # one different word, a different prediction
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    assert net.embed.weight.grad[7].abs().sum() > 0  # the third word of a 3-word review counts


def test_explain_refuses_the_cnn_in_one_paragraph():
    from rnnlab.module import SentimentModule

    module = SentimentModule(["<pad>", "<unk>", "good"], {}, net=KimCNN, name="cnn")
    with pytest.raises(UnsupportedModel) as info:
        trace_review(module, "good")
    message = str(info.value)
    assert "scripts/explain.py cannot read model 'cnn'" in message
    assert "rnnlab.models.cnn.KimCNN" in message and "RecurrentClassifier" in message
    assert "model=rnn, lstm, bilstm, gru, lstm_scratch, bilstm_scratch" in message


def test_explain_script_refuses_a_cnn_checkpoint_without_a_traceback(cnn_run, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "explain.py"),
            f"ckpt_path={cnn_run[0] / 'checkpoints' / 'last.ckpt'}",
            "text=good",
            f"output={tmp_path / 'x.png'}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=240,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "cannot read model 'cnn'" in lines[0] and "KimCNN" in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_gradient_flow_refuses_the_cnn_before_reading_data(tmp_path):
    with pytest.raises(UnsupportedModel, match="hidden states of recurrent nets"):
        step_gradient_norms(tiny_cnn(), torch.tensor([[3, 4]]), torch.tensor([2]), torch.ones(1))
    cfg = compose(
        "gradient_flow", [f"data.path={tmp_path / 'absent.tar.gz'}", "+model@models.cnn=cnn"]
    )
    with pytest.raises(UnsupportedModel) as info:  # not DataError: nothing was read
        compare(cfg)
    assert "scripts/gradient_flow.py cannot read model 'cnn'" in str(info.value)


def test_gradient_flow_callback_refuses_the_cnn_before_training(train_cfg):
    cfg = train_cfg(
        "model=cnn", "callbacks=[default,gradient_flow]", "logger=[]", "model.num_filters=4"
    )
    with pytest.raises(UnsupportedModel, match="callbacks.gradient_flow cannot read model 'cnn'"):
        train(cfg)
