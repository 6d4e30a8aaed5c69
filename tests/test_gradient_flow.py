"""||dL/dh_t|| measurement: checked against the chain rule, and logged by the callback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from compose import compose
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rnnlab.data.synthetic import write_dataset
from rnnlab.gradient_flow import (
    GradientFlow,
    longest_reviews,
    median_curve,
    ratios,
    step_gradient_norms,
)
from rnnlab.models.classifier import RecurrentClassifier
from rnnlab.train import train

ROOT = Path(__file__).resolve().parents[1]


def padded_batch(lengths: list[int], vocab: int = 50, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    lengths_t = torch.tensor(lengths)
    ids = torch.randint(2, vocab, (len(lengths), max(lengths)), generator=generator)
    ids[torch.arange(max(lengths))[None, :] >= lengths_t[:, None]] = 0
    labels = torch.tensor([float(i % 2) for i in range(len(lengths))])
    return ids, lengths_t, labels


def test_rnn_norms_follow_the_chain_rule():
    """dL/dh_t = dL/dh_T * prod_k diag(1 - h_{k+1}^2) W_hh, written out by hand."""
    torch.manual_seed(0)
    net = RecurrentClassifier(50, "rnn", 6, 5).eval()
    ids, lengths, labels = padded_batch([9])
    norms = step_gradient_norms(net, ids, lengths, labels)

    h, _ = net.encoder.layers[0][0](net.embed(ids))
    logit = net.head(h[:, -1]).squeeze()
    grad = (torch.sigmoid(logit) - labels[0]) * net.head.weight[0]  # dL/dh_T of BCE
    w_hh = net.encoder.layers[0][0].weight_hh_l0
    expected = [grad.norm()]
    for t in range(8, 0, -1):  # from h_t back to h_{t-1}
        grad = (grad * (1 - h[0, t] ** 2)) @ w_hh
        expected.append(grad.norm())
    torch.testing.assert_close(
        norms[0], torch.stack(expected).detach(), atol=1e-6, rtol=1e-4, check_dtype=False
    )


@pytest.mark.parametrize("cell", ["gru", "lstm", "lstm_scratch"])
def test_padding_and_direction_bookkeeping(cell):
    torch.manual_seed(1)
    net = RecurrentClassifier(50, cell, 6, 5, bidirectional=True).eval()
    ids, lengths, labels = padded_batch([12, 7, 3])
    norms = step_gradient_norms(net, ids, lengths, labels)
    # step 0 is the final state (both directions), read only by the head
    logits = net(ids, lengths)
    at_last = (torch.sigmoid(logits) - labels).abs() * net.head.weight.norm()
    torch.testing.assert_close(
        norms[:, 0], at_last.detach(), atol=1e-6, rtol=1e-5, check_dtype=False
    )
    # a review gets the same curve alone as inside a padded batch; past its start: NaN
    alone = step_gradient_norms(net, ids[1:2, :7], lengths[1:2], labels[1:2])
    torch.testing.assert_close(norms[1, :7], alone[0], atol=1e-6, rtol=1e-5)
    assert torch.isnan(norms[1, 7:]).all() and torch.isnan(norms[2, 3:]).all()
    assert not torch.isnan(norms[0]).any()


def test_measuring_leaves_the_model_and_randomness_alone():
    torch.manual_seed(2)
    net = RecurrentClassifier(50, "lstm", 6, 5).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.random.get_rng_state()
    step_gradient_norms(net, *padded_batch([5, 4]))
    assert net.training
    assert all(p.grad is None for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert torch.equal(rng, torch.random.get_rng_state())


def test_curve_summaries_and_fixed_batch():
    norms = torch.tensor([[4.0, 2.0, 1.0, float("nan")], [8.0, 4.0, 0.5, 0.25]])
    curve = median_curve(norms)
    np.testing.assert_allclose(curve, [6.0, 3.0, 0.75, 0.25])
    assert ratios(curve, [1, 3, 10]) == pytest.approx({"ratio_1": 0.5, "ratio_3": 0.25 / 6.0})

    reviews = [(np.arange(2, 2 + n), n % 2) for n in (3, 9, 5, 9, 1)]
    ids, lengths, labels = longest_reviews(reviews, count=3, max_steps=6)
    assert lengths.tolist() == [6, 6, 5]  # the two 9-word reviews, cut, then the 5-word one
    assert labels.tolist() == [1.0, 1.0, 1.0]
    assert ids[2].tolist() == [2, 3, 4, 5, 6, 0]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="every_n_steps"):
        GradientFlow(every_n_steps=0)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A tiny LSTM run with the gradient-flow callback on synthetic reviews; its directory."""
    root = tmp_path_factory.mktemp("gradient_flow_run")
    archive = write_dataset(root / "syn", 240)
    cfg = compose(
        "train",
        [
            "model=lstm",
            f"data.path={archive}",
            "model.hidden_size=16",
            "model.embed_dim=16",
            "trainer.max_epochs=1",
            "++trainer.limit_train_batches=3",
            "++trainer.enable_progress_bar=false",
            "test=false",
            "callbacks=[default,gradient_flow]",
            "callbacks.gradient_flow.every_n_steps=2",
            "callbacks.gradient_flow.num_reviews=4",
            "callbacks.gradient_flow.distances=[5,500]",
        ],
        root,
    )
    assert {"model_checkpoint", "metrics_json", "gradient_flow"} <= set(cfg.callbacks)
    train(cfg)
    return root


def test_callback_logs_scalars_and_curve_image(trained_run):
    """`callbacks=[default,gradient_flow]` adds the probe to the defaults; it logs to TensorBoard."""
    events = EventAccumulator(str(trained_run / "run"), size_guidance={"images": 0})
    events.Reload()
    assert "grad_flow/curve" in events.Tags()["images"]
    assert [e.step for e in events.Images("grad_flow/curve")] == [0, 2]  # start, step 2
    ratio = events.Scalars("grad_flow/ratio_5")
    assert [e.step for e in ratio] == [0, 2] and all(0 < e.value < 1 for e in ratio)
    assert "grad_flow/ratio_500" not in events.Tags()["scalars"]  # reviews are shorter
    assert all(e.value > 0 for e in events.Scalars("grad_flow/norm_last"))


def test_script_trains_and_loads_models_and_writes_one_png(trained_run, tmp_path):
    """`scripts/gradient_flow.py` end to end: one model trained here, one loaded."""
    output = tmp_path / "flow.png"
    tiny = [f"models.{m}.{k}=8" for m in ("rnn", "lstm") for k in ("hidden_size", "embed_dim")]
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "gradient_flow.py"),
            f"data.path={trained_run / 'syn' / 'aclImdb_v1.tar.gz'}",
            "data.max_reviews=200",
            f"paths.cache_dir={trained_run / 'cache'}",
            "~model@models.gru",
            "~model@models.bilstm",
            *tiny,
            f"+ckpt.lstm={trained_run / 'run' / 'checkpoints' / 'last.ckpt'}",
            "trainer.max_epochs=1",
            "++trainer.enable_progress_bar=false",
            "measure.num_reviews=4",
            "measure.distances=[5]",
            f"output={output}",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads(output.with_suffix(".json").read_text())
    assert list(summary["models"]) == ["rnn", "lstm"]
    rnn, lstm = summary["models"]["rnn"], summary["models"]["lstm"]
    assert 0 <= rnn["val_acc"] <= 1 and rnn["checkpoint"] is None
    assert lstm["val_acc"] is None and lstm["checkpoint"].endswith("last.ckpt")
    for result_ in (rnn, lstm):
        for stage in ("init", "trained"):
            assert 0 < result_[stage]["ratios"]["ratio_5"] < 1
            assert len(result_[stage]["curve"]) == max(summary["words"])
