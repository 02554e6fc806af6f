"""Metrics: every measure against arithmetic written out here, undefined cases, properties.

Shapes as in ``rnncast.metrics``: S series, K folds, H steps, Q quantiles. The
expected values are computed by hand in each test so a reader can check them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rnncast.metrics import (
    Scores,
    central_intervals,
    interval_name,
    quantile_name,
    score,
    seasonal_scales,
)

PROPERTY_SETTINGS = settings(max_examples=50, deadline=None, derandomize=True, database=None)
POINT_KEYS = ["mae", "rmse", "mape", "smape", "mase"]


def one(values: list[float]) -> np.ndarray:
    """One series, one fold: (1, 1, H)."""
    return np.array(values, dtype=np.float64).reshape(1, 1, -1)


# --- names and intervals -------------------------------------------------------------


@pytest.mark.parametrize(
    ("lower", "name"), [(0.1, "80"), (0.025, "95"), (0.05, "90"), (0.0125, "97.5")]
)
def test_interval_name_is_the_nominal_coverage_in_percent(lower: float, name: str) -> None:
    assert interval_name(lower) == name


@pytest.mark.parametrize(("q", "name"), [(0.1, "q10"), (0.025, "q2.5"), (0.5, "q50")])
def test_quantile_name(q: float, name: str) -> None:
    assert quantile_name(q) == name


def test_central_intervals_pairs_mirrored_levels_widest_first() -> None:
    assert central_intervals((0.1, 0.5, 0.9)) == [("80", 0.1, 0.9)]
    assert central_intervals((0.025, 0.1, 0.5, 0.9, 0.975)) == [
        ("95", 0.025, 0.975),
        ("80", 0.1, 0.9),
    ]
    # 0.2 has no mirror 0.8; 0.5 is its own mirror and no interval.
    assert central_intervals((0.1, 0.2, 0.5, 0.9)) == [("80", 0.1, 0.9)]
    assert central_intervals((0.5,)) == []
    assert central_intervals(()) == []
    # Levels written in decimal differ from exact mirrors by rounding; 1e-9 absorbs it.
    assert central_intervals((0.1, 0.9 + 1e-12)) == [("80", 0.1, 0.9 + 1e-12)]


# --- seasonal_scales -----------------------------------------------------------------


def test_seasonal_scales_by_hand() -> None:
    # Series a = [1, 3, 2, 6, 4] (m = 2): seasonal differences |2-1| = 1, |6-3| = 3,
    # |4-2| = 2. Series b = [10, 10, 13] starts at 5.
    values = np.array([1, 3, 2, 6, 4, 10, 10, 13], dtype=np.float32)
    begins = np.array([0, 5])
    cuts = np.array([[5, 4, 3, 2], [3, 3, 2, 1]])
    scales = seasonal_scales(values, begins, cuts, season=2)
    # a: cut 5 -> (1 + 3 + 2) / 3 = 2; cut 4 -> (1 + 3) / 2 = 2; cut 3 -> 1 / 1 = 1;
    # cut 2 = m -> no seasonal difference -> NaN.
    # b: cut 3 -> |13 - 10| / 1 = 3; cut 2 and 1 <= m -> NaN.
    expected = np.array([[2.0, 2.0, 1.0, np.nan], [3.0, 3.0, np.nan, np.nan]])
    np.testing.assert_array_equal(scales, expected)
    assert scales.dtype == np.float64


def test_seasonal_scales_constant_history_is_zero_and_short_history_nan() -> None:
    values = np.array([5, 5, 5, 5, 1, 2, 3], dtype=np.float64)
    begins = np.array([0, 4])
    cuts = np.array([[4], [3]])
    # Series 0 is constant: every difference is 0 -> scale 0.0 exactly.
    # Series 1 has 3 steps, fewer than m = 4 -> NaN.
    np.testing.assert_array_equal(seasonal_scales(values, begins, cuts, 1)[0], [0.0])
    np.testing.assert_array_equal(seasonal_scales(values, begins, cuts, 4), [[np.nan], [np.nan]])


def test_seasonal_scales_refuses_season_zero() -> None:
    with pytest.raises(ValueError, match="season must be >= 1, got 0"):
        seasonal_scales(np.ones(3), np.array([0]), np.array([[3]]), 0)


@st.composite
def ragged_histories(draw):
    """A buffer of several series, origins inside each, and a season."""
    lengths = draw(st.lists(st.integers(1, 30), min_size=1, max_size=6))
    folds = draw(st.integers(1, 3))
    season = draw(st.integers(1, 8))
    total = sum(lengths)
    values = draw(hnp.arrays(np.float32, total, elements=st.floats(-1e4, 1e4, width=32).map(round)))
    begins = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    cuts = np.array(
        [[draw(st.integers(1, length)) for _ in range(folds)] for length in lengths],
        dtype=np.int64,
    )
    return values, begins, cuts, season


@PROPERTY_SETTINGS
@given(ragged_histories())
def test_seasonal_scales_equal_a_direct_loop(case) -> None:
    values, begins, cuts, season = case
    expected = np.full(cuts.shape, np.nan)
    for s, begin in enumerate(begins):
        for k, cut in enumerate(cuts[s]):
            insample = values[begin : begin + cut].astype(np.float64)
            if cut > season:  # M4: np.mean(abs(insample[m:] - insample[:-m]))
                expected[s, k] = np.mean(np.abs(insample[season:] - insample[:-season]))
    np.testing.assert_allclose(seasonal_scales(values, begins, cuts, season), expected, rtol=1e-9)


# --- point metrics -------------------------------------------------------------------


def test_point_metrics_by_hand() -> None:
    actual = one([2, 4, 0, 5])
    point = one([1, 5, 0, 2])  # errors y - ŷ = 1, -1, 0, 3
    scores = score(actual, point, np.array([[2.0]]))
    got = {key: scores.per_series[key][0] for key in POINT_KEYS}
    assert got["mae"] == pytest.approx((1 + 1 + 0 + 3) / 4)
    assert got["rmse"] == pytest.approx(math.sqrt((1 + 1 + 0 + 9) / 4))
    # The zero actual is skipped: 100 * mean(1/2, 1/4, 3/5).
    assert got["mape"] == pytest.approx(100 * (1 / 2 + 1 / 4 + 3 / 5) / 3)
    # y = ŷ = 0 contributes 0: 200 * mean(1/3, 1/9, 0, 3/7).
    assert got["smape"] == pytest.approx(200 * (1 / 3 + 1 / 9 + 0 + 3 / 7) / 4)
    assert got["mase"] == pytest.approx((1 + 1 + 0 + 3) / 4 / 2)
    assert scores.counts == {
        "series": 1,
        "points": 4,
        "missing": 0,
        "mape_skipped_zero": 1,
        "mase_undefined_series": 0,
    }
    assert list(scores.per_series) == POINT_KEYS
    assert list(scores.per_step) == POINT_KEYS
    assert list(scores.summary) == POINT_KEYS


def test_all_zero_actuals_give_undefined_mape_and_zero_smape_when_forecast_is_zero() -> None:
    scores = score(one([0, 0]), one([0, 0]), np.array([[1.0]]))
    assert np.isnan(scores.per_series["mape"][0])
    assert scores.summary["mape"] == {"mean": None, "median": None}
    assert scores.per_series["smape"][0] == 0.0
    assert scores.counts["mape_skipped_zero"] == 2


def test_missing_actuals_and_forecasts_are_skipped_and_counted() -> None:
    nan = np.nan
    actual = np.array([[[1, nan, 3]], [[nan, nan, nan]]])
    point = np.array([[[2, 2, nan]], [[1, 1, 1]]])
    scores = score(actual, point, np.ones((2, 1)))
    # Series 0 scores only step 0 (|1 - 2| = 1); series 1 has no actual at all.
    np.testing.assert_array_equal(scores.per_series["mae"], [1.0, nan])
    np.testing.assert_array_equal(scores.per_step["mae"], [1.0, nan, nan])
    assert scores.counts["points"] == 1
    assert scores.counts["missing"] == 5
    # A series with nothing scored is not an undefined MASE, just an unscored series.
    assert scores.counts["mase_undefined_series"] == 0


def test_constant_history_leaves_mase_undefined_and_everything_else_defined() -> None:
    # Series 0 history [5, 5, 5, 5] is constant; series 1 history [1, 2, 4, 7].
    values = np.array([5, 5, 5, 5, 1, 2, 4, 7], dtype=np.float32)
    scale = seasonal_scales(values, np.array([0, 4]), np.array([[4], [4]]), season=1)
    np.testing.assert_array_equal(scale, [[0.0], [(1 + 2 + 3) / 3]])
    actual = np.array([[[5.0, 6.0]], [[8.0, 10.0]]])
    point = np.array([[[5.0, 5.0]], [[7.0, 7.0]]])
    scores = score(actual, point, scale)
    assert np.isnan(scores.per_series["mase"][0])
    assert scores.per_series["mase"][1] == pytest.approx((1 + 3) / 2 / 2)
    for key in ["mae", "rmse", "mape", "smape"]:
        assert np.isfinite(scores.per_series[key]).all(), key
    assert scores.counts["mase_undefined_series"] == 1
    # The MASE summary is over the one series where it is defined.
    assert scores.summary["mase"] == {"mean": 1.0, "median": 1.0}
    # Per step, MASE averages the usable points only: series 1's |e| / 2.
    np.testing.assert_allclose(scores.per_step["mase"], [1 / 2, 3 / 2])


def test_short_history_nan_scale_leaves_mase_undefined() -> None:
    scale = seasonal_scales(np.array([1.0, 2.0, 3.0]), np.array([0]), np.array([[3]]), 24)
    scores = score(one([4.0]), one([3.0]), scale)
    assert np.isnan(scores.per_series["mase"][0])
    assert scores.per_series["mae"][0] == 1.0
    assert scores.counts["mase_undefined_series"] == 1


def test_mase_averages_over_folds_with_a_usable_scale() -> None:
    # Fold 0 has scale 2, fold 1 scale 0 (unusable): only fold 0's points count.
    actual = np.array([[[3.0, 5.0], [1.0, 1.0]]])
    point = np.array([[[1.0, 1.0], [0.0, 0.0]]])
    scores = score(actual, point, np.array([[2.0, 0.0]]))
    assert scores.per_series["mase"][0] == pytest.approx((2 / 2 + 4 / 2) / 2)
    assert scores.per_series["mae"][0] == pytest.approx((2 + 4 + 1 + 1) / 4)


def test_per_step_metrics_pool_series_and_folds() -> None:
    # S = 2, K = 2, H = 2; errors |e| listed as [series][fold][step].
    actual = np.array([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])
    point = np.array([[[0.0, 2.0], [1.0, 1.0]], [[5.0, 2.0], [4.0, 8.0]]])
    # |e| = [[[1, 0], [2, 3]], [[0, 4], [3, 0]]]
    scale = np.array([[1.0, 2.0], [1.0, 1.0]])
    scores = score(actual, point, scale)
    for key in POINT_KEYS:
        assert scores.per_step[key].shape == (2,)
    # Step 1: |e| = 1, 2, 0, 3; step 2: 0, 3, 4, 0.
    np.testing.assert_allclose(scores.per_step["mae"], [6 / 4, 7 / 4])
    np.testing.assert_allclose(
        scores.per_step["rmse"], [math.sqrt((1 + 4 + 0 + 9) / 4), math.sqrt((0 + 9 + 16) / 4)]
    )
    np.testing.assert_allclose(scores.per_step["mase"], [(1 + 1 + 0 + 3) / 4, (0 + 1.5 + 4) / 4])
    np.testing.assert_allclose(
        scores.per_step["mape"], [100 * (1 + 2 / 3 + 0 + 3 / 7) / 4, 100 * (0 + 3 / 4 + 4 / 6) / 4]
    )
    np.testing.assert_allclose(scores.per_series["mae"], [(1 + 0 + 2 + 3) / 4, (0 + 4 + 3) / 4])


def test_summary_mean_median_skip_nan_and_are_python_floats() -> None:
    nan = np.nan
    # Per-series MAE 1, (none), 3, 8.
    actual = np.array([[[1.0]], [[nan]], [[3.0]], [[8.0]]])
    point = np.zeros((4, 1, 1))
    scores = score(actual, point, np.ones((4, 1)))
    assert scores.summary["mae"] == {"mean": (1 + 3 + 8) / 3, "median": 3.0}
    assert type(scores.summary["mae"]["mean"]) is float
    assert type(scores.summary["mae"]["median"]) is float
    assert all(type(count) is int for count in scores.counts.values())


def test_summary_is_none_when_no_series_is_scored() -> None:
    scores = score(one([np.nan, np.nan]), one([1.0, 2.0]), np.ones((1, 1)))
    assert scores.summary == {key: {"mean": None, "median": None} for key in POINT_KEYS}
    assert scores.counts["points"] == 0
    assert scores.counts["missing"] == 2


# --- quantile metrics ----------------------------------------------------------------


def interval_case() -> Scores:
    actual = one([5.0, 0.0, 12.0])
    values = np.array([[4.0, 5.0, 6.0], [1.0, 2.0, 4.0], [8.0, 9.0, 10.0]]).reshape(1, 1, 3, 3)
    # Step 1 inside [4, 6]; step 2 below [1, 4] by 1; step 3 above [8, 10] by 2.
    return score(
        actual, values[..., 1], np.array([[2.0]]), quantiles=(0.1, 0.5, 0.9), values=values
    )


def test_pinball_losses_by_hand() -> None:
    scores = interval_case()
    # q = 0.1, e = y - ŷ = 1, -1, 4 -> 0.1, 0.9, 0.4
    assert scores.per_series["pinball_q10"][0] == pytest.approx((0.1 + 0.9 + 0.4) / 3)
    # q = 0.5, e = 0, -2, 3 -> 0, 1, 1.5
    assert scores.per_series["pinball_q50"][0] == pytest.approx((0 + 1 + 1.5) / 3)
    # q = 0.9, e = -1, -4, 2 -> 0.1, 0.4, 1.8
    assert scores.per_series["pinball_q90"][0] == pytest.approx((0.1 + 0.4 + 1.8) / 3)
    assert scores.per_series["pinball"][0] == pytest.approx((1.4 + 2.5 + 2.3) / 9)
    assert scores.per_series["scaled_pinball"][0] == pytest.approx((1.4 + 2.5 + 2.3) / 9 / 2)
    np.testing.assert_allclose(scores.per_step["pinball_q10"], [0.1, 0.9, 0.4])


def test_interval_coverage_width_and_msis_by_hand() -> None:
    scores = interval_case()
    assert scores.per_series["coverage_80"][0] == pytest.approx(1 / 3)
    assert scores.per_series["width_80"][0] == pytest.approx((2 + 3 + 2) / 3)
    # α = 0.2, 2/α = 10: scores 2, 3 + 10 * 1 = 13, 2 + 10 * 2 = 22; divided by scale 2.
    assert scores.per_series["msis_80"][0] == pytest.approx((2 + 13 + 22) / 3 / 2)
    np.testing.assert_allclose(scores.per_step["coverage_80"], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(scores.per_step["msis_80"], [1.0, 6.5, 11.0])
    assert list(scores.per_series) == [
        *POINT_KEYS,
        "pinball_q10",
        "pinball_q50",
        "pinball_q90",
        "pinball",
        "scaled_pinball",
        "coverage_80",
        "width_80",
        "msis_80",
    ]


def test_non_finite_quantiles_drop_the_point_from_quantile_metrics_only() -> None:
    actual = one([1.0, 2.0])
    values = np.array([[0.0, 1.0, 2.0], [np.nan, 2.0, 3.0]]).reshape(1, 1, 2, 3)
    scores = score(
        actual, one([1.0, 3.0]), np.ones((1, 1)), quantiles=(0.1, 0.5, 0.9), values=values
    )
    assert scores.per_series["mae"][0] == pytest.approx(0.5)  # both points
    assert scores.per_series["width_80"][0] == 2.0  # the first point only
    assert scores.counts["points"] == 2


def test_score_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"scale must be \(S, K\)"):
        score(one([1.0]), one([1.0]), np.ones(1))
    with pytest.raises(ValueError, match="quantiles and values together"):
        score(one([1.0]), one([1.0]), np.ones((1, 1)), quantiles=(0.5,))
    with pytest.raises(ValueError, match=r"values must be \(S, K, H, Q\)"):
        score(one([1.0]), one([1.0]), np.ones((1, 1)), quantiles=(0.5,), values=np.ones((1, 1, 1)))


# --- properties ----------------------------------------------------------------------

_moderate = st.floats(-1e3, 1e3, allow_nan=False).map(lambda x: round(x, 3))


@st.composite
def panels(draw):
    """Histories (S, L) of one length, actuals and forecasts (S, 1, H), and a season."""
    series = draw(st.integers(1, 4))
    length = draw(st.integers(2, 20))
    horizon = draw(st.integers(1, 6))
    season = draw(st.integers(1, length - 1))
    history = draw(hnp.arrays(np.float64, (series, length), elements=_moderate))
    actual = draw(hnp.arrays(np.float64, (series, 1, horizon), elements=_moderate))
    point = draw(hnp.arrays(np.float64, (series, 1, horizon), elements=_moderate))
    begins = np.arange(series, dtype=np.int64) * length
    cuts = np.full((series, 1), length, dtype=np.int64)
    return history, begins, cuts, season, actual, point


@PROPERTY_SETTINGS
@given(panels())
def test_a_perfect_forecast_scores_zero(case) -> None:
    history, begins, cuts, season, actual, _ = case
    scale = seasonal_scales(history.ravel(), begins, cuts, season)
    scores = score(actual, actual.copy(), scale)
    for key in ["mae", "rmse", "smape"]:
        np.testing.assert_array_equal(scores.per_series[key], 0.0)
    defined = scale[:, 0] > 0
    np.testing.assert_array_equal(scores.per_series["mase"][defined], 0.0)
    assert np.isnan(scores.per_series["mase"][~defined]).all()


@PROPERTY_SETTINGS
@given(panels(), st.floats(0.01, 100.0))
def test_scale_free_metrics_ignore_the_unit(case, factor: float) -> None:
    history, begins, cuts, season, actual, point = case
    before = score(actual, point, seasonal_scales(history.ravel(), begins, cuts, season))
    scaled_scale = seasonal_scales(factor * history.ravel(), begins, cuts, season)
    after = score(factor * actual, factor * point, scaled_scale)
    for key in ["smape", "mape", "mase"]:
        np.testing.assert_allclose(after.per_series[key], before.per_series[key], rtol=1e-9)
    np.testing.assert_allclose(
        after.per_series["mae"], factor * before.per_series["mae"], rtol=1e-9, atol=1e-12
    )


@PROPERTY_SETTINGS
@given(panels())
def test_pinball_of_the_median_is_half_the_mae(case) -> None:
    _, _, _, _, actual, point = case
    scale = np.ones(actual.shape[:2])
    scores = score(actual, point, scale, quantiles=(0.5,), values=point[..., None])
    np.testing.assert_allclose(
        scores.per_series["pinball_q50"], scores.per_series["mae"] / 2, rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(scores.per_step["pinball"], scores.per_step["mae"] / 2, atol=1e-12)
