"""A linear map of data (inputs that need no gradient) whose weight gradient is summed
over very many rows, computed the way the CPU's BLAS runs fast.

The head's future layer maps every origin's every future step, B x T x H rows (64 x 96
x 48 = 295,000 a TBPTT step on M4 Hourly), from a few known future inputs to a few
hidden units. torch's backward of ``nn.Linear`` takes the weight gradient as
``grad.T @ inputs``, whose right operand is the few input columns (8 on M4 Hourly, 10
in the benchmark). This CPU's BLAS ran that product 10x slower than
``(inputs.T @ grad).T``, the same sum with the 16 hidden units on the right (47 ms
against 5 ms at 10 inputs), a sixth of a whole training step. Over
N = 295,000 rows and widths of 10 to 32 on the left, the products whose right operand
had 16 to 64 columns ran at 15 to 39 GFLOP/s, those with 3 to 10 at 1 to 2; so here the
wider of the two goes on the right. With it a training step took 0.81x the time and two
epochs of M4 Hourly 0.87x (``bench/data_linear.py``). The forward is
``nn.functional.linear`` itself, so forecasts are the same to the bit; the gradient's
rounding may differ in the last bits.
"""

from __future__ import annotations

import torch
from torch import nn


class _DataLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(inputs)
        ctx.weight_dtype = weight.dtype
        return nn.functional.linear(inputs, weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        (inputs,) = ctx.saved_tensors
        # Under autocast the gradient comes in the lower precision the forward ran in.
        rows = inputs.reshape(-1, inputs.shape[-1]).to(grad.dtype)  # (N, in)
        grads = grad.reshape(-1, grad.shape[-1])  # (N, out)
        wide_outputs = grads.shape[1] >= rows.shape[1]
        weight_grad = (rows.T @ grads).T if wide_outputs else grads.T @ rows
        return None, weight_grad.to(ctx.weight_dtype)


def data_linear(inputs: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``inputs @ weight.T`` (no bias), as ``nn.functional.linear`` gives it; the
    weight's gradient as described above where that pays: on the CPU, for inputs that
    take no gradient. Anywhere else (a GPU's BLAS included), torch's own linear."""
    if (
        inputs.device.type != "cpu"
        or inputs.requires_grad
        or not weight.requires_grad
        or not torch.is_grad_enabled()
    ):
        return nn.functional.linear(inputs, weight)
    return _DataLinear.apply(inputs, weight)
