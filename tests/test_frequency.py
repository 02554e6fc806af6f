from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncast.errors import ConfigError
from rnncast.frequency import (
    NS_PER_DAY,
    NS_PER_HOUR,
    NS_PER_MINUTE,
    NS_PER_WEEK,
    Frequency,
    calendar_feature_names,
    calendar_features,
    infer_frequency,
    parse_frequency,
    shift_times,
    step_positions,
)


def stamps(*texts: str) -> np.ndarray:
    return np.array(texts, dtype="datetime64[ns]").astype(np.int64)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("h", Frequency(step_ns=NS_PER_HOUR)),
        ("H", Frequency(step_ns=NS_PER_HOUR)),
        ("2h", Frequency(step_ns=2 * NS_PER_HOUR)),
        ("15min", Frequency(step_ns=15 * NS_PER_MINUTE)),
        ("D", Frequency(step_ns=NS_PER_DAY)),
        ("W", Frequency(step_ns=NS_PER_WEEK)),
        ("W-SUN", Frequency(step_ns=NS_PER_WEEK)),
        ("MS", Frequency(months=1)),
        ("ME", Frequency(months=1, month_end=True)),
        ("M", Frequency(months=1, month_end=True)),
        ("QS", Frequency(months=3)),
        ("QS-JAN", Frequency(months=3)),
        ("YE", Frequency(months=12, month_end=True)),
    ],
)
def test_parse_frequency_accepts_pandas_aliases(text: str, expected: Frequency) -> None:
    assert parse_frequency(text) == expected


@pytest.mark.parametrize("text", ["fortnightly", "B", "0h", "", "3x"])
def test_parse_frequency_rejects_unknown_steps_with_the_accepted_list(text: str) -> None:
    with pytest.raises(ConfigError, match="--freq"):
        parse_frequency(text)


@pytest.mark.parametrize(
    ("freq", "alias", "label", "season"),
    [
        (Frequency(step_ns=NS_PER_HOUR), "h", "hourly", 24),
        (Frequency(step_ns=30 * NS_PER_MINUTE), "30min", "every 30min", 48),
        (Frequency(step_ns=15 * NS_PER_MINUTE), "15min", "every 15min", 96),
        (Frequency(step_ns=NS_PER_DAY), "D", "daily", 7),
        (Frequency(step_ns=NS_PER_WEEK), "7D", "weekly", 52),
        (Frequency(months=1), "MS", "monthly", 12),
        (Frequency(months=3, month_end=True), "3ME", "quarterly", 4),
        (Frequency(months=12), "12MS", "yearly", 1),
    ],
)
def test_alias_label_and_season_length(freq: Frequency, alias: str, label: str, season: int):
    assert (freq.alias, freq.label, freq.season_length) == (alias, label, season)


def test_frequency_needs_exactly_one_step() -> None:
    with pytest.raises(ConfigError):
        Frequency(step_ns=NS_PER_HOUR, months=1)
    with pytest.raises(ConfigError):
        Frequency()


def test_infer_hourly_despite_gaps_and_series_of_other_spacing() -> None:
    times = np.concatenate(
        [
            stamps("2024-01-01T00", "2024-01-01T01", "2024-01-01T05"),
            stamps("2024-03-01T00", "2024-03-01T02", "2024-03-01T04"),
        ]
    )
    assert infer_frequency(times, np.array([0, 3, 6])) == Frequency(step_ns=NS_PER_HOUR)


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (("2024-01-01", "2024-02-01", "2024-03-01", "2024-05-01"), Frequency(months=1)),
        (("2024-01-31", "2024-02-29", "2024-03-31"), Frequency(months=1, month_end=True)),
        (("2023-01-01", "2023-04-01", "2023-07-01"), Frequency(months=3)),
        (("2020-12-31", "2021-12-31", "2023-12-31"), Frequency(months=12, month_end=True)),
        (("2024-01-01", "2024-01-29", "2024-02-26"), Frequency(step_ns=28 * NS_PER_DAY)),
    ],
)
def test_infer_calendar_steps(texts: tuple[str, ...], expected: Frequency) -> None:
    assert infer_frequency(stamps(*texts), np.array([0, len(texts)])) == expected


def test_infer_gives_none_when_no_series_has_two_stamps() -> None:
    assert infer_frequency(stamps("2024-01-01", "2024-06-01"), np.array([0, 1, 2])) is None


def test_positions_mark_off_grid_stamps() -> None:
    times = stamps("2024-01-01T00:00", "2024-01-01T03:00", "2024-01-01T03:30")
    origins = np.repeat(times[:1], 3)
    positions = step_positions(times, origins, Frequency(step_ns=NS_PER_HOUR))
    assert positions.tolist() == [0, 3, -1]


def test_month_end_shift_lands_on_the_last_day_of_each_month() -> None:
    origin = stamps("2024-01-31T12:00")
    shifted = shift_times(np.repeat(origin, 3), np.arange(3), Frequency(months=1, month_end=True))
    expected = stamps("2024-01-31T12:00", "2024-02-29T12:00", "2024-03-31T12:00")
    assert shifted.tolist() == expected.tolist()


frequencies = st.sampled_from(
    [
        Frequency(step_ns=NS_PER_HOUR),
        Frequency(step_ns=15 * NS_PER_MINUTE),
        Frequency(step_ns=NS_PER_DAY),
        Frequency(months=1),
        Frequency(months=3),
        Frequency(months=1, month_end=True),
        Frequency(months=12, month_end=True),
    ]
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    freq=frequencies,
    origin_day=st.integers(0, 20_000),  # up to 2024; 200 years on stays below 2262
    hour=st.integers(0, 23),
    steps=st.lists(st.integers(0, 200), min_size=1, max_size=20),
)
def test_shift_then_position_is_identity(freq, origin_day, hour, steps) -> None:
    day = np.datetime64("1970-01-01", "D") + origin_day
    if freq.is_calendar:
        month = day.astype("datetime64[M]")
        day = (month + 1).astype("datetime64[D]") - 1 if freq.month_end else month
    origin = day.astype("datetime64[ns]").astype(np.int64) + hour * NS_PER_HOUR
    origins = np.full(len(steps), origin, dtype=np.int64)
    shifted = shift_times(origins, np.array(steps), freq)
    assert step_positions(shifted, origins, freq).tolist() == steps


def test_calendar_features_put_monday_midnight_at_phase_zero() -> None:
    freq = Frequency(step_ns=NS_PER_HOUR)
    monday = stamps("2024-01-01T00:00", "2024-01-01T06:00")  # 2024-01-01 is a Monday
    features = calendar_features(monday, freq)
    names = calendar_feature_names(freq)
    column = {name: features[:, i] for i, name in enumerate(names)}
    assert features.shape == (2, 6)
    assert column["time_of_day_sin"][0] == pytest.approx(0.0, abs=1e-6)
    assert column["time_of_day_cos"][0] == pytest.approx(1.0)
    assert column["time_of_day_sin"][1] == pytest.approx(1.0)  # 06:00 is a quarter day
    assert column["day_of_week_sin"][0] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    ("freq", "cycles"),
    [
        (Frequency(step_ns=NS_PER_HOUR), ["time_of_day", "day_of_week", "day_of_year"]),
        (Frequency(step_ns=NS_PER_DAY), ["day_of_week", "day_of_month", "day_of_year"]),
        (Frequency(step_ns=NS_PER_WEEK), ["day_of_year"]),
        (Frequency(months=1), ["month_of_year"]),
        (Frequency(months=12), []),
    ],
)
def test_calendar_features_follow_the_frequency(freq: Frequency, cycles: list[str]) -> None:
    names = calendar_feature_names(freq)
    assert list(dict.fromkeys(n.rsplit("_", 1)[0] for n in names)) == cycles
    features = calendar_features(stamps("2024-03-01", "2024-04-01"), freq)
    sines, cosines = features[:, 0::2], features[:, 1::2]
    np.testing.assert_allclose(sines**2 + cosines**2, 1.0, rtol=1e-5)
