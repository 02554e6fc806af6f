"""Holiday features: right dates per country and subdivision, shares over longer steps,
code parsing with helpful errors, and the holidays package loaded only when used."""

from __future__ import annotations

import datetime
import subprocess
import sys

import holidays
import numpy as np
import pytest

from rnncast.errors import ConfigError
from rnncast.holiday_features import (
    HOLIDAY_FEATURES,
    check_country,
    holiday_feature_names,
    holiday_features,
    parse_countries,
)

HOUR = 3600 * 10**9
DAY = 24 * HOUR
HOLIDAY, BRIDGE, BEFORE, AFTER = range(4)


def ns(text: str) -> int:
    return int(np.datetime64(text, "ns").astype(np.int64))


def daily(start: str, stop: str) -> tuple[np.ndarray, np.ndarray]:
    """Daily step starts from start to stop inclusive, and each step's end."""
    days = np.arange(np.datetime64(start, "D"), np.datetime64(stop, "D") + 1)
    times = days.astype("datetime64[ns]").astype(np.int64)
    return times, times + DAY


def flagged(times: np.ndarray, column: np.ndarray) -> set[str]:
    days = times[column == 1].astype("datetime64[ns]").astype("datetime64[D]")
    return {str(day) for day in days}


@pytest.mark.parametrize(
    ("country", "holiday", "before", "after"),
    [
        (
            "DE",
            {"2023-12-25", "2023-12-26", "2024-01-01"},
            {"2023-12-24", "2023-12-31"},
            {"2023-12-27", "2024-01-02"},
        ),
        # 26 December is a working day in the US, so it is the day after Christmas.
        (
            "US",
            {"2023-12-25", "2024-01-01"},
            {"2023-12-24", "2023-12-31"},
            {"2023-12-26", "2024-01-02"},
        ),
    ],
)
def test_daily_steps_across_a_year_boundary(country, holiday, before, after) -> None:
    times, step_end = daily("2023-12-20", "2024-01-05")
    features = holiday_features(times, step_end, country)
    assert features.shape == (17, 4)
    assert features.dtype == np.float32
    assert set(np.unique(features)) <= {0.0, 1.0}
    assert flagged(times, features[:, HOLIDAY]) == holiday
    assert flagged(times, features[:, BEFORE]) == before
    assert flagged(times, features[:, AFTER]) == after
    assert flagged(times, features[:, BRIDGE]) == set()


def test_observed_days_count_as_holidays() -> None:
    """The library's default includes substitutes for holidays on a weekend: New Year's
    Day 2022, a Saturday, was observed in the US on Friday 31 December 2021."""
    times, step_end = daily("2021-12-22", "2022-01-04")
    features = holiday_features(times, step_end, "US")
    expected = {"2021-12-24", "2021-12-25", "2021-12-31", "2022-01-01"}
    assert flagged(times, features[:, HOLIDAY]) == expected


def test_friday_after_a_thursday_holiday_is_a_bridge_day() -> None:
    times, step_end = daily("2024-09-30", "2024-10-07")  # German Unity Day, Thursday 3 October
    features = holiday_features(times, step_end, "DE")
    assert flagged(times, features[:, HOLIDAY]) == {"2024-10-03"}
    assert flagged(times, features[:, BRIDGE]) == {"2024-10-04"}


def test_monday_before_a_tuesday_holiday_is_a_bridge_day() -> None:
    calendar = holidays.country_holidays("DE", years=2023)
    tuesday, monday = datetime.date(2023, 10, 3), datetime.date(2023, 10, 2)
    assert tuesday in calendar and tuesday.weekday() == 1
    assert monday not in calendar and monday.weekday() == 0
    times, step_end = daily("2023-09-28", "2023-10-06")
    features = holiday_features(times, step_end, "DE")
    assert flagged(times, features[:, BRIDGE]) == {"2023-10-02"}
    assert flagged(times, features[:, BEFORE]) == {"2023-10-02"}


@pytest.mark.parametrize("country", ["DE", "US", "GB", "IL", "RU"])
def test_daily_features_agree_with_the_library_day_by_day(country: str) -> None:
    """A plain loop over the library's own answers; IL rests on Friday and Saturday,
    RU works some Saturdays, so the weekend is the library's, not Saturday-Sunday."""
    calendar = holidays.country_holidays(country, years=range(2018, 2027))
    times, step_end = daily("2019-01-01", "2025-12-31")
    features = holiday_features(times, step_end, country)
    one = datetime.timedelta(days=1)
    days = [datetime.date(2019, 1, 1) + i * one for i in range(len(times))]
    for row, day in zip(features, days, strict=True):
        is_holiday, prev_holiday, next_holiday = (
            day in calendar,
            day - one in calendar,
            day + one in calendar,
        )
        bridge = calendar.is_working_day(day) and (
            (prev_holiday and not calendar.is_working_day(day + one))
            or (next_holiday and not calendar.is_working_day(day - one))
        )
        expected = [
            is_holiday,
            bridge,
            next_holiday and not is_holiday,
            prev_holiday and not is_holiday,
        ]
        assert row.tolist() == [float(flag) for flag in expected], day


def test_hourly_steps_take_the_day_they_lie_in() -> None:
    times = ns("2024-12-24") + np.arange(48) * HOUR
    features = holiday_features(times, times + HOUR, "DE")
    # The 23:00 step of the 24th ends at midnight, which belongs to the next step.
    assert features[:24, HOLIDAY].tolist() == [0.0] * 24
    assert features[24:, HOLIDAY].tolist() == [1.0] * 24
    assert features[:24, BEFORE].tolist() == [1.0] * 24
    assert features[24:, BEFORE].tolist() == [0.0] * 24


def test_times_before_1970() -> None:
    times, step_end = daily("1969-12-23", "1969-12-26")
    features = holiday_features(times, step_end, "US")
    assert features[:, HOLIDAY].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert features[:, BEFORE].tolist() == [0.0, 1.0, 0.0, 0.0]


def test_weekly_steps_get_the_share_of_their_days() -> None:
    times = ns("2024-09-23") + np.arange(3) * 7 * DAY  # Mondays; the second week holds 3 October
    features = holiday_features(times, times + 7 * DAY, "DE")
    # Thursday 3rd is a holiday, Wednesday 2nd is before it, Friday 4th after it and a bridge day.
    np.testing.assert_allclose(features, [[0, 0, 0, 0], [1 / 7] * 4, [0, 0, 0, 0]], rtol=1e-6)


def test_monthly_steps_get_holidays_over_days_in_month() -> None:
    starts = (
        np.arange("2024-01", "2025-02", dtype="datetime64[M]")
        .astype("datetime64[ns]")
        .astype(np.int64)
    )
    times, step_end = starts[:-1], starts[1:]
    features = holiday_features(times, step_end, "DE")
    # 2024 in Germany: New Year; Good Friday 29 March; Easter Monday 1 April; Labour Day,
    # Ascension 9 May and Whit Monday 20 May; Unity Day 3 October; Christmas 25 and 26 December.
    holidays_per_month = [1, 0, 1, 1, 3, 0, 0, 0, 0, 1, 0, 2]
    days_in_month = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    np.testing.assert_allclose(
        features[:, HOLIDAY], np.divide(holidays_per_month, days_in_month), rtol=1e-6
    )


def test_subdivision_adds_its_own_holidays() -> None:
    times, step_end = daily("2024-01-05", "2024-01-07")
    bavaria = holiday_features(times, step_end, "DE-BY")
    berlin = holiday_features(times, step_end, "DE-BE")
    assert bavaria[:, HOLIDAY].tolist() == [0.0, 1.0, 0.0]  # Epiphany, 6 January
    assert bavaria[:, AFTER].tolist() == [0.0, 0.0, 1.0]
    assert berlin[:, HOLIDAY].tolist() == [0.0, 0.0, 0.0]


def test_no_steps_give_no_rows() -> None:
    empty = np.zeros(0, dtype=np.int64)
    assert holiday_features(empty, empty, "DE").shape == (0, 4)


def test_parse_countries_normalises_codes() -> None:
    assert parse_countries("DE,fr, US-ca") == ("DE", "FR", "US-CA")
    assert parse_countries("de-by") == ("DE-BY",)
    # Subdivisions are spelled as the library spells them, which is not always upper case.
    assert check_country("fr-zone a", "--holidays") == "FR-Zone A"


@pytest.mark.parametrize("bad", ["XX", "D"])
def test_parse_countries_refuses_unknown_codes(bad: str) -> None:
    with pytest.raises(ConfigError, match=rf"^--holidays: unknown country '{bad}'") as raised:
        parse_countries(f"FR,{bad}")
    assert "\n" not in str(raised.value)


def test_unknown_codes_get_close_valid_ones() -> None:
    with pytest.raises(ConfigError, match="did you mean DE, "):
        parse_countries("DR")
    # An alias the library knows is not a code of its own, so each country has one name.
    with pytest.raises(ConfigError, match=r"^--holidays: unknown country 'UK'; did you mean GB\?$"):
        parse_countries("UK")
    with pytest.raises(
        ConfigError, match=r"^--holidays: unknown subdivision 'DE-BX'; did you mean DE-BB"
    ):
        parse_countries("DE-BX")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "DE,,FR",
            "--holidays: empty country code in 'DE,,FR'; separate codes by commas, e.g. DE,FR",
        ),
        ("", "--holidays: no country code given; use e.g. DE or DE-BY,FR"),
        ("DE,de", "--holidays: 'DE' is given twice; name each country once"),
        ("LU-XY", "--holidays: LU has no subdivisions, got 'LU-XY'; use LU"),
    ],
)
def test_parse_countries_refuses_empty_and_duplicate_names(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_countries(text)
    assert str(raised.value) == message


def test_check_country_names_where_the_code_came_from() -> None:
    where = "data.parquet: column 'country', series 'a'"
    with pytest.raises(ConfigError, match=rf"^{where}: unknown country 'ZZ'"):
        check_country("ZZ", where)


def test_feature_names() -> None:
    assert holiday_feature_names(()) == HOLIDAY_FEATURES
    assert holiday_feature_names(("DE", "US-CA")) == (
        "holiday_DE",
        "bridge_day_DE",
        "before_holiday_DE",
        "after_holiday_DE",
        "holiday_US-CA",
        "bridge_day_US-CA",
        "before_holiday_US-CA",
        "after_holiday_US-CA",
    )


@pytest.mark.parametrize("statement", ["import rnncast", "import rnncast.holiday_features"])
def test_importing_does_not_load_holidays(statement: str) -> None:
    code = f"{statement}, sys; print('holidays' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "False"
