"""Error measures of forecasts against actuals: pure numpy over arrays.

Shapes: S series, K forecast origins per series (folds), H steps ahead, Q
quantiles. ``actual`` and point forecasts are (S, K, H); a point is scored
only where both are finite, so actuals that have not arrived yet (NaN) are
skipped and counted, never guessed.

Definitions follow the M4 competition (Makridakis, Spiliotis & Assimakopoulos,
2020, IJF 36(1)): sMAPE in percent with |y| + |ŷ| below the line, MASE scaled by
the in-sample mean absolute seasonal difference of the history each forecast saw,
MSIS scaled the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

# Quantile levels closer than this are the same level (0.1 and 1 - 0.9 differ by 1e-17).
_LEVEL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Scores:
    """The errors of one method: per series, per horizon step, and over series.

    ``per_series`` maps a metric name to (S,) float64, ``per_step`` to (H,);
    NaN marks an undefined value (e.g. MASE of a constant history). ``summary``
    maps a metric name to {"mean": ..., "median": ...} over the series where it is
    defined (None when it is defined for none). ``counts`` says how many points
    were scored and why others were not.
    """

    per_series: dict[str, np.ndarray]
    per_step: dict[str, np.ndarray]
    summary: dict[str, dict[str, float | None]]
    counts: dict[str, int]


def interval_name(lower: float) -> str:
    """The nominal coverage in percent of the central interval [lower, 1 - lower].

    0.1 -> "80", 0.025 -> "95", 0.0125 -> "97.5"; rounding to 6 decimals hides the
    binary representation error of the levels (1 - 2 * 0.1 is 0.7999999999999999).
    """
    return f"{round((1 - 2 * lower) * 100, 6):g}"


def quantile_name(q: float) -> str:
    """The key suffix of one quantile level: 0.1 -> "q10", 0.025 -> "q2.5"."""
    return f"q{round(q * 100, 6):g}"


def central_intervals(quantiles: tuple[float, ...]) -> list[tuple[str, float, float]]:
    """(name, lower level, upper level) of every central interval the levels contain.

    A level q < 0.5 forms an interval when 1 - q is also a level (within 1e-9).
    Widest first: (0.025, 0.1, 0.5, 0.9, 0.975) -> [("95", 0.025, 0.975),
    ("80", 0.1, 0.9)].
    """
    levels = sorted(quantiles)
    intervals = []
    for lower in levels:
        if lower >= 0.5:
            break
        upper = next((q for q in levels if abs(q - (1 - lower)) <= _LEVEL_TOLERANCE), None)
        if upper is not None:
            intervals.append((interval_name(lower), lower, upper))
    return intervals


def seasonal_scales(
    values: np.ndarray, begins: np.ndarray, cuts: np.ndarray, season: int
) -> np.ndarray:
    """The MASE scale of the history at every origin: its seasonal-naive in-sample MAE.

    ``values`` (N,) holds all series one after another; series s's history at origin
    k is ``values[begins[s] : begins[s] + cuts[s, k]]``, ``cuts`` (S, K) int64 >= 1.
    Returns (S, K) float64, in data units: mean over t in [m, cut) of |y_t - y_{t-m}|
    (M4's ``np.mean(abs(insample[m:] - insample[:-m]))``) with m = ``season``; NaN
    where cut <= m (no seasonal difference exists); 0.0 for a history whose seasonal
    differences are all zero (callers treat that as undefined MASE). Raises
    ValueError when ``season`` < 1.
    """
    if season < 1:
        raise ValueError(f"season must be >= 1, got {season}")
    cuts = np.asarray(cuts, dtype=np.int64)
    starts = np.asarray(begins, dtype=np.int64)[:, None]  # (S, 1)
    buffer = np.asarray(values)
    # One pass over the buffer: differences that straddle two series are computed
    # but never summed. The running sum is float64 so that each (s, k) is a
    # difference of two prefix sums, O(1) per origin whatever the history length;
    # it is built in place (one allocation) because the buffer may hold 1e8 values.
    # Its rounding grows with the running total, so a small series after a mass of
    # much larger ones is the worst case: 2e-5 relative error for a scale-1e-2 series
    # after 1e7 points of scale 1e4, below the digits reports show. A constant
    # history still gives exactly 0 (adding 0 leaves the running sum unchanged).
    prefix = np.zeros(max(buffer.shape[0] - season, 0) + 1)  # (N - m + 1,) sums of the first i
    differences = prefix[1:]
    np.subtract(buffer[season:], buffer[:-season], out=differences, dtype=np.float64)
    np.abs(differences, out=differences)
    np.cumsum(differences, out=differences)
    defined = cuts > season
    # Undefined origins read prefix[0] twice: their start may lie past the prefix sums.
    low = np.where(defined, starts, 0)  # (S, K)
    steps = np.where(defined, cuts - season, 0)  # (S, K) differences in each history
    # A prefix sum never decreases, so the difference is >= 0, and exactly 0 when
    # every difference in between is 0.
    total = prefix[low + steps] - prefix[low]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(defined, total / steps, np.nan)


def score(
    actual: np.ndarray,
    point: np.ndarray,
    scale: np.ndarray,
    *,
    quantiles: tuple[float, ...] = (),
    values: np.ndarray | None = None,
) -> Scores:
    """Score point (and quantile) forecasts against actuals.

    ``actual`` (S, K, H) float64, NaN where no actual; ``point`` (S, K, H) the point
    forecast; ``scale`` (S, K) the MASE scale of each origin (``seasonal_scales``);
    ``quantiles`` sorted levels with ``values`` (S, K, H, Q) their forecasts, or
    neither for point forecasts only.

    A point (s, k, h) is scored where actual and point are finite; quantile metrics
    also need all its Q values finite. Per-series keys (each (S,) float64, pooled
    over folds and steps, NaN where nothing to average):

    - ``mae``, ``rmse`` (data units); ``mape`` = 100 mean |e| / |y| over y != 0 (zero
      actuals are skipped and counted); ``smape`` = 200 mean |e| / (|y| + |ŷ|) with a
      perfect forecast of 0 contributing 0; ``mase`` = mean |e| / scale over points
      whose scale is finite and > 0, NaN for a series with no such point (constant
      history, or history of at most m steps): such a series is left out of the MASE
      summary and counted in ``mase_undefined_series``.
    - with quantiles: ``pinball_<quantile_name(q)>`` = mean max(q e_q, (q - 1) e_q),
      e_q = y - ŷ_q (data units); ``pinball`` = their mean over levels, which is half
      the CRPS approximately (CRPS ≈ 2 × this mean for evenly spread levels);
      ``scaled_pinball`` = pinball / scale per point, with MASE's undefined rule.
    - per central interval p (``central_intervals``): ``coverage_<p>`` the fraction
      of points with L <= y <= U, ``width_<p>`` mean U - L (data units), ``msis_<p>``
      M4's mean scaled interval score, mean [(U - L) + (2/α)(L - y)1{y < L}
      + (2/α)(y - U)1{y > U}] / scale with α = 1 - p/100 (MASE's undefined rule).

    ``per_step`` has the same keys, each (H,) over all series and folds at that
    step. ``counts``: ``series``, ``points`` (scored), ``missing`` (actual or point
    not finite), ``mape_skipped_zero`` (scored points with y == 0),
    ``mase_undefined_series`` (series with a scored point but NaN MASE). Raises
    ValueError when the shapes disagree or only one of quantiles/values is given.
    """
    actual = np.asarray(actual, dtype=np.float64)
    point = np.asarray(point, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    _check_shapes(actual, point, scale, quantiles, values)
    series_count = actual.shape[0]
    per_series: dict[str, np.ndarray] = {}
    per_step: dict[str, np.ndarray] = {}

    def add(name: str, term: np.ndarray, where: _Mask) -> None:
        per_series[name], per_step[name] = _averages(term, where)

    scored = np.isfinite(actual) & np.isfinite(point)  # (S, K, H)
    usable = (np.isfinite(scale) & (scale > 0))[:, :, None]  # (S, K, 1)
    scale_per_point = scale[:, :, None]  # (S, K, 1)
    # Non-finite inputs are masked out below; silence their arithmetic on the way.
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        error = actual - point
        absolute = np.abs(error)
        magnitude = np.abs(actual)
        nonzero = scored & (magnitude != 0)
        denominator = magnitude + np.abs(point)
        all_points = _Mask.of(scored)
        add("mae", absolute, all_points)
        mean_square = _averages(error * error, all_points)
        per_series["rmse"], per_step["rmse"] = np.sqrt(mean_square[0]), np.sqrt(mean_square[1])
        add("mape", 100 * absolute / magnitude, _Mask.of(nonzero))
        # |y| + |ŷ| = 0 only when y = ŷ = 0: a perfect forecast, so its term is 0.
        add("smape", np.where(denominator > 0, 200 * absolute / denominator, 0.0), all_points)
        add("mase", absolute / scale_per_point, _Mask.of(scored & usable))
        if values is not None:
            # Level-major and contiguous, so that each level's (S, K, H) slice is dense.
            levels_first = np.moveaxis(np.asarray(values, dtype=np.float64), -1, 0)
            levels_first = np.ascontiguousarray(levels_first)  # (Q, S, K, H)
            covered = scored & np.isfinite(levels_first).all(axis=0)  # (S, K, H)
            raw, scaled = _Mask.of(covered), _Mask.of(covered & usable)
            terms = _quantile_terms(actual, levels_first, quantiles, scale_per_point)
            for name, term, is_scaled in terms:
                add(name, term, scaled if is_scaled else raw)

    summary = {name: _summarise(metric) for name, metric in per_series.items()}
    has_points = scored.any(axis=(1, 2))
    counts = {
        "series": int(series_count),
        "points": int(scored.sum()),
        "missing": int(scored.size - scored.sum()),
        "mape_skipped_zero": int((scored & ~nonzero).sum()),
        "mase_undefined_series": int((has_points & np.isnan(per_series["mase"])).sum()),
    }
    return Scores(per_series, per_step, summary, counts)


def _quantile_terms(
    actual: np.ndarray, values: np.ndarray, quantiles: tuple[float, ...], scale: np.ndarray
) -> Iterator[tuple[str, np.ndarray, bool]]:
    """(name, per-point term (S, K, H), whether it is divided by the scale) per metric.

    ``values`` is (Q, S, K, H), level first; ``scale`` (S, K, 1). A generator so that
    only one metric's terms are alive at a time: pinball losses per level and over
    levels come first, then coverage, width and MSIS per interval.
    """
    total_loss = np.zeros_like(actual)
    for index, level in enumerate(quantiles):
        miss = actual - values[index]
        # max(q e, (q - 1) e) = q e - min(e, 0), in two passes over the points.
        loss = level * miss
        loss -= np.minimum(miss, 0.0)
        total_loss += loss
        yield f"pinball_{quantile_name(level)}", loss, False
    mean_loss = total_loss / len(quantiles)
    yield "pinball", mean_loss, False
    yield "scaled_pinball", mean_loss / scale, True
    levels = np.asarray(quantiles, dtype=np.float64)
    for name, lower_level, upper_level in central_intervals(quantiles):
        lower = values[int(np.argmin(np.abs(levels - lower_level)))]
        upper = values[int(np.argmin(np.abs(levels - upper_level)))]
        # The nominal miss rate: the tail mass outside [lower, upper], 1 - p/100.
        alpha = 1.0 - (upper_level - lower_level)
        below = np.maximum(lower - actual, 0.0)
        above = np.maximum(actual - upper, 0.0)
        interval_score = (upper - lower) + (2 / alpha) * (below + above)
        inside = (lower <= actual) & (actual <= upper)
        yield f"coverage_{name}", inside.astype(np.float64), False
        yield f"width_{name}", upper - lower, False
        yield f"msis_{name}", interval_score / scale, True


@dataclass(frozen=True)
class _Mask:
    """The points a metric averages over, with their counts (summed once, used often)."""

    keep: np.ndarray  # (S, K, H) bool
    per_series: np.ndarray  # (S,) int64
    per_step: np.ndarray  # (H,) int64

    @classmethod
    def of(cls, keep: np.ndarray) -> _Mask:
        return cls(keep, keep.sum(axis=(1, 2)), keep.sum(axis=(0, 1)))


def _averages(term: np.ndarray, where: _Mask) -> tuple[np.ndarray, np.ndarray]:
    """Means of ``term`` (S, K, H) over ``where``: per series (S,) and per step (H,).

    NaN where nothing is kept; masked-out terms may be NaN or inf, the masked sums
    never read them.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        per_series = np.sum(term, axis=(1, 2), where=where.keep) / where.per_series
        per_step = np.sum(term, axis=(0, 1), where=where.keep) / where.per_step
    return per_series, per_step


def _summarise(metric: np.ndarray) -> dict[str, float | None]:
    """Mean and median over the series where ``metric`` is finite, as Python floats."""
    finite = metric[np.isfinite(metric)]
    if finite.size == 0:
        return {"mean": None, "median": None}
    return {"mean": float(finite.mean()), "median": float(np.median(finite))}


def _check_shapes(actual, point, scale, quantiles, values) -> None:
    if actual.ndim != 3 or point.shape != actual.shape:
        raise ValueError(
            f"actual and point must both be (S, K, H); got {actual.shape} and {point.shape}"
        )
    if scale.shape != actual.shape[:2]:
        raise ValueError(f"scale must be (S, K) = {actual.shape[:2]}, got {scale.shape}")
    if (values is None) != (len(quantiles) == 0):
        raise ValueError("give quantiles and values together, or neither")
    if values is not None and np.shape(values) != (*actual.shape, len(quantiles)):
        raise ValueError(
            f"values must be (S, K, H, Q) = {(*actual.shape, len(quantiles))}, "
            f"got {np.shape(values)}"
        )
