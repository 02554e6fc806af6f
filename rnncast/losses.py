"""The training losses of a run's network on this process's series: each batch's (TBPTT
chunks or sliding windows, in an order the run's random stream shuffles), for loop.py
to step on. validation_losses.py sums the validation origins' loss; loss_function.py
scores both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from rnncast.batch_shares import BatchShares, share_slices, summed, with_gradients
from rnncast.batches import (
    SeriesTensors,
    gather_block,
    gather_windows,
    iter_chunks,
    origins_between,
)
from rnncast.config import TrainConfig
from rnncast.data_choices import stream_bounds
from rnncast.loss_function import Loss, LossFunction


class TrainingLosses:
    """The network's losses on the training origins of the series in ``tensors``:
    ``epoch()`` walks an epoch's batches.

    ``trainer`` is the network the training batches go through (in DDP under torchrun);
    ``rng`` the run's stream, whose draws decide the epoch's order; ``batch_size``
    this process's series (windows) per batch; ``replays``: whether the last batch's
    inputs are kept for ``idle()`` (a process whose series are done, lockstep.py);
    ``shares``: threads that each take a share of every training batch
    (batch_shares.py), or None; ``loss`` scores each batch's forecasts.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        trainer: torch.nn.Module,
        loss: LossFunction,
        training: TrainConfig,
        tensors: SeriesTensors,
        weights: torch.Tensor,
        ranges: dict[str, tuple[np.ndarray, np.ndarray]],
        device: torch.device,
        rng: np.random.Generator,
        batch_size: int,
        replays: bool,
        shares: BatchShares | None = None,
    ):
        self.network, self.trainer, self.loss, self.training = network, trainer, loss, training
        self.tensors, self.weights, self.ranges, self.device = tensors, weights, ranges, device
        self.rng, self.batch_size, self.replays = rng, batch_size, replays
        self.shares = shares
        # The last chunk's (window batch's) inputs, which an idle process steps on again.
        self.replay: tuple | None = None

    def epoch(self) -> Iterator[Loss]:
        """One epoch's batches, each one's loss with its graph, to step on in turn."""
        return self.tbptt() if self.training.strategy == "tbptt" else self.windows()

    def tbptt(self) -> Iterator[Loss]:
        low, high = self.ranges["train"]
        chunk_len = self.training.chunk_len
        stride = self.training.origin_stride or 1
        for batch in self._series_batches(high + 1):
            series, firsts, lows, highs = self._streams(batch, low, high)
            block = gather_block(self.tensors, series, firsts)
            limit = int((highs - firsts).max()) + 1  # no origin past this one is scored
            phase = int(self.rng.integers(1, chunk_len + 1))
            state = None
            # Each share of the batch's series carries its own state from chunk to chunk.
            states: list[Any] = [None] * len(self._slices(len(series)))
            for start, stop in iter_chunks(limit, chunk_len, phase):
                # Every stride-th origin of the chunk, from a random one of the first
                # stride, is decoded and scored; the encoder still reads every step.
                offset = int(self.rng.integers(stride)) if stride > 1 else 0
                if offset >= stop - start:
                    offset = 0
                first = start + offset
                mask = block.mask(first, stop, lows, highs, stride)
                future = block.future(first, stop, stride)
                arguments = (block.inputs(start, stop), future, block.codes)
                origins = slice(offset, None, stride) if stride > 1 else None
                targets = block.targets(first, stop, stride)
                if len(states) > 1:
                    loss_sum, loss_count, states = self._in_shares(
                        arguments, targets, mask, self.weights[series], states, origins
                    )
                    yield loss_sum, loss_count
                    continue
                with self.loss.autocast():
                    forecasts, state = self.trainer(*arguments, state, origins)
                    loss_sum, loss_count = self.loss.score(
                        forecasts, targets, mask, self.weights[series]
                    )
                if self.replays:
                    self.replay = (*arguments, None, origins)
                yield loss_sum, loss_count
                # Truncated BPTT: the next chunk starts from this state as a constant, so
                # gradients stop here and memory stays O(chunk_len), not O(series length).
                state = tuple(s.detach() for s in state)

    def _streams(
        self, batch: np.ndarray, low: np.ndarray, high: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The batch's rows: (series, first step read, first and last origin scored) of
        each stream of each series (data_choices.stream_bounds)."""
        streams = int(self.training.streams or 1)
        if streams == 1:
            return batch, np.zeros(len(batch), dtype=np.int64), low[batch], high[batch]
        chunk_len = int(self.training.chunk_len or 1)
        rows = [(int(s), *bounds) for s in batch
                for bounds in stream_bounds(int(low[s]), int(high[s]), streams, chunk_len,
                                            float(self.rng.random()))]  # fmt: skip
        table = np.array(rows, dtype=np.int64)  # (rows, 4)
        return table[:, 0], table[:, 1], table[:, 2], table[:, 3]

    def windows(self) -> Iterator[Loss]:
        series, origins = origins_between(*self.ranges["train"])
        order = self.rng.permutation(series.shape[0])
        for begin in range(0, order.shape[0], self.batch_size):
            chosen = order[begin : begin + self.batch_size]
            windows = gather_windows(
                self.tensors, series[chosen], origins[chosen], self.training.lookback
            )
            # Each window decodes its last step alone, the origin it was cut for.
            arguments = (windows.inputs, windows.future, windows.codes, None, slice(-1, None))
            mask = torch.ones((len(chosen), 1), dtype=torch.bool, device=self.device)
            count = len(self._slices(len(chosen)))
            if count > 1:
                loss_sum, loss_count, _ = self._in_shares(
                    arguments[:3], windows.targets, mask, self.weights[series[chosen]],
                    [None] * count, arguments[4],
                )  # fmt: skip
                yield loss_sum, loss_count
                continue
            with self.loss.autocast():
                forecasts, _ = self.trainer(*arguments)
                loss_sum, loss_count = self.loss.score(
                    forecasts, windows.targets, mask, self.weights[series[chosen]]
                )
            if self.replays:
                self.replay = arguments
            yield loss_sum, loss_count

    def _share_count(self) -> int:
        return self.shares.count if self.shares is not None else 1

    def _slices(self, rows: int) -> list[slice]:
        return share_slices(rows, self._share_count())

    def _in_shares(
        self,
        arguments: tuple[torch.Tensor, ...],
        targets: torch.Tensor,
        mask: torch.Tensor,
        weights: torch.Tensor,
        states: list[Any],
        origins: slice | None,
    ) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
        """The batch's loss as ``shares`` compute it, each its rows of ``arguments``
        (inputs, future, codes) from its state in ``states``: the summed loss, whose
        backward gives the shares' summed gradient (batch_shares.with_gradients), the
        number of scored origins, and each share's state after it."""
        slices = self._slices(targets.shape[0])
        parameters = [p for p in self.network.parameters() if p.requires_grad]

        def share(index: int) -> tuple[torch.Tensor, torch.Tensor, tuple, Any]:
            rows = slices[index]
            forecasts, state = self.trainer(*(a[rows] for a in arguments), states[index],
                                            origins)  # fmt: skip
            loss_sum, loss_count = self.loss.score(forecasts, targets[rows], mask[rows],
                                                   weights[rows])  # fmt: skip
            gradients = torch.autograd.grad(loss_sum, parameters, allow_unused=True)
            after = tuple(s.detach() for s in state) if state is not None else None
            return loss_sum.detach(), loss_count, gradients, after

        assert self.shares is not None
        results = self.shares.map(share, len(slices))
        loss_sum = torch.stack([r[0] for r in results]).sum()
        loss_count = torch.stack([r[1] for r in results]).sum()
        gradients = summed([r[2] for r in results])
        return with_gradients(loss_sum, parameters, gradients), loss_count, [r[3] for r in results]

    def idle(self) -> torch.Tensor:
        """A zero loss through the whole network, for a process whose series are done:
        its last chunk again, from a fresh state."""
        if self.replay is None:
            raise RuntimeError("a process with no training origins cannot follow the others")
        with self.loss.autocast():
            forecasts, _ = self.trainer(*self.replay)
        return forecasts.float().sum() * 0.0

    def _series_batches(self, train_steps: np.ndarray) -> list[np.ndarray]:
        # Similar lengths share a batch (little padding); ties are broken at random
        # and batches shuffled, so batches differ from epoch to epoch.
        size = self.batch_size
        buckets = train_steps // max(self.training.chunk_len or 1, 1)
        order = np.lexsort((self.rng.random(train_steps.shape[0]), buckets))
        order = order[train_steps[order] > 0]
        batches = [order[i : i + size] for i in range(0, order.shape[0], size)]
        return [batches[i] for i in self.rng.permutation(len(batches))]
