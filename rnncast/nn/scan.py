"""The IndRNN recurrence as parallel scans over time: about 2·log2(T) rounds of whole-tensor
operations instead of T steps, for devices where each step's kernel launch, not its
arithmetic, is the cost (CUDA: a launch takes microseconds, a (B, D) step nanoseconds).

Forward. Each step is a function of the previous state,

    f_t(h) = relu(p_t + u h) = clamp(p_t + u h, 0, +inf),

and a clamped affine map, clamp(β + γ h, lo, hi), composed with another is again one
(u may be negative, which rules out the max-plus form that needs u >= 0). So the states
are an inclusive scan of compositions, h_t = (f_t ∘ … ∘ f_0)(h_0), and Hillis–Steele's
scan needs log2(T) rounds. Backward. The gradient reaching the pre-activations follows
the linear recurrence g_t = c_t + a_t g_{t+1}, scanned the same way from the end.

The scans do O(T log T) work against the loop's O(T), so on a CPU, where a step costs
its arithmetic, the loop in ``indrnn`` stays faster; ``indrnn`` chooses by device.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _compose(outer: tuple[Tensor, ...], inner: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """outer ∘ inner for clamped affine maps h -> clamp(β + γ h, lo, hi)."""
    beta2, gamma2, low2, high2 = outer
    beta1, gamma1, low1, high1 = inner
    at_low = beta2 + gamma2 * low1
    # hi may be +inf, and 0 · inf is nan: a flat outer map sends every input to β2.
    at_high = torch.where(gamma2 == 0, beta2, beta2 + gamma2 * high1)
    # A negative γ2 turns the inner interval around; clamping a clamp keeps one clamp.
    low = torch.minimum(at_low, at_high).clamp(low2, high2)
    high = torch.maximum(at_low, at_high).clamp(low2, high2)
    return beta2 + gamma2 * beta1, gamma2 * gamma1, low, high


def relu_recurrence(pre: Tensor, u: Tensor, h0: Tensor) -> Tensor:
    """Every h_t = relu(pre_t + u h_{t-1}); pre (T, B, D), u (D,), h0 (B, D), float32."""
    steps = pre.shape[0]
    maps = (
        pre.clone(),
        u.expand_as(pre).clone(),
        torch.zeros_like(pre),
        torch.full_like(pre, torch.inf),
    )
    offset = 1
    while offset < steps:
        # Each map from offset on takes in the one offset steps back: after the round
        # with offset d, map t is the composition of steps max(0, t - 2d + 1) .. t.
        later = tuple(part[offset:] for part in maps)
        earlier = tuple(part[:-offset] for part in maps)
        composed = _compose(later, earlier)
        maps = tuple(
            torch.cat((part[:offset], new)) for part, new in zip(maps, composed, strict=True)
        )
        offset *= 2
    beta, gamma, low, high = maps
    return torch.minimum(torch.maximum(beta + gamma * h0, low), high)


def linear_recurrence_backward(a: Tensor, c: Tensor) -> Tensor:
    """Every g_t = c_t + a_t g_{t+1}, from g_{T-1} = c_{T-1} back; a, c (T, B, D)."""
    steps = c.shape[0]
    offset = 1
    while offset < steps:
        # After the round with offset d, g_t holds the sum over t .. t + 2d - 1, and a_t
        # the product that carries g_{t+2d} into it.
        head_g = c[:-offset] + a[:-offset] * c[offset:]
        head_a = a[:-offset] * a[offset:]
        c = torch.cat((head_g, c[-offset:]))
        a = torch.cat((head_a, a[-offset:]))
        offset *= 2
    return c
