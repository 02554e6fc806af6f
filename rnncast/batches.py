"""From a scaled Panel to tensors: TBPTT chunks, forking targets, sliding windows.

This is the one numpy-to-torch boundary. ``lay_out`` copies the scaled panel to
the device once, one row per step plus ``horizon`` future rows per series (their
calendar features are known in advance). A batch of series is gathered once per
epoch into a dense, left-aligned block; every TBPTT chunk, its forking targets
(the next H values at every step, as in MQ-RNN, Wen et al. 2017) and the future
calendar features are then ``unfold`` views of that block, not copies.

Positions: t counts the steps of a series from its first (t = 0). The origin t
sees values up to t and is scored on t+1 … t+H.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from rnncast.inputs import row_times
from rnncast.panel import Panel
from rnncast.scaling import Scaler, scale_values
from rnncast.time_axis import calendar_features


@dataclass(frozen=True)
class SeriesTensors:
    """Every series of a panel, scaled, in one (R, F) tensor on the model's device.

    Columns: the scaled target, (with ``relative``, its changes,) the scaled
    covariates known up to the last value, then the ``n_known`` columns known ahead:
    the future covariates, the static numbers, the calendar and holiday features.
    Series i occupies rows ``starts[i]`` to ``starts[i] + lengths[i] + horizon``; its
    last ``horizon`` rows are future steps whose target is 0 and must never be read as
    data (the masks below make sure).
    """

    rows: torch.Tensor  # (R, F)
    starts: np.ndarray  # (S,) int64
    lengths: np.ndarray  # (S,) int64
    codes: torch.Tensor  # (S,) int64 series codes for the id embedding
    horizon: int
    season: int  # steps per season for the season inputs; 0 when off
    n_covariates: int  # the covariates known up to the last value only
    n_known: int
    # The encoder reads changes, not levels (see lay_out): column 0 is then left out.
    relative: bool = False
    long_season: int = 0  # steps per long season for its inputs; 0 when off

    @property
    def n_features(self) -> int:
        """Width of the encoder's inputs."""
        return int(self.rows.shape[1]) - (1 if self.relative else 0)

    @property
    def first_input(self) -> int:
        return 1 if self.relative else 0


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """``array`` as a tensor on ``device``; to a GPU from pinned (page-locked) memory,
    which the copy engine reads directly, without blocking the host."""
    tensor = torch.from_numpy(array)
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def lay_out(
    panel: Panel,
    scaler: Scaler,
    horizon: int,
    season: int,
    device: torch.device,
    codes: np.ndarray | None = None,
    relative: bool = False,
    long_season: int = 0,
    static_numbers: np.ndarray | None = None,
    static_codes: np.ndarray | None = None,
    known_features: np.ndarray | None = None,
) -> SeriesTensors:
    """Scale ``panel`` with ``scaler`` (matched to it series by series) and copy it to
    ``device``. ``codes`` are the series' embedding indices (default 0..S-1);
    ``static_codes`` (S, Cc) int64 the levels of their static categories, which
    follow the id code in ``SeriesTensors.codes``; ``static_numbers`` (S, Cn) their
    scaled static numbers. ``known_features`` (R, Fk) float32: more features known
    ahead for every row, future rows included (holidays, see ``row_times``).

    The future covariates (``panel.future_covariates``) take their values on the
    future rows from ``panel.ahead`` where it has them; elsewhere, as the covariates
    known up to the last value always do, they repeat the last value: those rows
    are then read by no loss and by no forecast (forecasting needs ``ahead``).

    ``relative``: the encoder reads each step's change from the step before and from
    one season before, never the level itself. With the head anchored on a past
    value (the season input), the network is then blind to the level: a series moved
    up or down by a constant gets its forecasts moved by the same constant, so a
    level the training part never reached (a drift, a break) is no surprise to it.

    ``long_season`` (with ``season``): the encoder also reads the change from one long
    season before, and the future inputs hold the value one long season back."""
    target, covariates = scale_values(panel, scaler)
    n_future = len(panel.future_covariates)
    lags = (1, max(season, 1), *((long_season,) if long_season else ()))
    if relative:
        changes = _changes(target, panel.lengths.astype(np.int64), lags)
        covariates = np.concatenate([changes, covariates], axis=1)
    lengths = panel.lengths.astype(np.int64)
    extended = lengths + horizon
    calendar = calendar_features(row_times(panel, horizon), panel.freq)
    if known_features is not None:
        calendar = np.concatenate([calendar, known_features], axis=1)
    if static_numbers is not None and static_numbers.shape[1]:
        per_row = np.repeat(static_numbers.astype(np.float32), extended, axis=0)
        calendar = np.concatenate([per_row, calendar], axis=1)
    starts = np.concatenate([[0], np.cumsum(extended)[:-1]]).astype(np.int64)
    step_rows = (np.repeat(starts, lengths) + _within(lengths)).astype(np.int64)
    n_rows = int(extended.sum())
    width = covariates.shape[1]
    rows = np.zeros((n_rows, 1 + width + calendar.shape[1]), dtype=np.float32)
    rows[step_rows, 0] = target
    rows[step_rows, 1 : 1 + width] = covariates
    # Covariates known up to the last step only: future rows repeat the last.
    last_rows = np.repeat(starts + lengths - 1, horizon)
    future_rows = np.repeat(starts + lengths, horizon) + np.tile(np.arange(horizon), len(starts))
    rows[future_rows, 1 : 1 + width] = rows[last_rows, 1 : 1 + width]
    if n_future and panel.ahead is not None:
        known = np.full((panel.n_series, horizon, n_future), np.nan, dtype=np.float32)
        span = min(horizon, panel.ahead.shape[1])
        known[:, :span] = panel.ahead[:, :span]  # (S, H, Cf), NaN where not given
        scaled = (known - scaler.covariate_loc[-n_future:]) / scaler.covariate_scale[-n_future:]
        given = ~np.isnan(scaled).reshape(-1, n_future)
        block = rows[future_rows, 1 + width - n_future : 1 + width]
        block[given] = scaled.reshape(-1, n_future)[given]
        rows[future_rows, 1 + width - n_future : 1 + width] = block
    rows[:, 1 + width :] = calendar
    codes = np.arange(panel.n_series) if codes is None else codes
    if static_codes is not None and static_codes.shape[1]:
        codes = np.column_stack([codes, static_codes])  # (S, 1 + Cc)
    extra = len(lags) if relative else 0
    return SeriesTensors(
        rows=to_device(rows, device),
        starts=starts,
        lengths=lengths,
        codes=torch.as_tensor(codes, dtype=torch.int64, device=device),
        horizon=horizon,
        season=season,
        n_covariates=int(covariates.shape[1]) - extra - n_future,
        n_known=n_future + int(calendar.shape[1]),
        relative=relative,
        long_season=long_season,
    )


def _changes(target: np.ndarray, lengths: np.ndarray, lags: tuple[int, ...]) -> np.ndarray:
    """(N, len(lags)) per step: the change from ``lag`` steps before, for each lag (the
    series' first value where there is none, so the first changes are 0)."""
    begins = np.repeat(np.cumsum(lengths) - lengths, lengths)
    within = _within(lengths)
    changes = np.empty((target.shape[0], len(lags)), dtype=np.float32)
    for column, lag in enumerate(lags):
        before = begins + np.maximum(within - lag, 0)
        changes[:, column] = target - target[before]
    return changes


def _within(lengths: np.ndarray) -> np.ndarray:
    return np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def season_pattern(horizon: int, season: int) -> torch.Tensor:
    """For each future step h = 1..H, where in the last ``season`` values (oldest
    first) the value at the same phase sits: (h - 1) mod season. (H,) int64."""
    return torch.arange(horizon) % season


@dataclass(frozen=True)
class Block:
    """A dense, left-aligned block of B series: (B, P + T + H, F).

    Row ``P + t`` of series b is its step ``first[b] + t``; P rows before repeat
    its first step (they feed the season inputs of the first origins only).
    """

    data: torch.Tensor  # (B, P + T + H, F)
    series: np.ndarray  # (B,) panel positions
    codes: torch.Tensor  # (B,)
    first: np.ndarray  # (B,) step of each series at block position 0
    steps: int  # T
    lead: int  # P
    horizon: int
    season: int
    n_known: int
    first_input: int = 0  # 1 when the encoder reads changes only (SeriesTensors.relative)
    long_season: int = 0

    def inputs(self, start: int, stop: int) -> torch.Tensor:
        """Encoder inputs at block positions [start, stop): (B, K, F), a view."""
        return self.data[:, self.lead + start : self.lead + stop, self.first_input :]

    def targets(self, start: int, stop: int, stride: int = 1) -> torch.Tensor:
        """Forking targets: the next H scaled values of every ``stride``-th origin from
        ``start``, (B, K, H), a view."""
        after = self.data[:, self.lead + 1 :, 0]  # (B, T + H - 1)
        return after.unfold(1, self.horizon, 1)[:, start:stop:stride]

    def targets_at(self, rows: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Forking targets of chosen origins (block row, block position): (n, H)."""
        return self.data[:, self.lead + 1 :, 0].unfold(1, self.horizon, 1)[rows, steps]

    def future(self, start: int, stop: int, stride: int = 1) -> torch.Tensor:
        """Known future inputs of every ``stride``-th origin from ``start`` and every
        future step: (B, K, H, Ff).

        The calendar features of t+1 … t+H; with a long season, the value one long
        season before each; with season inputs, last, the last observed value at the
        same phase of the season (the head's anchor, Forecaster.decode).
        """
        return self._future(lambda view: view[:, start:stop:stride])

    def future_at(self, rows: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Known future inputs of chosen origins, for decoding them alone: rows and
        steps (n,) -> (n, 1, H, Ff); rows (n, 1) and steps (n, K) -> (n, K, H, Ff)."""
        picked = self._future(lambda view: view[rows, steps])
        return picked.unsqueeze(1) if steps.dim() == 1 else picked

    def _future(self, pick) -> torch.Tensor:
        width = self.data.shape[-1]
        calendar = self.data[:, self.lead + 1 :, width - self.n_known :]  # (B, T + H - 1, Fc)
        # unfold puts the window last: (B, T, Fc, H) -> picked (..., H, Fc)
        parts = [pick(calendar.unfold(1, self.horizon, 1)).transpose(-1, -2)]
        for season in (self.long_season, self.season):
            if season:
                # The last `season` values up to each origin, oldest first: (B, T, season)
                first = self.lead - season + 1
                recent = self.data[:, first:, 0].unfold(1, season, 1)
                pattern = season_pattern(self.horizon, season).to(recent.device)
                parts.append(pick(recent)[..., pattern].unsqueeze(-1))  # (..., H, 1)
        return torch.cat(parts, dim=-1)

    def codes_at(self, rows: torch.Tensor) -> torch.Tensor:
        """The codes of chosen origins' series: rows (n,) or (n, K) -> (n, ...)."""
        return self.codes[rows if rows.dim() == 1 else rows[:, 0]]

    def mask(
        self, start: int, stop: int, low: np.ndarray, high: np.ndarray, stride: int = 1
    ) -> torch.Tensor:
        """(B, K) bool: which of every ``stride``-th origin from ``start`` have their
        series step in [low[b], high[b]]."""
        steps = self.first[:, None] + np.arange(start, stop, stride)[None, :]
        valid = (steps >= low[:, None]) & (steps <= high[:, None])
        return torch.from_numpy(valid).to(self.data.device)


def gather_block(
    tensors: SeriesTensors, series: np.ndarray, first: np.ndarray | None = None
) -> Block:
    """Gather the series at panel positions ``series`` into a dense block, each from
    its step ``first[b]`` (default 0) to its end, plus its H future rows."""
    series = np.asarray(series, dtype=np.int64)
    first = np.zeros(len(series), dtype=np.int64) if first is None else first.astype(np.int64)
    lengths = tensors.lengths[series] - first
    steps = int(lengths.max())
    lead = max(tensors.season, tensors.long_season)
    positions = np.arange(-lead, steps + tensors.horizon)[None, :]  # (1, P + T + H)
    last = tensors.lengths[series][:, None] + tensors.horizon - 1
    within = np.clip(first[:, None] + positions, 0, last)
    index = torch.from_numpy(tensors.starts[series][:, None] + within)
    data = tensors.rows[index.to(tensors.rows.device)]  # (B, P + T + H, F)
    return Block(
        data=data,
        series=series,
        codes=tensors.codes[torch.from_numpy(series).to(tensors.codes.device)],
        first=first,
        steps=steps,
        lead=lead,
        horizon=tensors.horizon,
        season=tensors.season,
        n_known=tensors.n_known,
        first_input=tensors.first_input,
        long_season=tensors.long_season,
    )


# Summary values (series x steps x width) the encoder gives for one piece of history
# where only some steps' summaries are needed (summaries_at): 32 MB of summaries,
# about 128 MB of an LSTM's gates, however long the histories.
ENCODE_VALUES = 1 << 23


def summaries_at(
    encode,
    block: Block,
    last: int,
    rows: torch.Tensor,
    steps: torch.Tensor,
    width: int,
    state: tuple[torch.Tensor, ...] | None = None,
) -> torch.Tensor:
    """The encoder's summaries at block positions ``steps`` of block rows ``rows``
    (broadcast to ``steps``' shape): (*steps.shape, width). ``encode(inputs, codes,
    state)`` reads positions 0 to ``last`` in pieces, its state carried from one to
    the next, and only the summaries asked for are kept: torch's recurrences project
    every step's inputs at once, (B, T, 4 width) floats for an LSTM, 1 GB for 512
    series of 2,000 steps, where a piece's is bounded by ENCODE_VALUES. ``state``: the
    encoder's state before position 0 (None: zeros, a history read from its start)."""
    rows = rows.expand_as(steps)
    piece = encode_piece(block, width)
    picked: torch.Tensor | None = None
    for start in range(0, last, piece):
        stop = min(start + piece, last)
        summaries, state = encode(block.inputs(start, stop), block.codes, state)
        if picked is None:
            picked = summaries.new_zeros((*steps.shape, summaries.shape[-1]))
        inside = (steps >= start) & (steps < stop)
        if bool(inside.any()):
            where = inside.nonzero(as_tuple=True)
            picked[where] = summaries[rows[where], steps[where] - start]
    assert picked is not None  # last >= 1: one piece at least
    return picked


def encode_piece(block: Block, width: int) -> int:
    """Positions of ``block`` one call of the encoder reads (ENCODE_VALUES)."""
    return max(1, ENCODE_VALUES // max(int(block.data.shape[0]) * width, 1))


def iter_chunks(steps: int, chunk_len: int, phase: int) -> list[tuple[int, int]]:
    """[start, stop) chunks covering 0..steps once: the first ``phase`` steps (when
    phase > 0), then ``chunk_len`` at a time. A random phase each epoch moves the
    chunk borders, so no step always starts a chunk with a freshly detached state."""
    borders = [0, *range(phase or chunk_len, steps, chunk_len), steps]
    return [(a, b) for a, b in itertools.pairwise(borders) if b > a]


@dataclass(frozen=True)
class Windows:
    """A batch of sliding windows: one origin each, its lookback and its targets."""

    inputs: torch.Tensor  # (B, L, F)
    targets: torch.Tensor  # (B, 1, H)
    future: torch.Tensor  # (B, 1, H, Ff)
    codes: torch.Tensor  # (B,)


def gather_windows(
    tensors: SeriesTensors, series: np.ndarray, origins: np.ndarray, lookback: int
) -> Windows:
    """Windows of ``lookback`` steps ending at step ``origins[b]`` of series
    ``series[b]``; steps before a series' start repeat its first value."""
    device = tensors.rows.device
    horizon = tensors.horizon
    starts = tensors.starts[series][:, None]
    reach = np.arange(-lookback + 1, 1)[None, :]
    past = torch.from_numpy(starts + np.maximum(origins[:, None] + reach, 0)).to(device)
    ahead = torch.from_numpy(starts + origins[:, None] + np.arange(1, horizon + 1)).to(device)
    inputs = tensors.rows[past][..., tensors.first_input :]  # (B, L, F)
    targets = tensors.rows[ahead, 0].unsqueeze(1)  # (B, 1, H)
    parts = []
    if tensors.n_known:
        parts.append(tensors.rows[ahead][..., -tensors.n_known :])  # (B, H, Fc)
    for season in (tensors.long_season, tensors.season):
        if season:
            pattern = season_pattern(horizon, season).numpy()
            lag_steps = origins[:, None] - season + 1 + pattern[None, :]
            lagged = torch.from_numpy(starts + np.maximum(lag_steps, 0)).to(device)
            parts.append(tensors.rows[lagged, 0].unsqueeze(-1))  # (B, H, 1)
    future = torch.cat(parts, dim=-1) if parts else inputs.new_zeros((len(series), horizon, 0))
    return Windows(
        inputs=inputs,
        targets=targets,
        future=future.unsqueeze(1),
        codes=tensors.codes[torch.from_numpy(np.asarray(series)).to(device)],
    )


def origins_between(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (series, step) with low <= step <= high, as two flat arrays."""
    counts = np.maximum(high - low + 1, 0)
    series = np.repeat(np.arange(low.shape[0]), counts)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return series, np.repeat(low, counts) + within


def n_future_features(n_known: int, season: int, long_season: int = 0) -> int:
    """Width Ff of the future inputs: the calendar features plus one input per season."""
    return n_known + (1 if season else 0) + (1 if season and long_season else 0)
