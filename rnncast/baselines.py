"""The simple forecasts every report compares the model with, on exactly the same origins.

A model earns its keep only by beating these: the last value (naive), the last
value at the same phase of the season (seasonal naive), and the line through the
first and last values (drift), as in Hyndman & Athanasopoulos, *Forecasting:
Principles and Practice*, 3rd ed., §5.2; and M4's Naive2 (the naive forecast of
the seasonally adjusted series, reseasonalised), the benchmark that M4's OWA is
relative to (Makridakis, Spiliotis & Assimakopoulos, 2020, IJF 36(1)).

Inputs everywhere: ``values`` (N,) holds all series one after another; series s's
history at origin k is ``values[begins[s] : begins[s] + cuts[s, k]]`` with
``begins`` (S,) int64 and ``cuts`` (S, K) int64 >= 1; ``horizon`` is H. Each
forecast is (S, K, H) float64 in data units; step h = 1..H is ``[..., h - 1]``.
"""

from __future__ import annotations

import numpy as np

from rnncast.seasons import SeasonalAdjustment, check_positive, seasonal_adjustment


def naive(values: np.ndarray, begins: np.ndarray, cuts: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed value, repeated for every step: (S, K, H) float64.

    Raises ValueError when ``horizon`` < 1.
    """
    check_positive("horizon", horizon)
    last = _last_values(values, begins, cuts)  # (S, K)
    return np.repeat(last[:, :, None], horizon, axis=2)  # (S, K, H)


def seasonal_naive(
    values: np.ndarray, begins: np.ndarray, cuts: np.ndarray, horizon: int, season: int
) -> np.ndarray:
    """The last observed value at the same phase of the season: (S, K, H) float64.

    Step h (1-based) repeats the history value at 0-based position
    ``cut - m + ((h - 1) mod m)``, m = ``season``. Where cut < m there is less than
    one season of history and that origin falls back to ``naive``. Season 1 is naive.
    Raises ValueError when ``horizon`` or ``season`` < 1.
    """
    check_positive("horizon", horizon)
    check_positive("season", season)
    cuts = np.asarray(cuts, dtype=np.int64)
    phase = np.arange(horizon, dtype=np.int64) % season  # (H,)
    seasonal = cuts[:, :, None] - season + phase  # (S, K, H) positions in each history
    short = cuts < season  # (S, K)
    # Short histories would read before their series start; point them at the last
    # value instead, which is the naive fallback.
    positions = np.where(short[:, :, None], cuts[:, :, None] - 1, seasonal)  # (S, K, H)
    starts = np.asarray(begins, dtype=np.int64)[:, None, None]  # (S, 1, 1)
    return np.asarray(values)[starts + positions].astype(np.float64)


def drift(values: np.ndarray, begins: np.ndarray, cuts: np.ndarray, horizon: int) -> np.ndarray:
    """The line through the first and last observed values, extended: (S, K, H) float64.

    Step h is y_last + h (y_last - y_first) / (cut - 1); where cut == 1 there is no
    slope and the forecast is naive. Raises ValueError when ``horizon`` < 1.
    """
    check_positive("horizon", horizon)
    cuts = np.asarray(cuts, dtype=np.int64)
    first = np.asarray(values)[np.asarray(begins, dtype=np.int64)].astype(np.float64)  # (S,)
    last = _last_values(values, begins, cuts)  # (S, K)
    # Divide by at least 1 so that cut == 1 gives slope 0 (its first value is its last).
    slope = (last - first[:, None]) / np.maximum(cuts - 1, 1)  # (S, K) per step
    steps = np.arange(1, horizon + 1, dtype=np.float64)  # (H,)
    return last[:, :, None] + slope[:, :, None] * steps  # (S, K, H)


def naive2(
    values: np.ndarray,
    begins: np.ndarray,
    cuts: np.ndarray,
    horizon: int,
    season: int,
    adjustment: SeasonalAdjustment | None = None,
) -> np.ndarray:
    """M4's Naive2: the naive forecast of the seasonally adjusted history, reseasonalised.

    (S, K, H) float64: step h is y_last / I[(cut - 1) mod m] × I[(cut - 1 + h) mod m],
    with the indices I of ``seasonal_adjustment`` (``adjustment``, or computed here)
    and phases counted from each series' start. Where the history is not adjusted
    (m = 1, fewer than 3m values, no season found, or a value <= 0) it is naive.
    Raises ValueError when ``horizon`` or ``season`` < 1.
    """
    check_positive("horizon", horizon)
    check_positive("season", season)
    if adjustment is None:
        adjustment = seasonal_adjustment(values, begins, cuts, season)
    cuts = np.asarray(cuts, dtype=np.int64)
    last = _last_values(values, begins, cuts)  # (S, K)
    positions = cuts[:, :, None] - 1 + np.arange(horizon + 1)  # (S, K, H + 1): last, then 1..H
    factors = np.take_along_axis(adjustment.indices, positions % season, axis=2)
    return (last / factors[:, :, 0])[:, :, None] * factors[:, :, 1:]  # (S, K, H)


def baseline_forecasts(
    values: np.ndarray,
    begins: np.ndarray,
    cuts: np.ndarray,
    horizon: int,
    season: int,
    adjustment: SeasonalAdjustment | None = None,
) -> dict[str, np.ndarray]:
    """Every baseline's forecasts, (S, K, H) float64 each, keyed in report order.

    Keys: "naive", "seasonal_naive" (with ``season``), "drift", "naive2" (with
    ``season`` and ``adjustment``, computed if not given). Raises ValueError when
    ``horizon`` or ``season`` < 1.
    """
    return {
        "naive": naive(values, begins, cuts, horizon),
        "seasonal_naive": seasonal_naive(values, begins, cuts, horizon, season),
        "drift": drift(values, begins, cuts, horizon),
        "naive2": naive2(values, begins, cuts, horizon, season, adjustment),
    }


def _last_values(values: np.ndarray, begins: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """The last value of the history at every origin: (S, K) float64."""
    starts = np.asarray(begins, dtype=np.int64)[:, None]  # (S, 1)
    return np.asarray(values)[starts + np.asarray(cuts, dtype=np.int64) - 1].astype(np.float64)
