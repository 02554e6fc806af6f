"""Base forecasts: the statistical safety net under the network.

Naive, seasonal naive, drift, simple exponential smoothing (SES) and Theta
(Assimakopoulos & Nikolopoulos 2000, in the form of Hyndman & Billah 2003: SES
plus half the slope of the linear trend), each computed from the values before an
origin only. A history whose season is significant by M4's test (autocorrelation
at lag m, 90 %) and whose values are positive is seasonally adjusted by classical
multiplicative decomposition first (seasons.py, as for Naive2), and its forecasts
reseasonalised; any other is forecast as it is, so no seasonal pattern is imposed
where the data shows none.

Pure numpy: the adjustment is vectorised over every history, exponential
smoothing runs one history at a time (about a hundred microseconds each).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnncast.baselines import naive, seasonal_naive
from rnncast.seasons import SeasonalAdjustment, seasonal_adjustment

BASES = ("naive", "seasonal_naive", "drift", "ses", "theta")
# Smoothing weights tried for SES, fitted by the in-sample one-step squared error.
_ALPHAS = np.array([0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])


def base_forecasts(
    values: np.ndarray,
    begins: np.ndarray,
    cuts: np.ndarray,
    horizon: int,
    season: int,
    method: str,
    adjustment: SeasonalAdjustment | None = None,
) -> np.ndarray:
    """Forecasts of ``method`` from K origins of S series: (S, K, H) float64.

    Inputs as in baselines.py: series s's history at origin k is ``values[begins[s] :
    begins[s] + cuts[s, k]]``. Histories that M4's test finds seasonal (and that are
    positive) are adjusted with ``adjustment`` (computed here when None) and their
    forecasts reseasonalised.
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
        adjustment = seasonal_adjustment(values, begins, cuts, season)
    out = np.empty((*cuts.shape, horizon))
    steps = np.arange(horizon)
    for series, origin in np.ndindex(*cuts.shape):
        cut = int(cuts[series, origin])
        history = np.asarray(values[begins[series] : begins[series] + cut], dtype=np.float64)
        indices = adjustment.indices[series, origin]  # (m,), all 1 where not adjusted
        if adjustment.adjusted[series, origin]:
            history = history / indices[np.arange(cut) % season]
        forecast = _nonseasonal(history, horizon, method)
        out[series, origin] = forecast * indices[(cut + steps) % season]
    return out


def base_forecast(values: np.ndarray, horizon: int, season: int, method: str) -> np.ndarray:
    """(H,) forecast of ``method`` after the last of ``values`` (one series, all seen)."""
    values = np.asarray(values, dtype=np.float64)
    cuts = np.array([[values.shape[0]]])
    return base_forecasts(values, np.zeros(1, dtype=np.int64), cuts, horizon, season, method)[0, 0]


def _nonseasonal(values: np.ndarray, horizon: int, method: str) -> np.ndarray:
    n = values.shape[0]
    if n < 2:
        return np.full(horizon, values[-1])
    steps = np.arange(1, horizon + 1)
    if method == "drift":
        return values[-1] + steps * (values[-1] - values[0]) / (n - 1)
    alpha, level = _fit_ses(values)
    if method == "ses":
        return np.full(horizon, level)
    if method == "theta":
        slope = np.polyfit(np.arange(n), values, 1)[0] if n > 2 else 0.0
        # The theta = 2 line's SES forecast plus half the trend line's slope, with the
        # correction for the level SES has already absorbed (Hyndman & Billah 2003).
        return level + slope / 2 * (steps - 1 + (1 - (1 - alpha) ** n) / alpha)
    raise ValueError(f"unknown base forecast {method!r}; choose one of {', '.join(BASES)}")


def _fit_ses(values: np.ndarray) -> tuple[float, float]:
    """The smoothing weight with the least in-sample one-step squared error, and the
    last level it gives; all weights are run at once."""
    levels = np.full(_ALPHAS.shape[0], values[0])
    errors = np.zeros(_ALPHAS.shape[0])
    for value in values[1:]:
        miss = value - levels
        errors += miss * miss
        levels = levels + _ALPHAS * miss
    best = int(np.argmin(errors))
    return float(_ALPHAS[best]), float(levels[best])


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
