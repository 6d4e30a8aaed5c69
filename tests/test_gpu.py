"""The GPU path: cuDNN's recurrent kernels keep packed semantics, and `trainer=gpu` trains in
fp32 and bf16 mixed precision. Skipped where CUDA is absent (CI has no GPU); run with
`pytest tests/test_gpu.py` on a machine that has one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from packed_weights import copy_packed_weights, encoder_counterpart
from torch.nn.utils.rnn import pack_padded_sequence

from rnnlab.models.recurrent import CELLS, RecurrentEncoder
from rnnlab.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def exact_fp32():
    """cuDNN and cuBLAS in true fp32 (no TF32), so the two paths differ by rounding only."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_cuda_encoder_equals_packed_reference(exact_fp32, cell, bidirectional):
    """On CUDA the encoder runs cuDNN over the padded batch (the backward direction over each
    review's reversed valid part); final states and gradients equal a packed run on CUDA."""
    torch.manual_seed(3)
    device, steps, batch = "cuda", 23, 16
    reference = CELLS[cell](8, 12, bidirectional=bidirectional, batch_first=True).to(device)
    encoder = RecurrentEncoder(cell, 8, 12, 1, bidirectional).to(device)
    copy_packed_weights(reference, encoder)
    lengths = torch.randint(1, steps + 1, (batch,))
    lengths[:2] = torch.tensor([1, steps])
    x = torch.randn(batch, steps, 8, device=device)
    pad = (torch.arange(steps)[None, :] >= lengths[:, None]).to(device)
    x = torch.where(pad[..., None], 10 * torch.randn_like(x), x)  # padding is loud noise

    x_ref = x.clone().requires_grad_()
    packed = pack_padded_sequence(x_ref, lengths, batch_first=True, enforce_sorted=False)
    _, state = reference(packed)
    h_n = state[0] if cell == "lstm" else state
    ref_final = torch.cat([h_n[-2], h_n[-1]], -1) if bidirectional else h_n[-1]
    ref_final.sum().backward()

    x_ours = x.clone().requires_grad_()
    _, final = encoder(x_ours, lengths.to(device))
    final.sum().backward()

    tol = {"atol": 2e-4, "rtol": 0}
    torch.testing.assert_close(final, ref_final, **tol)
    torch.testing.assert_close(x_ours.grad, x_ref.grad, **tol)
    assert not x_ours.grad[pad].any(), "padding received a gradient"
    for name, ref_param in reference.named_parameters():
        grad = encoder_counterpart(encoder, name).grad
        torch.testing.assert_close(grad, ref_param.grad, **tol, msg=lambda m, n=name: f"{n}: {m}")
    assert all(p.grad is not None for p in encoder.parameters())


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_trainer_gpu_trains_and_tests(train_cfg, precision):
    """`trainer=gpu` (and its bf16 mixed precision) learns the synthetic task and reports test
    metrics; the checkpoint it writes loads back on the CPU."""
    cfg = train_cfg("model=bilstm", "trainer=gpu", f"trainer.precision={precision}", "logger=[]")
    metrics = train(cfg)
    assert metrics["val/acc"] > 0.85, metrics
    run_dir = Path(cfg.paths.output_dir)
    report = json.loads((run_dir / "metrics.json").read_text())
    assert report["status"] == "completed" and "test/acc" in report["test"]
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    state = last["state_dict"]
    assert all(t.device.type == "cpu" and torch.isfinite(t).all() for t in state.values())
    assert all(t.dtype != torch.bfloat16 for t in state.values()), "weights stay fp32 in bf16-mixed"
