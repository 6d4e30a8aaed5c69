"""rnnlab's training path against the tip's loop, side by side in one process on real IMDB reviews.

    python scripts/bench.py                                  # BiLSTM, 10,000-review slice
    python scripts/bench.py --model gru --reviews 5000 --steps 60
    python scripts/bench.py --model rnn --reviews 4000 --steps 40 --no-prep --repeats 3
    python scripts/bench.py data.path=/path/to/aclImdb_v1.tar.gz
    python scripts/bench.py --reviews 20000 --steps 300 --no-prep trainer=gpu trainer.precision=bf16-mixed
    python scripts/bench.py --task lm                        # language-model pretraining
    python scripts/bench.py --task lm --vocab 60000 --hidden 1024 --layers 2 --steps 5 --repeats 3

Both loops train the same model size (embedding 128, hidden 128, batch 64, AdamW lr 1e-3) for the
same number of optimizer steps on the same slice of reviews (rnnlab's `data.max_reviews`
stratified subset, then the tip's 80/20 split). The peer is the tip's own loop, copied: its
`clean()` (without the final `" ".join(text)` that turns reviews into characters: the peer is
word-level) and NLTK's Treebank word tokenizer (what `nltk.word_tokenize` reduces to on text of
letters and spaces; skipping punkt only flatters the tip), a first-seen vocabulary, a shuffled
unbucketed DataLoader, `pack_padded_sequence(enforce_sorted=False)`, BCE-with-logits, AdamW.
rnnlab runs `rnnlab.train.train` on the composed `train.py` config, Lightning Trainer included.

The first lines name the machine: the CPU model, its vector units (AVX2, AVX-512, AVX512-BF16,
AMX) and the kernels torch picked. On the CPU the table has a row per side:
- `tip loop (packed)`: the tip's loop as written, computing with subnormal floats;
- `tip loop + flush`: the same loop with subnormals flushed to zero (`rnnlab.runtime`), which
  separates what rnnlab's own engineering gains from what the flush gains;
- `rnnlab (train.py)`: rnnlab's path with its config's `runtime` (the flush on by default);
- `rnnlab bf16-mixed`: the same with `trainer.precision=bf16-mixed`, on CPUs with bf16 units
  only (`--no-bf16` leaves it out), its fraction taken of the bf16 matmul rate.
The headline `speedup=` is rnnlab against the tip's loop as written; `speedup_vs_flushed_tip=`
against its flushed peer, `bf16_ratio=` bf16-mixed against fp32 tokens/s.

Throughput counts real (non-padding) tokens over the timed steps (the first few steps are a
warm-up for all). With `--repeats N` the loops take turns N times and each side reports its
median run, since a shared machine's speed drifts between runs. Achieved GFLOP/s counts the
recurrent gate matmuls (input and hidden, forward plus twice that for backward) per real token,
against this machine's measured matmul rate: the best of a measurement at the start and one
after each turn (the first one in a process often runs slow, and the best is the fair ceiling).
Huge pages are switched on first, as train.py does, so the whole process, the tip's loop
included, runs with rnnlab's allocator setting (`rnnlab.runtime.use_huge_pages`).
With `trainer=gpu` the tip's loop and rnnlab's run on the GPU (the tip's in fp32, as the tip
does; rnnlab's in the `trainer.precision` given), the matmul rate is measured there (bf16 when
rnnlab runs bf16-mixed), and each loop's peak GPU memory is printed beside its RSS.
Preprocessing compares the tip's tokenization of the 50,000 labeled reviews (reading the file
not counted) with rnnlab's first run (reading the archive, tokenizing, writing the cache, split
and vocabulary) in a fresh cache directory, and with the cached run.

`--task lm` times language-model pretraining instead, on the CPU, against a plain PyTorch loop
like PyTorch's word_language_model example, at the same sizes (`--vocab` V 30,000, `--embed-dim`
E 256, `--hidden` H 512, `--layers` 1, `--batch` 64, `--bptt` 70: conf/lm/small.yaml's):
- `plain loop`: `nn.Embedding(V, E)` -> dropout 0.2 -> `nn.LSTM(E, H, layers, batch_first=True)`
  -> dropout 0.2 -> `nn.Linear(H, V)`, a full softmax by `F.cross_entropy`, AdamW with torch's
  defaults;
- `rnnlab LM`: `rnnlab.models.language_model.LanguageModel` (its LSTM layers, projection to E and
  adaptive softmax) with conf/lm/small.yaml's cutoffs, div_value, AWD dropouts and optimizer
  (AdamW lr 3e-3, weight decay 0.01, betas (0.7, 0.99), `fused=True`), subnormals flushed as
  pretrain.py's runtime does (the plain loop computes with them, as torch does by default).
Both read the same token stream, cut into `--batch` rows of consecutive text and windows of
`--bptt` steps, carry their state from window to window detached (`detach_state` for rnnlab),
clip the gradient norm at 0.25 (the example's and pretrain.py's clip) and take an optimizer step
each window. The stream is synthetic, drawn with a fixed seed from a Zipf distribution over the
vocabulary (id r with probability proportional to 1/r, id 0 being padding), so no data set is
needed: real text is Zipfian, and that is what makes the adaptive softmax's frequency clusters
pay. Each turn builds both models afresh (seed 0), takes a warm-up step, then times `--steps`
steps; tokens/s = batch * bptt * steps / seconds, each side's median over the `--repeats`
turns. FLOPs per training token, 3x the forward's (backward twice the forward):
- each LSTM layer 8*H*(in+H), in = E for the first layer and H after;
- plain loop: the V-way decoder, 2*H*V;
- rnnlab: the projection 2*H*E, the adaptive softmax's head 2*E*(c_0 + clusters) for every token
  and cluster i's tail 2*d_i*(E + n_i) (d_i = E // div_value^(i+1), n_i its words) for the
  share of the stream's targets in that cluster, which is where the module computes it.
`peak_fraction` is the achieved FLOP/s over the best fp32 matmul rate measured in the run.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

# huge pages first, as train.py does: torch reads the setting at its first CPU allocation
# (importing lightning already makes one)
from rnnlab.runtime import cpu_description, flush_subnormals, has_bf16_units, use_huge_pages  # isort: skip

use_huge_pages()

import torch  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from rnnlab.tuning import tune_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NLTK_DATA", str(ROOT.parent / "shared" / "nltk_data"))

# model family -> (recurrent module, directions); the rnnlab config group has the same name
FAMILIES = {
    "rnn": (nn.RNN, 1),
    "lstm": (nn.LSTM, 1),
    "gru": (nn.GRU, 1),
    "bilstm": (nn.LSTM, 2),
}
GATES = {nn.RNN: 1, nn.LSTM: 4, nn.GRU: 3}
BATCH, EMB, HIDDEN, LR, MIN_FREQ, MAX_VOCAB = 64, 128, 128, 1e-3, 2, 30_000
WARMUP = 5
TIP, TIP_FLUSH, OURS, OURS_BF16 = (
    "tip loop (packed)",
    "tip loop + flush",
    "rnnlab (train.py)",
    "rnnlab bf16-mixed",
)


# -- measuring ------------------------------------------------------------------------------------
class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 5 ms)."""

    def __enter__(self) -> PeakRSS:
        self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def matmul_gflops(device: str = "cpu", dtype: torch.dtype = torch.float32, seconds=1.5) -> float:
    """Best GFLOP/s of square matmuls (CPU: 1024 and 2048 with torch's current threads; GPU:
    4096 and 8192, synchronized)."""
    best = 0.0
    sizes = (1024, 2048) if device == "cpu" else (4096, 8192)
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        a @ b
        sync(device)
        start, count = time.perf_counter(), 0
        while time.perf_counter() - start < seconds / 2:
            a @ b
            count += 1
            sync(device)
        best = max(best, 2 * n**3 * count / (time.perf_counter() - start) / 1e9)
    return best


def sync(device: str) -> None:
    """Wait for the GPU's queued work, so that a clock read after it counts that work."""
    if device == "cuda":
        torch.cuda.synchronize()


def gpu_peak(device: str) -> int:
    """Peak GPU memory allocated since the last call (bytes; 0 on the CPU)."""
    if device != "cuda":
        return 0
    peak = torch.cuda.max_memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    return peak


def flops_per_token(family: str) -> float:
    """Gate matmul FLOPs per real token: forward 2*G*H*(I+H) per direction, backward twice that."""
    module, directions = FAMILIES[family]
    return 3 * 2 * GATES[module] * HIDDEN * (EMB + HIDDEN) * directions


class StepClock(Callback):
    """Times rnnlab's optimizer steps after the warm-up, and counts their real tokens."""

    latest: StepClock | None = None  # the instance train() built from the config

    def __init__(self, warmup: int, device: str = "cpu"):
        StepClock.latest = self
        self.warmup = warmup
        self.device = device
        self.start: float | None = None
        self.end: float | None = None
        self.tokens = self.reviews = self.steps = self.seen = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # a count of its own, not batch_idx: batch_idx restarts each epoch when --steps is longer
        if self.seen == self.warmup:
            sync(self.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.seen += 1
        if self.seen > self.warmup:
            sync(self.device)
            self.end = time.perf_counter()
            self.tokens += int(batch[1].sum())
            self.reviews += len(batch[1])
            self.steps += 1


def median_run(runs: list[dict]) -> dict:
    """The run with the median tokens/s (the lower middle one for an even count)."""
    ranked = sorted(runs, key=lambda r: r["tokens"] / r["seconds"])
    return ranked[(len(ranked) - 1) // 2]


# -- the tip, copied -------------------------------------------------------------------------------
def tip_tokenizer():
    """The tip's clean() and nltk.word_tokenize, word-level (its final character join dropped)."""
    from nltk.tokenize import NLTKWordTokenizer

    from rnnlab.data.preprocess import english_stopwords

    stop_words = set(english_stopwords())
    word_tokenize = NLTKWordTokenizer().tokenize

    def clean(text):
        text = text.lower()
        text = [word for word in text.split() if word not in stop_words]  # remove stopwords
        text = " ".join(text)
        text = re.sub(r"<.*?>", "", text)  # remove HTML tags like <br>, </div>, etc.
        text = re.sub(r"https?://\S+|www\.\S+", "", text)  # remove hyperlinks
        text = re.sub(r"[^a-z\s]", "", text)  # remove digits and special characters
        return text

    def tokenize(text: str):
        return word_tokenize(clean(text))

    return tokenize


class TipModel(nn.Module):
    """The tip's BiLSTM (and its RNN/LSTM/GRU siblings): final states of a packed run -> logit."""

    def __init__(self, family: str, vocab_size: int):
        super().__init__()
        module, directions = FAMILIES[family]
        self.embed = nn.Embedding(vocab_size, EMB, padding_idx=0)
        self.rnn = module(EMB, HIDDEN, batch_first=True, bidirectional=directions == 2)
        self.fc = nn.Linear(HIDDEN * directions, 1)
        self.directions = directions

    def forward(self, x, lengths):
        em = self.embed(x)
        packed = pack_padded_sequence(em, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, hn = self.rnn(packed)
        hn = hn[0] if isinstance(hn, tuple) else hn
        h_final = torch.cat((hn[0], hn[1]), dim=1) if self.directions == 2 else hn[-1]
        return self.fc(h_final).squeeze(1)


class TipDataset(Dataset):
    def __init__(self, token_lists, labels, stoi):
        self.data, self.labels, self.stoi = token_lists, labels, stoi

    def __len__(self):
        return len(self.data)

    def __getitem__(self, idx):
        ids = [self.stoi.get(tok, 1) for tok in self.data[idx]]
        return torch.tensor(ids, dtype=torch.long), torch.tensor(
            self.labels[idx], dtype=torch.float32
        )


def tip_collate(batch):
    seqs, labs = zip(*batch, strict=True)
    lengths = torch.tensor([len(s) for s in seqs])
    return pad_sequence(seqs, batch_first=True, padding_value=0), lengths, torch.stack(labs)


def tip_train(
    family: str, tokens: list[list[str]], labels: list[int], steps: int, device: str = "cpu"
) -> dict:
    """The tip's vocabulary, split, loader and run_epoch, for `steps` optimizer steps."""
    from sklearn.model_selection import train_test_split

    # a review the cleaning empties would crash the tip's packing; rnnlab maps it to <unk>
    tokens = [t or ["<unk>"] for t in tokens]
    counter = Counter(t for toks in tokens for t in toks)
    common = [w for w, c in counter.items() if c >= MIN_FREQ][: MAX_VOCAB - 2]
    stoi = {"<pad>": 0, "<unk>": 1, **{w: i + 2 for i, w in enumerate(common)}}
    train_x, _, train_y, _ = train_test_split(
        tokens, labels, test_size=0.2, random_state=42, stratify=labels
    )
    torch.manual_seed(42)
    loader = DataLoader(
        TipDataset(train_x, train_y, stoi), batch_size=BATCH, shuffle=True, collate_fn=tip_collate
    )
    model = TipModel(family, len(stoi)).to(device)
    optim = torch.optim.AdamW(model.parameters(), lr=LR)
    model.train()
    done = n_tokens = 0
    start = None
    while done < steps:
        for X, lens, y in loader:
            X, y = X.to(device), y.to(device)  # the tip's .to(device); lengths stay on the CPU
            if done == WARMUP:
                start = time.perf_counter()
            out = model(X, lens)
            loss = nn.BCEWithLogitsLoss()(out, y)
            optim.zero_grad()
            loss.backward()
            optim.step()
            loss.item()  # the tip's bookkeeping: total_loss += loss.item() * len(y), accuracy
            (torch.sigmoid(out).round() == y).float().mean().item()
            if done >= WARMUP:
                n_tokens += int(lens.sum())
            done += 1
            if done == steps:
                break
    seconds = time.perf_counter() - start
    timed = steps - WARMUP
    return {"seconds": seconds, "tokens": n_tokens, "reviews": timed * BATCH, "steps": timed}


# -- rnnlab ---------------------------------------------------------------------------------------
def compose(overrides: list[str], out: Path):
    """train.py's config with these overrides, its paths pointed under `out`."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import open_dict

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = hydra_compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.root_dir = str(out)
        cfg.paths.log_dir = str(out / "logs")
        cfg.paths.output_dir = str(out / "run")
    return cfg


def rnnlab_prepare(data_path: str, cache_dir: Path, out: Path) -> float:
    """Seconds from nothing to train/val/test sets of all labeled reviews, as train.py does it."""
    import hydra

    cfg = compose([f"data.path={data_path}", f"data.cache_dir={cache_dir}"], out)
    start = time.perf_counter()
    datamodule = hydra.utils.instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    return time.perf_counter() - start


def rnnlab_train(
    family: str,
    data_path: str,
    reviews: int,
    steps: int,
    cache: Path,
    out: Path,
    trainer_overrides: list[str],
    device: str,
):
    from omegaconf import open_dict

    from rnnlab.train import train

    cfg = compose(
        [
            f"model={family}",
            f"data.path={data_path}",
            f"data.cache_dir={cache}",
            f"data.max_reviews={reviews}",
            f"++trainer.max_steps={steps}",
            "trainer.max_epochs=-1",
            "++trainer.limit_val_batches=0",
            "++trainer.num_sanity_val_steps=0",
            "++trainer.enable_progress_bar=false",
            "test=false",
            *trainer_overrides,
        ],
        out,
    )
    with open_dict(cfg):
        cfg.callbacks.bench_clock = {
            "_target_": f"{StepClock.__module__}.StepClock",  # __main__ when run as a script
            "warmup": WARMUP,
            "device": device,
        }
    tune_process(cfg.runtime)  # as train.py does: the subnormal flush (on by default), threads
    train(cfg)
    c = StepClock.latest
    return {"seconds": c.end - c.start, "tokens": c.tokens, "reviews": c.reviews, "steps": c.steps}


# -- language-model pretraining (--task lm) -------------------------------------------------------
PLAIN_LM, OURS_LM = "plain loop", "rnnlab LM"
LM_CONFIG = ROOT / "conf" / "lm" / "small.yaml"
LM_STEPS, CLIP = 10, 0.25


def zipf_stream(vocab: int, tokens: int, seed: int = 0) -> torch.Tensor:
    """`tokens` ids drawn from 1..vocab-1 with probability proportional to 1/id (0 is padding)."""
    weights = 1.0 / torch.arange(1, vocab, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    return torch.multinomial(weights, tokens, replacement=True, generator=generator) + 1


def lm_windows(
    stream: torch.Tensor, batch: int, bptt: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The stream cut into `batch` rows of consecutive text, then (ids, next ids) windows of
    `bptt` steps, each row reading on where the previous window stopped."""
    rows = stream[: len(stream) // batch * batch].view(batch, -1)
    return [
        (rows[:, t : t + bptt].contiguous(), rows[:, t + 1 : t + 1 + bptt].contiguous())
        for t in range(0, rows.size(1) - bptt, bptt)
    ]


class PlainLM(nn.Module):
    """PyTorch's word_language_model example (LSTM, untied), batch first: embedding, LSTM and a
    decoder over the whole vocabulary, with the example's dropout of 0.2."""

    def __init__(self, vocab: int, embed_dim: int, hidden: int, layers: int, dropout: float = 0.2):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(vocab, embed_dim)
        self.rnn = nn.LSTM(
            embed_dim, hidden, layers, dropout=dropout if layers > 1 else 0.0, batch_first=True
        )
        self.decoder = nn.Linear(hidden, vocab)

    def loss(
        self, ids: torch.Tensor, targets: torch.Tensor, state: tuple | None = None
    ) -> tuple[torch.Tensor, tuple]:
        """Mean cross-entropy of `targets` after `ids`, and the LSTM's (h, c) after them."""
        output, state = self.rnn(self.drop(self.encoder(ids)), state)
        logits = self.decoder(self.drop(output))
        loss = nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return loss, state


def rnnlab_lm(args: argparse.Namespace) -> tuple[nn.Module, torch.optim.Optimizer]:
    """conf/lm/small.yaml's `LanguageModel` at these sizes, and its optimizer (fused AdamW)."""
    import hydra
    from omegaconf import OmegaConf

    from rnnlab.models.language_model import LanguageModel

    cfg = OmegaConf.load(LM_CONFIG)
    keys = ("div_value", "embed_dropout", "input_dropout", "hidden_dropout", "output_dropout")
    model = LanguageModel(
        args.vocab,
        cfg.cell,
        args.embed_dim,
        args.hidden,
        args.layers,
        cutoffs=list(cfg.cutoffs),
        weight_drop=cfg.weight_drop,
        **{key: cfg[key] for key in keys},
    )
    optimizer = hydra.utils.instantiate(cfg.optimizer, _convert_="all")(params=model.parameters())
    return model, optimizer


def lm_train(
    side: str, windows: list[tuple[torch.Tensor, torch.Tensor]], args: argparse.Namespace
) -> float:
    """Seconds of one side's training on the windows after the first (its warm-up step)."""
    from rnnlab.models.language_model import detach_state

    torch.manual_seed(0)
    # the plain loop computes with subnormals, as torch does; rnnlab flushes, as pretrain.py does
    flush_subnormals(side == OURS_LM)
    if side == PLAIN_LM:
        model = PlainLM(args.vocab, args.embed_dim, args.hidden, args.layers)
        optimizer = torch.optim.AdamW(model.parameters())
    else:
        model, optimizer = rnnlab_lm(args)
    model.train()
    state = None
    for i, (ids, targets) in enumerate(windows):
        if i == 1:
            start = time.perf_counter()
        loss, state = model.loss(ids, targets, state)
        # truncated backpropagation: rnnlab's detach_state, the example's repackage_hidden
        state = detach_state(state) if side == OURS_LM else tuple(s.detach() for s in state)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        loss.item()  # the example's total_loss, the LightningModule's finiteness check
    return time.perf_counter() - start


def lstm_flops(embed_dim: int, hidden: int, layers: int) -> float:
    """Forward FLOPs per token of the LSTM layers: 8*H*(in+H) each (4 gates, input and hidden)."""
    return sum(8 * hidden * ((embed_dim if i == 0 else hidden) + hidden) for i in range(layers))


def adaptive_softmax_flops(softmax: nn.AdaptiveLogSoftmaxWithLoss, targets: torch.Tensor) -> float:
    """Forward FLOPs per token of the adaptive softmax as it computes them: the head on every
    token, each cluster's two tail matmuls on the tokens whose target falls in that cluster."""
    flops = 2 * softmax.in_features * softmax.head.out_features
    for i, tail in enumerate(softmax.tail):
        low, high = softmax.cutoffs[i], softmax.cutoffs[i + 1]
        share = ((targets >= low) & (targets < high)).double().mean().item()
        flops += share * 2 * sum(layer.in_features * layer.out_features for layer in tail)
    return flops


def lm_main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """`--task lm`: rnnlab's language model against the plain loop, taking turns."""
    sizes = (args.vocab, args.embed_dim, args.hidden, args.layers, args.batch, args.bptt)
    if args.overrides:
        parser.error("--task lm runs on the CPU and reads no overrides")
    if min(sizes) < 1 or args.vocab < 3 or args.steps < 1 or args.repeats < 1:
        parser.error("--task lm needs --vocab >= 3 and positive sizes, --steps and --repeats")
    import warnings

    warnings.filterwarnings("ignore")
    print_cpu()
    print(
        f"language model: vocabulary {args.vocab}, embedding {args.embed_dim}, hidden "
        f"{args.hidden}, {args.layers} LSTM layer(s), batch {args.batch}, bptt {args.bptt}, "
        f"{args.steps} timed steps after 1 warm-up, torch threads {torch.get_num_threads()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    stream = zipf_stream(args.vocab, args.batch * ((args.steps + 1) * args.bptt + 1))
    windows = lm_windows(stream, args.batch, args.bptt)
    targets = torch.cat([t.reshape(-1) for _, t in windows])
    rates = [matmul_gflops()]
    print(f"fp32 matmul on CPU: {rates[0]:.1f} GFLOP/s", flush=True)

    runs: dict[str, list[dict]] = {PLAIN_LM: [], OURS_LM: []}
    for repeat in range(args.repeats):
        for side, side_runs in runs.items():
            with PeakRSS() as rss:
                seconds = lm_train(side, windows, args)
            side_runs.append(
                {"seconds": seconds, "tokens": args.batch * args.bptt * args.steps, "rss": rss.peak}
            )
            print(f"{side} done ({repeat + 1} of {args.repeats})", flush=True)
            gc.collect()
        rates.append(matmul_gflops())
    flush_subnormals(False)

    recurrent = lstm_flops(args.embed_dim, args.hidden, args.layers)
    softmax = rnnlab_lm(args)[0].softmax
    per_token = {
        PLAIN_LM: 3 * (recurrent + 2 * args.hidden * args.vocab),
        OURS_LM: 3
        * (recurrent + 2 * args.hidden * args.embed_dim + adaptive_softmax_flops(softmax, targets)),
    }
    best = max(rates)
    print()
    print(
        f"{'loop':<14}{'tokens/s':>11}{'MFLOP/token':>13}{'GFLOP/s':>9}{'of matmul':>11}"
        f"{'peak RSS':>10}"
    )
    rows_out = {}
    for side, side_runs in runs.items():
        r = median_run(side_runs)
        tps = r["tokens"] / r["seconds"]
        gflops = tps * per_token[side] / 1e9
        rows_out[side] = (tps, gflops / best)
        print(
            f"{side:<14}{tps:>11.0f}{per_token[side] / 1e6:>13.2f}{gflops:>9.1f}"
            f"{gflops / best:>10.1%}{r['rss'] / 2**20:>8.0f} MB"
        )
    print(
        f"(fp32 matmul {best:.1f} GFLOP/s, the best of {', '.join(f'{r:.1f}' for r in rates)}; "
        f"adaptive softmax cutoffs {softmax.cutoffs}; peak RSS of the whole process during each "
        "loop)"
    )
    if args.repeats > 1:
        for side, side_runs in runs.items():
            per_repeat = ", ".join(f"{r['tokens'] / r['seconds']:.0f}" for r in side_runs)
            print(f"({side} tokens/s per repeat: {per_repeat}; the table shows the median run)")
    print(f"(load average {os.getloadavg()[0]:.1f} at the end: other processes share the CPUs)")
    print()
    plain_tps, plain_fraction = rows_out[PLAIN_LM]
    ours_tps, ours_fraction = rows_out[OURS_LM]
    print(
        f"task=lm speedup={ours_tps / plain_tps:.2f} tokens_per_s={ours_tps:.0f} "
        f"plain_tokens_per_s={plain_tps:.0f} peak_fraction={ours_fraction:.3f} "
        f"plain_peak_fraction={plain_fraction:.3f}"
    )


def print_cpu() -> list[str]:
    """Print the line that names the machine: CPU model, vector units, torch's kernels; return
    the units."""
    cpu, units = cpu_description()
    print(
        f"CPU: {cpu}; {', '.join(units) or 'none of AVX2/AVX-512/AMX'}; torch "
        f"{torch.__version__} kernels: {torch.backends.cpu.get_cpu_capability()}",
        flush=True,
    )
    return units


# -- the run ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(FAMILIES), default="bilstm")
    parser.add_argument("--reviews", type=int, default=10_000, help="labeled reviews in the slice")
    parser.add_argument(
        "--task",
        choices=["classify", "lm"],
        default="classify",
        help="classify: the IMDB classifiers (the default); lm: language-model pretraining",
    )
    parser.add_argument(
        "--steps",
        type=int,
        help=f"classify: optimizer steps for each loop (60); lm: timed steps per turn ({LM_STEPS})",
    )
    parser.add_argument(
        "--no-prep",
        action="store_true",
        help="skip timing the tip's tokenization of every review (training comparison only)",
    )
    parser.add_argument(
        "--no-bf16",
        action="store_true",
        help="skip the bf16-mixed row that runs by default on CPUs with bf16 units",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run the loops this many times, taking turns; each side reports its median run",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        help="data.path=PATH, and trainer=gpu / trainer.<key>=VALUE for rnnlab's run",
    )
    lm = parser.add_argument_group("--task lm sizes (conf/lm/small.yaml's by default)")
    lm.add_argument("--vocab", type=int, default=30_000, help="vocabulary size V")
    lm.add_argument("--embed-dim", type=int, default=256, help="embedding size E")
    lm.add_argument("--hidden", type=int, default=512, help="LSTM hidden size H")
    lm.add_argument("--layers", type=int, default=1, help="LSTM layers")
    lm.add_argument("--batch", type=int, default=64, help="rows of the token stream")
    lm.add_argument("--bptt", type=int, default=70, help="steps per window")
    args = parser.parse_args(argv)
    if args.task == "lm":
        args.steps = LM_STEPS if args.steps is None else args.steps
        return lm_main(args, parser)
    args.steps = 60 if args.steps is None else args.steps
    data_path = str(ROOT.parent / "shared" / "data" / "aclImdb_v1.tar.gz")
    trainer_overrides = []
    for override in args.overrides:
        key, _, value = override.partition("=")
        if key.lstrip("+") == "data.path":
            data_path = value
        elif key.lstrip("+").split(".")[0] == "trainer":
            trainer_overrides.append(override)
        else:
            parser.error(f"unknown override {override!r}; data.path=PATH and trainer... are read")
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        trainer_cfg = compose(trainer_overrides, ROOT / "outputs" / "bench").trainer
    except (HydraException, OmegaConfBaseException) as exc:
        parser.error(f"{' '.join(trainer_overrides)}: {exc} (see conf/trainer/ for the choices)")
    device = "cuda" if trainer_cfg.accelerator in ("gpu", "cuda") else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit(
            "trainer=gpu was asked for, but torch sees no CUDA GPU here: run it on a machine with "
            "an NVIDIA GPU and a CUDA build of torch, or leave trainer=gpu out to bench the CPU"
        )
    bf16 = str(trainer_cfg.get("precision", "32-true")).startswith("bf16")
    if not Path(data_path).exists():
        sys.exit(f"{data_path} does not exist: pass data.path=/path/to/aclImdb_v1.tar.gz")
    if args.steps <= WARMUP:
        parser.error(f"--steps must exceed the {WARMUP} warm-up steps")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    import logging

    logging.basicConfig(level=logging.WARNING)
    for noisy in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore")

    from rnnlab.data.sources import load_reviews

    cpu, units = cpu_description()
    # on the CPU: the tip's loop as written and with the flush; rnnlab fp32, and bf16-mixed where
    # the CPU has bf16 units (unless the trainer overrides already pick a precision)
    sides = [TIP, OURS] if device == "cuda" else [TIP, TIP_FLUSH, OURS]
    bf16_side = device == "cpu" and not bf16 and not args.no_bf16 and has_bf16_units(units)
    if bf16_side:
        sides.append(OURS_BF16)
    print(
        f"{args.model}, {args.reviews} reviews, {args.steps} steps, torch threads "
        f"{torch.get_num_threads()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}, data {data_path}",
        flush=True,
    )
    print_cpu()
    precision = "bf16" if bf16 else "fp32"
    dtype = torch.bfloat16 if bf16 else torch.float32
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    # matmul rates at the start and after each turn: the best of each is the reference
    rates = {precision: [matmul_gflops(device, dtype)]}
    if bf16_side:
        rates["bf16"] = [matmul_gflops(device, torch.bfloat16)]
    for kind, measured in rates.items():
        print(f"{kind} matmul on {name}: {measured[0]:.1f} GFLOP/s", flush=True)

    with tempfile.TemporaryDirectory(prefix="rnnlab-bench-") as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        first = rnnlab_prepare(data_path, cache, tmp / "prep1")
        cached = rnnlab_prepare(data_path, cache, tmp / "prep2")
        print(f"rnnlab preprocessing: first run {first:.1f} s, cached {cached:.2f} s", flush=True)

        # the slice: exactly the reviews rnnlab's data.max_reviews picks
        from rnnlab.data.datamodule import IMDBDataModule

        picker = IMDBDataModule(path=data_path, cache_dir=str(cache), max_reviews=args.reviews)
        rows = picker._subset(picker._corpus())
        reviews = load_reviews(data_path)
        tokenize = tip_tokenizer()
        if args.no_prep:  # the slice only
            tip_prep = float("nan")
            tip_tokens = dict(zip(rows, (tokenize(reviews.texts[i]) for i in rows), strict=True))
        else:
            start = time.perf_counter()
            tip_tokens = [tokenize(t) for t in reviews.texts]
            tip_prep = time.perf_counter() - start
            print(f"tip tokenization of {len(tip_tokens)} reviews: {tip_prep:.1f} s", flush=True)
        slice_tokens = [tip_tokens[i] for i in rows]
        slice_labels = [int(reviews.labels[i]) for i in rows]
        n_reviews = len(reviews)
        del tip_tokens, reviews, picker
        gc.collect()

        def run_side(side: str, repeat: int) -> dict:
            if side in (TIP, TIP_FLUSH):
                # the tip as written computes with subnormals; its peer row flushes them
                flush_subnormals(side == TIP_FLUSH)
                return tip_train(args.model, slice_tokens, slice_labels, args.steps, device)
            extra = ["trainer.precision=bf16-mixed"] if side == OURS_BF16 else []
            return rnnlab_train(
                args.model,
                data_path,
                args.reviews,
                args.steps,
                cache,
                tmp / f"train{repeat}{'_bf16' if extra else ''}",
                trainer_overrides + extra,
                device,
            )

        # the loops take turns, `--repeats` times; each side reports its median run
        runs: dict[str, list[dict]] = {side: [] for side in sides}
        for repeat in range(args.repeats):
            for side in sides:
                with PeakRSS() as rss:
                    result = run_side(side, repeat)
                runs[side].append({**result, "rss": rss.peak, "gpu": gpu_peak(device)})
                print(f"{side} done ({repeat + 1} of {args.repeats})", flush=True)
                gc.collect()
            for kind, measured in rates.items():
                measured.append(
                    matmul_gflops(device, torch.bfloat16 if kind == "bf16" else torch.float32)
                )
        results = {side: median_run(side_runs) for side, side_runs in runs.items()}

    per_token = flops_per_token(args.model)
    best = {kind: max(measured) for kind, measured in rates.items()}
    print()
    header = f"{'loop':<20}{'reviews/s':>11}{'tokens/s':>11}{'GFLOP/s':>9}{'of matmul':>11}"
    gpu_header = f"{'peak GPU':>10}" if device == "cuda" else ""
    print(f"{header}{'peak RSS':>10}{gpu_header}")
    rows_out = {}
    for side, r in results.items():
        tps = r["tokens"] / r["seconds"]
        gflops = tps * per_token / 1e9
        rate = best["bf16" if side == OURS_BF16 else precision]
        rows_out[side] = (tps, gflops / rate)
        print(
            f"{side:<20}{r['reviews'] / r['seconds']:>11.1f}{tps:>11.0f}{gflops:>9.1f}"
            f"{gflops / rate:>10.1%}{r['rss'] / 2**20:>8.0f} MB"
            + (f"{r['gpu'] / 2**20:>7.0f} MB" if device == "cuda" else "")
        )
    references = "; ".join(
        f"{kind} matmul {best[kind]:.1f} GFLOP/s, the best of "
        + ", ".join(f"{r:.1f}" for r in measured)
        for kind, measured in rates.items()
    )
    print(
        f"({args.model}: {per_token / 1e6:.2f} MFLOP per token; {results[TIP]['steps']}"
        f" timed steps of {BATCH} reviews each after {WARMUP} warm-up steps; {references}"
        + (f" ({OURS_BF16} against bf16)" if bf16_side else "")
        + "; peak RSS of the whole process during each loop; max RSS of the run "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)"
    )
    if args.repeats > 1:
        for side, side_runs in runs.items():
            per_repeat = ", ".join(f"{r['tokens'] / r['seconds']:.0f}" for r in side_runs)
            print(f"({side} tokens/s per repeat: {per_repeat}; the table shows the median run)")
    if device == "cpu" and not bf16_side and not bf16:
        reason = "--no-bf16" if args.no_bf16 else "this CPU has no bf16 units (AVX512-BF16, AMX)"
        print(f"(no bf16-mixed row: {reason}; fp32 is rnnlab's CPU precision here)")
    print(f"(load average {os.getloadavg()[0]:.1f} at the end: other processes share the CPUs)")
    print()
    print(f"{'preprocessing':<44}{'seconds':>9}")
    print(f"{f'tip tokenization, {n_reviews:,} reviews':<44}{tip_prep:>9.1f}")
    print(f"{'rnnlab first run (fresh cache)':<44}{first:>9.1f}")
    print(f"{'rnnlab cached run':<44}{cached:>9.2f}")
    print()
    tip_tps, _ = rows_out[TIP]
    ours_tps, ours_fraction = rows_out[OURS]
    line = (
        f"speedup={ours_tps / tip_tps:.2f} tokens_per_s={ours_tps:.0f} tip_tokens_per_s="
        f"{tip_tps:.0f} "
    )
    if TIP_FLUSH in rows_out:
        flushed_tps, _ = rows_out[TIP_FLUSH]
        line += (
            f"tip_flush_tokens_per_s={flushed_tps:.0f} "
            f"speedup_vs_flushed_tip={ours_tps / flushed_tps:.2f} "
        )
    line += f"peak_fraction={ours_fraction:.3f} "
    if OURS_BF16 in rows_out:
        line += f"bf16_ratio={rows_out[OURS_BF16][0] / ours_tps:.2f} "
    line += f"prep_speedup={tip_prep / first:.2f} cached_prep_s={cached:.2f}"
    print(line)


if __name__ == "__main__":
    main()
