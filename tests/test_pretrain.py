"""Language-model pretraining: its corpus, its token stream, its model, and exact resumption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from compose import ROOT, compose

from rnnlab.checkpoint import CheckpointError
from rnnlab.data.datamodule import IMDBDataModule
from rnnlab.data.lm_data import EOS_ID, LMDataModule, TokenWindows, join_reviews
from rnnlab.data.synthetic import write_dataset
from rnnlab.models.language_model import LanguageModel, embedding_dropout, usable_cutoffs
from rnnlab.pretrain import pretrain

TINY = [
    "lm.embed_dim=16",
    "lm.hidden_size=24",
    "lm.batch_size=4",
    "lm.bptt=12",
    "lm.segments=2",
    "data.val_reviews=40",
    "data.vocab.max_size=200",
]


@pytest.fixture(scope="module")
def lm_archive(tmp_path_factory) -> Path:
    """400 labeled reviews (200 official train) and 300 unlabeled ones."""
    return write_dataset(tmp_path_factory.mktemp("lm"), 400, "archive", unlabeled=300)


def lm_data(archive: Path, tmp_path: Path, *overrides: str) -> LMDataModule:
    import hydra

    cfg = compose("pretrain", [f"data.path={archive}", *TINY, *overrides], tmp_path)
    data = hydra.utils.instantiate(cfg.data, _convert_="all")
    data.setup("fit")
    return data


def test_corpus_is_the_training_part_plus_unlabeled_never_validation_or_test(lm_archive, tmp_path):
    data = lm_data(lm_archive, tmp_path)
    labeled = IMDBDataModule(path=str(lm_archive), split={"name": "official"})
    _, parts = labeled.split_rows()
    assert set(data.rows["train"]) == set(parts["train"])
    assert not set(data.rows["train"]) & (set(parts["val"]) | set(parts["test"]))
    # perplexity is measured on unlabeled reviews the model does not train on
    assert data.val_source == "unlabeled"
    assert len(data.rows["val"]) == 40
    assert not set(data.rows["val"]) & set(data.rows["unlabeled"])
    assert len(data.rows["unlabeled"]) == 300 - 40
    assert len(data.train_reviews) == len(parts["train"]) + 260
    # frequency-sorted after the specials (adaptive softmax's clusters are frequency bands)
    assert data.vocab.itos[:3] == ["<pad>", "<unk>", "<eos>"]


def test_the_tutorial_split_keeps_its_test_part_out(lm_archive, tmp_path):
    data = lm_data(lm_archive, tmp_path, "split=tutorial")
    labeled = IMDBDataModule(path=str(lm_archive), split={"name": "tutorial"})
    _, parts = labeled.split_rows()
    assert set(data.rows["train"]) == set(parts["train"])
    assert not set(data.rows["train"]) & set(parts["test"])


def test_windows_continue_each_row_of_the_stream():
    stream = torch.arange(2 * 31).view(2, 31)
    windows = list(TokenWindows(stream, bptt=7))
    assert len(windows) == 5  # 30 targets per row in windows of 7: 7, 7, 7, 7, 2
    for (x, y), (next_x, _) in zip(windows, windows[1:], strict=False):
        assert torch.equal(y[:, :-1], x[:, 1:])  # targets are the next tokens
        assert torch.equal(next_x[:, 0], y[:, -1])  # the next window reads on
    assert torch.equal(windows[-1][1][:, -1], stream[:, -1])


def test_a_pass_is_cut_into_epochs_that_read_each_window_once(lm_archive, tmp_path):
    data = lm_data(lm_archive, tmp_path, "lm.segments=3")
    windows = [data.epoch_windows(e) for e in range(3)]
    assert windows[0].start == 0 and windows[-1].stop == data.windows_per_pass()
    assert all(a.stop == b.start for a, b in zip(windows, windows[1:], strict=False))
    # the next pass reads the reviews in another order
    assert not torch.equal(data.epoch_windows(3).stream, windows[0].stream)
    # and every review ends with <eos>
    assert (windows[0].stream == EOS_ID).sum() >= len(data.train_reviews) - 4


def test_backward_reads_the_same_stream_reversed(lm_archive, tmp_path):
    forward = lm_data(lm_archive, tmp_path, "lm.direction=forward")
    backward = lm_data(lm_archive, tmp_path, "lm.direction=backward")
    order = np.random.default_rng([42, 0]).permutation(len(forward.train_reviews))
    joined = join_reviews(forward.train_reviews, order)
    rows, length = forward.train_stream(0).shape
    assert np.array_equal(forward.train_stream(0).flatten().numpy(), joined[: rows * length])
    assert np.array_equal(backward.train_stream(0).flatten().numpy(), joined[::-1][: rows * length])


def test_adaptive_softmax_cutoffs_fit_any_vocabulary():
    assert usable_cutoffs([2000, 10000], 30000) == [2000, 10000]
    assert usable_cutoffs([2000, 10000], 5000) == [2000]
    assert usable_cutoffs([2000, 10000], 100) == [50]


def test_embedding_dropout_drops_every_occurrence_of_a_word():
    torch.manual_seed(0)
    embed = torch.nn.Embedding(50, 8)
    ids = torch.tensor([[3, 7, 3, 9, 7, 3]])
    out = embedding_dropout(embed, ids, p=0.5, training=True)
    dropped = (out == 0).all(-1)[0]
    for word in (3, 7, 9):
        assert len(set(dropped[ids[0] == word].tolist())) == 1  # all or none of its occurrences
    assert torch.equal(embedding_dropout(embed, ids, 0.5, training=False), embed(ids))


def test_state_carries_over_between_windows():
    torch.manual_seed(0)
    lm = LanguageModel(30, embed_dim=8, hidden_size=12, num_layers=2, cutoffs=[10]).eval()
    ids = torch.randint(3, 30, (2, 20))
    whole, _ = lm(ids)
    first, state = lm(ids[:, :8])
    second, _ = lm(ids[:, 8:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    return checkpoint["state_dict"]


def test_a_resumed_pretraining_repeats_the_uninterrupted_one(lm_archive, tmp_path):
    # the schedule's length is fixed, so a run of one epoch is the first epoch of three
    schedule = "lm.scheduler.T_max=3"
    whole = compose(
        "pretrain", [f"data.path={lm_archive}", *TINY, schedule, "lm.epochs=3"], tmp_path / "a"
    )
    metrics = pretrain(whole)
    assert np.isfinite(metrics["val/ppl"]) and metrics["val/ppl"] > 1
    first = compose(
        "pretrain", [f"data.path={lm_archive}", *TINY, schedule, "lm.epochs=1"], tmp_path / "b"
    )
    pretrain(first)
    run = Path(first.paths.output_dir)
    last = run / "checkpoints" / "last.ckpt"
    resumed = compose(
        "pretrain",
        [f"data.path={lm_archive}", *TINY, schedule, "lm.epochs=3", f"ckpt_path={last}"],
        tmp_path / "b",
    )
    pretrain(resumed)
    expected, got = final_weights(Path(whole.paths.output_dir)), final_weights(run)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    record = json.loads((run / "metrics.json").read_text())
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3]
    assert {"val/ppl", "val/loss", "train/loss", "train/tokens_per_s"} <= set(record["history"][-1])
    assert record["best"]["epoch"] is not None
    # the checkpoint carries what fine-tuning needs
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["hyper_parameters"]["vocab"][:3] == ["<pad>", "<unk>", "<eos>"]
    assert checkpoint["rnnlab_language_model"]["direction"] == "forward"


def test_resuming_with_another_vocabulary_is_refused(lm_archive, tmp_path):
    first = compose("pretrain", [f"data.path={lm_archive}", *TINY, "lm.epochs=1"], tmp_path)
    pretrain(first)
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    other = compose(
        "pretrain",
        [f"data.path={lm_archive}", *TINY, "data.vocab.max_size=20", f"ckpt_path={last}"],
        tmp_path,
    )
    with pytest.raises(CheckpointError, match="another vocabulary"):
        pretrain(other)


def _pretrain_command(archive: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "pretrain.py"),
        f"data.path={archive}",
        *TINY,
        "lm.segments=4",
        "lm.epochs=6",
        f"paths.log_dir={out / 'logs'}",
        f"paths.data_dir={out / 'data'}",
        f"hydra.run.dir={out / 'run'}",
        *extra,
    ]


def test_a_pretraining_killed_with_sigkill_resumes_exactly(lm_archive, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run(_pretrain_command(lm_archive, tmp_path / "whole"), env=env, check=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _pretrain_command(lm_archive, killed),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = killed / "run" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    subprocess.run(_pretrain_command(lm_archive, killed, f"ckpt_path={last}"), env=env, check=True)
    expected, got = final_weights(tmp_path / "whole" / "run"), final_weights(killed / "run")
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def test_a_table_without_unlabeled_reviews_measures_perplexity_on_training_reviews(tmp_path):
    table = write_dataset(tmp_path / "csv", 400, "csv")
    data = lm_data(table, tmp_path, "split=holdout")
    assert data.val_source == "labeled" and len(data.rows["unlabeled"]) == 0
    assert not set(data.rows["val"]) & set(data.rows["train"])


def test_a_bad_language_model_setting_is_refused_before_reading_data(tmp_path):
    from rnnlab.errors import ConfigError

    cfg = compose(
        "pretrain", ["data.path=/nowhere.tar.gz", "lm.hidden_size=0", "lm.bptt=1"], tmp_path
    )
    with pytest.raises(
        ConfigError, match=r"lm.hidden_size=0.*lm.bptt=1|lm.bptt=1.*lm.hidden_size=0"
    ):
        pretrain(cfg)
