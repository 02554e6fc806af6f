"""Base forecasts: the statistical safety net under the network.

Naive, seasonal naive, drift, simple exponential smoothing (SES) and Theta
(Assimakopoulos & Nikolopoulos 2000, in the form of Hyndman & Billah 2003: SES
plus half the slope of the linear trend), each computed from the values before an
origin only. A series whose season is significant by M4's test (autocorrelation
at lag m, 90 %) is seasonally adjusted by classical decomposition first, and its
forecasts reseasonalised; a series without a significant season is forecast as it
is, so no seasonal pattern is imposed where the data shows none.

Pure numpy, one series at a time (a few hundred microseconds each).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASES = ("naive", "seasonal_naive", "drift", "ses", "theta")
# Smoothing weights tried for SES, fitted by the in-sample one-step squared error.
_ALPHAS = np.array([0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
# M4's seasonality test: the autocorrelation at lag m beyond 1.645 standard errors.
_SEASON_Z = 1.645


def has_season(values: np.ndarray, season: int) -> bool:
    """M4's test: at least three seasons of data and a significant autocorrelation at
    lag ``season`` (Bartlett's standard error over the lags before it)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if season <= 1 or n < 3 * season:
        return False
    centred = values - values.mean()
    denominator = float(centred @ centred)
    if denominator == 0.0:
        return False
    acf = np.array([centred[k:] @ centred[: n - k] for k in range(1, season + 1)]) / denominator
    limit = _SEASON_Z * np.sqrt((1 + 2 * np.sum(acf[:-1] ** 2)) / n)
    return bool(abs(acf[-1]) > limit)


def seasonal_indices(values: np.ndarray, season: int) -> tuple[np.ndarray, bool]:
    """Classical decomposition: per-phase indices, phase 0 being the first value's.
    Multiplicative (mean 1) for positive data, else additive (mean 0); and which."""
    values = np.asarray(values, dtype=np.float64)
    multiplicative = bool((values > 0).all())
    kernel = np.ones(season) / season
    if season % 2 == 0:  # a 2 x m moving average centres an even season
        kernel = np.convolve(kernel, [0.5, 0.5])
    trend = np.convolve(values, kernel, mode="valid")
    offset = (kernel.shape[0] - 1) // 2
    middle = values[offset : offset + trend.shape[0]]
    detrended = middle / trend if multiplicative else middle - trend
    phases = (np.arange(trend.shape[0]) + offset) % season
    sums = np.bincount(phases, detrended, minlength=season)
    counts = np.bincount(phases, minlength=season)
    indices = sums / np.maximum(counts, 1)
    indices = indices / indices.mean() if multiplicative else indices - indices.mean()
    return indices, multiplicative


def base_forecast(values: np.ndarray, horizon: int, season: int, method: str) -> np.ndarray:
    """(H,) forecast of ``method`` after the last of ``values`` (all of them are seen)."""
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if method == "naive" or n < 2:
        return np.full(horizon, values[-1])
    if method == "seasonal_naive":
        if season <= 1 or n < season:
            return np.full(horizon, values[-1])
        return values[n - season + np.arange(horizon) % season]
    adjusted, reseason = values, None
    if has_season(values, season):
        indices, multiplicative = seasonal_indices(values, season)
        pattern = indices[np.arange(n) % season]
        future = indices[(n + np.arange(horizon)) % season]
        adjusted = values / pattern if multiplicative else values - pattern
        reseason = (future, multiplicative)
    forecast = _nonseasonal(adjusted, horizon, method)
    if reseason is not None:
        future, multiplicative = reseason
        forecast = forecast * future if multiplicative else forecast + future
    return forecast


def _nonseasonal(values: np.ndarray, horizon: int, method: str) -> np.ndarray:
    n = values.shape[0]
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


def base_forecasts(
    series: list[np.ndarray], cuts: np.ndarray, horizon: int, season: int, method: str
) -> np.ndarray:
    """Forecasts of ``method`` from K origins of S series: (S, K, H). ``cuts`` (S, K)
    say how many steps of each series origin k sees."""
    out = np.empty((cuts.shape[0], cuts.shape[1], horizon))
    for index, history in enumerate(series):
        for origin, cut in enumerate(cuts[index]):
            out[index, origin] = base_forecast(history[:cut], horizon, season, method)
    return out


@dataclass(frozen=True)
class Combination:
    """How the network's forecasts are blended with a base forecast, chosen on
    validation origins (fitting.py): per future step h, the point forecast is
    ``weights[h] * network + (1 - weights[h]) * base``, and every quantile moves with
    it, so the network's intervals are kept around the blended median."""

    base: str
    weights: tuple[float, ...]  # (H,) the network's share, each in [0, 1]

    def __post_init__(self) -> None:
        if self.base not in BASES:
            raise ValueError(f"unknown base forecast {self.base!r}")
        if not all(0.0 <= w <= 1.0 for w in self.weights):
            raise ValueError("blend weights must lie in [0, 1]")

    def apply(self, network: np.ndarray, base: np.ndarray, median: int) -> np.ndarray:
        """(S, K, H, Q) network quantiles and (S, K, H) base -> blended (S, K, H, Q)."""
        weights = np.asarray(self.weights, dtype=np.float64)  # (H,)
        shift = (1.0 - weights) * (base - network[..., median])  # (S, K, H)
        return network + shift[..., None]
