"""A tanh RNN direction for CPU training whose backward is written out by hand.

PyTorch's CPU `nn.RNN` records every time step in autograd (a small matmul, an add and a tanh,
each a node), and its backward runs one small weight-gradient matmul per step. `FastRNN` keeps
`nn.RNN`'s parameters and state-dict names and does the arithmetic as one autograd node:

- forward: one big matmul projects every step's input (x W_ih^T + b_ih + b_hh) into the output
  buffer, then a loop of in-place `addmm_` + `sigmoid_` turns it into h_t step by step
  (tanh(z) = 2 sigmoid(2z) - 1, and sigmoid is the cheaper CPU kernel);
- backward through time: per step only dz_t = (g_t + dz_{t+1} W_hh) * (1 - h_t^2), an `addmm`
  and a `tanh_backward` into one preallocated buffer; the weight, bias and input gradients are
  then single big matmuls over all steps.

GPU (cuDNN), packed input, several layers or directions, `relu`, no bias, a projection,
unbatched input and autocast all go to `nn.RNN.forward` unchanged.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from rnnlab.models.weight_drop import RecurrentWeightOverride

_tanh_backward = torch.ops.aten.tanh_backward.grad_input  # g * (1 - h^2) in one pass, as autograd


class FastRNN(RecurrentWeightOverride, nn.RNN):
    """`nn.RNN` whose CPU tanh single-layer case runs as one hand-differentiated node.

    `weight_hh`, if given, stands in for `weight_hh_l0` in this call (weight drop)."""

    def forward(self, input, hx=None, weight_hh=None):  # nn.RNN's own argument names
        if not self._fast_path(input, hx):
            return super().forward(input, hx, weight_hh)
        x = input if self.batch_first else input.transpose(0, 1)  # batch first (B, T, I)
        h0 = None if hx is None else hx[0]
        w_hh = self.weight_hh_l0 if weight_hh is None else weight_hh
        weights = (self.weight_ih_l0, w_hh, self.bias_ih_l0, self.bias_hh_l0)
        out = _TanhRecurrence.apply(x, h0, *weights)  # (B, T, H), contiguous
        return (out if self.batch_first else out.transpose(0, 1)), out[:, -1].unsqueeze(0)

    def _fast_path(self, input, hx) -> bool:
        return (
            isinstance(input, torch.Tensor)
            and input.device.type == "cpu"
            and input.dim() == 3
            and input.size(0) > 0
            and input.size(1) > 0
            and self.mode == "RNN_TANH"
            and self.num_layers == 1
            and not self.bidirectional
            and self.bias
            and self.proj_size == 0
            and input.size(2) == self.input_size
            and input.dtype == self.weight_ih_l0.dtype
            and (hx is None or self._fits(hx, input))
            and not torch.is_autocast_enabled("cpu")
        )

    def _fits(self, hx: torch.Tensor, input: torch.Tensor) -> bool:
        batch = input.size(0 if self.batch_first else 1)
        shape = (1, batch, self.hidden_size)
        return tuple(hx.shape) == shape and hx.dtype == input.dtype and hx.device == input.device


class _TanhRecurrence(torch.autograd.Function):
    """x (B, T, I), h0 (B, H) or None -> every step's h_t, (B, T, H).

    Batch first, as the encoder hands it over: each step's (B, H) slice is a strided view that
    `addmm_` and `sigmoid_` write in place, and no (B, T, *) tensor is ever transposed and copied.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh):
        batch, steps, features = x.shape
        x = x.contiguous()
        # tanh(z) = 2 sigmoid(2z) - 1, and CPU sigmoid costs half a tanh. The loop runs on
        # u_t = sigmoid(2 z_t): 2 z_t = 2 (x_t W_ih^T + b - W_hh 1) + u_{t-1} (4 W_hh)^T
        bias = 2 * (b_ih + b_hh - w_hh.sum(1))
        out = torch.addmm(bias, x.view(-1, features), w_ih.t(), alpha=2).view(batch, steps, -1)
        w4_t = (4 * w_hh).t()
        previous = out.new_full((batch, w_hh.size(0)), 0.5) if h0 is None else (h0 + 1) / 2
        for u in out.unbind(1):  # views into `out`: each step overwrites its own slice
            previous = u.addmm_(previous, w4_t).sigmoid_()
        out.mul_(2).sub_(1)  # h_t
        ctx.save_for_backward(x, h0, w_ih, w_hh, out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, h0, w_ih, w_hh, out = ctx.saved_tensors
        batch, steps, features = x.shape
        hidden = w_hh.size(0)
        # dL/dz_t = (g_t + dL/dz_{t+1} W_hh) * (1 - h_t^2), added in place into a copy of g
        dz = torch.empty_like(out).copy_(grad_out)
        dzs, hs = dz.unbind(1), out.unbind(1)
        _tanh_backward(dzs[-1], hs[-1], grad_input=dzs[-1])
        for t in range(steps - 2, -1, -1):
            dzs[t].addmm_(dzs[t + 1], w_hh)
            _tanh_backward(dzs[t], hs[t], grad_input=dzs[t])
        rows = dz.view(-1, hidden)
        grad_x = grad_h0 = grad_w_ih = grad_w_hh = grad_bias = grad_bias_hh = None
        if ctx.needs_input_grad[0]:
            grad_x = (rows @ w_ih).view(batch, steps, features)
        if ctx.needs_input_grad[1]:
            grad_h0 = dzs[0] @ w_hh
        if ctx.needs_input_grad[2]:
            grad_w_ih = rows.t() @ x.view(-1, features)
        if ctx.needs_input_grad[3]:
            # sum over reviews and steps of dz_t^T h_{t-1}: one batched matmul over strided views
            grad_w_hh = torch.bmm(dz[:, 1:].transpose(1, 2), out[:, :-1]).sum(0)
            if h0 is not None:  # without it, h_{-1} = 0 adds nothing
                grad_w_hh.addmm_(dzs[0].t(), h0)
        if ctx.needs_input_grad[4] or ctx.needs_input_grad[5]:
            grad_bias = rows.sum(0)
            # two parameters must not share one gradient tensor (.grad may take it over as is)
            grad_bias_hh = grad_bias.clone()
        return grad_x, grad_h0, grad_w_ih, grad_w_hh, grad_bias, grad_bias_hh
