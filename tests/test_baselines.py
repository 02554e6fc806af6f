"""Baselines: hand-written forecasts on a ragged panel, their fallbacks, M4's Naive2
against a direct loop, and the published scores of M4 Hourly (issue 12 for Naive2).

The panel: series a = [1, 2, 3, 4, 5, 6, 7] at buffer position 0 and series
b = [10, 20, 40] at position 7, each cut at two origins (K = 2).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnncast import seasons
from rnncast.baselines import (
    baseline_forecasts,
    drift,
    naive,
    naive2,
    seasonal_adjustment,
    seasonal_naive,
)
from rnncast.metrics import score, seasonal_scales

VALUES = np.array([1, 2, 3, 4, 5, 6, 7, 10, 20, 40], dtype=np.float32)
BEGINS = np.array([0, 7], dtype=np.int64)


def test_naive_repeats_the_last_value() -> None:
    cuts = np.array([[7, 4], [3, 1]])
    expected = [
        [[7, 7, 7], [4, 4, 4]],
        [[40, 40, 40], [10, 10, 10]],
    ]
    forecast = naive(VALUES, BEGINS, cuts, 3)
    np.testing.assert_array_equal(forecast, expected)
    assert forecast.dtype == np.float64
    assert forecast.shape == (2, 2, 3)


def test_seasonal_naive_repeats_the_last_season() -> None:
    cuts = np.array([[7, 4], [3, 2]])
    # m = 3, step h reads position cut - 3 + (h - 1) mod 3:
    # a cut 7 -> positions 4, 5, 6, 4 -> 5, 6, 7, 5; a cut 4 -> 1, 2, 3, 1 -> 2, 3, 4, 2;
    # b cut 3 -> 0, 1, 2, 0 -> 10, 20, 40, 10; b cut 2 < m -> naive: 20 four times.
    expected = [
        [[5, 6, 7, 5], [2, 3, 4, 2]],
        [[10, 20, 40, 10], [20, 20, 20, 20]],
    ]
    np.testing.assert_array_equal(seasonal_naive(VALUES, BEGINS, cuts, 4, season=3), expected)


def test_seasonal_naive_with_season_one_is_naive() -> None:
    cuts = np.array([[7, 1], [3, 2]])
    np.testing.assert_array_equal(
        seasonal_naive(VALUES, BEGINS, cuts, 5, season=1), naive(VALUES, BEGINS, cuts, 5)
    )


def test_drift_extends_the_line_through_first_and_last_value() -> None:
    cuts = np.array([[7, 4], [3, 1]])
    # a cut 7: 7 + h (7 - 1) / 6 -> 8, 9; a cut 4: 4 + h (4 - 1) / 3 -> 5, 6;
    # b cut 3: 40 + h (40 - 10) / 2 -> 55, 70; b cut 1: no slope, naive -> 10, 10.
    expected = [
        [[8, 9], [5, 6]],
        [[55, 70], [10, 10]],
    ]
    np.testing.assert_array_equal(drift(VALUES, BEGINS, cuts, 2), expected)


def test_baseline_forecasts_in_report_order() -> None:
    cuts = np.array([[7, 4], [3, 2]])
    forecasts = baseline_forecasts(VALUES, BEGINS, cuts, 4, season=3)
    assert list(forecasts) == ["naive", "seasonal_naive", "drift", "naive2"]
    np.testing.assert_array_equal(forecasts["naive"], naive(VALUES, BEGINS, cuts, 4))
    np.testing.assert_array_equal(
        forecasts["seasonal_naive"], seasonal_naive(VALUES, BEGINS, cuts, 4, 3)
    )
    np.testing.assert_array_equal(forecasts["drift"], drift(VALUES, BEGINS, cuts, 4))
    np.testing.assert_array_equal(forecasts["naive2"], naive2(VALUES, BEGINS, cuts, 4, 3))


def test_baselines_refuse_an_empty_horizon_or_season() -> None:
    cuts = np.array([[7], [3]])
    with pytest.raises(ValueError, match="horizon must be >= 1, got 0"):
        naive(VALUES, BEGINS, cuts, 0)
    with pytest.raises(ValueError, match="season must be >= 1, got 0"):
        seasonal_naive(VALUES, BEGINS, cuts, 2, season=0)
    with pytest.raises(ValueError, match="horizon must be >= 1, got 0"):
        naive2(VALUES, BEGINS, cuts, 0, season=3)
    with pytest.raises(ValueError, match="season must be >= 1, got 0"):
        naive2(VALUES, BEGINS, cuts, 2, season=0)


# --- Naive2: M4's seasonally adjusted naive --------------------------------------------

PATTERN = np.array([1.0, 2.0, 3.0, 2.0])  # a season of m = 4 whose mean is 2


def test_naive2_by_hand_on_a_pure_season() -> None:
    """10 x [1, 2, 3, 2] five times. Autocorrelations r_2 = -0.9, r_4 = 0.8 (r_1 = r_3
    = 0): |r_4| > 1.645 sqrt((1 + 2 x 0.81) / 20) = 0.595, seasonal. The 2x4 moving
    average is 20 everywhere, so the indices are [0.5, 1, 1.5, 1]; the last value 20
    (phase 3, index 1) adjusts to 20 and step h is 20 x the index of phase (19 + h) mod 4.
    (Three seasons are not enough: r_4 = 0.667 against a limit of 0.734.)"""
    values = np.tile(10 * PATTERN, 5)
    begins, cuts = np.array([0]), np.array([[20]])
    adjustment = seasonal_adjustment(values, begins, cuts, 4)
    assert adjustment.seasonal.tolist() == [[True]]
    assert adjustment.nonpositive.tolist() == [[False]]
    np.testing.assert_allclose(adjustment.indices[0, 0], [0.5, 1.0, 1.5, 1.0])
    forecast = naive2(values, begins, cuts, 6, 4)
    np.testing.assert_allclose(forecast, [[[10, 20, 30, 20, 10, 20]]])


def test_naive2_phases_count_from_the_series_start() -> None:
    """The same season cut one step earlier: the last value 30 is phase 2 (index 1.5),
    adjusts to 20, and the forecast goes on with phases 3, 0, 1."""
    values = np.tile(10 * PATTERN, 4)
    forecast = naive2(values, np.array([0]), np.array([[15]]), 3, 4)
    np.testing.assert_allclose(forecast, [[[20, 10, 20]]])


def test_naive2_is_naive_where_there_is_no_season_to_adjust() -> None:
    """m = 1; fewer than 3m values; no autocorrelation at lag m: all plain naive."""
    rng = np.random.default_rng(0)
    noise = 100 + rng.normal(size=60)
    seasonal = np.tile(10 * PATTERN, 5)
    values = np.concatenate([noise, seasonal])
    begins = np.array([0, 60])
    cuts = np.array([[60, 40], [11, 20]])  # series b cut at 11 < 3m, then at 20
    adjustment = seasonal_adjustment(values, begins, cuts, 4)
    assert adjustment.seasonal.tolist() == [[False, False], [False, True]]
    for season in (1, 4):
        forecast = naive2(values, begins, cuts, 5, season)
        expected = naive(values, begins, cuts, 5)
        keep = np.array([[True, True], [True, season == 1]])
        np.testing.assert_allclose(forecast[keep], expected[keep])


def test_naive2_leaves_histories_with_non_positive_values_unadjusted() -> None:
    """Multiplicative decomposition needs positive data: a seasonal history holding
    0 or a negative value is marked and forecast with plain naive."""
    season = np.tile(10 * PATTERN, 5)
    values = np.concatenate([season - 10, season - 15])  # zeros; negative values
    begins, cuts = np.array([0, 20]), np.array([[20, 16], [20, 16]])
    adjustment = seasonal_adjustment(values, begins, cuts, 4)
    assert adjustment.seasonal.all()
    assert adjustment.nonpositive.all()
    assert not adjustment.adjusted.any()
    np.testing.assert_array_equal(adjustment.indices, 1.0)
    np.testing.assert_allclose(
        naive2(values, begins, cuts, 4, 4, adjustment), naive(values, begins, cuts, 4)
    )


def reference_naive2(history: np.ndarray, horizon: int, season: int) -> tuple[np.ndarray, bool]:
    """M4's Naive2 written out loop by loop, after M4's benchmark code (R's acf and
    decompose): (forecast (H,), whether the history was adjusted)."""
    n = history.shape[0]

    def acf(lag: int) -> float:
        centred = history - history.mean()
        return float(np.sum(centred[lag:] * centred[:-lag]) / np.sum(centred**2))

    seasonal = False
    if season > 1 and n >= 3 * season:
        r = [acf(lag) for lag in range(1, season + 1)]
        limit = 1.645 * np.sqrt((1 + 2 * sum(x * x for x in r[:-1])) / n)
        seasonal = abs(r[-1]) > limit
    if not seasonal or (history <= 0).any():
        return np.full(horizon, history[-1]), False
    if season % 2 == 0:
        weights = np.r_[0.5, np.ones(season - 1), 0.5] / season
    else:
        weights = np.ones(season) / season
    half = season // 2
    ratios = [[] for _ in range(season)]
    for t in range(half, n - half):
        trend = float(np.dot(weights, history[t - half : t - half + weights.shape[0]]))
        ratios[t % season].append(history[t] / trend)
    figure = np.array([np.mean(r) for r in ratios])
    figure /= figure.mean()
    adjusted_last = history[-1] / figure[(n - 1) % season]
    return adjusted_last * figure[(n + np.arange(horizon)) % season], True


def random_panel(seed: int, season: int, n_series: int = 7) -> tuple[np.ndarray, ...]:
    """Positive seasonal series of ragged lengths, some noisy, some with a trend, one
    with a value <= 0, cut at three origins each."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2 * season, 8 * season, n_series)
    series = []
    for index, length in enumerate(lengths):
        steps = np.arange(length)
        shape = 1 + rng.uniform(0, 0.6) * np.sin(2 * np.pi * steps / season + index)
        level = rng.uniform(1, 1e4) * (1 + rng.uniform(-0.005, 0.01) * steps)
        noise = rng.uniform(0, 0.3) * rng.normal(size=length)
        series.append(np.abs(level * shape * (1 + noise)) + 1e-3)
    series[2][len(series[2]) // 3] = -1.0
    values = np.concatenate(series).astype(np.float32)
    begins = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    cuts = np.stack([lengths, lengths - season // 2 - 1, lengths - 2 * season + 1], axis=1)
    return values, begins, np.maximum(cuts, 1)


@pytest.mark.parametrize(("seed", "season"), [(0, 4), (1, 7), (2, 12), (3, 24), (4, 2)])
@pytest.mark.parametrize("block_values", [1 << 21, 50])
@pytest.mark.parametrize("origins", [1, 3])
def test_naive2_equals_a_direct_loop(
    seed: int, season: int, block_values: int, origins: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over ragged series, one or three origins each (range sums taken one by one, or
    from running sums), odd and even seasons, and with the panel split into many small
    blocks, as one large one."""
    monkeypatch.setattr(seasons, "_BLOCK_VALUES", block_values)
    values, begins, cuts = random_panel(seed, season)
    cuts = cuts[:, :origins]
    adjustment = seasonal_adjustment(values, begins, cuts, season)
    forecast = naive2(values, begins, cuts, 9, season, adjustment)
    assert forecast.shape == (*cuts.shape, 9)
    for s in range(cuts.shape[0]):
        for k in range(cuts.shape[1]):
            history = values[begins[s] : begins[s] + cuts[s, k]].astype(np.float64)
            expected, adjusted = reference_naive2(history, 9, season)
            assert adjustment.adjusted[s, k] == adjusted, (s, k)
            np.testing.assert_allclose(forecast[s, k], expected, rtol=1e-9, err_msg=f"{s} {k}")
    assert adjustment.adjusted.any()
    assert adjustment.nonpositive[2].any() or not adjustment.seasonal[2].any()


def test_naive2_does_not_depend_on_the_unit_or_the_neighbours() -> None:
    """A small series after a huge one is adjusted as it is alone: each series is
    standardised before the running sums."""
    values, begins, cuts = random_panel(5, 12, n_series=3)
    values = values.astype(np.float64)
    big = values.copy()
    big[begins[1] : begins[2]] *= 1e-6
    big[: begins[1]] *= 1e6
    alone = naive2(values, begins, cuts, 6, 12)
    scaled = naive2(big, begins, cuts, 6, 12)
    np.testing.assert_allclose(scaled[0], alone[0] * 1e6, rtol=1e-9)
    np.testing.assert_allclose(scaled[1], alone[1] * 1e-6, rtol=1e-9)
    np.testing.assert_allclose(scaled[2], alone[2], rtol=1e-9)


# --- M4 Hourly: the published scores of the benchmarks --------------------------------

M4_HORIZON = 48
M4_SEASON = 24


def read_m4(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """ids (n,) and y (n,) float64 of a long M4 file, sorted by unique_id then ds."""
    import pyarrow.parquet as pq

    table = pq.read_table(path).sort_by([("unique_id", "ascending"), ("ds", "ascending")])
    ids = np.asarray(table.column("unique_id").to_pylist(), dtype=object)
    return ids, table.column("y").to_numpy()


@pytest.mark.slow
def test_m4_hourly_benchmarks_match_the_published_scores(shared_data: Path) -> None:
    train_ids, values = read_m4(shared_data / "m4_hourly_train.parquet")
    test_ids, test_values = read_m4(shared_data / "m4_hourly_test.parquet")
    ids, lengths = np.unique(train_ids, return_counts=True)
    assert len(ids) == 414
    np.testing.assert_array_equal(np.unique(test_ids), ids)
    begins = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    cuts = lengths[:, None]  # (S, 1): one origin, at the end of the training part
    actual = test_values.reshape(len(ids), 1, M4_HORIZON)  # (S, K, H)

    scale = seasonal_scales(values, begins, cuts, M4_SEASON)
    forecasts = baseline_forecasts(values, begins, cuts, M4_HORIZON, M4_SEASON)
    seasonal = score(actual, forecasts["seasonal_naive"], scale)
    naive1 = score(actual, forecasts["naive"], scale)
    adjusted_naive = score(actual, forecasts["naive2"], scale)

    # Makridakis, Spiliotis & Assimakopoulos (2020), M4 Hourly: sNaive and Naive1.
    assert round(seasonal.summary["smape"]["mean"], 3) == 13.912
    assert round(seasonal.summary["mase"]["mean"], 3) == 1.193
    assert round(naive1.summary["smape"]["mean"], 3) == 43.003
    assert round(naive1.summary["mase"]["mean"], 3) == 11.608
    # Naive2, the benchmark of M4's OWA (issue 12): 413 of the 414 series are seasonal.
    assert round(adjusted_naive.summary["smape"]["mean"], 3) == 18.383
    assert round(adjusted_naive.summary["mase"]["mean"], 3) == 2.395
    assert seasonal_adjustment(values, begins, cuts, M4_SEASON).seasonal.sum() == 413
    assert seasonal.counts == {
        "series": 414,
        "points": 414 * 48,
        "missing": 0,
        "mape_skipped_zero": 0,
        "mase_undefined_series": 0,
    }

    for name in ["H1", "H413"]:
        index = int(np.flatnonzero(ids == name)[0])
        insample = values[begins[index] : begins[index] + lengths[index]]
        outsample = actual[index, 0]
        # The M4 benchmark code: the last season repeated, sMAPE and MASE per series.
        forecast = np.tile(insample[-M4_SEASON:], 2)
        smape = np.mean(200 * np.abs(outsample - forecast) / (np.abs(outsample) + np.abs(forecast)))
        mase = np.mean(np.abs(outsample - forecast)) / np.mean(
            np.abs(insample[M4_SEASON:] - insample[:-M4_SEASON])
        )
        np.testing.assert_array_equal(forecasts["seasonal_naive"][index, 0], forecast)
        assert seasonal.per_series["smape"][index] == pytest.approx(smape, rel=1e-12)
        assert seasonal.per_series["mase"][index] == pytest.approx(mase, rel=1e-9)
