"""Base forecasts (issue 12): each reads nothing after its origin, follows what it
models exactly on data that is exactly that, and finds a season only where there is
one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncast.bases import BASES, Combination, base_forecast, base_forecasts
from rnncast.seasons import seasonal_adjustment


def has_season(values: np.ndarray, season: int) -> bool:
    cuts = np.array([[values.shape[0]]])
    return bool(
        seasonal_adjustment(values, np.zeros(1, dtype=np.int64), cuts, season).seasonal[0, 0]
    )


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    length=st.integers(2, 80),
    cut=st.integers(1, 80),
    season=st.sampled_from([1, 4, 7, 12]),
    method=st.sampled_from(BASES),
    seed=st.integers(0, 2**16),
)
def test_no_base_forecast_reads_past_its_origin(
    length: int, cut: int, season: int, method: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.gamma(2.0, 10.0, length) + 1.0
    cut = min(cut, length)
    changed = values.copy()
    changed[cut:] = rng.normal(1e6, 1e5, length - cut)  # the future, rewritten
    cuts = np.array([[cut]])
    begins = np.zeros(1, dtype=np.int64)
    first = base_forecasts(values, begins, cuts, 5, season, method)
    second = base_forecasts(changed, begins, cuts, 5, season, method)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first[0, 0], base_forecast(values[:cut], 5, season, method))
    assert np.isfinite(first).all()


@pytest.mark.parametrize("method", BASES)
def test_a_constant_series_is_forecast_as_that_constant(method: str) -> None:
    np.testing.assert_allclose(base_forecast(np.full(40, 7.0), 6, 12, method), 7.0)


def test_naive_drift_and_seasonal_naive_do_what_they_say() -> None:
    values = np.arange(1.0, 25.0)  # 1 .. 24, a straight line
    np.testing.assert_array_equal(base_forecast(values, 3, 1, "naive"), [24.0, 24.0, 24.0])
    np.testing.assert_allclose(base_forecast(values, 3, 1, "drift"), [25.0, 26.0, 27.0])
    np.testing.assert_array_equal(base_forecast(values, 5, 4, "seasonal_naive"),
                                  [21.0, 22.0, 23.0, 24.0, 21.0])  # fmt: skip


def test_theta_continues_a_straight_line_at_half_its_slope_beyond_ses() -> None:
    # On an exact line SES (alpha 1) sits on the last value and Theta adds half the
    # slope per step plus the correction for the level SES absorbed.
    values = 3.0 + 0.5 * np.arange(30.0)
    forecast = base_forecast(values, 4, 1, "theta")
    np.testing.assert_allclose(np.diff(forecast), 0.25)
    assert forecast[0] > values[-1]


def test_a_season_is_found_only_where_there_is_one() -> None:
    rng = np.random.default_rng(0)
    steps = np.arange(96)
    seasonal = 50 + 10 * np.sin(2 * np.pi * steps / 12) + rng.normal(0, 1, 96)
    noise = 50 + rng.normal(0, 1, 96)
    assert has_season(seasonal, 12)
    assert not has_season(noise, 12)
    assert not has_season(seasonal[:30], 12)  # under three seasons: no test
    # A series without a season is forecast without one imposed.
    flat = base_forecast(noise, 12, 12, "ses")
    assert np.ptp(flat) == 0.0
    shaped = base_forecast(seasonal, 12, 12, "ses")
    assert np.corrcoef(shaped, np.sin(2 * np.pi * (steps[-1] + 1 + np.arange(12)) / 12))[0, 1] > 0.9


def test_seasonal_adjustment_is_multiplicative_for_positive_data_and_scales_with_it() -> None:
    steps = np.arange(60)
    values = (100 + steps) * (1 + 0.2 * np.sin(2 * np.pi * steps / 6))
    for method in ("ses", "theta", "drift"):
        np.testing.assert_allclose(
            base_forecast(10 * values, 6, 6, method), 10 * base_forecast(values, 6, 6, method)
        )


def test_the_blend_moves_every_quantile_with_the_median() -> None:
    network = np.array([[[[1.0, 2.0, 4.0], [2.0, 3.0, 5.0]]]])  # (S=1, K=1, H=2, Q=3)
    base = np.array([[[10.0, 20.0]]])  # (1, 1, 2)
    blended = Combination("naive", (0.0, 0.5)).apply(network, base, median=1)
    np.testing.assert_allclose(blended[0, 0, 0], [9.0, 10.0, 12.0])  # all base: median 10
    np.testing.assert_allclose(blended[0, 0, 1], [10.5, 11.5, 13.5])  # half way: 11.5
    np.testing.assert_array_equal(Combination("naive", (1.0, 1.0)).apply(network, base, 1),
                                  network)  # fmt: skip


def test_a_blend_weight_outside_0_1_or_an_unknown_base_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown base forecast"):
        Combination("prophet", (0.5,))
    with pytest.raises(ValueError, match=r"blend weights must lie in \[0, 1\]"):
        Combination("naive", (1.5,))


def test_many_origins_of_many_series_equal_their_histories_forecast_alone() -> None:
    rng = np.random.default_rng(1)
    lengths = [40, 55, 70]
    series = [50 + 10 * np.sin(2 * np.pi * np.arange(n) / 6) + rng.normal(0, 1, n)
              for n in lengths]  # fmt: skip
    values = np.concatenate(series)
    begins = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    cuts = np.array([[20, 30, 40], [25, 40, 55], [18, 50, 70]])
    for method in BASES:
        together = base_forecasts(values, begins, cuts, 4, 6, method)
        for s, row in enumerate(cuts):
            for k, cut in enumerate(row):
                np.testing.assert_allclose(
                    together[s, k], base_forecast(series[s][:cut], 4, 6, method), rtol=1e-12
                )


def test_calibration_reaches_the_nominal_coverage_on_known_quantiles() -> None:
    # Issue 13: the network's intervals are too narrow (it claims +-0.5 where the noise is
    # standard normal); offsets fitted on one sample cover 80 % of a fresh one.
    from rnncast.selection import _calibration

    rng = np.random.default_rng(0)
    quantiles = (0.1, 0.5, 0.9)
    narrow = np.array([-0.5, 0.0, 0.5])

    def sample(count: int):
        actual = rng.normal(0.0, 1.0, (count, 1, 4))  # (S, K, H)
        blended = np.broadcast_to(narrow, (count, 1, 4, 3)).copy()
        return actual, blended

    actual, blended = sample(4000)
    offsets = _calibration(blended, actual, np.ones((4000, 1, 1)), quantiles)
    assert all(row[1] == 0.0 for row in offsets)  # the point forecast stays
    calibrated = Combination("naive", (1.0,) * 4, offsets).apply(
        blended, blended[..., 1], median=1, scale=np.ones((4000, 1))
    )
    fresh, _ = sample(4000)
    inside = (calibrated[..., 0] <= fresh) & (fresh <= calibrated[..., 2])
    before = (blended[..., 0] <= fresh) & (fresh <= blended[..., 2])
    assert abs(inside.mean() - 0.8) < 0.02, inside.mean()
    assert before.mean() < 0.45  # the uncalibrated +-0.5 covers about 38 %


def _textbook(history: np.ndarray, horizon: int, method: str) -> np.ndarray:
    """One history at a time, as the definitions read: SES with each weight of the
    grid, the best by in-sample squared one-step error; Theta adds half of
    np.polyfit's slope."""
    from rnncast.bases import _ALPHAS

    n = history.shape[0]
    steps = np.arange(1, horizon + 1)
    if n < 2:
        return np.full(horizon, history[-1])
    if method == "drift":
        return history[-1] + steps * (history[-1] - history[0]) / (n - 1)
    best = None
    for alpha in _ALPHAS:
        level, error = history[0], 0.0
        for value in history[1:]:
            error += (value - level) ** 2
            level += alpha * (value - level)
        if best is None or error < best[0]:
            best = (error, alpha, level)
    _, alpha, level = best
    if method == "ses":
        return np.full(horizon, level)
    slope = np.polyfit(np.arange(n), history, 1)[0] if n > 2 else 0.0
    return level + slope / 2 * (steps - 1 + (1 - (1 - alpha) ** n) / alpha)


@pytest.mark.parametrize("method", ["ses", "theta", "drift"])
def test_histories_smoothed_together_match_the_textbook_one_at_a_time(method: str) -> None:
    rng = np.random.default_rng(7)
    lengths = [1, 2, 3, 5, 17, 64, 200, 3]
    series = [100 + np.cumsum(rng.normal(0, 3, n)) for n in lengths]
    values = np.concatenate(series)
    begins = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    cuts = np.array([[n, max(n - 1, 1)] for n in lengths])
    together = base_forecasts(values, begins, cuts, 5, 1, method)
    for s, row in enumerate(cuts):
        for k, cut in enumerate(row):
            expected = _textbook(series[s][:cut], 5, method)
            np.testing.assert_allclose(together[s, k], expected, rtol=1e-10, atol=1e-9)


def test_blocks_of_histories_change_no_forecast(monkeypatch: pytest.MonkeyPatch) -> None:
    import rnncast.bases as bases

    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 90, 40)
    values = rng.gamma(3.0, 10.0, int(lengths.sum())) + 1.0
    begins = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    cuts = np.column_stack([lengths, np.maximum(lengths // 2, 1)])
    whole = {m: base_forecasts(values, begins, cuts, 7, 4, m) for m in ("ses", "theta", "drift")}
    monkeypatch.setattr(bases, "_BLOCK_VALUES", 100)  # a block of one to a few histories
    for method, expected in whole.items():
        np.testing.assert_array_equal(base_forecasts(values, begins, cuts, 7, 4, method), expected)


@pytest.mark.parametrize("method", BASES)
@pytest.mark.parametrize("level", [0.05, 800.0])
def test_logarithms_are_adjusted_for_the_season_the_values_show(method: str, level: float) -> None:
    # A multiplicative season at a steady level, below 1 or far above it: forecast
    # from the logarithms, the season is the values' (measured on them, its logarithm
    # taken off and put back), so every base gives the logarithm of its forecast of
    # the values. Multiplying logarithms by the indices would not; below 1, where the
    # logarithms are all below 0, it would not adjust at all.
    season, horizon = 12, 18
    pattern = 1 + 0.3 * np.sin(2 * np.pi * np.arange(season) / season)
    values = level * np.tile(pattern, 8)
    begins, cuts = np.zeros(1, dtype=np.int64), np.array([[84, 96]])
    assert seasonal_adjustment(values, begins, cuts, season).adjusted.all()
    of_values = base_forecasts(values, begins, cuts, horizon, season, method)
    of_logs = base_forecasts(np.log(values), begins, cuts, horizon, season, method,
                             logarithms=True)  # fmt: skip
    np.testing.assert_allclose(of_logs, np.log(of_values), atol=1e-9)
    if method != "naive":  # every other base continues the season
        np.testing.assert_allclose(np.exp(of_logs[0, 1]), np.resize(values[:season], horizon),
                                   rtol=1e-9)  # fmt: skip
