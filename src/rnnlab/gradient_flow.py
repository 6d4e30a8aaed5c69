"""How much training signal reaches each earlier word: ||dL/dh_t|| through time.

The tip argues that an RNN's gradient shrinks as it is multiplied back through the steps, and
that the LSTM's cell state lets it pass. This module measures it on real reviews: the loss is
the training loss on the final state, and for every step t of a review the norm of its
gradient with respect to the hidden state h_t (total derivative, through all later steps) is
read off, indexed by steps from the end (0 = the state the classifier reads).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import hydra
import lightning as L
import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf
from torch import nn

from rnnlab.checkpoint import load_checkpoint
from rnnlab.data.batching import collate
from rnnlab.data.vocab import Vocab
from rnnlab.models.classifier import RecurrentClassifier
from rnnlab.models.lstm_scratch import ScratchLSTM
from rnnlab.models.net import require
from rnnlab.models.recurrent import reverse_valid
from rnnlab.train import instantiate_model

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

log = logging.getLogger(__name__)

STEP_CELLS: dict[type[nn.Module], type[nn.Module]] = {
    nn.RNN: nn.RNNCell,
    nn.GRU: nn.GRUCell,
    nn.LSTM: nn.LSTMCell,
    ScratchLSTM: nn.LSTMCell,
}

READS = (
    "the hidden states of recurrent nets (RecurrentClassifier: model=rnn, lstm, bilstm, gru, "
    "lstm_scratch, bilstm_scratch)"
)


def require_readable(
    net: nn.Module | type, name: object, tool: str = "scripts/gradient_flow.py"
) -> None:
    """UnsupportedModel, naming the family, unless `net` (or its class) has hidden states."""
    require(net, RecurrentClassifier, tool, READS, name)


class Unrolled(nn.Module):
    """One direction module replayed a step at a time with PyTorch's matching *Cell.

    A fused `nn.LSTM` returns all its outputs as one tensor, and the gradient on that tensor
    holds only each step's direct use; the path through later steps stays inside the kernel.
    Stepping with the cell (same weights, same numbers) makes every h_t a node of the graph,
    kept in `self.states`, so `autograd.grad(loss, h_t)` is the full backprop-through-time value.
    """

    def __init__(self, direction: nn.Module):
        super().__init__()
        kind = next((c for t, c in STEP_CELLS.items() if isinstance(direction, t)), None)
        if kind is None:
            raise TypeError(f"no step-by-step cell for {type(direction).__name__}")
        options = {"nonlinearity": direction.nonlinearity} if kind is nn.RNNCell else {}
        with torch.random.fork_rng(devices=[]):  # its throwaway init must not shift training's RNG
            self.cell = kind(direction.input_size, direction.hidden_size, **options)
        weights = {name.removesuffix("_l0"): w for name, w in direction.state_dict().items()}
        self.cell.load_state_dict(weights)
        self.cell.to(direction.weight_ih_l0.device)
        self.states: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        state, self.states = None, []
        for t in range(x.size(1)):
            state = self.cell(x[:, t], state)
            self.states.append(state[0] if isinstance(state, tuple) else state)
        return torch.stack(self.states, dim=1), None


def step_gradient_norms(
    net: RecurrentClassifier, ids: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """(B, T): ||d loss_b / d h_t|| of each review's own loss, at column k = steps from the end.

    Bidirectional models join both directions' states k steps before each one's final state
    (the backward direction ends at the first word). Columns past a review's length are NaN.
    `net` itself is left untouched (a copy is unrolled, in eval mode: no dropout).
    """
    require_readable(net, type(net).__name__, "gradient flow")
    unrolled = copy.deepcopy(net).eval()
    top = unrolled.encoder.layers[-1]
    for d in range(len(top)):
        top[d] = Unrolled(top[d])
    device = next(net.parameters()).device
    ids, labels = ids.to(device), labels.to(device)
    with torch.enable_grad():
        logits = unrolled(ids, lengths)
        loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="sum")
        states = [h for d in top for h in d.states]
        grads = torch.autograd.grad(loss, states)
    # float64: squaring a float32 gradient of 1e-23 would underflow to 0 before the square root
    squares = torch.zeros(ids.shape, device=device, dtype=torch.float64)
    steps = ids.size(1)
    for d in range(len(top)):  # each direction in its own reading order, then last step first
        grad = torch.stack(grads[d * steps : (d + 1) * steps], dim=1).double()
        squares += reverse_valid(grad, lengths).pow(2).sum(-1)
    norms = squares.sqrt()
    past_start = torch.arange(ids.size(1), device=device)[None, :] >= lengths.to(device)[:, None]
    return norms.masked_fill(past_start, float("nan")).cpu()


def median_curve(norms: torch.Tensor) -> np.ndarray:
    """Median over reviews at each distance from the end (reviews that long only)."""
    return np.nanmedian(norms.numpy(), axis=0)


def ratios(curve: np.ndarray, distances: Sequence[int]) -> dict[str, float]:
    """`ratio_k` = curve[k] / curve[0]: the share of the last step's gradient left k steps back."""
    return {
        f"ratio_{k}": float(curve[k] / curve[0])
        for k in distances
        if k < len(curve) and np.isfinite(curve[k]) and curve[0] > 0
    }


def longest_reviews(
    reviews: Sequence[tuple[np.ndarray, int]], count: int, max_steps: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The `count` longest reviews (first ones on ties), cut to their first `max_steps` tokens."""
    sizes = np.array([len(reviews[i][0]) for i in range(len(reviews))])
    picked = np.argsort(-sizes, kind="stable")[:count]
    items = [(np.asarray(reviews[i][0])[:max_steps], int(reviews[i][1])) for i in picked]
    return collate(items)


def plot_curves(ax, curves: dict[str, np.ndarray], title: str) -> None:
    """||dL/dh|| against steps from the end, log scale, one line per model."""
    for label, curve in curves.items():
        ax.semilogy(np.arange(len(curve)), np.where(curve > 0, curve, np.nan), label=label)
    ax.set_xlabel("steps back from the last word (0 = the state the classifier reads)")
    ax.set_ylabel("median ||dL/dh_t||")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()


class GradientFlow(Callback):
    """Every `every_n_steps` optimizer steps (and at the start), measure ||dL/dh_t|| on a fixed
    batch: the `num_reviews` longest validation reviews cut to `max_steps` tokens.

    Logs `grad_flow/norm_last` (k = 0), `grad_flow/ratio_<k>` for each k in `distances` that
    the batch reaches, and the curve as an image `grad_flow/curve` in TensorBoard.
    """

    def __init__(
        self,
        every_n_steps: int = 200,
        num_reviews: int = 32,
        max_steps: int = 200,
        distances: Sequence[int] = (10, 50, 100),
    ):
        if every_n_steps < 1 or num_reviews < 1 or max_steps < 1:
            raise ValueError(
                "callbacks.gradient_flow needs every_n_steps, num_reviews and max_steps >= 1, got "
                f"{every_n_steps}, {num_reviews}, {max_steps}"
            )
        self.every_n_steps = every_n_steps
        self.num_reviews = num_reviews
        self.max_steps = max_steps
        self.distances = tuple(distances)
        self.batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.last_step: int | None = None
        self.curve: np.ndarray | None = None

    def _fixed_batch(self, trainer: L.Trainer) -> tuple[torch.Tensor, ...]:
        if self.batch is None:
            loader = trainer.val_dataloaders
            if loader is None and trainer.datamodule is not None:
                loader = trainer.datamodule.val_dataloader()
            if isinstance(loader, (list, tuple)):
                loader = loader[0] if loader else None
            if loader is None:
                raise ValueError(
                    "callbacks.gradient_flow measures on validation reviews, but this run has no "
                    "validation data. Train with a datamodule that has a val split, or drop the "
                    "gradient_flow callback."
                )
            self.batch = longest_reviews(loader.dataset, self.num_reviews, self.max_steps)
        return self.batch

    def measure(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        """Measure now and log to every logger; returns the scalars."""
        step = trainer.global_step
        self.last_step = step
        norms = step_gradient_norms(pl_module.net, *self._fixed_batch(trainer))
        self.curve = median_curve(norms)
        scalars = {"grad_flow/norm_last": float(self.curve[0])}
        scalars |= {f"grad_flow/{k}": v for k, v in ratios(self.curve, self.distances).items()}
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=step)
            if isinstance(logger, TensorBoardLogger):
                figure, ax = plt.subplots(figsize=(6, 4))
                name = pl_module.hparams.get("name", "model")
                plot_curves(ax, {name: self.curve}, f"gradient flow at step {step}")
                figure.tight_layout()
                logger.experiment.add_figure("grad_flow/curve", figure, global_step=step)
                plt.close(figure)
        return scalars

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Refuse a model family without hidden states before any training step."""
        name = pl_module.hparams.get("name")
        require_readable(pl_module.net, name, "callbacks.gradient_flow")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.measure(trainer, pl_module)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if trainer.is_global_zero and step % self.every_n_steps == 0 and step != self.last_step:
            self.measure(trainer, pl_module)


def _reencode(batch: tuple[torch.Tensor, ...], itos: Sequence[str], model) -> tuple:
    """The fixed batch in `model`'s own vocabulary (a loaded checkpoint may have another)."""
    if list(model.hparams.vocab) == list(itos):
        return batch
    ids, lengths, labels = batch
    vocab = Vocab(model.hparams.vocab)
    items = [
        (vocab.encode([itos[i] for i in row[:n].tolist()]), int(y))
        for row, n, y in zip(ids, lengths, labels, strict=True)
    ]
    return collate(items)


def compare(cfg: DictConfig) -> dict[str, dict]:
    """`scripts/gradient_flow.py`: measure each model of `cfg.models` at initialization and after
    brief training (or as loaded from `cfg.ckpt[name]`); write the PNG and a JSON of the curves."""
    for name, model_cfg in cfg.models.items():  # before any data is read
        if name not in (cfg.ckpt or {}):
            require_readable(hydra.utils.get_class(model_cfg._target_), name)
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    preprocess = datamodule.preprocessor.config()
    batch = longest_reviews(
        datamodule.val_dataloader().dataset, cfg.measure.num_reviews, cfg.measure.max_steps
    )
    checkpoints = OmegaConf.to_container(cfg.ckpt, resolve=True) or {}
    if unknown := set(checkpoints) - set(cfg.models):
        raise ValueError(
            f"ckpt has checkpoints for {sorted(unknown)}, which are not among models "
            f"{list(cfg.models)}. Use +ckpt.<name>=PATH with one of those names."
        )
    results: dict[str, dict] = {}
    for name, model_cfg in cfg.models.items():
        L.seed_everything(cfg.seed, workers=True)
        if name in checkpoints:
            trained, _ = load_checkpoint(checkpoints[name])
            if dict(trained.hparams.preprocess) != preprocess:
                raise ValueError(
                    f"ckpt.{name}={checkpoints[name]} was trained with preprocessing "
                    f"{dict(trained.hparams.preprocess)}, but this run reads reviews with "
                    f"{preprocess}. Pass the same preprocess settings (e.g. preprocess=...)."
                )
            L.seed_everything(cfg.seed, workers=True)
            initial = type(trained)(**trained.hparams)
        else:
            initial = instantiate_model(model_cfg, datamodule.vocab.itos, preprocess)
        require_readable(initial.net, name)
        own_batch = _reencode(batch, datamodule.vocab.itos, initial)
        before = median_curve(step_gradient_norms(initial.net, *own_batch))
        if name in checkpoints:
            model, val_acc = trained, None
        else:
            trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[])
            trainer.fit(initial, datamodule=datamodule)
            model, val_acc = initial, float(trainer.callback_metrics["val/acc"])
        after = median_curve(step_gradient_norms(model.net, *own_batch))
        results[name] = {
            "val_acc": val_acc,
            "checkpoint": checkpoints.get(name),
            "init": {"ratios": ratios(before, cfg.measure.distances), "curve": before.tolist()},
            "trained": {"ratios": ratios(after, cfg.measure.distances), "curve": after.tolist()},
        }
        log.info(
            "%s: val/acc %s; ratio (k steps back / last) at init %s, after training %s",
            name,
            "n/a" if val_acc is None else f"{val_acc:.3f}",
            _short(results[name]["init"]["ratios"]),
            _short(results[name]["trained"]["ratios"]),
        )

    figure, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    plot_curves(axes[0], {n: np.array(r["init"]["curve"]) for n, r in results.items()}, "")
    plot_curves(
        axes[1], {_label(n, r): np.array(r["trained"]["curve"]) for n, r in results.items()}, ""
    )
    lengths = batch[1]
    axes[0].set_title("at initialization")
    axes[1].set_title("after training" if not checkpoints else "trained")
    axes[0].annotate(
        "a line stops where the float32 gradient\nunderflowed to exactly 0",
        xy=(0.02, 0.02),
        xycoords="axes fraction",
        ha="left",
        va="bottom",
        fontsize="small",
        color="dimgrey",
    )
    words = (
        f"{int(lengths.min())}-{int(lengths.max())}"
        if lengths.min() < lengths.max()
        else int(lengths.max())
    )
    figure.suptitle(
        f"How much of the loss's gradient reaches each earlier word: median over the "
        f"{len(lengths)} longest validation reviews (first {words} words)"
    )
    figure.tight_layout()
    output = Path(cfg.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    plt.close(figure)
    summary = {
        "reviews": len(lengths),
        "words": [int(lengths.min()), int(lengths.max())],
        "train": {"max_reviews": cfg.data.max_reviews, "epochs": cfg.trainer.max_epochs},
        "models": results,
    }
    output.with_suffix(".json").write_text(json.dumps(summary, indent=2))
    log.info("Wrote %s and %s", output, output.with_suffix(".json"))
    return results


def _short(values: dict[str, float]) -> str:
    return ", ".join(f"{k.removeprefix('ratio_')}: {v:.1e}" for k, v in values.items())


def _label(name: str, result: dict) -> str:
    return name if result["val_acc"] is None else f"{name} (val acc {result['val_acc']:.2f})"
