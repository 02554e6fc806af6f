"""Independently recurrent network (IndRNN) with ReLU, stacked, optionally residual.

S. Li, W. Li, C. Cook, C. Zhu, Y. Gao, "Independently Recurrent Neural Network (IndRNN):
Building A Longer and Deeper RNN", CVPR 2018, arXiv:1803.04831. Each hidden unit n has one
scalar recurrent weight u_n:

    h_t = relu(W x_t + u ⊙ h_{t-1} + b)

torch has no such layer. W x_t + b is one matmul over all steps; only the elementwise
recurrence walks the time axis, in a custom autograd Function with hand-written forward and
backward loops (in-place ops, no autograd graph per step). bench/indrnn_loop.py measured it
against a plain autograd loop, TorchScript, torch.compile and nn.GRU;
bench/results/indrnn_loop.json holds the numbers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from rnncast.nn import scan


def _forward_loop(pre: Tensor, u: Tensor, h: Tensor) -> None:
    """Overwrite pre with h_t = relu(pre_t + u * h_{t-1}); pre (T, B, D), u (D,), h (B, D)."""
    # unbind makes all T views in one call instead of T Python indexing calls.
    for step in pre.unbind(0):
        step.addcmul_(u, h).relu_()
        h = step


def _backward_loop(a: Tensor, c: Tensor) -> None:
    """Overwrite c with g_t = c_t + a_t * g_{t+1}, from g_{T-1} = c_{T-1} back; a, c (T, B, D)."""
    a_steps, g_steps = a.unbind(0), c.unbind(0)
    for t in range(len(g_steps) - 2, -1, -1):
        g_steps[t].addcmul_(a_steps[t], g_steps[t + 1])


class _IndRNNScan(torch.autograd.Function):
    """The recurrence over precomputed W x + b, overwriting it: its caller makes it and W x's
    backward does not need it, so no second (T, B, D) buffer is allocated (at inference on
    414 series x 960 steps that allocation cost as much as the whole loop).

    Time-major, so each step is one contiguous slice.
    """

    @staticmethod
    def forward(ctx, pre: Tensor, u: Tensor, h0: Tensor, parallel: bool) -> Tensor:
        if parallel:
            # At least float32 whatever autocast made pre: the scan's products of u compound.
            exact = torch.promote_types(pre.dtype, torch.float32)
            pre.copy_(scan.relu_recurrence(pre.to(exact), u.to(exact), h0.to(exact)))
        else:
            _forward_loop(pre, u, h0)
        ctx.parallel = parallel
        ctx.mark_dirty(pre)
        ctx.save_for_backward(pre, u, h0)
        return pre

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out, u, h0 = ctx.saved_tensors
        # relu'(z_t) is 1 where h_t > 0 and 0 at z_t <= 0, as in torch.relu's own backward;
        # sign() of h_t >= 0 gives it as a float in one cheap pass (out > 0 makes a bool
        # tensor that costs two slower passes to convert).
        active = torch.sign(out)  # (T, B, D)
        # The gradient reaching z_t is g_t = relu'(z_t) (G_t + u g_{t+1}): a linear recurrence
        # g_t = c_t + a_t g_{t+1}, so one addcmul per step; c is overwritten with g.
        a = active * u  # (T, B, D)
        grad_pre = active.mul_(grad_out)  # (T, B, D), c_t = relu'(z_t) G_t
        if ctx.parallel:
            grad_pre = scan.linear_recurrence_backward(a, grad_pre)
        else:
            _backward_loop(a, grad_pre)
        # dz_t/du = h_{t-1}; a's buffer is free again and takes the products.
        products = torch.mul(grad_pre[1:], out[:-1], out=a[1:])  # (T-1, B, D)
        grad_u = products.sum((0, 1)) + (grad_pre[0] * h0).sum(0)  # (D,)
        return grad_pre, grad_u, grad_pre[0] * u, None


class IndRNNLayer(nn.Module):
    """One IndRNN layer: input weights W, bias b and recurrent weights u (D,)."""

    def __init__(self, input_size: int, hidden_size: int, recurrent_bound: float) -> None:
        super().__init__()
        self.linear = nn.Linear(input_size, hidden_size)
        self.recurrent_weight = nn.Parameter(torch.empty(hidden_size))
        # u ~ U(0, 2^(1/T)) as in the authors' code (Sunnydreamrain/IndRNN_pytorch,
        # action_recognition/Indrnn_action_network.py: weight_hh.uniform_(0, U_bound)).
        nn.init.uniform_(self.recurrent_weight, 0.0, recurrent_bound)
        # He-normal W instead of the authors' U(-0.002, 0.002): theirs relies on batch norm
        # after every layer to restore the scale, and this stack has none. Bias 0 as theirs.
        nn.init.kaiming_normal_(self.linear.weight, nonlinearity="relu")
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor, h0: Tensor) -> Tensor:
        """x (T, B, F) time-major, h0 (B, D) -> every h_t, (T, B, D)."""
        pre = self.linear(x).contiguous()  # (T, B, D)
        # Computing in pre's dtype keeps autocast (bfloat16 W x) working; the casts are
        # differentiable, so u keeps float32 gradients.
        u = self.recurrent_weight.to(pre.dtype)
        return _IndRNNScan.apply(pre, u, h0.to(pre.dtype), parallel_scan(pre.device))


def parallel_scan(device: torch.device) -> bool:
    """Whether the recurrence runs as parallel scans on ``device`` rather than as a loop:
    off the CPU, where a step's cost is its kernel launches (``scan``'s docstring)."""
    return device.type != "cpu"


class IndRNN(nn.Module):
    """Stacked ReLU IndRNN, batch-first, with explicit state in and out.

    Args:
        input_size: F, features per step.
        hidden_size: D, units per layer.
        num_layers: stacked layers.
        dropout: probability of zeroing a layer's input for every layer but the first,
            in training mode only.
        residual: layers after the first add their input to their output (all are D wide).
        max_steps: T of the paper's bound |u| <= 2^(1/T), the length trained over (the TBPTT
            chunk length); it sets `recurrent_bound`.

    Raises:
        ValueError: for a size below 1, dropout outside [0, 1), or a state of the wrong shape.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        residual: bool = False,
        max_steps: int = 100,
    ) -> None:
        super().__init__()
        for name, value in [
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
            ("max_steps", max_steps),
        ]:
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.residual = residual
        self.max_steps = max_steps
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.layers = nn.ModuleList(
            IndRNNLayer(f, hidden_size, self.recurrent_bound) for f in sizes
        )

    @property
    def recurrent_bound(self) -> float:
        """u_max = 2^(1/max_steps), so u^T, the factor a ReLU unit's gradient picks up through
        itself over max_steps steps, stays within 2. The paper's BPTT analysis bounds |u| by
        γ^(1/T); γ = 2 is the authors' (and the TensorFlow port's) usual choice."""
        return 2.0 ** (1.0 / self.max_steps)

    @torch.no_grad()
    def clip_recurrent_weights_(self) -> None:
        """Clamp every u into [-u_max, u_max]; call after each optimizer step.

        The paper also lifts |u| of the last layer to at least (1/2)^(1/T) for tasks that read
        only the final step; a forecaster reads every step, so only the upper bound applies.
        """
        bound = self.recurrent_bound
        for layer in self.layers:
            layer.recurrent_weight.clamp_(-bound, bound)

    def forward(
        self, x: Tensor, state: tuple[Tensor, ...] | None = None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """x (B, T, F), state None (zeros) or num_layers tensors (B, D).

        Returns the last layer's output (B, T, D), a transposed view of a time-major buffer
        as nn.GRU's batch-first output is, and the new state: num_layers tensors (B, D).
        """
        batch = x.shape[0]
        if state is None:
            state = tuple(x.new_zeros(batch, self.hidden_size) for _ in self.layers)
        expected = (batch, self.hidden_size)
        if len(state) != self.num_layers or any(tuple(h.shape) != expected for h in state):
            shapes = [tuple(h.shape) for h in state]
            raise ValueError(
                f"state must be {self.num_layers} tensors of shape {expected}, got {shapes}"
            )
        h = x.transpose(0, 1)  # (T, B, F)
        new_state = []
        for index, (layer, h0) in enumerate(zip(self.layers, state, strict=True)):
            # Dropout thins a layer's input only, so the residual path below stays exact.
            layer_in = h if index == 0 else nn.functional.dropout(h, self.dropout, self.training)
            out = layer(layer_in, h0)  # (T, B, D)
            # clone: a view of the last step would keep the layer's whole (T, B, D) buffer
            # alive for as long as the caller holds the state.
            new_state.append(out[-1].clone())
            h = out + h if self.residual and index > 0 else out
        return h.transpose(0, 1), tuple(new_state)
