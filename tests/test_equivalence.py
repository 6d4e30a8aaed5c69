"""rnnlab's fast paths equal the straightforward ones they replace.

The dense recurrent path equals packed sequences: states, logits and every gradient, on random
lengths.
A packed `nn.RNN` / `nn.LSTM` / `nn.GRU` (`pack_padded_sequence(enforce_sorted=False)`, as the
tip runs it) is the reference. Its weights are copied into rnnlab's `RecurrentEncoder`, the
padding is filled with noise (so any leak through it shows), and outputs and gradients must
agree within 1e-5 in float64 and within float32 rounding in float32. The one-pass tokenizer
equals the step-by-step regexes plus NLTK's word tokenizer, and the one-pass tar reader equals
`tarfile`.
"""

from __future__ import annotations

import io
import re
import tarfile
import zlib
from functools import partial
from pathlib import Path

import pytest
import torch
from packed_weights import copy_packed_weights, encoder_counterpart
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.data.preprocess import Preprocessor
from rnnlab.data.synthetic import synthetic_reviews
from rnnlab.data.tarstream import tar_files
from rnnlab.models.classifier import RecurrentClassifier
from rnnlab.models.recurrent import CELLS, RecurrentEncoder, backward_passes
from rnnlab.module import SentimentModule

FEATURES, HIDDEN = 5, 6
# float64: the two paths agree to rounding, well inside 1e-5; float32: rounding of sums over
# ~20 steps in a different order.
TOLERANCE = {torch.float64: 1e-5, torch.float32: 2e-4}


def random_lengths(generator: torch.Generator, batch: int, steps: int) -> torch.Tensor:
    """Mixed lengths, always including a one-token review and a full-length one, unsorted."""
    lengths = torch.randint(1, steps + 1, (batch,), generator=generator)
    lengths[torch.randperm(batch, generator=generator)[:2]] = torch.tensor([1, steps])
    return lengths


def padded_noise(lengths: torch.Tensor, steps: int, dtype: torch.dtype, generator) -> torch.Tensor:
    """Inputs (B, T, F) whose padding is large noise, not zeros: the dense path must ignore it."""
    x = torch.randn(len(lengths), steps, FEATURES, generator=generator, dtype=dtype)
    pad = torch.arange(steps)[None, :] >= lengths[:, None]
    return torch.where(pad[..., None], 10 * torch.randn_like(x), x)


def loss_of(head: nn.Linear, out, final, labels, step_weights):
    """The logits' BCE plus a term on every valid step output (max/mean pooling read them);
    without `step_weights`, the final states alone (final pooling)."""
    logits = head(final).squeeze(-1)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
    if step_weights is None:
        return logits, loss
    return logits, loss + (out * step_weights).sum() / len(labels)


@pytest.mark.parametrize("shards", [1, 3], ids=["one-thread", "3-shards"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_dense_encoder_equals_packed_reference(cell, bidirectional, num_layers, dtype, shards):
    generator = torch.Generator().manual_seed(
        sorted(CELLS).index(cell) * 4 + 2 * num_layers + bidirectional
    )
    torch.manual_seed(7)
    steps = 17
    reference = CELLS[cell](
        FEATURES, HIDDEN, num_layers=num_layers, bidirectional=bidirectional, batch_first=True
    ).to(dtype)
    encoder = RecurrentEncoder(cell, FEATURES, HIDDEN, num_layers, bidirectional).to(dtype)
    encoder.shards = shards  # 3: rows split over parallel threads (9 rows: 3 shards of 3)
    copy_packed_weights(reference, encoder)
    head = nn.Linear(encoder.output_size, 1).to(dtype)

    for batch in (1, 2, 9):  # a lone review, a pair, a mixed batch
        lengths = random_lengths(generator, batch, steps) if batch > 1 else torch.tensor([steps])
        x = padded_noise(lengths, steps, dtype, generator)
        labels = torch.randint(0, 2, (batch,), generator=generator).to(dtype)
        valid = (torch.arange(steps)[None, :] < lengths[:, None])[..., None]
        step_weights = valid * torch.randn(batch, steps, encoder.output_size, dtype=dtype)
        if batch == 2:
            step_weights = None  # the loss reads the final states only

        x_ref = x.clone().requires_grad_()
        packed = pack_padded_sequence(x_ref, lengths, batch_first=True, enforce_sorted=False)
        packed_out, state = reference(packed)
        ref_out, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=steps)
        h_n = state[0] if cell == "lstm" else state
        ref_final = torch.cat([h_n[-2], h_n[-1]], -1) if bidirectional else h_n[-1]
        ref_logits, ref_loss = loss_of(head, ref_out, ref_final, labels, step_weights)
        head.zero_grad()
        ref_loss.backward()
        ref_head_grad = head.weight.grad.clone()

        x_ours = x.clone().requires_grad_()
        out, final = encoder(x_ours, lengths)
        logits, loss = loss_of(head, out, final, labels, step_weights)
        head.zero_grad()
        loss.backward()

        tol = {"atol": TOLERANCE[dtype], "rtol": 0}
        torch.testing.assert_close(final, ref_final, **tol)
        torch.testing.assert_close(out * valid, ref_out, **tol)
        torch.testing.assert_close(logits, ref_logits, **tol)
        torch.testing.assert_close(x_ours.grad, x_ref.grad, **tol)
        assert not x_ours.grad[~valid.expand_as(x)].any(), "padding received a gradient"
        torch.testing.assert_close(head.weight.grad, ref_head_grad, **tol)
        compared = 0
        for name, ref_param in reference.named_parameters():
            ours = encoder_counterpart(encoder, name).grad
            torch.testing.assert_close(
                ours, ref_param.grad, **tol, msg=lambda m, n=name: f"{n}: {m}"
            )
            compared += 1
        assert compared == len(list(encoder.parameters())) == 4 * num_layers * (1 + bidirectional)
        reference.zero_grad()
        encoder.zero_grad()


def _review_alone_and_in_batch(model: nn.Module, vocab_size: int, seed: int, mode=torch.no_grad):
    """The same review's logit alone and inside a padded batch of longer and shorter reviews."""
    generator = torch.Generator().manual_seed(seed)
    review = torch.randint(2, vocab_size, (11,), generator=generator)
    others = [torch.randint(2, vocab_size, (n,), generator=generator) for n in (30, 1, 11, 4)]
    batch = [others[0], review, *others[1:]]
    lengths = torch.tensor([len(r) for r in batch])
    ids = torch.zeros(len(batch), int(lengths.max()), dtype=torch.long)
    for row, r in enumerate(batch):
        ids[row, : len(r)] = r
    with mode():
        alone = model(review[None, :], torch.tensor([len(review)]))
        batched = model(ids, lengths)
    return alone[0], batched[1]


@pytest.mark.parametrize(
    "shards,mode",
    [(1, torch.no_grad), (2, torch.no_grad), (3, torch.inference_mode)],
    ids=["one-thread", "2-shards", "3-shards-inference-mode"],
)
@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_a_prediction(cell, bidirectional, shards, mode):
    torch.manual_seed(3)
    model = RecurrentClassifier(
        50, cell, 8, 8, num_layers=2, bidirectional=bidirectional, pooling="final+max+mean"
    ).eval()
    model.encoder.shards = shards  # Lightning validates under inference mode, on shards
    alone, batched = _review_alone_and_in_batch(model, 50, seed=4, mode=mode)
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=0)


def test_padding_never_changes_a_prediction_through_the_lightning_module():
    torch.manual_seed(5)
    vocab = ["<pad>", "<unk>", *(f"w{i}" for i in range(40))]
    net = partial(RecurrentClassifier, cell="lstm", bidirectional=True, embed_dim=8, hidden_size=8)
    module = SentimentModule(vocab, preprocess={}, net=net).eval()
    alone, batched = _review_alone_and_in_batch(module, len(vocab), seed=6)
    torch.testing.assert_close(alone, batched, atol=1e-5, rtol=0)


# -- the fast preprocessing paths equal the straightforward ones ------------------------------

EDGE_TEXTS = [
    "I cannot, gonna wanna",
    "wanna",  # the tokenizer pads text with spaces: "wanna" splits at the very end too
    "Wanna go? WANNA! Cannot gimme LEMME gotta.",
    "don't won\u2019t <br />x <i>gonna</i> see http://example.com/cannot www.a.org/x wanna",
    "",
    "   ",
    "10/10 !!!",
]


def straightforward_words(p, text: str) -> list[str]:
    """Each documented step as one regex pass, then NLTK's own word tokenizer."""
    from nltk.tokenize import NLTKWordTokenizer

    if p.lowercase:
        text = text.lower()
    if p.strip_html:
        text = re.sub(r"<[^>]*>", " ", text)
    if p.strip_urls:
        text = re.sub(r"https?://\S+|www\.\S+", " ", text)
    if p.letters_only:
        text = re.sub(r"['\u2019]", "", text)
        text = re.sub(r"[^a-z]+" if p.lowercase else r"[^a-zA-Z]+", " ", text)
    tokens = NLTKWordTokenizer().tokenize(text)
    return [t for t in tokens if t not in p._stopwords] if p.remove_stopwords else tokens


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"lowercase": False},
        {"remove_stopwords": False},
        {"strip_html": False, "strip_urls": False},
        {"lowercase": False, "remove_stopwords": False, "keep_negations": False},
    ],
)
def test_fast_tokenizer_equals_nltk_word_tokenization(settings):
    texts, _ = synthetic_reviews(300, seed=11)
    preprocess = Preprocessor(**settings)
    for text in [*texts, *EDGE_TEXTS]:
        assert preprocess(text) == straightforward_words(preprocess, text), text


def _archive(tmp_path: Path, fmt: int, mode: str) -> tuple[Path, list[tuple[str, bytes]]]:
    """A tar with long names, directories, links and an empty file, in the given format."""
    files = [
        ("aclImdb/train/pos/1_9.txt", b"Great film."),
        ("aclImdb/" + "deep/" * 30 + "0_1.txt", "na\u00efve \u2019 caf\u00e9".encode()),
        ("aclImdb/test/neg/2_2.txt", b""),
        ("aclImdb/test/neg/3_1.txt", b"x" * 1500),
    ]
    path = tmp_path / f"a{fmt}.tar{'.' + mode if mode else ''}"
    with tarfile.open(path, f"w:{mode}", format=fmt) as tar:
        directory = tarfile.TarInfo("aclImdb/train")
        directory.type = tarfile.DIRTYPE
        tar.addfile(directory)
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("aclImdb/link.txt")
        link.type, link.linkname = tarfile.SYMTYPE, "train/pos/1_9.txt"
        tar.addfile(link)
    return path, files


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("mode", ["gz", "", "bz2"])
def test_tar_reader_equals_tarfile(tmp_path, fmt, mode):
    path, files = _archive(tmp_path, fmt, mode)  # ustar keeps the long name in its prefix field
    with tarfile.open(path) as tar:
        expected = [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]
    assert list(tar_files(path)) == expected == files
    assert list(tar_files(path, lambda name: name.endswith("_1.txt"))) == [files[1], files[3]]


def test_tar_reader_reports_a_truncated_archive(tmp_path):
    path, _ = _archive(tmp_path, tarfile.GNU_FORMAT, "gz")
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 5):
        path.write_bytes(data[:cut])
        with pytest.raises((EOFError, zlib.error, tarfile.TarError)):
            list(tar_files(path))


def test_sharded_training_with_dropout_repeats_exactly_under_a_seed():
    """Dropout masks between layers are drawn before the shards start: a seeded run repeats."""
    encoder = RecurrentEncoder("lstm", FEATURES, HIDDEN, 2, True, dropout=0.5).train()
    encoder.shards = 2
    x = torch.randn(6, 9, FEATURES)
    lengths = torch.tensor([9, 3, 5, 1, 9, 7])
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        encoder.zero_grad()
        out, final = encoder(x, lengths)
        (out.sum() + final.sum()).backward()
        runs.append((out, final, [p.grad.clone() for p in encoder.parameters()]))
    (out_a, final_a, grads_a), (out_b, final_b, grads_b) = runs
    assert torch.equal(out_a, out_b) and torch.equal(final_a, final_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b, strict=True))
    torch.manual_seed(1)
    assert not torch.equal(encoder(x, lengths)[1], final_a), "dropout is applied"


@pytest.fixture
def flushing():
    """Subnormals flushed to zero for one test (rnnlab.runtime), computed as they are after."""
    from rnnlab.runtime import flush_subnormals

    flush_subnormals(True)
    yield
    flush_subnormals(False)


SMALLEST_NORMAL = torch.finfo(torch.float32).tiny


def _long_review_gradients(shards: int) -> tuple[torch.Tensor, ...]:
    """Final-state loss of a BiLSTM over 300 steps: the gradient reaching the first steps is
    subnormal unless flushed. Returns (ours: input gradient, reference: input gradient)."""
    torch.manual_seed(3)
    steps, batch = 300, 6
    reference = nn.LSTM(FEATURES, HIDDEN, bidirectional=True, batch_first=True)
    encoder = RecurrentEncoder("lstm", FEATURES, HIDDEN, bidirectional=True)
    encoder.shards = shards
    copy_packed_weights(reference, encoder)
    lengths = torch.full((batch,), steps)
    x = torch.randn(batch, steps, FEATURES)
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    packed = pack_padded_sequence(x_ref, lengths, batch_first=True, enforce_sorted=False)
    h_n = reference(packed)[1][0]
    # forward direction's final state only: its gradient shrinks all the way to the first step
    h_n[0].sum().backward()
    encoder(x_ours, lengths)[1][:, :HIDDEN].sum().backward()
    return x_ours.grad, x_ref.grad


def _subnormals(t: torch.Tensor) -> int:
    return int(((t != 0) & (t.abs() < SMALLEST_NORMAL)).sum())


def test_long_reviews_reach_subnormal_gradients_without_the_flush():
    ours, reference = _long_review_gradients(shards=3)
    assert _subnormals(reference) > 0 and _subnormals(ours) > 0  # what the flush is for
    torch.testing.assert_close(ours, reference, atol=TOLERANCE[torch.float32], rtol=0)


def test_with_the_flush_row_shards_equal_the_reference_and_hold_no_subnormal(flushing):
    ours, reference = _long_review_gradients(shards=3)
    assert _subnormals(ours) == 0 and _subnormals(reference) == 0
    torch.testing.assert_close(ours, reference, atol=TOLERANCE[torch.float32], rtol=0)


def test_row_shards_run_under_the_calling_threads_cpu_autocast():
    """bf16-mixed on the CPU keeps the row shards: each pool thread runs under the autocast of
    the thread that called it (autocast state is per thread)."""
    torch.manual_seed(5)
    encoder = RecurrentEncoder("lstm", FEATURES, HIDDEN, bidirectional=True)
    generator = torch.Generator().manual_seed(5)
    lengths = random_lengths(generator, 9, 17)
    x = padded_noise(lengths, 17, torch.float32, generator)
    results = {}
    for shards in (1, 3):
        encoder.shards = shards
        encoder.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, final = encoder(x, lengths)
        final.float().sum().backward()
        grads = [p.grad.clone() for p in encoder.parameters()]
        results[shards] = (out.dtype, final.dtype, final.detach().float(), grads)
    assert results[3][:2] == results[1][:2] == (torch.bfloat16, torch.bfloat16)
    torch.testing.assert_close(results[3][2], results[1][2], atol=2e-2, rtol=0)
    for sharded, whole in zip(results[3][3], results[1][3], strict=True):
        torch.testing.assert_close(sharded, whole, atol=5e-2, rtol=5e-2)


@pytest.mark.parametrize("shards", [1, 3], ids=["one-thread", "3-shards"])
def test_row_shards_serve_a_second_backward_pass_when_asked(shards):
    """Adversarial training backpropagates twice through one forward pass (the gradient of
    the input, then training): row shards keep their graphs for it, and both passes give the
    gradients of one shard."""
    torch.manual_seed(3)
    encoder = RecurrentEncoder("lstm", FEATURES, HIDDEN, 1, True)
    lengths = torch.tensor([9, 7, 5, 9, 3, 8, 6, 2, 9])
    x = torch.randn(9, 9, FEATURES, requires_grad=True)

    def two_passes(rows_per_thread: int):
        encoder.shards = rows_per_thread
        encoder.zero_grad()
        with backward_passes(2):
            _, final = encoder(x, lengths)
        (first,) = torch.autograd.grad(final.sum(), x, retain_graph=True)
        final.sum().backward()
        return first, x.grad.clone(), encoder.layers[0][0].weight_ih_l0.grad.clone()

    reference = two_passes(1)
    x.grad = None
    for ours, expected in zip(two_passes(shards), reference, strict=True):
        torch.testing.assert_close(ours, expected)
    torch.testing.assert_close(reference[0], reference[1])
