"""Choices made from the training data before a network is built: the sizes left
open (hidden, layers, TBPTT chunk, lookback, batch), whether the long season earns an
input, how many steps validation holds out, and each series' weight in the loss.

Defaults follow from the data (DESIGN.md), and these are where: plain numpy over the
Panel, no tensor and no device. The fit (fitting.py) and the choices on the validation
origins (selection.py) ask the same functions which steps training held out, so they
cannot disagree with it. Under torchrun the Panel is this process's share, and what a
choice reads of every series comes from every share (panel_shares.py): each process
chooses what one process chooses from the whole.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np

from rnncast import panel_shares
from rnncast.config import ModelConfig, TrainConfig
from rnncast.panel import Panel


def choose_sizes(
    panel: Panel, model: ModelConfig, training: TrainConfig
) -> tuple[ModelConfig, TrainConfig, list[str]]:
    """Fill every size left as None from the data, and say what was chosen.

    The network grows with the data (more steps support more weights); the TBPTT
    chunk covers two seasons or two horizons, whichever is longer, so the state is
    trained over the patterns the forecasts must continue; the loss scores every
    origin.
    """
    every = panel_shares.lengths(panel)  # under torchrun, of every process's share
    steps = int(every.sum())
    season = panel.freq.season_length
    longest = int(every.max())
    chosen: dict[str, object] = {}
    if model.hidden is None:
        chosen["hidden"] = 32 if steps < 20_000 else 64 if steps < 2_000_000 else 128
    if model.layers is None:
        chosen["layers"] = 1 if steps < 20_000 else 2
    if model.long_season is None:
        chosen["long_season"] = choose_long_season(panel, model)
    model = replace(model, **chosen)
    trained: dict[str, object] = {}
    if training.strategy == "tbptt" and training.chunk_len is None:
        trained["chunk_len"] = int(np.clip(2 * max(season, model.horizon), 16, max(16, longest)))
    if training.strategy == "tbptt" and training.origin_stride is None:
        # Scoring one origin in 4 of M4 Hourly (h 48) halved the training time and cost
        # accuracy (OWA 0.471 and 0.438 against 0.444 and 0.432 over two seeds), and
        # spending the time saved on a second member did not win it back (0.470).
        trained["origin_stride"] = 1
    if training.strategy == "window" and training.lookback is None:
        trained["lookback"] = int(np.clip(2 * max(season, model.horizon), 8, max(8, longest)))
    if training.batch_size is None:
        trained["batch_size"] = (
            min(every.shape[0], BATCH_ROWS) if training.strategy == "tbptt" else 256
        )
    training = replace(training, **trained)
    if training.strategy == "tbptt" and training.streams is None:
        training = replace(training, streams=choose_streams(panel, training))
        trained["streams"] = training.streams
    # No long season, every origin scored and each series read as one stream are the
    # usual case and not worth a word.
    usual = {("long_season", 0), ("origin_stride", 1), ("streams", 1)}
    notes = [f"{name} {value}" for name, value in {**chosen, **trained}.items()
             if (name, value) not in usual]  # fmt: skip
    return model, training, notes


# Rows a TBPTT batch holds: as many series, or with fewer series, streams of them.
BATCH_ROWS = 64
# Chunks a stream must cover at least, besides the chunk that warms its state up. The
# more and shorter the streams, the worse the network alone validated (ETTh1, MASE
# 0.75 read whole, 0.81 in 13 streams of 16 chunks or more, 0.84 in 59 of 4), while
# the forecasts scored no better; the sample data scored best in streams of 16.
STREAM_CHUNKS = 16


def choose_streams(panel: Panel, training: TrainConfig) -> int:
    """Streams each series is read in: with fewer series than BATCH_ROWS, enough to
    fill a batch, while the median series' steps give each stream at least
    STREAM_CHUNKS chunks (stream_bounds counts each series' own training origins);
    one otherwise.

    One series read whole is a batch of one: each step of the optimizer follows one
    chunk of one stretch of history, and validation losses swing from epoch to
    epoch. Streams read different stretches side by side (as a language model reads
    a corpus cut in columns), so each step averages over the whole history's
    patterns and an epoch costs a fraction of the time."""
    every = panel_shares.lengths(panel)
    wanted = BATCH_ROWS // max(every.shape[0], 1)
    if wanted <= 1:
        return 1
    steps = int(np.median(every))
    room = steps // (STREAM_CHUNKS * int(training.chunk_len or 1))
    return int(max(1, min(wanted, room)))


def stream_bounds(
    low: int, high: int, streams: int, chunk_len: int, shift: float
) -> list[tuple[int, int, int]]:
    """One series' training origins ``low``..``high`` cut into at most ``streams``
    stretches of at least STREAM_CHUNKS chunks (fewer for a short series): a (first
    step read, first origin scored, last origin scored) for each. ``shift`` in [0, 1)
    moves the borders (a random one each epoch, so no origin always starts a
    stretch); each stream reads one chunk before its first origin to warm its state
    up, from the series' start where there is less."""
    origins = high + 1 - low
    count = max(1, min(streams, origins // (STREAM_CHUNKS * chunk_len)))
    if count == 1:
        return [(0, low, high)]
    span = -(-origins // count)
    first_border = int(shift * span)
    borders = sorted({0, *range(first_border, origins, span), origins})
    return [(max(low + begin - chunk_len, 0), low + begin, low + end - 1)
            for begin, end in itertools.pairwise(borders)]  # fmt: skip


# Long seasons a typical series must hold for its long-season inputs to be kept: one
# to look back over, and more to learn from.
_LONG_SEASONS_NEEDED = 3
# Share of the series that must show the long season (choose_long_season): one in
# ten is a pattern worth an input; fewer, and the input is mostly noise to the rest.
_SHOWING_LONG_SEASON = 0.1
# How much nearer the value one long season back must be: on white noise the two
# errors differ by a few percent by chance, and with a tenth none of 200 white-noise
# series of 1,000 hours counted as showing a week (measured).
_LONG_SEASON_MARGIN = 0.9


def choose_long_season(panel: Panel, model: ModelConfig) -> int:
    """The frequency's long season (Frequency.long_season_length) when the model reads
    season inputs, the median series holds three of them, and a tenth of the series
    at least show it: over their last long seasons, the value one long season back
    is nearer than the value one season back. Else 0 (none)."""
    long = panel.freq.long_season_length
    season = panel.freq.season_length
    if not model.season_inputs or season < 2 or long <= season:
        return 0
    if float(np.median(panel_shares.lengths(panel))) < _LONG_SEASONS_NEEDED * long:
        return 0
    showing = [_shows_long_season(panel.series(i), season, long) for i in range(panel.n_series)]
    return long if np.mean(panel_shares.joined(np.array(showing))) >= _SHOWING_LONG_SEASON else 0


def _shows_long_season(values: np.ndarray, season: int, long: int) -> bool:
    """Whether, over the last (up to) _LONG_SEASONS_NEEDED long seasons, the value one
    long season back is clearly nearer each value than the value one season back."""
    if values.shape[0] < 2 * long:
        return False
    recent = values[-min(values.shape[0] - long, _LONG_SEASONS_NEEDED * long) :]
    steps = recent.shape[0]
    before_long = values[-steps - long : -long]
    before_season = values[-steps - season : -season]
    nearer = np.mean(np.abs(recent - before_long)) < _LONG_SEASON_MARGIN * np.mean(
        np.abs(recent - before_season)
    )
    return bool(nearer)


def held_out_steps(panel: Panel, model: ModelConfig, training: TrainConfig) -> tuple[int, int]:
    """The test and validation steps held out at the end of every series: the
    settings' own, or one horizon of test and validation_horizons of validation."""
    test_size = model.horizon if training.test_size is None else training.test_size
    val_size = training.val_size
    if val_size is None:
        val_size = model.horizon * validation_horizons(panel, model.horizon, test_size)
    return test_size, val_size


def validation_sizes(lengths: np.ndarray, val_size: int, horizon: int) -> np.ndarray:
    """(S,) steps each series gives to validation: ``val_size``, or none for a series
    that would then keep no training origin."""
    return np.where(lengths >= val_size + horizon + 1, val_size, 0).astype(np.int64)


# Validation forecasts wanted over all series, so that early stopping and the blend
# with the base forecast (fitting.py) rest on more than a handful of origins.
_VALIDATION_ORIGINS = 64
# Share of a series' steps that validation may take when there are few series.
_VALIDATION_SHARE = 0.2


def validation_horizons(panel: Panel, horizon: int, test_size: int) -> int:
    """How many whole horizons to hold out for validation: one when there are many
    series; with few, enough for about 64 validation origins in all, as long as that
    leaves the shortest series 80 % of its steps (a single long series gets many)."""
    every = panel_shares.lengths(panel)
    wanted = math.ceil(_VALIDATION_ORIGINS / max(every.shape[0], 1))
    usable = every[every > test_size + 2 * horizon]  # the rest are skipped
    shortest = int(usable.min()) - test_size if usable.size else 0
    room = int(_VALIDATION_SHARE * shortest) // horizon
    return int(max(1, min(wanted, room)))


def loss_weights(head: Panel, scales: np.ndarray) -> np.ndarray:
    """(S,) per-series loss weights that measure errors in units of each series'
    in-sample seasonal-naive error, as MASE does, instead of its standard deviation.

    Scaling by the standard deviation makes a trending or smooth seasonal series'
    errors look small; MASE, the measure forecasters compare on, does not. The
    weights are clipped to [0.1, 10] around their median so no series takes over.
    Under torchrun, the weights of this process's share, as of the whole Panel.
    """
    season = head.freq.season_length
    naive_error = np.empty(head.n_series)
    for index in range(head.n_series):
        values = head.series(index).astype(np.float64)
        lag = season if values.shape[0] > season else 1
        error = np.abs(values[lag:] - values[:-lag]).mean() if values.shape[0] > lag else 0.0
        naive_error[index] = error
    first = panel_shares.first_series(head)
    naive_error, scales = panel_shares.joined(naive_error), panel_shares.joined(scales)
    typical = np.median(naive_error[naive_error > 0]) if (naive_error > 0).any() else 1.0
    naive_error = np.where(naive_error > 0, naive_error, typical)
    weights = scales / naive_error
    middle = np.median(weights)
    weights = np.clip(weights, middle / 10, middle * 10)
    return (weights / weights.mean())[first : first + head.n_series]
