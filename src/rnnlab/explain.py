"""`scripts/explain.py`: watch an LSTM read one review, gate by gate, word by word.

For each word the picture shows the mean forget, input and output selector of the top layer
(LSTM family: checkpoints trained with nn.LSTM are replayed by the hand-written ScratchLSTM with
the same weights) and the model's positive probability had the review ended there.
"""

from __future__ import annotations

import csv
import functools
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import torch
from omegaconf import DictConfig

from rnnlab.checkpoint import load_checkpoint
from rnnlab.data.preprocess import Preprocessor
from rnnlab.data.vocab import Vocab
from rnnlab.models.classifier import RecurrentClassifier
from rnnlab.models.lstm_scratch import SCRATCH_CELLS, recording_gates
from rnnlab.models.net import require
from rnnlab.models.recurrent import reverse_valid
from rnnlab.module import SentimentModule

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

LSTM_CELLS = {"lstm", *SCRATCH_CELLS}
SHOWN_GATES = {"forget": "tab:blue", "input": "tab:green", "output": "tab:orange"}
READS = (
    "recurrent nets word by word (RecurrentClassifier: model=rnn, lstm, bilstm, gru, lstm_scratch,"
    " bilstm_scratch), with the gates of the LSTM ones"
)


def require_readable(model: SentimentModule) -> RecurrentClassifier:
    """The model's recurrent net, or UnsupportedModel naming its family and what explain reads."""
    require(model.net, RecurrentClassifier, "scripts/explain.py", READS, model.hparams.get("name"))
    return model.net


@dataclass
class Trace:
    """What the model did with one review."""

    tokens: list[str]
    known: list[bool]  # False: not in the vocabulary, read as <unk>
    probability: np.ndarray  # (T,) positive probability of the review cut after each word
    gates: dict[str, np.ndarray] | None  # name -> (directions, T, hidden units), top layer


def as_scratch(model: SentimentModule) -> SentimentModule:
    """The same model with its LSTM replayed by ScratchLSTM: same weights, gates readable."""
    cell = require_readable(model).cell
    if cell in SCRATCH_CELLS:
        return model
    if cell not in LSTM_CELLS:
        raise ValueError(f"cell {cell!r} has no gates to show")
    # what built the net (a partial, from the config): the same, with the scratch cell
    net = model.hparams.net
    net = net if isinstance(net, functools.partial) else functools.partial(net)
    scratch_net = functools.partial(net.func, *net.args, **{**net.keywords, "cell": "lstm_scratch"})
    scratch = SentimentModule(**{**model.hparams, "net": scratch_net})
    scratch.load_state_dict(model.state_dict())
    return scratch.eval()


@torch.no_grad()
def running_probability(model: SentimentModule, ids: torch.Tensor, chunk: int = 64) -> np.ndarray:
    """P(positive) of every prefix of one review, in batches of `chunk` prefixes.

    For a one-direction model with final-state pooling this is the classifier head applied to
    each step's hidden state; for a bidirectional one it is what the model would say had the
    review stopped at that word.
    """
    steps = ids.numel()
    out = []
    for start in range(0, steps, chunk):
        lengths = torch.arange(start + 1, min(start + chunk, steps) + 1)
        prefixes = ids.expand(len(lengths), steps)[:, : int(lengths.max())]
        prefixes = prefixes.masked_fill(
            torch.arange(prefixes.size(1))[None, :] >= lengths[:, None], 0
        )
        out.append(torch.sigmoid(model(prefixes.to(model.device), lengths)).float().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def trace_review(model: SentimentModule, text: str) -> Trace:
    """Tokens, running probability and (LSTM family) top-layer gate values for one review."""
    cell = require_readable(model).cell
    model.eval()
    tokens = Preprocessor(**model.hparams.preprocess)(text)
    if not tokens:
        raise ValueError(
            f"text={text!r} has no words left after the checkpoint's preprocessing "
            f"{dict(model.hparams.preprocess)}; give a review with some content words."
        )
    vocab = Vocab(model.hparams.vocab)
    ids = torch.from_numpy(vocab.encode(tokens))[None, :]
    lengths = torch.tensor([ids.size(1)])
    gates = None
    if cell in LSTM_CELLS:
        scratch = as_scratch(model)
        with recording_gates(scratch.net) as cells:
            scratch(ids, lengths)
        top = cells[-scratch.net.encoder.directions :]
        # the backward direction read the words last to first: put its steps back in word order
        gates = {
            name: np.stack(
                [
                    (reverse_valid(c.gates[name], lengths) if d == 1 else c.gates[name])[0].numpy()
                    for d, c in enumerate(top)
                ]
            )
            for name in SHOWN_GATES
        }
    return Trace(
        tokens=tokens,
        known=[t in vocab.stoi for t in tokens],
        probability=running_probability(model, ids),
        gates=gates,
    )


def plot_trace(trace: Trace, title: str, path: str | Path) -> Path:
    """One panel per gate (if any), running probability below, one column per word.

    A gate panel draws the mean over the hidden units and shades where the middle 80% of the
    units lie (10th to 90th percentile): the mean alone hides units that open and close.
    """
    steps = len(trace.tokens)
    gates = list(SHOWN_GATES.items()) if trace.gates else []
    rows = len(gates) + 1
    figure, axes = plt.subplots(
        rows,
        1,
        figsize=(max(8.0, 0.26 * steps + 2.5), 1.9 * rows + 2.4),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [1] * len(gates) + [1.6]},
    )
    x = np.arange(steps)
    marker = "o" if steps <= 60 else None
    for ax, (name, color) in zip(axes[:, 0], gates, strict=False):
        for d, values in enumerate(trace.gates[name]):
            low, high = np.percentile(values, [10, 90], axis=-1)
            ax.fill_between(x, low, high, color=color, alpha=0.25 if d == 0 else 0.12, linewidth=0)
            ax.plot(
                x,
                values.mean(-1),
                color=color,
                linestyle="--" if d else "-",
                marker=marker,
                markersize=3,
                label="mean, reading backward" if d else "mean over units",
            )
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"{name} gate", color=color)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    if gates:
        axes[0, 0].set_title(
            "gate values: 0 = closed, 1 = open; shaded: where the middle 80% of the units are",
            fontsize="small",
        )
    ax = axes[-1, 0]
    ax.axhline(0.5, color="grey", linewidth=1, linestyle=":")
    positive = trace.probability >= 0.5
    for where, color in ((positive, "tab:green"), (~positive, "tab:red")):
        ax.fill_between(
            x, 0.5, trace.probability, where=where, color=color, alpha=0.25, interpolate=True
        )
    ax.plot(x, trace.probability, color="black", marker=marker, markersize=3)
    ax.set_ylim(0, 1)
    ax.set_ylabel("P(positive) if the\nreview ended here")
    ax.set_xticks(x)
    ax.set_xticklabels(trace.tokens, rotation=90)
    for label, known in zip(ax.get_xticklabels(), trace.known, strict=True):
        if not known:
            label.set_color("grey")
            label.set_fontstyle("italic")
    ax.set_xlim(-0.5, steps - 0.5)
    ax.set_xlabel("words as the model reads them (grey italics: unknown word, read as <unk>)")
    ax.grid(alpha=0.3)
    figure.suptitle(title, fontsize="medium")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_table(trace: Trace, path: str | Path) -> Path:
    """The picture's numbers, one row per word: P(positive) and each gate's mean over units."""
    columns = {"word": trace.tokens, "known": [int(k) for k in trace.known]}
    columns["p_positive"] = [f"{p:.4f}" for p in trace.probability]
    for name, values in (trace.gates or {}).items():
        for d, direction in enumerate(values):
            key = f"{name}_mean" + ("_backward" if d else "")
            columns[key] = [f"{v:.4f}" for v in direction.mean(-1)]
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))
    return path


def run(cfg: DictConfig) -> Trace:
    """`python scripts/explain.py ckpt_path=CKPT text="..." output=explain.png`: writes the PNG
    and, beside it, a CSV of the same numbers (explain.csv)."""
    model, _ = load_checkpoint(cfg.ckpt_path)
    trace = trace_review(model, str(cfg.text))
    name = model.hparams.get("name")
    final = float(trace.probability[-1])
    verdict = "positive" if final >= 0.5 else "negative"
    quoted = textwrap.shorten(str(cfg.text), width=90, placeholder="...")
    title = f'{name}: "{quoted}"\nfinal P(positive) = {final:.3f} ({verdict})'
    if trace.gates is None:
        title += f"; cell {model.net.cell!r} has no gates, only the probability is shown"
    path = plot_trace(trace, title, cfg.output)
    table = write_table(trace, path.with_suffix(".csv"))
    print(f"{verdict}\t{final:.4f}\twrote {path} and {table.name}")
    return trace
