"""Frequencies: the step between a series' timestamps, and the units and limits of times.

Timestamps are int64 nanoseconds since the Unix epoch throughout (UTC instants
when the data has a time zone, wall-clock times when it has none). A frequency is
either a fixed step (seconds to weeks) or a whole number of calendar months
(months, quarters, years), because a month has no fixed length in nanoseconds.
This module holds the value and the aliases users write it with; ``rnncast.time_axis``
lays its steps out on the calendar and ``rnncast.timezones`` converts between clocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from rnncast.errors import ConfigError

NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND
NS_PER_HOUR = 60 * NS_PER_MINUTE
NS_PER_DAY = 24 * NS_PER_HOUR
NS_PER_WEEK = 7 * NS_PER_DAY
# The timestamps int64 nanoseconds can hold, 1677-09-21 00:12:43 to 2262-04-11 23:47:16
# (the smallest int64 is NaT, "missing", to numpy and pandas). Arithmetic on times is
# checked against these: numpy wraps on overflow, silently, to the other end.
FIRST_NS = -(2**63) + 1
LAST_NS = 2**63 - 1
REPRESENTABLE_TIMES = "1677-09-21 to 2262-04-11, the times rnncast can represent"

# pandas-style aliases, largest unit first, so a step is named in the largest unit
# that divides it ("2h", not "120min").
_FIXED_UNITS = (
    ("D", NS_PER_DAY),
    ("h", NS_PER_HOUR),
    ("min", NS_PER_MINUTE),
    ("s", NS_PER_SECOND),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
)
_FIXED_ALIASES = {
    "d": NS_PER_DAY,
    "day": NS_PER_DAY,
    "days": NS_PER_DAY,
    "w": NS_PER_WEEK,
    "week": NS_PER_WEEK,
    "h": NS_PER_HOUR,
    "hour": NS_PER_HOUR,
    "hours": NS_PER_HOUR,
    "min": NS_PER_MINUTE,
    "t": NS_PER_MINUTE,
    "minute": NS_PER_MINUTE,
    "minutes": NS_PER_MINUTE,
    "s": NS_PER_SECOND,
    "second": NS_PER_SECOND,
    "seconds": NS_PER_SECOND,
    "ms": 1_000_000,
    "us": 1_000,
    "ns": 1,
}
# Calendar aliases: number of months per step and whether stamps sit at month end.
# Matched with their case first, because pandas' "MS" (month start) is not "ms".
_MONTH_ALIASES = {
    "MS": (1, False),
    "M": (1, True),
    "ME": (1, True),
    "QS": (3, False),
    "Q": (3, True),
    "QE": (3, True),
    "YS": (12, False),
    "AS": (12, False),
    "Y": (12, True),
    "YE": (12, True),
    "A": (12, True),
    "month": (1, False),
    "quarter": (3, False),
    "year": (12, False),
}
# Steps beyond these cannot be laid out in nanoseconds since 1970 (int64 ends in 2262).
MAX_STEP_NS = 200 * 366 * NS_PER_DAY
_MAX_MONTHS = 12_000
_NAMED_STEPS = {
    NS_PER_MINUTE: "minutely",
    NS_PER_HOUR: "hourly",
    NS_PER_DAY: "daily",
    NS_PER_WEEK: "weekly",
}
_NAMED_MONTHS = {1: "monthly", 3: "quarterly", 12: "yearly"}


@dataclass(frozen=True)
class Frequency:
    """A regular step between consecutive timestamps of a series.

    Exactly one of ``step_ns`` (a fixed step in nanoseconds) and ``months`` (a
    whole number of calendar months) is positive. ``month_end`` says that
    calendar stamps sit on the last day of their month rather than on a fixed
    day of the month.
    """

    step_ns: int = 0
    months: int = 0
    month_end: bool = False

    def __post_init__(self) -> None:
        if (self.step_ns > 0) == (self.months > 0):
            raise ConfigError(
                f"a frequency needs exactly one positive step, got step_ns={self.step_ns}, "
                f"months={self.months}"
            )

    @property
    def is_calendar(self) -> bool:
        return self.months > 0

    @property
    def alias(self) -> str:
        """The pandas offset alias, e.g. ``h``, ``15min``, ``D``, ``MS``, ``3ME``."""
        if self.is_calendar:
            count = "" if self.months == 1 else str(self.months)
            return f"{count}{'ME' if self.month_end else 'MS'}"
        for unit, unit_ns in _FIXED_UNITS:
            if self.step_ns % unit_ns == 0:
                count = self.step_ns // unit_ns
                return unit if count == 1 else f"{count}{unit}"
        raise AssertionError("unreachable: every step is a whole number of nanoseconds")

    @property
    def label(self) -> str:
        """A word for people: ``hourly``, ``15 minutes``, ``monthly``."""
        if self.is_calendar:
            return _NAMED_MONTHS.get(self.months, f"every {self.months} months")
        if self.step_ns in _NAMED_STEPS:
            return _NAMED_STEPS[self.step_ns]
        alias = self.alias
        return f"every {alias if alias[0].isdigit() else '1' + alias}"

    @property
    def long_season_length(self) -> int:
        """Steps per longer cycle over the season, where the clock has one: a week for
        sub-daily steps that divide a day (168 hourly steps), a year for daily steps
        (365); 0 otherwise (weeks, months and longer steps have one season only)."""
        if self.is_calendar:
            return 0
        if self.step_ns < NS_PER_DAY and NS_PER_DAY % self.step_ns == 0:
            return 7 * (NS_PER_DAY // self.step_ns)
        if self.step_ns == NS_PER_DAY:
            return 365
        return 0

    @property
    def season_length(self) -> int:
        """Steps per seasonal cycle, as forecasters use for seasonal naive and MASE.

        Sub-daily steps: one day; daily: one week; weekly: 52; monthly: 12;
        quarterly: 4; yearly and other steps: 1 (no seasonality assumed).
        """
        if self.is_calendar:
            return 12 // self.months if 12 % self.months == 0 else 1
        if self.step_ns < NS_PER_DAY and NS_PER_DAY % self.step_ns == 0:
            return NS_PER_DAY // self.step_ns
        if self.step_ns == NS_PER_DAY:
            return 7
        if self.step_ns == NS_PER_WEEK:
            return 52
        return 1


def parse_frequency(text: str) -> Frequency:
    """Parse a frequency such as ``h``, ``15min``, ``D``, ``W``, ``MS``, ``M``, ``Q``, ``Y``.

    Raises ConfigError for anything else, listing what is accepted.
    """
    cleaned = text.strip()
    digits = len(cleaned) - len(cleaned.lstrip("0123456789"))
    count = int(cleaned[:digits]) if digits else 1
    # Anchors such as W-SUN or QS-JAN only restate where the first stamp falls;
    # the grid is anchored at each series' own first timestamp.
    unit = cleaned[digits:].split("-")[0]
    if count < 1:
        raise ConfigError(f"--freq {text!r}: the step must be at least 1")
    calendar = _MONTH_ALIASES.get(unit) or _MONTH_ALIASES.get(unit.lower())
    if calendar is not None and count * calendar[0] <= _MAX_MONTHS:
        return Frequency(months=count * calendar[0], month_end=calendar[1])
    if unit.lower() in _FIXED_ALIASES and count * _FIXED_ALIASES[unit.lower()] <= MAX_STEP_NS:
        return Frequency(step_ns=count * _FIXED_ALIASES[unit.lower()])
    if calendar is not None or unit.lower() in _FIXED_ALIASES:
        raise ConfigError(f"--freq {text!r} is longer than two hundred years; check the count")
    raise ConfigError(
        f"--freq {text!r} is not a frequency rnncast knows; use one of "
        "s, min, 15min, h, D, W, MS (month start), ME (month end), QS, QE, YS, YE"
    )
