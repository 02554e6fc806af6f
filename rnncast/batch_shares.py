"""A training batch shared out among the CPU cores: each share of its rows goes
forwards and backwards in a thread of its own, on one torch thread, and the shares'
gradients are summed into the step the whole batch would take.

A network whose steps are too small to share among torch's own threads trains on one
(nn/device.py, training_threads), and where one network fills the time budget the
machine's other cores then sit idle: members side by side (lanes.py) need several
members. The rows of a batch meet only in the loss, a sum over them, so each share of
the rows is a smaller batch whose gradient is its part of the whole batch's. On the
2-core machine the benchmarks run on, a step of M4 Hourly's network (batch 64, chunk
96, LSTM 2 x 64, H 48) took 0.50 to 0.62 of the whole batch's time in two shares;
below about a million multiply-adds of recurrence a share (_SHARE_WORK), handing the
work to a thread cost more than it saved (a batch of 8 series of 48 steps, hidden
32: 1.24 times the time).

Threads, as in lanes.py: torch leaves Python's lock while it computes. Each share's
gradient is computed apart (torch.autograd.grad: two threads accumulating into the
same ``.grad`` is not safe), the shares are summed in a fixed order, and the sum is
handed to the loop as a loss whose backward gives it (with_gradients), so clipping,
the optimizer and the schedule step as for any batch. A run in shares takes the same
steps as the whole batch, equal to float32's rounding of the sums, and repeats itself
exactly: each share has a thread of its own. With one pool whose threads took the
shares in whatever order they came free, runs of the same seed on a busy machine
differed in the last bits of the weights in 2 to 8 of 8 (LSTM and GRU, windows):
what torch's kernels compute depends a little on the thread that runs them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import torch

from rnncast.config import ModelConfig, TrainConfig

# Multiply-adds of recurrence (rows x steps x hidden^2 x layers) a share needs for its
# thread to pay (measured above).
_SHARE_WORK = 2**20


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity: taskset, a cgroup cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share_count(cores: int, rows: int, steps: int, hidden: int, layers: int) -> int:
    """How many shares a batch of ``rows`` sequences of ``steps`` steps goes in on
    ``cores`` cores: one a core, while each share keeps _SHARE_WORK of recurrence."""
    work = rows * steps * hidden**2 * layers
    return max(1, min(cores, rows, work // _SHARE_WORK))


def training_shares(
    model: ModelConfig,
    training: TrainConfig,
    threads: int | None,
    cores: int | None,
    distributed_run: bool,
) -> int:
    """In how many shares each of a training's batches goes: one a core of ``cores``
    (None: every usable core) for a network trained on one thread (``threads``, as
    training chose them) of one process, without dropout (whose draws from torch's one
    generator would then depend on the threads' order); else 1."""
    if threads != 1 or distributed_run or model.dropout > 0:
        return 1
    steps = int(training.chunk_len or training.lookback or 1)
    layers = int(model.layers or 1) * (2 if model.bidirectional else 1)
    return share_count(cores or usable_cores(), training.batch_rows, steps,
                       int(model.hidden or 1), layers)  # fmt: skip


def share_slices(rows: int, count: int) -> list[slice]:
    """``rows`` cut into ``count`` consecutive shares (fewer when rows are fewer),
    their sizes at most one apart."""
    count = max(1, min(count, rows))
    borders = [rows * k // count for k in range(count + 1)]
    return [slice(borders[k], borders[k + 1]) for k in range(count)]


class BatchShares:
    """Threads for ``count`` shares of a batch: the calling thread computes the first,
    a thread of its own each of the others (opened_shares ends them)."""

    def __init__(self, count: int):
        self.count = count
        # A thread of its own for each share, so share k always runs on the same thread.
        self._threads = [ThreadPoolExecutor(1, thread_name_prefix=f"rnncast-share-{k}")
                         for k in range(1, count)]  # fmt: skip

    def map(self, work: Callable[[int], Any], shares: int) -> list[Any]:
        """``work(k)`` for k in range(shares), share 0 in the calling thread; every one
        ends before this returns, and the first error by share is raised."""
        futures = [self._threads[k - 1].submit(work, k) for k in range(1, shares)]
        results: list[Any] = []
        errors: list[BaseException] = []
        try:
            results.append(work(0))
        except BaseException as exc:  # raised below, once the other shares are done
            errors.append(exc)
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
        return results

    def close(self) -> None:
        for thread in self._threads:
            thread.shutdown(wait=True)


@contextmanager
def opened_shares(count: int) -> Iterator[BatchShares | None]:
    """BatchShares for ``count`` shares while the block runs (None for one share)."""
    if count < 2:
        yield None
        return
    shares = BatchShares(count)
    try:
        yield shares
    finally:
        shares.close()


def summed(gradients: Sequence[Sequence[torch.Tensor | None]]) -> list[torch.Tensor | None]:
    """Each parameter's gradients over the shares, summed in the shares' order (None
    where no share reached it)."""
    totals: list[torch.Tensor | None] = []
    for per_share in zip(*gradients, strict=True):
        present = [g for g in per_share if g is not None]
        total = present[0] if present else None
        for g in present[1:]:
            total = total + g
        totals.append(total)
    return totals


class _GivenGradients(torch.autograd.Function):
    """The identity on a value, whose backward gives ``parameters`` the gradients
    computed already, times the gradient of what was made of the value."""

    @staticmethod
    def forward(ctx, value, gradients, *parameters):
        # ``parameters`` are inputs only so that the graph reaches them.
        ctx.gradients = gradients
        return value.clone()

    @staticmethod
    def backward(ctx, upstream):
        given = tuple(None if g is None else g * upstream for g in ctx.gradients)
        return (None, None, *given)


def with_gradients(
    value: torch.Tensor,
    parameters: Sequence[torch.Tensor],
    gradients: Sequence[torch.Tensor | None],
) -> torch.Tensor:
    """``value`` (a loss summed over the shares, without a graph) as a tensor whose
    backward adds ``gradients`` (the same sum's, per parameter) to ``parameters``."""
    return _GivenGradients.apply(value, tuple(gradients), *parameters)
