"""The validation pass of a run's network on this process's series: the loss summed
over every validation origin, in groups that the batch's threads (batch_shares.py)
share. loop.py monitors it for early stopping, the schedule and the weights kept."""

from __future__ import annotations

import numpy as np
import torch

from rnncast.batch_shares import BatchShares, share_slices
from rnncast.batches import (
    SeriesTensors,
    gather_block,
    gather_windows,
    origins_between,
    summaries_at,
)
from rnncast.config import TrainConfig
from rnncast.loss_function import Loss, LossFunction

# Series (TBPTT) or windows one pass of the network scores at once: what bounds the
# activations the validation holds.
SERIES_PER_GROUP = 256
WINDOWS_PER_GROUP = 1024


class ValidationLosses:
    """The loss of ``network`` on the validation origins of ``ranges["val"]``, each
    origin decoded alone from the state the encoder reached there (as a forecast is
    made), every series weighted by ``weights``."""

    def __init__(
        self,
        network: torch.nn.Module,
        training: TrainConfig,
        tensors: SeriesTensors,
        weights: torch.Tensor,
        ranges: dict[str, tuple[np.ndarray, np.ndarray]],
        device: torch.device,
        loss: LossFunction,
        shares: BatchShares | None = None,
    ) -> None:
        self.network, self.training, self.tensors = network, training, tensors
        self.weights, self.device, self.loss, self.shares = weights, device, loss, shares
        self.low, self.high = ranges["val"]

    def total(self) -> tuple[float, int]:
        """The summed loss over this process's validation origins, and their number;
        the network is left in training mode. With shares, each sums its own groups."""
        self.network.eval()
        count = self.shares.count if self.shares is not None else 1
        if self.training.strategy == "window":
            series, origins = origins_between(self.low, self.high)
            groups = _groups(series.shape[0], WINDOWS_PER_GROUP, count)
            part, arguments = self._windows, (series, origins)
        else:
            scored = np.flatnonzero(self.high >= self.low)
            groups = _groups(scored.shape[0], SERIES_PER_GROUP, count)
            part, arguments = self._chunks, (scored,)
        shares = min(count, len(groups))

        def share(index: int) -> tuple[float, int]:
            total, origins = 0.0, 0
            with torch.no_grad():  # grad mode is a thread's own
                for group in groups[index::shares]:
                    loss_sum, loss_count = part(*(a[group] for a in arguments))
                    total, origins = total + float(loss_sum), origins + int(loss_count)
            return total, origins

        results = self.shares.map(share, shares) if self.shares and shares > 1 else [share(0)]
        self.network.train()
        return sum(r[0] for r in results), sum(r[1] for r in results)

    def _windows(self, series: np.ndarray, origins: np.ndarray) -> Loss:
        windows = gather_windows(self.tensors, series, origins, self.training.lookback)
        with self.loss.autocast():
            summaries, _ = self.network.encode(windows.inputs, windows.codes)
            forecasts = self.network.decode(summaries[:, -1:], windows.future, windows.codes)
        mask = torch.ones(forecasts.shape[:2], dtype=torch.bool, device=self.device)
        return self.loss.score(forecasts, windows.targets, mask, self.weights[series])

    def _chunks(self, series: np.ndarray) -> Loss:
        block = gather_block(self.tensors, series)
        limit = int(self.high[series].max()) + 1
        mask = block.mask(0, limit, self.low[series], self.high[series])
        rows, steps = torch.nonzero(mask, as_tuple=True)
        with self.loss.autocast():
            summaries = summaries_at(self.network.encode, block, limit, rows, steps,
                                     self.network.summary_width)  # fmt: skip
            # Each scored origin decodes alone: (n, D) -> (n, 1, D) -> (n, 1, H, Q).
            forecasts = self.network.decode(
                summaries.unsqueeze(1), block.future_at(rows, steps), block.codes_at(rows)
            )
        targets = block.targets_at(rows, steps).unsqueeze(1)  # (n, H) -> (n, 1, H)
        ones = torch.ones(forecasts.shape[:2], dtype=torch.bool, device=self.device)
        weights = self.weights[series][rows.cpu().numpy()]
        return self.loss.score(forecasts, targets, ones, weights)


def _groups(items: int, size: int, shares: int) -> list[slice]:
    """``items`` in consecutive groups of at most ``size``; with shares, as many groups
    as a multiple of them, of sizes at most one apart, so each share sums as many."""
    if shares < 2:
        return [slice(begin, begin + size) for begin in range(0, items, size)]
    count = shares * max(1, -(-items // (size * shares)))
    return share_slices(items, count)
