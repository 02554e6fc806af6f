"""M4's seasonality test and classical multiplicative decomposition, of every history
of a panel at once (vectorised over series and origins).

Naive2 (baselines.py) forecasts from the adjusted history, and the base forecasts
under the network (bases.py) adjust a history for its season only where this test
finds one. Inputs as in baselines.py: ``values`` (N,) holds all series one after
another; series s's history at origin k is ``values[begins[s] : begins[s] +
cuts[s, k]]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Series are decomposed in blocks of about this many values, so that the float64
# temporaries of the seasonal adjustment stay near 16 MB each whatever the panel.
_BLOCK_VALUES = 1 << 21


def check_positive(name: str, number: int) -> None:
    if number < 1:
        raise ValueError(f"{name} must be >= 1, got {number}")


@dataclass(frozen=True)
class SeasonalAdjustment:
    """M4's seasonal adjustment of the history at every origin (the basis of Naive2).

    ``indices`` (S, K, m) float64: the multiplicative seasonal index of each phase,
    phase p being the positions t (0-based from the series start) with t mod m = p;
    all 1.0 where the history is not adjusted. ``seasonal`` (S, K) bool: the history
    passed M4's seasonality test. ``nonpositive`` (S, K) bool: it passed, but holds a
    value <= 0, which a multiplicative decomposition cannot work with, so it was left
    unadjusted (Naive2 is naive there). ``adjusted`` is seasonal and not nonpositive.
    """

    indices: np.ndarray
    seasonal: np.ndarray
    nonpositive: np.ndarray

    @property
    def adjusted(self) -> np.ndarray:
        return self.seasonal & ~self.nonpositive


def seasonal_adjustment(
    values: np.ndarray, begins: np.ndarray, cuts: np.ndarray, season: int
) -> SeasonalAdjustment:
    """M4's seasonality test and classical multiplicative decomposition of every history.

    The test, as in M4's benchmark code: with m = ``season`` > 1 and a history of
    n >= 3m values, it is seasonal when |r_m| > 1.645 sqrt((1 + 2 Σ_{k<m} r_k²) / n),
    r_k being the lag-k autocorrelation (deviations from the history's mean, divided
    by the lag-0 sum, as R's ``acf``). R's ``acf`` stops at lag 10 log10(n), so
    M4's code finds no season where m > 10 log10(n); this tests lag m whatever n
    (the same for M4's hourly, monthly and quarterly data). A seasonal history is
    decomposed as R's ``decompose(type = "multiplicative")`` does: the trend is the
    centred moving average of order m (2×m for even m), y / trend is averaged per
    phase over the positions where the trend exists, and the averages are divided
    by their mean. A history holding a value <= 0 (or not finite) is never adjusted;
    if it tests seasonal it is marked ``nonpositive``. Raises ValueError when
    ``season`` < 1.
    """
    check_positive("season", season)
    cuts = np.asarray(cuts, dtype=np.int64)
    begins = np.asarray(begins, dtype=np.int64)
    n_series, n_origins = cuts.shape
    indices = np.ones((n_series, n_origins, season))
    seasonal = np.zeros((n_series, n_origins), dtype=bool)
    nonpositive = np.zeros((n_series, n_origins), dtype=bool)
    if season == 1 or n_series == 0:
        return SeasonalAdjustment(indices, seasonal, nonpositive)
    spans = np.maximum(cuts.max(axis=1), 1)  # (S,) values any history of a series reads
    for block in _series_blocks(spans, _BLOCK_VALUES):
        local, local_begins = _gather(values, begins[block], spans[block])
        block_cuts = np.clip(cuts[block], 1, spans[block, None])
        # Counts of values that are not > 0 (NaN included) before each position.
        bad = _prefix(~(local > 0))
        starts = local_begins[:, None]  # (S, 1)
        has_bad = bad[starts + block_cuts] > bad[starts]  # (S, K)
        local[~np.isfinite(local)] = 0.0  # such histories are never adjusted anyway
        tested = _seasonality_test(local, local_begins, block_cuts, season)
        adjust = tested & ~has_bad
        seasonal[block], nonpositive[block] = tested, tested & has_bad
        if adjust.any():
            found = _seasonal_indices(local, local_begins, block_cuts, season, adjust)
            indices[block] = np.where(adjust[..., None], found, 1.0)
    return SeasonalAdjustment(indices, seasonal, nonpositive)


def _series_blocks(spans: np.ndarray, limit: int) -> list[np.ndarray]:
    """Consecutive runs of series whose spans add up to at most ``limit`` values (a
    longer series makes a block of its own)."""
    ends = np.cumsum(spans)
    blocks, first = [], 0
    while first < spans.shape[0]:
        done = int(ends[first - 1]) if first else 0
        last = max(int(np.searchsorted(ends, done + limit, side="right")), first + 1)
        blocks.append(np.arange(first, last))
        first = last
    return blocks


def _gather(
    values: np.ndarray, begins: np.ndarray, spans: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``spans[s]`` values of each series s, one after another, as float64,
    and where each starts in that local buffer: ((Σ spans,), (S,) int64)."""
    local_begins = np.concatenate([[0], np.cumsum(spans)[:-1]]).astype(np.int64)
    positions = np.arange(int(spans.sum()), dtype=np.int64)
    positions += np.repeat(begins - local_begins, spans)
    return np.asarray(values)[positions].astype(np.float64), local_begins


def _prefix(terms: np.ndarray) -> np.ndarray:
    """(L + 1,) float64: the sums of the first i terms."""
    sums = np.zeros(terms.shape[0] + 1)
    np.cumsum(terms, out=sums[1:])
    return sums


def _per_series(local: np.ndarray, begins: np.ndarray, how) -> np.ndarray:
    """``how`` (a ufunc) reduced over each series of the local buffer, spread back
    over its positions: (L,)."""
    spans = np.diff(np.append(begins, local.shape[0]))
    return np.repeat(how.reduceat(local, begins), spans)


def _seasonality_test(
    local: np.ndarray, begins: np.ndarray, cuts: np.ndarray, season: int
) -> np.ndarray:
    """(S, K) bool: M4's test at lag m of every history (see ``seasonal_adjustment``);
    False for histories of fewer than 3m values. ``local`` (L,) finite float64 holds
    the series from ``begins`` (S,); ``cuts`` (S, K) lie within each series."""
    testable = cuts >= 3 * season
    if not testable.any():
        return testable
    # Autocorrelations depend on neither level nor unit: each series is standardised
    # first, so that no series' size swamps another's in the sums below.
    size = local.shape[0]
    spans = np.diff(np.append(begins, size))
    centred = local - _per_series(local, begins, np.add) / np.repeat(spans, spans)
    spread = np.sqrt(_per_series(centred * centred, begins, np.add) / np.repeat(spans, spans))
    z = np.zeros(size + 1)  # a 0 after the last value, so that a range may end at `size`
    np.divide(centred, np.where(spread > 0, spread, 1.0), out=z[:size])
    n = np.where(testable, cuts, 0)  # the others are given empty ranges
    low = np.broadcast_to(begins[:, None], cuts.shape)  # (S, K)
    high = low + n  # (S, K) one past the last value of each history
    count = np.maximum(n, 1)
    total = _range_sums(z, low, high)
    mean = total / count  # (S, K): each history's own mean
    lag_zero = _range_sums(z * z, low, high) - n * mean * mean
    small_lags = np.zeros(cuts.shape)  # Σ_{k<m} r_k²
    head, tail = np.zeros(cuts.shape), np.zeros(cuts.shape)  # Σ of the first, last lag z
    lagged = np.zeros(size + 1)
    for lag in range(1, season + 1):
        np.multiply(z[lag:size], z[: size - lag], out=lagged[lag:size])  # the first stay 0
        head += z[np.minimum(low + lag - 1, size)]
        tail += z[np.clip(high - lag, 0, size)]
        # Σ_{t=lag}^{n-1} (z_t - μ)(z_{t-lag} - μ) = Σ z_t z_{t-lag} - μ (Σ_{t>=lag} z_t
        # + Σ_{t<n-lag} z_t) + (n - lag) μ².
        covariance = _range_sums(lagged, np.minimum(low + lag, high), high)
        covariance -= mean * ((total - head) + (total - tail))
        covariance += (n - lag) * mean * mean
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = covariance / lag_zero
        if lag < season:
            small_lags += correlation * correlation
    limit = 1.645 * np.sqrt((1 + 2 * small_lags) / count)
    with np.errstate(invalid="ignore"):
        return testable & (lag_zero > 0) & (np.abs(correlation) > limit)


def _range_sums(terms: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Σ terms[start:stop] for every pair, float64 of their shape; 0 for an empty range.
    ``terms`` ends with a 0 that no range needs, so that stop may be len(terms) - 1.

    When the ranges together cover the buffer about once (one origin per series),
    each is summed by itself (np.add.reduceat, one pass over memory); with many
    overlapping ranges, as differences of running sums, which cost one slower pass
    (np.cumsum) whatever the number of ranges."""
    start = np.clip(start, 0, terms.shape[0] - 1)
    stop = np.clip(stop, start, terms.shape[0] - 1)
    if (stop - start).sum() <= 2 * terms.shape[0]:
        bounds = np.empty(2 * start.size, dtype=np.int64)
        bounds[0::2], bounds[1::2] = start.reshape(-1), stop.reshape(-1)
        sums = np.add.reduceat(terms, bounds)[0::2].reshape(start.shape)
        return np.where(stop > start, sums, 0.0)
    running = _prefix(terms)
    return running[stop] - running[start]


def _seasonal_indices(
    local: np.ndarray, begins: np.ndarray, cuts: np.ndarray, season: int, wanted: np.ndarray
) -> np.ndarray:
    """(S, K, m): the multiplicative seasonal indices per phase, mean 1, of the
    histories ``wanted`` (S, K) bool, which have at least 3m values, all positive;
    the others' are arbitrary. R's ``decompose``; inputs as ``_seasonality_test``."""
    half = season // 2
    # y / trend does not depend on the unit: each series is divided by its mean
    # absolute value, so that the running sums hold numbers near 1.
    spans = np.diff(np.append(begins, local.shape[0]))
    size = _per_series(np.abs(local), begins, np.add) / np.repeat(spans, spans)
    unit = local / np.where(size > 0, size, 1.0)
    sums = _prefix(unit)
    length = unit.shape[0]
    centre = np.arange(half, length - half)  # positions with a whole window in the buffer
    if season % 2 == 0:
        # The 2×m moving average: weights 1/2 on the two ends of a window of m + 1.
        window = sums[centre + half] - sums[centre - half + 1]
        window += 0.5 * (unit[centre - half] + unit[centre + half])
    else:
        window = sums[centre + half + 1] - sums[centre - half]
    ratio = np.zeros(length + (-length) % season)  # padded to whole seasons
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio[centre] = unit[centre] * season / window
    # A trend of 0 (histories never adjusted) would poison the running sums. Windows
    # across two series give finite ratios that no history reads.
    ratio[~np.isfinite(ratio)] = 0.0
    # by_phase[t] = ratio[t] + ratio[t - m] + ratio[t - 2m] + ... down the buffer.
    by_phase = np.cumsum(ratio.reshape(-1, season), axis=0).reshape(-1)
    n = np.where(wanted, cuts, 3 * season)[:, :, None]  # (S, K, 1)
    start = begins[:, None, None]  # (S, 1, 1)
    phase = np.arange(season)  # (m,)
    # The trend of a history of n values exists at positions half .. n - 1 - half.
    first = half + (phase - half) % season  # (m,): the first such position of each phase
    last = n - 1 - half - (n - 1 - half - phase) % season  # (S, K, m): and the last
    count = np.maximum((last - first) // season + 1, 1)
    top = np.clip(start + last, 0, by_phase.shape[0] - 1)
    below = start + first - season  # the phase's position before the first, if any
    total = by_phase[top] - np.where(below >= 0, by_phase[np.maximum(below, 0)], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_ratio = total / count
        return mean_ratio / mean_ratio.mean(axis=2, keepdims=True)
