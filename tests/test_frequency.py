from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncast.errors import ConfigError, DataError
from rnncast.frequency import (
    FIRST_NS,
    LAST_NS,
    NS_PER_DAY,
    NS_PER_HOUR,
    NS_PER_MINUTE,
    NS_PER_WEEK,
    Frequency,
    parse_frequency,
)
from rnncast.time_axis import (
    calendar_feature_names,
    calendar_features,
    infer_frequency,
    shift_times,
    step_positions,
    steps_that_fit,
)
from rnncast.timezones import format_time, wall_clock


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


# ---------------------------------------------------------------------------------------
# The limits of int64 nanoseconds (1677-09-21 to 2262-04-11): never wrap, refuse instead
# ---------------------------------------------------------------------------------------

HOURLY = Frequency(step_ns=NS_PER_HOUR)
MONTH_START = Frequency(months=1)
MONTH_END = Frequency(months=1, month_end=True)


@pytest.mark.parametrize(
    ("freq", "last", "after"),
    [
        (HOURLY, "2262-04-11T23:00", 0),
        (HOURLY, "2262-04-11T20:00", 3),
        (Frequency(step_ns=NS_PER_DAY), "2262-04-01", 10),
        (MONTH_START, "2262-04-01", 0),
        (MONTH_START, "2262-01-01", 3),
        (MONTH_END, "2262-03-31", 0),  # 30 April is past the last instant
        (MONTH_END, "2261-12-31", 3),
        (Frequency(months=12), "2200-01-01", 62),
    ],
)
def test_shifting_past_2262_is_refused_not_wrapped(freq: Frequency, last: str, after: int):
    # Before, numpy wrapped 2262-04-12 around to 1677-09-21.
    origin = stamps(last)
    assert steps_that_fit(origin, freq).tolist() == [after]
    if after:
        assert shift_times(origin, np.array([after]), freq)[0] <= LAST_NS
    with pytest.raises(DataError, match=r"falls outside 1677-09-21 to 2262-04-11"):
        shift_times(origin, np.array([after + 1]), freq)


@pytest.mark.parametrize("freq", [HOURLY, MONTH_START, MONTH_END])
def test_shifting_before_1677_is_refused_not_wrapped(freq: Frequency) -> None:
    # One month back is September 1677, which holds the 30th but not the 1st.
    origin = stamps("1677-10-31" if freq.month_end else "1677-11-01")
    assert shift_times(origin, np.array([-1]), freq)[0] >= FIRST_NS
    with pytest.raises(DataError, match="falls outside"):
        shift_times(origin, np.array([-2 if freq.is_calendar else -(10**6)]), freq)


def test_steps_far_beyond_any_year_are_refused() -> None:
    origin = stamps("2024-01-01")
    for freq in (HOURLY, MONTH_START, Frequency(months=12_000)):
        with pytest.raises(DataError):
            shift_times(origin, np.array([2**62]), freq)
        with pytest.raises(DataError):
            shift_times(origin, np.array([-(2**63)]), freq)


def test_positions_and_inference_span_the_whole_representable_range() -> None:
    # 1678 to 2261 is more than 2**63 ns: a signed difference overflows.
    times = stamps("1678-01-01T00:00", "1678-01-01T01:00", "2261-01-01T00:00")
    assert infer_frequency(times, np.array([0, 3])) == HOURLY
    days = (np.datetime64("2261-01-01") - np.datetime64("1678-01-01")).astype(int)
    positions = step_positions(times, np.repeat(times[:1], 3), Frequency(step_ns=NS_PER_DAY))
    assert positions.tolist() == [0, -1, int(days)]
    monthly = stamps("1677-10-01", "1677-11-01", "2262-04-01")
    assert infer_frequency(monthly, np.array([0, 3])) == MONTH_START
    origins = np.repeat(monthly[:1], 3)
    assert step_positions(monthly, origins, MONTH_START).tolist() == [0, 1, 7014]


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    freq=frequencies,
    minutes_from_the_end=st.integers(0, 3 * 366 * 24 * 60),
    steps=st.lists(st.integers(-40, 40), min_size=1, max_size=8),
    at_the_start=st.booleans(),
)
def test_shifts_near_the_limits_are_exact_or_refused(
    freq: Frequency, minutes_from_the_end: int, steps: list[int], at_the_start: bool
) -> None:
    edge = FIRST_NS if at_the_start else LAST_NS
    origin = edge + (1 if at_the_start else -1) * minutes_from_the_end * NS_PER_MINUTE
    origin -= origin % NS_PER_MINUTE  # a whole minute, as a grid stamp would be
    origin = max(origin, FIRST_NS + NS_PER_MINUTE)
    if freq.is_calendar:  # a calendar origin: the first or last day of its month
        day = np.datetime64(origin, "ns").astype("datetime64[D]")
        month = day.astype("datetime64[M]")
        first_day = max(month.astype("datetime64[D]"), np.datetime64("1677-09-22"))
        chosen = (month + 1).astype("datetime64[D]") - 1 if freq.month_end else first_day
        origin = int(chosen.astype("datetime64[ns]").astype(np.int64))
    fit = int(steps_that_fit(np.array([origin]), freq)[0])
    for count in steps:
        expected = _python_shift(origin, count, freq)
        representable = FIRST_NS <= expected <= LAST_NS
        assert (count <= fit) == (representable or count < 0), (count, fit)
        if representable:
            assert shift_times(np.array([origin]), np.array([count]), freq).tolist() == [expected]
        else:
            with pytest.raises(DataError):
                shift_times(np.array([origin]), np.array([count]), freq)


def _python_shift(origin: int, count: int, freq: Frequency) -> int:
    """The same shift in Python integers, which do not overflow."""
    if not freq.is_calendar:
        return origin + count * freq.step_ns
    day, time_of_day = divmod(origin, NS_PER_DAY)
    date = np.datetime64(day, "D")
    month = date.astype("datetime64[M]")
    target = month + count * freq.months
    if freq.month_end:
        new_day = (target + 1).astype("datetime64[D]") - 1
        return int(new_day.astype(np.int64)) * NS_PER_DAY + time_of_day
    phase_days = int((date - month.astype("datetime64[D]")).astype(np.int64))
    new_day = target.astype("datetime64[D]").astype(np.int64) + phase_days
    return int(new_day) * NS_PER_DAY + time_of_day


def test_local_times_beyond_the_limits_are_a_data_error_not_a_crash() -> None:
    late = np.array([LAST_NS - NS_PER_HOUR])
    with pytest.raises(DataError, match="zone Asia/Tokyo falls outside"):
        wall_clock(late, "Asia/Tokyo")
    # Messages still show the time, as stored.
    assert format_time(int(late[0]), "Asia/Tokyo").endswith("(as stored)")


@pytest.mark.parametrize(
    ("alias", "season", "long"),
    [("h", 24, 168), ("30min", 48, 336), ("15min", 96, 672), ("min", 1440, 10080),
     ("D", 7, 365), ("W", 52, 0), ("MS", 12, 0), ("QS", 4, 0), ("YS", 1, 0), ("7h", 1, 0)],
)  # fmt: skip
def test_the_long_season_is_a_week_of_sub_daily_steps_and_a_year_of_days(
    alias: str, season: int, long: int
) -> None:
    freq = parse_frequency(alias)
    assert (freq.season_length, freq.long_season_length) == (season, long)
