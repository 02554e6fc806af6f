"""The losses of a run's network on this process's series: each training batch's (TBPTT
chunks or sliding windows, in an order the run's random stream shuffles) and the
validation pass's sum; the scoring of forecasts that both share. loop.py steps on them.
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
    summaries_at,
)
from rnncast.config import ModelConfig, TrainConfig
from rnncast.data_choices import stream_bounds

# (summed loss over the scored origins, with its graph; the number of origins).
Loss = tuple[torch.Tensor, torch.Tensor]


class Losses:
    """The network's losses on the series in ``tensors``: ``training_losses()`` walks
    an epoch's batches, ``validation()`` sums over the validation origins.

    ``trainer`` is the network the training batches go through (in DDP under torchrun);
    ``rng`` the run's stream, whose draws decide the epoch's order; ``batch_size``
    this process's series (windows) per batch; ``replays``: whether the last batch's
    inputs are kept for ``idle()`` (a process whose series are done, lockstep.py);
    ``shares``: threads that each take a share of every training batch
    (batch_shares.py), or None.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        trainer: torch.nn.Module,
        model: ModelConfig,
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
        self.network, self.trainer, self.model, self.training = network, trainer, model, training
        self.tensors, self.weights, self.ranges, self.device = tensors, weights, ranges, device
        self.rng, self.batch_size, self.replays = rng, batch_size, replays
        self.shares = shares
        self.quantiles = torch.tensor(model.output_quantiles, device=device)
        self.autocast = device.type == "cuda"
        # The last chunk's (window batch's) inputs, which an idle process steps on again.
        self.replay: tuple | None = None

    def training_losses(self) -> Iterator[Loss]:
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
                with self._autocast():
                    forecasts, state = self.trainer(*arguments, state, origins)
                    loss_sum, loss_count = self.score(
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
        series, origins = _origins(*self.ranges["train"])
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
            with self._autocast():
                forecasts, _ = self.trainer(*arguments)
                loss_sum, loss_count = self.score(
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
            loss_sum, loss_count = self.score(forecasts, targets[rows], mask[rows], weights[rows])
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
        with self._autocast():
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

    def validation(self) -> tuple[float, int]:
        """The summed loss over this process's validation origins, and their number;
        the network is left in training mode. With shares, each sums its own groups."""
        self.network.eval()
        low, high = self.ranges["val"]
        if self.training.strategy == "window":
            series, origins = _origins(low, high)
            groups = _groups(series.shape[0], 1024, self._share_count())
            part, arguments = self._window_validation, (series, origins)
        else:
            scored = np.flatnonzero(high >= low)
            groups = _groups(scored.shape[0], 256, self._share_count())
            part, arguments = self._chunk_validation, (scored,)
        shares = min(self._share_count(), len(groups))

        def share(index: int) -> tuple[float, int]:
            total, count = 0.0, 0
            with torch.no_grad():  # grad mode is a thread's own
                for group in groups[index::shares]:
                    loss_sum, loss_count = part(*(a[group] for a in arguments))
                    total, count = total + float(loss_sum), count + int(loss_count)
            return total, count

        results = self.shares.map(share, shares) if self.shares and shares > 1 else [share(0)]
        self.network.train()
        return sum(r[0] for r in results), sum(r[1] for r in results)

    def _window_validation(self, series: np.ndarray, origins: np.ndarray) -> Loss:
        windows = gather_windows(self.tensors, series, origins, self.training.lookback)
        with self._autocast():
            summaries, _ = self.network.encode(windows.inputs, windows.codes)
            forecasts = self.network.decode(summaries[:, -1:], windows.future, windows.codes)
        mask = torch.ones(forecasts.shape[:2], dtype=torch.bool, device=self.device)
        return self.score(forecasts, windows.targets, mask, self.weights[series])

    def _chunk_validation(self, series: np.ndarray) -> Loss:
        low, high = self.ranges["val"]
        block = gather_block(self.tensors, series)
        limit = int(high[series].max()) + 1
        mask = block.mask(0, limit, low[series], high[series])
        rows, steps = torch.nonzero(mask, as_tuple=True)
        with self._autocast():
            summaries = summaries_at(self.network.encode, block, limit, rows, steps,
                                     self.network.summary_width)  # fmt: skip
            # Each scored origin decodes alone: (n, D) -> (n, 1, D) -> (n, 1, H, Q).
            forecasts = self.network.decode(
                summaries.unsqueeze(1), block.future_at(rows, steps), block.codes_at(rows)
            )
        targets = block.targets_at(rows, steps).unsqueeze(1)  # (n, H) -> (n, 1, H)
        ones = torch.ones(forecasts.shape[:2], dtype=torch.bool, device=self.device)
        weights = self.weights[series][rows.cpu().numpy()]
        return self.score(forecasts, targets, ones, weights)

    def score(
        self,
        forecasts: torch.Tensor,
        targets: torch.Tensor,
        mask: torch.Tensor,
        weights: torch.Tensor,
    ) -> Loss:
        """Summed loss over the valid origins of (B, T, H, Q) forecasts, each series
        weighted by ``weights`` (B,), and the number of origins."""
        errors = targets.unsqueeze(-1).float() - forecasts.float()  # (B, T, H, Q)
        if self.model.loss == "quantile":
            pointwise = torch.maximum(self.quantiles * errors, (self.quantiles - 1) * errors)
        elif self.model.loss == "mse":
            pointwise = errors.square()
        else:
            pointwise = errors.abs()
        per_origin = pointwise.mean(dim=(2, 3)) * weights[:, None]  # (B, T)
        return (per_origin * mask).sum(), mask.sum()

    def _autocast(self):
        # bfloat16 keeps float32's range, so no loss scaling is needed on CUDA.
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast)


def _origins(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (series, step) with low <= step <= high, as two flat arrays."""
    counts = np.maximum(high - low + 1, 0)
    series = np.repeat(np.arange(low.shape[0]), counts)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return series, np.repeat(low, counts) + within


def _groups(items: int, size: int, shares: int) -> list[slice]:
    """``items`` in consecutive groups of at most ``size``; with shares, as many groups
    as a multiple of them, of sizes at most one apart, so each share sums as many."""
    if shares < 2:
        return [slice(begin, begin + size) for begin in range(0, items, size)]
    count = shares * max(1, -(-items // (size * shares)))
    return share_slices(items, count)
