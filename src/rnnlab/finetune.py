"""ULMFiT's fine-tuning tools (Howard & Ruder 2018) for any `TextClassifier`.

- `layer_groups`: the net's layers bottom to top: embedding, each layer of the body, then the
  head (and anything else). The other two tools work on these groups.
- Discriminative learning rates (`discriminative_param_groups`, `model.discriminative_lr`): the
  top group trains at the optimizer's rate, each group below at the rate above divided by the
  factor (ULMFiT: 2.6), so the pretrained lower layers move least.
- `SlantedTriangularLR`: per step, the rate rises linearly for `cut_frac` of the steps, then
  falls linearly; the lowest rate is 1/`ratio` of the peak (ULMFiT: 10%, 32).
- `GradualUnfreezing`: a Lightning `BaseFinetuning` callback; the first epoch trains the top group
  alone, and each epoch after unfreezes the next group down.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import BaseFinetuning
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def layer_groups(net: nn.Module) -> list[list[nn.Module]]:
    """[embedding], [body layer 0], ..., [body layer n-1], [head and everything else]."""
    embedding = [m for m in (getattr(net, "embed", None), getattr(net, "bigram_embed", None)) if m]
    encoder = getattr(net, "encoder", None)
    layers = getattr(encoder, "layers", None)
    body = [[layer] for layer in layers] if layers is not None else ([[encoder]] if encoder else [])
    grouped = {id(p) for group in [embedding, *body] for m in group for p in m.parameters()}
    rest = [
        m
        for m in net.children()
        if m is not encoder
        and m not in embedding
        and any(id(p) not in grouped for p in m.parameters())
    ]
    return [embedding, *body, rest]


def discriminative_param_groups(net: nn.Module, lr: float, factor: float) -> list[dict]:
    """Optimizer parameter groups of `layer_groups`, top at `lr`, each lower one divided by
    `factor` once more."""
    groups = [g for g in layer_groups(net) if any(True for m in g for _ in m.parameters())]
    depth = len(groups) - 1
    return [
        {"params": [p for m in group for p in m.parameters()], "lr": lr / factor ** (depth - i)}
        for i, group in enumerate(groups)
    ]


class SlantedTriangularLR(LambdaLR):
    """ULMFiT's slanted triangular schedule, stepped once per optimizer step: a factor of each
    group's rate that rises from 1/ratio to 1 over the first `cut_frac` of `total_steps`, then
    falls back to 1/ratio at the last step. `SentimentModule` passes `total_steps` (the
    trainer's estimated optimizer steps) and steps it per batch."""

    INTERVAL = "step"

    def __init__(
        self,
        optimizer: Optimizer,
        total_steps: int,
        cut_frac: float = 0.1,
        ratio: float = 32.0,
        last_epoch: int = -1,
    ):
        self.total_steps = max(1, int(total_steps))
        self.cut = max(1, int(self.total_steps * cut_frac))
        self.ratio = ratio
        super().__init__(optimizer, self.factor, last_epoch=last_epoch)

    def factor(self, step: int) -> float:
        if step < self.cut:
            p = step / self.cut
        else:
            p = 1 - (step - self.cut) / max(1, self.total_steps - 1 - self.cut)
        return (1 + max(0.0, p) * (self.ratio - 1)) / self.ratio


class GradualUnfreezing(BaseFinetuning):
    """Train the top layer group first, and unfreeze one more group down each epoch (epoch 0: the
    head alone; epoch 1: the head and the body's top layer; ...). Which groups train follows from
    the epoch number alone, so a resumed run freezes what the uninterrupted one did."""

    def __init__(self, groups_per_epoch: int = 1):
        super().__init__()
        self.groups_per_epoch = groups_per_epoch

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        self.freeze([m for group in layer_groups(pl_module.net)[:-1] for m in group])

    def finetune_function(
        self, pl_module: L.LightningModule, epoch: int, optimizer: Optimizer
    ) -> None:
        groups = layer_groups(pl_module.net)
        trainable = 1 + epoch * self.groups_per_epoch  # counted from the top
        for group in groups[max(0, len(groups) - trainable) :]:
            self.make_trainable(group)
