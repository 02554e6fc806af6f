"""The losses of a run's network on this process's series: each training batch's (TBPTT
chunks or sliding windows, in an order the run's random stream shuffles) and the
validation pass's sum; the scoring of forecasts that both share. loop.py steps on them.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from rnncast.batches import (
    SeriesTensors,
    gather_block,
    gather_windows,
    iter_chunks,
    summaries_at,
)
from rnncast.config import ModelConfig, TrainConfig

# (summed loss over the scored origins, with its graph; the number of origins).
Loss = tuple[torch.Tensor, torch.Tensor]


class Losses:
    """The network's losses on the series in ``tensors``: ``training_losses()`` walks
    an epoch's batches, ``validation()`` sums over the validation origins.

    ``trainer`` is the network the training batches go through (in DDP under torchrun);
    ``rng`` the run's stream, whose draws decide the epoch's order; ``batch_size``
    this process's series (windows) per batch; ``replays``: whether the last batch's
    inputs are kept for ``idle()`` (a process whose series are done, lockstep.py).
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
    ):
        self.network, self.trainer, self.model, self.training = network, trainer, model, training
        self.tensors, self.weights, self.ranges, self.device = tensors, weights, ranges, device
        self.rng, self.batch_size, self.replays = rng, batch_size, replays
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
        for series in self._series_batches(high + 1):
            block = gather_block(self.tensors, series)
            limit = int(high[series].max()) + 1  # no origin past this one is scored
            phase = int(self.rng.integers(1, chunk_len + 1))
            state = None
            for start, stop in iter_chunks(limit, chunk_len, phase):
                # Every stride-th origin of the chunk, from a random one of the first
                # stride, is decoded and scored; the encoder still reads every step.
                offset = int(self.rng.integers(stride)) if stride > 1 else 0
                if offset >= stop - start:
                    offset = 0
                first = start + offset
                mask = block.mask(first, stop, low[series], high[series], stride)
                future = block.future(first, stop, stride)
                arguments = (block.inputs(start, stop), future, block.codes)
                origins = slice(offset, None, stride) if stride > 1 else None
                with self._autocast():
                    forecasts, state = self.trainer(*arguments, state, origins)
                    loss_sum, loss_count = self.score(
                        forecasts, block.targets(first, stop, stride), mask, self.weights[series]
                    )
                if self.replays:
                    self.replay = (*arguments, None, origins)
                yield loss_sum, loss_count
                # Truncated BPTT: the next chunk starts from this state as a constant, so
                # gradients stop here and memory stays O(chunk_len), not O(series length).
                state = tuple(s.detach() for s in state)

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
            with self._autocast():
                forecasts, _ = self.trainer(*arguments)
                mask = torch.ones(forecasts.shape[:2], dtype=torch.bool, device=self.device)
                loss_sum, loss_count = self.score(
                    forecasts, windows.targets, mask, self.weights[series[chosen]]
                )
            if self.replays:
                self.replay = arguments
            yield loss_sum, loss_count

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

    @torch.no_grad()
    def validation(self) -> tuple[float, int]:
        """The summed loss over this process's validation origins, and their number;
        the network is left in training mode."""
        self.network.eval()
        low, high = self.ranges["val"]
        total, count = 0.0, 0
        if self.training.strategy == "window":
            series, origins = _origins(low, high)
            for begin in range(0, series.shape[0], 1024):
                part = slice(begin, begin + 1024)
                windows = gather_windows(
                    self.tensors, series[part], origins[part], self.training.lookback
                )
                with self._autocast():
                    summaries, _ = self.network.encode(windows.inputs, windows.codes)
                    forecasts = self.network.decode(
                        summaries[:, -1:], windows.future, windows.codes
                    )
                mask = torch.ones(forecasts.shape[:2], dtype=torch.bool, device=self.device)
                weights = self.weights[series[part]]
                loss_sum, loss_count = self.score(forecasts, windows.targets, mask, weights)
                total, count = total + float(loss_sum), count + int(loss_count)
        else:
            scored = np.flatnonzero(high >= low)
            for begin in range(0, scored.shape[0], 256):
                series = scored[begin : begin + 256]
                block = gather_block(self.tensors, series)
                limit = int(high[series].max()) + 1
                mask = block.mask(0, limit, low[series], high[series])
                rows, steps = torch.nonzero(mask, as_tuple=True)
                with self._autocast():
                    summaries = summaries_at(self.network.encode, block, limit, rows, steps,
                                             self.network.summary_width)  # fmt: skip
                    # Each scored origin decodes alone: (n, D) -> (n, 1, D) -> (n, 1, H, Q).
                    forecasts = self.network.decode(
                        summaries.unsqueeze(1),
                        block.future_at(rows, steps),
                        block.codes_at(rows),
                    )
                targets = block.targets_at(rows, steps).unsqueeze(1)  # (n, H) -> (n, 1, H)
                ones = torch.ones(forecasts.shape[:2], dtype=torch.bool, device=self.device)
                weights = self.weights[series][rows.cpu().numpy()]
                loss_sum, loss_count = self.score(forecasts, targets, ones, weights)
                total, count = total + float(loss_sum), count + int(loss_count)
        self.network.train()
        return total, count

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
