"""Gate pictures: traces of one review, and `scripts/explain.py` from the command line."""

from __future__ import annotations

import csv
import subprocess
import sys
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from compose import compose
from omegaconf import open_dict
from torch.utils.data import DataLoader

from rnnlab.data.batching import EncodedReviews, collate
from rnnlab.data.preprocess import Preprocessor
from rnnlab.data.synthetic import NEGATIVE, NEUTRAL, POSITIVE
from rnnlab.explain import as_scratch, run, running_probability, trace_review
from rnnlab.models.classifier import RecurrentClassifier
from rnnlab.models.recurrent import reverse_valid
from rnnlab.module import SentimentModule

ROOT = Path(__file__).resolve().parents[1]
VOCAB = ["<pad>", "<unk>", *POSITIVE, *NEGATIVE, *NEUTRAL]
PNG = b"\x89PNG\r\n\x1a\n"
TEXT = "Terrible, boring movie until the plot twist: a wonderful, moving ending!"


def tiny_model(cell: str, bidirectional: bool = False, seed: int = 0) -> SentimentModule:
    L.seed_everything(seed)
    preprocess = Preprocessor(remove_stopwords=False).config()
    net = partial(
        RecurrentClassifier, cell=cell, bidirectional=bidirectional, embed_dim=8, hidden_size=6
    )
    return SentimentModule(VOCAB, preprocess, net=net, name=cell).eval()


def save_checkpoint(model: SentimentModule, path: Path) -> Path:
    """A real Lightning checkpoint after one optimizer step on a few encoded reviews."""
    reviews = EncodedReviews([np.arange(2, 9), np.arange(10, 14)], np.array([1, 0]))
    trainer = L.Trainer(
        max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    trainer.fit(model.train(), DataLoader(reviews, batch_size=2, collate_fn=collate))
    trainer.save_checkpoint(path)
    return path


def test_running_probability_is_the_head_on_each_step_state():
    model = tiny_model("lstm")
    ids = torch.randint(2, len(VOCAB), (1, 9))
    probability = running_probability(model, ids, chunk=4)  # several chunks
    with torch.no_grad():
        steps, _ = model.net.encoder(model.net.embed(ids), torch.tensor([9]))
        expected = torch.sigmoid(model.net.head(steps[0])).squeeze(-1)
    np.testing.assert_allclose(probability, expected.numpy(), atol=1e-6)


def test_bidirectional_running_probability_reads_each_prefix_alone():
    model = tiny_model("gru", bidirectional=True)
    ids = torch.randint(2, len(VOCAB), (1, 6))
    probability = running_probability(model, ids, chunk=4)
    with torch.no_grad():
        alone = [torch.sigmoid(model(ids[:, :t], torch.tensor([t]))).item() for t in range(1, 7)]
    np.testing.assert_allclose(probability, alone, atol=1e-6)


def test_lstm_checkpoints_are_replayed_with_the_scratch_cell():
    model = tiny_model("lstm", bidirectional=True)
    scratch = as_scratch(model)
    assert scratch.net.cell == "lstm_scratch" and model.net.cell == "lstm"
    ids, lengths = torch.randint(2, len(VOCAB), (3, 7)), torch.tensor([7, 7, 7])
    with torch.no_grad():
        torch.testing.assert_close(scratch(ids, lengths), model(ids, lengths), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="no gates"):
        as_scratch(tiny_model("gru"))


def test_trace_aligns_both_directions_gates_with_the_words():
    model = tiny_model("lstm", bidirectional=True)
    trace = trace_review(model, TEXT)
    tokens = Preprocessor(remove_stopwords=False)(TEXT)
    assert trace.tokens == tokens
    assert trace.known == [t in VOCAB for t in tokens] and not all(trace.known)  # "twist"
    assert trace.probability.shape == (len(tokens),)
    assert set(trace.gates) == {"forget", "input", "output"}
    for values in trace.gates.values():
        assert values.shape == (2, len(tokens), 6) and ((values > 0) & (values < 1)).all()

    # the backward direction's gates at word t are the ones it computed when reading word t
    scratch = as_scratch(model)
    ids = torch.tensor([[VOCAB.index(t) if t in VOCAB else 1 for t in tokens]])
    lengths = torch.tensor([len(tokens)])
    backward = scratch.net.encoder.layers[0][1]
    with torch.no_grad():
        _, _, gates = backward(reverse_valid(scratch.net.embed(ids), lengths), return_gates=True)
    np.testing.assert_allclose(trace.gates["forget"][1], gates["forget"][0].flip(0), atol=1e-6)
    assert trace.probability[-1] == pytest.approx(model.predict_texts([TEXT]).item(), abs=1e-6)


def test_empty_review_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="no words left"):
        trace_review(tiny_model("lstm"), "<br /> 123 !!!")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_explain_run_draws_gates_for_lstm_and_probability_for_others(tmp_path, cell, capsys):
    checkpoint = save_checkpoint(tiny_model(cell), tmp_path / f"{cell}.ckpt")
    cfg = compose(
        "explain", [f"ckpt_path={checkpoint}", f"output={tmp_path / 'x.png'}", "text=dull"]
    )
    with open_dict(cfg):
        cfg.text = TEXT
    capsys.readouterr()  # drop what training the checkpoint printed
    trace = run(cfg)
    assert (trace.gates is not None) == (cell == "lstm")
    assert (tmp_path / "x.png").read_bytes()[:8] == PNG
    assert capsys.readouterr().out.startswith(("positive\t", "negative\t"))


def test_explain_script_from_the_command_line(tmp_path):
    checkpoint = save_checkpoint(tiny_model("lstm"), tmp_path / "lstm.ckpt")
    output = tmp_path / "pictures" / "review.png"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "explain.py"),
            f"ckpt_path={checkpoint}",
            f"text={TEXT}",  # as the shell passes it: commas and a colon, no quotes left
            f"output={output}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    label, probability, note = result.stdout.strip().split("\t")
    assert label in ("positive", "negative") and 0 <= float(probability) <= 1
    assert note == f"wrote {output} and review.csv"
    assert output.read_bytes()[:8] == PNG
    rows = list(csv.DictReader(output.with_suffix(".csv").open()))
    assert [r["word"] for r in rows] == Preprocessor(remove_stopwords=False)(TEXT)
    assert float(rows[-1]["p_positive"]) == pytest.approx(float(probability), abs=1e-4)
    assert {"forget_mean", "input_mean", "output_mean"} <= set(rows[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lstm.ckpt", "pictures"]  # no log
