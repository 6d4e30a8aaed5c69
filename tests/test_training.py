import json
from pathlib import Path

import pytest
import torch

from rnnlab.module import SentimentModule
from rnnlab.train import train


@pytest.mark.parametrize("model", ["rnn", "lstm", "bilstm", "gru"])
def test_each_family_learns_synthetic_sentiment(train_cfg, model):
    cfg = train_cfg(f"model={model}", "trainer.max_epochs=3", "test=false", "logger=[]")
    metrics = train(cfg)
    assert metrics["val/acc"] > 0.85, metrics


def test_run_writes_metrics_json_checkpoints_and_tensorboard(train_cfg):
    cfg = train_cfg("model=gru")
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    report = json.loads((run_dir / "metrics.json").read_text())
    assert report["status"] == "completed"
    assert report["model"] == "gru"
    assert report["epochs"] == 2 and len(report["history"]) == 2
    assert report["split"] == "seed"
    assert report["sizes"]["train"] == 960
    assert report["best"]["val/acc"] == max(h["val/acc"] for h in report["history"])
    assert report["final"]["val/acc"] == report["history"][-1]["val/acc"]
    assert set(report["test"]) >= {"test/acc", "test/loss", "test/f1", "test/auroc"}
    assert report["train_seconds"] > 0
    checkpoints = {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert "last.ckpt" in checkpoints and any(n.startswith("epoch_") for n in checkpoints)
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 1  # the latest epoch, not the best one
    assert list(run_dir.glob("events.out.tfevents.*"))


def test_same_seed_repeats_metrics_exactly_on_cpu(train_cfg):
    first = train(train_cfg("model=lstm", "test=false", "logger=[]"))
    second = train(train_cfg("model=lstm", "test=false", "logger=[]"))
    assert first["val/acc"] == second["val/acc"]
    assert first["val/loss"] == second["val/loss"]
    third = train(train_cfg("model=lstm", "test=false", "logger=[]", "seed=7"))
    assert third["val/loss"] != first["val/loss"]


def test_padding_never_changes_a_prediction():
    torch.manual_seed(0)
    module = SentimentModule(
        vocab=["<pad>", "<unk>", *"abcdefgh"],
        preprocess={},
        cell="lstm",
        bidirectional=True,
        hidden_size=16,
        embed_dim=8,
        pooling="final+max+mean",
    ).eval()
    review = torch.tensor([[2, 3, 4, 5, 6]])
    alone = module(review, torch.tensor([5]))
    batch = torch.zeros(3, 12, dtype=torch.long)
    batch[0, :9] = torch.arange(2, 11) % 8 + 2
    batch[1, :5] = review[0]
    batch[2, :12] = 3
    together = module(batch, torch.tensor([9, 5, 12]))
    torch.testing.assert_close(together[1], alone[0], rtol=0, atol=1e-6)
