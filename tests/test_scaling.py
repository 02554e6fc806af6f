"""Scaling: scale -> unscale is the identity, fitted on training steps only, safe scales."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncast.config import SCALERS, DataConfig
from rnncast.errors import DataError
from rnncast.frequency import NS_PER_HOUR, Frequency
from rnncast.panel import Panel
from rnncast.scaling import (
    Scaler,
    choose_scaler,
    choose_transform,
    fit_scaler,
    from_model_space,
    logarithms_reason,
    scale_values,
    to_model_space,
    unscale,
)

PROPERTY_SETTINGS = settings(max_examples=50, deadline=None, derandomize=True, database=None)


def make_panel(series: list[list[float]]) -> Panel:
    """A Panel straight from arrays (no ingestion), hourly, without covariates."""
    lengths = np.array([len(values) for values in series], dtype=np.int64)
    ends = np.cumsum(lengths)
    values = np.concatenate([np.asarray(values, dtype=np.float32) for values in series])
    return Panel(
        ids=np.array([f"s{index}" for index in range(len(series))], dtype=object),
        values=values,
        begins=ends - lengths,
        ends=ends,
        start_times=np.zeros(len(series), dtype=np.int64),
        freq=Frequency(step_ns=NS_PER_HOUR),
        covariates=np.zeros((values.shape[0], 0), dtype=np.float32),
    )


def frame_with_covariates(values: dict[str, list[float]], temps: dict[str, list[float]]):
    parts = [
        pd.DataFrame(
            {
                "unique_id": name,
                "ds": pd.date_range("2024-03-01", periods=len(series), freq="h"),
                "y": series,
                "temp": temps[name],
                "price": np.full(len(series), 7.0),  # constant column
            }
        )
        for name, series in values.items()
    ]
    return pd.concat(parts, ignore_index=True)


def series_slices(panel: Panel) -> list[slice]:
    """Where each series sits in the flat output of scale_values."""
    offsets = np.concatenate([[0], np.cumsum(panel.lengths)])
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(offsets)]


_LIMIT = float(np.float32(1e30))
_finite32 = st.floats(
    min_value=-_LIMIT, max_value=_LIMIT, allow_nan=False, width=32, allow_subnormal=False
)
_magnitudes = st.sampled_from([1e-30, 1e-12, 1e-3, 1.0, 1e4, 1e12, 1e30])
_wild = st.lists(_finite32, min_size=1, max_size=12)
_constant = st.builds(lambda value, count: [value] * count, _finite32, st.integers(1, 12))
# A level far above the spread: the case a relative floor on the scale exists for.
_offset = st.builds(
    lambda pattern, magnitude, level: [level + magnitude * step for step in pattern],
    st.lists(st.integers(-5, 5), min_size=1, max_size=12),
    _magnitudes,
    st.sampled_from([0.0, -1e6, 3e8, -2e20]),
)
series_sets = st.lists(st.one_of(_wild, _constant, _offset), min_size=1, max_size=4)


@PROPERTY_SETTINGS
@given(series=series_sets)
def test_unscale_inverts_scale_values_for_every_method(series: list[list[float]]) -> None:
    panel = make_panel(series)
    for method in SCALERS:
        scaler = fit_scaler(panel, method)
        assert np.isfinite(scaler.scale).all() and (scaler.scale > 0).all(), method
        scaled, _ = scale_values(panel, scaler)
        assert scaled.dtype == np.float32 and np.isfinite(scaled).all(), method
        for index, rows in enumerate(series_slices(panel)):
            original = panel.series(index).astype(np.float64)
            restored = unscale(scaled[rows][None, :], scaler.take(np.array([index])))[0]
            loc = scaler.loc[index]
            # scale_values returns float32: one float32 rounding of (x - loc) / scale, which
            # is relative to x - loc, or absolute where it falls among float32 subnormals.
            tolerance = 1e-6 * np.abs(original - loc) + 1e-12 * np.abs(original).max()
            assert (np.abs(restored - original) <= tolerance).all(), (method, index)


def test_unscale_broadcasts_over_trailing_axes() -> None:
    panel = make_panel([[1.0, 2.0, 3.0], [10.0, 30.0, 50.0]])
    scaler = fit_scaler(panel, "standard")
    forecasts = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)  # (S, H, Q)
    restored = unscale(forecasts, scaler)
    assert restored.dtype == np.float64
    expected = forecasts * scaler.scale[:, None, None] + scaler.loc[:, None, None]
    np.testing.assert_allclose(restored, expected, rtol=1e-12)


@pytest.mark.parametrize("method", SCALERS)
def test_scaler_of_the_head_ignores_the_tail(method: str) -> None:
    values = {"a": [1.0, 4.0, 2.0, 8.0, 5.0, 7.0, 3.0], "b": [10.0, 12.0, 9.0, 11.0, 30.0]}
    temps = {"a": [0.0, 1.0, 3.0, 2.0, 5.0, 4.0, 6.0], "b": [2.0, 2.5, 1.0, 0.5, 9.0]}
    changed_values = {name: [*series[:-2], 1e6, -3e5] for name, series in values.items()}
    changed_temps = {name: [*series[:-2], -50.0, 80.0] for name, series in temps.items()}
    config = DataConfig(covariates=("temp", "price"))
    panel = Panel.from_frame(frame_with_covariates(values, temps), config)
    changed = Panel.from_frame(frame_with_covariates(changed_values, changed_temps), config)

    first = fit_scaler(panel.split_tail(2)[0], method)
    second = fit_scaler(changed.split_tail(2)[0], method)
    whole = fit_scaler(panel, method)

    for name in ("loc", "scale", "covariate_loc", "covariate_scale"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name), err_msg=name)
    # The tail does move a scaler fitted on everything, so the check above can fail.
    assert not np.array_equal(whole.scale, first.scale)


@pytest.mark.parametrize("method", SCALERS)
@pytest.mark.parametrize("level", [0.0, 1e-20, 0.25, -3.0, 5e4, -2e20])
def test_constant_series_get_a_finite_positive_scale(method: str, level: float) -> None:
    panel = make_panel([[level] * 6, [1.0, 2.0, 3.0]])
    scaler = fit_scaler(panel, method)
    scale = scaler.scale[0]
    assert np.isfinite(scale) and scale > 0
    scaled, _ = scale_values(panel, scaler)
    assert np.isfinite(scaled[:6]).all()
    assert (np.abs(scaled[:6]) <= 1.0).all()
    np.testing.assert_allclose(unscale(scaled[None, :6], scaler.take(np.array([0])))[0], level)


@pytest.mark.parametrize(
    ("method", "loc", "scale"),
    [
        ("standard", 2.5, np.sqrt(1.25)),
        ("meanabs", 0.0, 2.5),
        # quantiles of 1..4: 1.75, 2.5, 3.25
        ("robust", 2.5, 1.5 / 1.349),
    ],
)
def test_each_method_fits_its_location_and_scale(method: str, loc: float, scale: float) -> None:
    scaler = fit_scaler(make_panel([[1.0, 2.0, 3.0, 4.0]]), method)
    np.testing.assert_allclose(scaler.loc, [loc], rtol=1e-12)
    np.testing.assert_allclose(scaler.scale, [scale], rtol=1e-12)


def test_robust_scale_is_unmoved_by_one_outlier() -> None:
    plain = fit_scaler(make_panel([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]]), "robust")
    spiked = fit_scaler(make_panel([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9e5]]), "robust")
    assert spiked.loc[0] == plain.loc[0]
    assert spiked.scale[0] == plain.scale[0]


def test_covariates_are_standardised_per_column_on_training_rows_only() -> None:
    values = {"a": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "b": [3.0, 1.0, 4.0, 1.0, 5.0]}
    temps = {"a": [10.0, 12.0, 11.0, 15.0, 90.0, 95.0], "b": [-4.0, -2.0, 0.0, 70.0, 80.0]}
    panel = Panel.from_frame(
        frame_with_covariates(values, temps), DataConfig(covariates=("temp", "price"))
    )
    head, _ = panel.split_tail(2)
    scaler = fit_scaler(head, "standard")

    training_temps = np.array([10.0, 12.0, 11.0, 15.0, -4.0, -2.0, 0.0])
    np.testing.assert_allclose(scaler.covariate_loc, [training_temps.mean(), 7.0], rtol=1e-6)
    # A constant column keeps scale 1, so it maps to zeros rather than dividing by zero.
    np.testing.assert_allclose(scaler.covariate_scale, [training_temps.std(), 1.0], rtol=1e-6)

    _, covariates = scale_values(panel, scaler)
    head_rows = np.r_[0:4, 6:9]
    np.testing.assert_allclose(covariates[head_rows, 0].mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(covariates[head_rows, 0].std(), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(covariates[:, 1], 0.0)
    expected = (np.concatenate([temps["a"], temps["b"]]) - training_temps.mean()) / (
        training_temps.std()
    )
    np.testing.assert_allclose(covariates[:, 0], expected, rtol=1e-5)


def test_scale_values_uses_each_series_own_location_and_scale() -> None:
    panel = make_panel([[1.0, 3.0], [100.0, 300.0, 200.0]])
    scaler = fit_scaler(panel, "standard")
    scaled, covariates = scale_values(panel, scaler)
    np.testing.assert_allclose(scaled, [-1.0, 1.0, -np.sqrt(1.5), np.sqrt(1.5), 0.0], rtol=1e-6)
    assert covariates.shape == (5, 0)


def test_take_reorders_series_and_keeps_covariates() -> None:
    values = {"a": [1.0, 2.0, 4.0], "b": [10.0, 50.0, 20.0], "c": [-3.0, -1.0, -9.0]}
    temps = {"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0], "c": [0.0, 0.0, 9.0]}
    panel = Panel.from_frame(frame_with_covariates(values, temps), DataConfig(covariates=("temp",)))
    scaler = fit_scaler(panel, "standard")
    order = np.array([2, 0])
    taken = scaler.take(order)

    assert isinstance(taken, Scaler)
    assert taken.method == "standard"
    assert taken.ids.tolist() == ["c", "a"]
    np.testing.assert_array_equal(taken.loc, scaler.loc[[2, 0]])
    np.testing.assert_array_equal(taken.scale, scaler.scale[[2, 0]])
    np.testing.assert_array_equal(taken.covariate_loc, scaler.covariate_loc)
    np.testing.assert_array_equal(taken.covariate_scale, scaler.covariate_scale)
    # Taking the same series of panel and scaler scales them as the whole panel did.
    whole, _ = scale_values(panel, scaler)
    part, _ = scale_values(panel.take(order), taken)
    np.testing.assert_array_equal(part, np.concatenate([whole[6:9], whole[0:3]]))


def test_the_shared_scaler_gives_every_series_the_typical_change() -> None:
    # Mean absolute changes: 1, 3 and 10 (median 3); the last series never moves and
    # has no say.
    panel = make_panel([[1.0, 2.0, 3.0], [0.0, 3.0, 0.0, 3.0], [5.0, 15.0], [7.0, 7.0]])
    scaler = fit_scaler(panel, "shared")
    np.testing.assert_allclose(scaler.scale, [3.0] * 4, rtol=1e-12)
    np.testing.assert_allclose(scaler.loc, [2.0, 1.5, 10.0, 7.0], rtol=1e-12)
    assert fit_scaler(make_panel([[2.0, 2.0], [5.0]]), "shared").scale.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    ("freq", "transform", "chosen"),
    [(Frequency(months=12), "log", "shared"), (Frequency(months=12), "none", "standard"),
     (Frequency(months=1), "log", "standard"), (Frequency(months=3), "log", "standard"),
     (Frequency(step_ns=7 * 24 * NS_PER_HOUR), "log", "standard"),
     (Frequency(step_ns=NS_PER_HOUR), "none", "standard")],
)  # fmt: skip
def test_one_scale_is_chosen_for_the_logarithms_of_series_without_a_season(
    freq: Frequency, transform: str, chosen: str
) -> None:
    assert choose_scaler(replace(make_panel([[1.0, 2.0, 4.0]]), freq=freq), transform) == chosen


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scaler 'minmax'"):
        fit_scaler(make_panel([[1.0, 2.0]]), "minmax")


@pytest.mark.parametrize(
    ("freq", "chosen"),
    [(Frequency(months=1), "log"), (Frequency(months=12), "log"),
     (Frequency(step_ns=7 * 24 * NS_PER_HOUR), "log"),
     (Frequency(step_ns=24 * NS_PER_HOUR), "none"), (Frequency(step_ns=NS_PER_HOUR), "none")],
)  # fmt: skip
def test_logarithms_are_chosen_for_weeks_and_longer_where_every_value_is_above_zero(
    freq: Frequency, chosen: str
) -> None:
    def of(series: list[list[float]]) -> Panel:
        return replace(make_panel(series), freq=freq)

    assert choose_transform(of([[1.0, 2.0, 3.0], [0.5, 7.0]])) == chosen
    assert choose_transform(of([[1.0, 2.0, 3.0], [0.0, 7.0]])) == "none"
    assert choose_transform(of([[1.0, -2.0, 3.0]])) == "none"
    # Only the series' own steps count, not the rest of a shared buffer.
    panel = of([[-5.0, 2.0, 3.0], [4.0, 7.0]])
    assert choose_transform(panel.take([1])) == chosen
    assert to_model_space(panel.take([1]), "log").series(0).tolist() == pytest.approx(
        np.log([4.0, 7.0]).tolist()
    )


def daily_cycles(swing: float, days: int = 10) -> list[float]:
    """Hourly values whose lowest hour each day is 10 and whose highest is 10 * swing."""
    day = 10.0 * swing ** ((1 - np.cos(np.linspace(0, 2 * np.pi, 24, endpoint=False))) / 2)
    return np.tile(day, days).tolist()


@pytest.mark.parametrize(
    ("swinging", "steady", "chosen"),
    [(2, 18, "log"), (1, 19, "none"), (0, 20, "none"), (20, 0, "log")],
)
def test_hourly_logarithms_are_chosen_where_a_tenth_of_the_series_swing_by_factors(
    swinging: int, steady: int, chosen: str
) -> None:
    panel = make_panel([daily_cycles(5.0)] * swinging + [daily_cycles(1.9)] * steady)
    assert panel.freq.season_length == 24
    assert choose_transform(panel) == chosen
    reason = logarithms_reason(panel)
    assert (reason is None) == (chosen == "none")
    if reason is not None:
        assert reason.startswith(f"{swinging / 20:.0%} of the series swing")


def test_swings_are_read_over_whole_seasons_of_values_above_zero() -> None:
    # A swing just under e a day is not a factor; one just over is.
    assert choose_transform(make_panel([daily_cycles(2.7)])) == "none"
    assert choose_transform(make_panel([daily_cycles(2.75)])) == "log"
    # Under two whole days there is no typical day to read.
    assert choose_transform(make_panel([daily_cycles(5.0, days=1)])) == "none"
    # A value of 0 anywhere keeps the values, however the others swing.
    assert choose_transform(make_panel([daily_cycles(5.0), [0.0, *daily_cycles(5.0)]])) == "none"
    # A typical day is the median one: a single day of a wide swing does not count.
    one_wide_day = daily_cycles(5.0, days=1) + daily_cycles(1.5, days=9)
    assert choose_transform(make_panel([one_wide_day])) == "none"


@given(st.lists(st.floats(1e-3, 1e6), min_size=1, max_size=30))
@PROPERTY_SETTINGS
def test_the_model_space_maps_back_to_the_values(values: list[float]) -> None:
    panel = make_panel([values, [2.0, 3.0]])
    logged = to_model_space(panel, "log")
    assert logged.values is not panel.values
    np.testing.assert_allclose(logged.series(0), np.log(panel.series(0)), rtol=1e-6, atol=1e-6)
    back = from_model_space(logged.values[: len(values)], "log")
    np.testing.assert_allclose(back, panel.series(0), rtol=1e-5)
    assert to_model_space(panel, "none") is panel
    np.testing.assert_array_equal(from_model_space(panel.values, "none"), panel.values)


def test_a_value_the_logarithm_cannot_take_is_named() -> None:
    panel = make_panel([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0, -1.0]])
    with pytest.raises(DataError) as raised:
        to_model_space(panel, "log")
    message = str(raised.value)
    assert "'s1' has 0 in column 'y'" in message
    assert "1970-01-01 02:00" in message  # its third hour
    assert "2 such values" in message and "--transform none" in message
    assert "\n" not in message
