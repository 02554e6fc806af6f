"""Base forecasts: the statistical safety net under the network.

Naive, seasonal naive, drift, simple exponential smoothing (SES) and Theta
(Assimakopoulos & Nikolopoulos 2000, in the form of Hyndman & Billah 2003: SES
plus half the slope of the linear trend), each computed from the values before an
origin only. A history whose season is significant by M4's test (autocorrelation
at lag m, 90 %) and whose values are positive is seasonally adjusted by classical
multiplicative decomposition first (seasons.py, as for Naive2), and its forecasts
reseasonalised; any other is forecast as it is, so no seasonal pattern is imposed
where the data shows none.

Pure numpy, vectorised over every history: the adjustment at once, exponential
smoothing step by step over all histories together (a thousand 960-hour histories
in about 0.1 s, where one at a time took 2 ms each).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnncast.baselines import naive, seasonal_naive
from rnncast.seasons import SeasonalAdjustment, seasonal_adjustment

BASES = ("naive", "seasonal_naive", "drift", "ses", "theta")
# Smoothing weights tried for SES, fitted by the in-sample one-step squared error.
_ALPHAS = np.array([0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
# Histories are smoothed in blocks of about this many values (L x n), so that the
# float64 temporaries stay near 16 MB whatever the panel.
_BLOCK_VALUES = 1 << 21


def base_forecasts(
    values: np.ndarray,
    begins: np.ndarray,
    cuts: np.ndarray,
    horizon: int,
    season: int,
    method: str,
    adjustment: SeasonalAdjustment | None = None,
    logarithms: bool = False,
) -> np.ndarray:
    """Forecasts of ``method`` from K origins of S series: (S, K, H) float64.

    Inputs as in baselines.py: series s's history at origin k is ``values[begins[s] :
    begins[s] + cuts[s, k]]``. Histories that M4's test finds seasonal (and that are
    positive) are adjusted with ``adjustment`` (computed here when None) and their
    forecasts reseasonalised. With ``logarithms`` the values are logarithms (a model's
    space, scaling.to_model_space): the season is found and measured on the values
    themselves (``adjustment`` of ``exp(values)``, see ``adjustment_of``), and its
    logarithm is taken off and put back, which is the same adjustment.
    """
    if method not in BASES:
        raise ValueError(f"unknown base forecast {method!r}; choose one of {', '.join(BASES)}")
    cuts = np.asarray(cuts, dtype=np.int64)
    begins = np.asarray(begins, dtype=np.int64)
    if method == "naive":
        return naive(values, begins, cuts, horizon)
    if method == "seasonal_naive":
        return seasonal_naive(values, begins, cuts, horizon, season)
    if adjustment is None:
        adjustment = adjustment_of(values, begins, cuts, season, logarithms)
    counts = cuts.reshape(-1)
    starts = np.repeat(begins, cuts.shape[1])
    indices = adjustment.indices.reshape(counts.shape[0], -1)  # (N, m), all 1 where not adjusted
    take_off, put_back = np.divide, np.multiply
    if logarithms:
        indices = np.log(indices)  # all 0 where not adjusted
        take_off, put_back = np.subtract, np.add
    out = np.empty((counts.shape[0], horizon))
    steps = np.arange(horizon)
    # Longest history first, so that the histories still running at any step are a
    # prefix of the block (_smooth); blocks bound the (L, N) temporaries.
    order = np.argsort(-counts, kind="stable")
    for block in _history_blocks(counts[order]):
        rows = order[block]
        longest = int(counts[rows[0]])
        within = np.minimum(np.arange(longest)[:, None], counts[rows] - 1)  # (L, n)
        # Steps past a history's end repeat its last value; they are never read. An
        # unadjusted history divided by its indices of 1 stays exactly as it is.
        # Gathered, then widened: the panel's buffer itself is never copied whole.
        gathered = np.asarray(values[starts[rows] + within], dtype=np.float64)
        histories = take_off(gathered, indices[rows, within % season])
        forecast = _nonseasonal(histories, counts[rows], horizon, method)  # (n, H)
        ahead = (counts[rows, None] + steps) % season
        out[rows] = put_back(forecast, indices[rows[:, None], ahead])
    return out.reshape(*cuts.shape, horizon)


def adjustment_of(
    values: np.ndarray, begins: np.ndarray, cuts: np.ndarray, season: int, logarithms: bool
) -> SeasonalAdjustment:
    """The seasonal adjustment of every history, of the values themselves when
    ``values`` are their logarithms: a multiplicative season is the data's, and
    multiplying logarithms by indices would make one of another size wherever the
    level moved (and none at all where values are below 1, whose logarithms are not
    above 0)."""
    if logarithms:
        values = np.exp(np.asarray(values, dtype=np.float64))
    return seasonal_adjustment(values, begins, cuts, season)


def base_forecast(values: np.ndarray, horizon: int, season: int, method: str) -> np.ndarray:
    """(H,) forecast of ``method`` after the last of ``values`` (one series, all seen)."""
    values = np.asarray(values, dtype=np.float64)
    cuts = np.array([[values.shape[0]]])
    return base_forecasts(values, np.zeros(1, dtype=np.int64), cuts, horizon, season, method)[0, 0]


def _nonseasonal(
    histories: np.ndarray, counts: np.ndarray, horizon: int, method: str
) -> np.ndarray:
    """(L, n) histories, longest first, history i of ``counts[i]`` values -> (n, H)."""
    rows = np.arange(counts.shape[0])
    last = histories[counts - 1, rows]
    steps = np.arange(1, horizon + 1)
    n = counts.astype(np.float64)[:, None]
    if method == "drift":
        forecast = last[:, None] + steps * (last - histories[0])[:, None] / np.maximum(n - 1, 1)
    elif method in ("ses", "theta"):
        alpha, level, moment = _smooth(histories, counts, trend=method == "theta")
        forecast = np.repeat(level[:, None], horizon, axis=1)
        if method == "theta":
            # The least-squares slope of the trend line over positions 0 .. n-1; none
            # through two points, as before.
            spread = n[:, 0] * (n[:, 0] ** 2 - 1) / 12
            slope = np.where(counts > 2, moment / np.maximum(spread, 1e-300), 0.0)[:, None]
            alpha = alpha[:, None]
            # The theta = 2 line's SES forecast plus half the trend line's slope, with the
            # correction for the level SES has already absorbed (Hyndman & Billah 2003).
            forecast = forecast + slope / 2 * (steps - 1 + (1 - (1 - alpha) ** n) / alpha)
    else:
        raise ValueError(f"unknown base forecast {method!r}; choose one of {', '.join(BASES)}")
    # Under two values there is nothing to fit: the last value goes on.
    return np.where(counts[:, None] < 2, last[:, None], forecast)


def _smooth(
    histories: np.ndarray, counts: np.ndarray, trend: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SES of every history (L, n), longest first, with every smoothing weight at once:
    for each history the weight with the least in-sample one-step squared error and
    the last level it gives; with ``trend``, also sum_t (t - mean t) y_t, the trend
    line's moment. Histories are run step by step together, each only while it lasts,
    so each sees the same arithmetic as it would alone."""
    length = histories.shape[0]
    levels = np.repeat(histories[0][:, None], _ALPHAS.shape[0], axis=1)  # (n, A)
    errors = np.zeros_like(levels)
    centre = (counts - 1) / 2.0
    moment = -centre * histories[0]
    # lasting[t]: how many histories (a prefix, longest first) hold a value at step t.
    lasting = np.searchsorted(-counts, -np.arange(length), side="left")
    for step in range(1, length):
        k = lasting[step]
        value = histories[step, :k]
        miss = value[:, None] - levels[:k]
        errors[:k] += miss * miss
        levels[:k] += _ALPHAS * miss
        if trend:
            moment[:k] += (step - centre[:k]) * value
    best = np.argmin(errors, axis=1)
    rows = np.arange(counts.shape[0])
    return _ALPHAS[best], levels[rows, best], moment


def _history_blocks(counts: np.ndarray) -> list[slice]:
    """Consecutive blocks of histories sorted longest first, each of about
    _BLOCK_VALUES values at most (one history at least)."""
    blocks, begin = [], 0
    while begin < counts.shape[0]:
        size = max(1, _BLOCK_VALUES // max(int(counts[begin]), 1))
        blocks.append(slice(begin, begin + size))
        begin += size
    return blocks


@dataclass(frozen=True)
class Combination:
    """How the network's forecasts are blended with a base forecast, chosen on
    validation origins (fitting.py): per future step h, the point forecast is
    ``weights[h] * network + (1 - weights[h]) * base``, and every quantile moves with
    it, so the network's intervals are kept around the blended median.

    ``offsets`` (H, Q), when given, calibrate the quantiles (conformalised quantile
    regression, Romano et al. 2019): quantile q at step h moves by ``offsets[h][q]``
    times each history's MASE scale, the amount that made q of the validation
    actuals fall below it. The median's offset is 0: the point forecast is the blend's.
    """

    base: str
    weights: tuple[float, ...]  # (H,) the network's share, each in [0, 1]
    offsets: tuple[tuple[float, ...], ...] = ()  # (H, Q) or empty: not calibrated

    def __post_init__(self) -> None:
        if self.base not in BASES:
            raise ValueError(f"unknown base forecast {self.base!r}")
        if not all(0.0 <= w <= 1.0 for w in self.weights):
            raise ValueError("blend weights must lie in [0, 1]")
        if self.offsets and len(self.offsets) != len(self.weights):
            raise ValueError("calibration offsets need one row per step")
        if not all(np.isfinite(row).all() for row in self.offsets):
            raise ValueError("calibration offsets must be finite")

    def apply(
        self, network: np.ndarray, base: np.ndarray, median: int, scale: np.ndarray | None = None
    ) -> np.ndarray:
        """(S, K, H, Q) network quantiles and (S, K, H) base -> blended (S, K, H, Q);
        with ``offsets``, calibrated by ``scale`` (S, K), each history's MASE scale."""
        weights = np.asarray(self.weights, dtype=np.float64)  # (H,)
        shift = (1.0 - weights) * (base - network[..., median])  # (S, K, H)
        blended = network + shift[..., None]
        if not self.offsets or scale is None:
            return blended
        offsets = np.asarray(self.offsets, dtype=np.float64)  # (H, Q)
        calibrated = blended + offsets * scale[:, :, None, None]
        return np.sort(calibrated, axis=-1)  # quantiles stay ordered


def history_scales(values: np.ndarray, begins: np.ndarray, cuts: np.ndarray, season: int):
    """(S, K) MASE's scale of every history: the mean absolute difference from one
    season before (one step before when the history is shorter than two seasons);
    where that is 0, the typical scale of the others, or 1."""
    values = np.asarray(values, dtype=np.float64)
    cuts = np.asarray(cuts, dtype=np.int64)
    scales = np.zeros(cuts.shape)
    for lag in (1, season):
        if lag < 1:
            continue
        changes = np.abs(values[lag:] - values[:-lag])  # changes[t - lag] = |y_t - y_t-lag|
        running = np.concatenate([[0.0], np.cumsum(changes)])
        starts = np.asarray(begins, dtype=np.int64)[:, None]
        # Changes inside the history: positions starts + lag .. starts + cut - 1.
        count = cuts - lag
        usable = count > 0
        low = np.clip(starts, 0, running.shape[0] - 1)
        high = np.clip(starts + np.maximum(count, 0), 0, running.shape[0] - 1)
        mean = (running[high] - running[low]) / np.maximum(count, 1)
        chosen = usable & ((lag == 1) | (cuts > 2 * season))
        scales = np.where(chosen, mean, scales)
    positive = scales[scales > 0]
    return np.where(scales > 0, scales, float(np.median(positive)) if positive.size else 1.0)
