import json
import re
from functools import partial
from pathlib import Path

import pytest
import torch

from rnnlab.data.vocab import UNK_ID
from rnnlab.models.classifier import RecurrentClassifier, bigram_ids
from rnnlab.module import SentimentModule
from rnnlab.runtime import machine_description
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
    assert report["machine"] == machine_description()  # the CPU model and its vector units
    assert report["split"] == "holdout"  # the default: 20% test, 10% of the rest validation
    assert report["sizes"] == {
        "train": 864,
        "val": 96,
        "test": 240,
        "vocab": report["sizes"]["vocab"],
    }
    assert report["best"]["val/acc"] == max(h["val/acc"] for h in report["history"])
    assert report["final"]["val/acc"] == report["history"][-1]["val/acc"]
    assert set(report["test"]) >= {"test/acc", "test/loss", "test/f1", "test/auroc"}
    assert report["train_seconds"] > 0
    checkpoints = {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert "last.ckpt" in checkpoints and any(n.startswith("epoch_") for n in checkpoints)
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["epoch"] == 1  # the latest epoch, not the best one
    assert list(run_dir.glob("events.out.tfevents.*"))


def test_each_epoch_leaves_a_line_in_the_log(train_cfg, caplog):
    # runs without a progress bar (the results tables' driver) show their progress in train.log
    caplog.set_level("INFO", logger="rnnlab.callbacks")
    train(train_cfg("model=gru", "test=false", "logger=[]", "++trainer.enable_progress_bar=false"))
    lines = [r.getMessage() for r in caplog.records if r.name == "rnnlab.callbacks"]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"], lines
    pattern = r"epoch \d/2: .*val/acc [01]\.\d{4} .*train/loss \d+\.\d{4}.* \(\d+ s\)"
    assert all(re.fullmatch(pattern, line) for line in lines), lines


def test_same_seed_repeats_metrics_exactly_on_cpu(train_cfg):
    first = train(train_cfg("model=lstm", "test=false", "logger=[]"))
    second = train(train_cfg("model=lstm", "test=false", "logger=[]"))
    assert first["val/acc"] == second["val/acc"]
    assert first["val/loss"] == second["val/loss"]
    third = train(train_cfg("model=lstm", "test=false", "logger=[]", "seed=7"))
    assert third["val/loss"] != first["val/loss"]


@pytest.mark.parametrize("bigram_buckets", [0, 97])
def test_padding_never_changes_a_prediction(bigram_buckets):
    torch.manual_seed(0)
    net = partial(
        RecurrentClassifier,
        cell="lstm",
        bidirectional=True,
        hidden_size=16,
        embed_dim=8,
        pooling="final+max+mean",
        bigram_buckets=bigram_buckets,
    )
    module = SentimentModule(vocab=["<pad>", "<unk>", *"abcdefgh"], preprocess={}, net=net).eval()
    review = torch.tensor([[2, 3, 4, 5, 6]])
    alone = module(review, torch.tensor([5]))
    batch = torch.zeros(3, 12, dtype=torch.long)
    batch[0, :9] = torch.arange(2, 11) % 8 + 2
    batch[1, :5] = review[0]
    batch[2, :12] = 3
    together = module(batch, torch.tensor([9, 5, 12]))
    torch.testing.assert_close(together[1], alone[0], rtol=0, atol=1e-6)


def test_bigram_ids_depend_on_the_pair_and_stay_in_range():
    ids = torch.tensor([[5, 7, 5, 7, 0], [7, 5, 7, 5, 9]])
    pairs = bigram_ids(ids, 1_000)
    assert pairs.shape == ids.shape and int(pairs.min()) >= 0 and int(pairs.max()) < 1_000
    assert pairs[0, 1] == pairs[0, 3] == pairs[1, 2]  # (5, 7) wherever it occurs
    assert pairs[0, 1] != pairs[1, 1]  # (5, 7) is not (7, 5)
    assert pairs[0, 0] == bigram_ids(torch.tensor([[5]]), 1_000)[0, 0]  # the first pairs with 0


def test_word_dropout_turns_words_into_unk_in_training_only():
    torch.manual_seed(0)
    net = RecurrentClassifier(50, "gru", 8, 6, pooling="max", word_dropout=0.3)
    seen = []
    net.embed.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    ids = torch.randint(2, 50, (200, 40))
    ids[:, 30:] = 0  # padding
    lengths = torch.full((200,), 30)
    net.train()(ids, lengths)
    net.eval()(ids, lengths)
    trained, evaluated = seen
    changed = trained != ids
    assert (trained[changed] == UNK_ID).all()  # a dropped word becomes <unk>, nothing else
    assert not changed[:, 30:].any()  # padding stays padding
    assert abs(changed[:, :30].float().mean().item() - 0.3) < 0.02
    assert torch.equal(evaluated, ids)  # evaluation sees every word


def test_bigram_embedding_reaches_the_prediction():
    """Swapping two words keeps the bag of words but changes the pairs the model sees."""
    torch.manual_seed(0)
    net = RecurrentClassifier(10, "rnn", 8, 6, pooling="mean", bigram_buckets=50).eval()
    net.encoder.layers[0][0].weight_hh_l0.data.zero_()  # no recurrence: mean over steps only
    lengths = torch.tensor([4])
    a, b = torch.tensor([[2, 3, 4, 5]]), torch.tensor([[3, 2, 4, 5]])
    assert not torch.allclose(net(a, lengths), net(b, lengths))
    net.bigram_embed.weight.data.zero_()
    torch.testing.assert_close(net(a, lengths), net(b, lengths))


def test_ema_validates_checkpoints_and_tests_the_averaged_weights(train_cfg):
    # a short average (decay 0.9) lags the raw weights by several steps, so the two differ
    cfg = train_cfg(
        "model=gru",
        "split=tutorial",
        "callbacks=[default,ema]",
        "callbacks.ema.decay=0.9",
        "logger=[]",
    )
    train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    report = json.loads((run_dir / "metrics.json").read_text())
    best = torch.load(report["best"]["checkpoint"], weights_only=False)
    raw, average = best["current_model_state"], best["state_dict"]
    assert any(not torch.equal(raw[k], average[k]) for k in average)
    # split=tutorial tests on its validation reviews: the test must score the weights validated
    # there (the average), not the raw weights Lightning's callback would restore
    validated = report["history"][report["best"]["epoch"] - 1]
    assert report["test"]["test/loss"] == pytest.approx(validated["val/loss"], abs=1e-6)
    assert report["test"]["test/acc"] == validated["val/acc"]


def test_bf16_mixed_on_the_cpu_learns_and_saves_fp32_weights(train_cfg, caplog):
    """trainer.precision=bf16-mixed on the CPU learns the synthetic task, the checkpoint holds
    fp32 weights, and rnnlab warns exactly where the CPU lacks bf16 units."""
    from rnnlab.runtime import cpu_description, has_bf16_units

    cfg = train_cfg(
        "model=bilstm", "trainer.precision=bf16-mixed", "trainer.max_epochs=3", "test=false"
    )
    metrics = train(cfg)
    assert metrics["val/acc"] > 0.85, metrics
    last = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=False)
    assert {t.dtype for t in last["state_dict"].values() if t.is_floating_point()} == {
        torch.float32
    }
    warned = "has no bf16 units" in caplog.text
    assert warned == (not has_bf16_units(cpu_description()[1]))


def test_resuming_a_finished_run_tests_it_and_returns_its_optimized_metric(train_cfg):
    """`ckpt_path=last.ckpt` of a run that already ran all its epochs: nothing is left to fit,
    the best checkpoint is tested, and the sweeper's metric comes from the run's record."""
    from rnnlab.train import run

    cfg = train_cfg("model=gru", "test=false")
    first = run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    cfg.test, cfg.ckpt_path = True, str(run_dir / "checkpoints" / "last.ckpt")
    assert run(cfg) == first
    report = json.loads((run_dir / "metrics.json").read_text())
    assert report["status"] == "completed" and report["test"]["test/acc"] is not None
    assert len(report["history"]) == cfg.trainer.max_epochs
