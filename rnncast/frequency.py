"""The time axis: frequencies, regular grids of timestamps, and calendar features.

Timestamps are int64 nanoseconds since the Unix epoch throughout (UTC instants
when the data has a time zone, wall-clock times when it has none). A frequency is
either a fixed step (seconds to weeks) or a whole number of calendar months
(months, quarters, years), because a month has no fixed length in nanoseconds.
Everything here is vectorised over all series at once: no Python loop per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnncast.errors import ConfigError, DataError

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
_FIRST_DAY = FIRST_NS // NS_PER_DAY
_LAST_DAY = LAST_NS // NS_PER_DAY
_LIMITS = "1677-09-21 to 2262-04-11, the times rnncast can represent"
_U64 = np.uint64

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


def _month_number(times: np.ndarray) -> np.ndarray:
    """Months since 1970-01 for each timestamp (int64)."""
    return times.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)


def _month_start_day(month_number: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of the first day of each month (int64, never overflows:
    callers keep months within the representable years)."""
    return month_number.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def _day_number(times: np.ndarray) -> np.ndarray:
    return np.floor_divide(times, NS_PER_DAY)


def _phase_in_month(times: np.ndarray) -> np.ndarray:
    """Nanoseconds since the start of each timestamp's month. Counted from the day,
    not from the month's first instant, which for September 1677 is unrepresentable."""
    days_in = _day_number(times) - _month_start_day(_month_number(times))
    return days_in * NS_PER_DAY + _time_of_day_ns(times)


def _is_month_end(times: np.ndarray) -> np.ndarray:
    days = times.astype("datetime64[ns]").astype("datetime64[D]")
    return (days + 1).astype("datetime64[M]") != days.astype("datetime64[M]")


def _time_of_day_ns(times: np.ndarray) -> np.ndarray:
    return np.mod(times, NS_PER_DAY)


def _from_days(days: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``days * NS_PER_DAY + offsets`` as int64 ns, and where that is representable.
    ``offsets`` are non-negative and under 32 days. Only stamps within a month of the
    limits are checked one by one, exactly; the rest are far inside."""
    fits = (days >= _FIRST_DAY) & (days <= _LAST_DAY)
    near = fits & ((days <= _FIRST_DAY + 1) | (days >= _LAST_DAY - 32))
    for index in np.flatnonzero(near):
        exact = int(days[index]) * NS_PER_DAY + int(offsets[index])
        fits[index] = FIRST_NS <= exact <= LAST_NS
    days = np.where(fits, days, 0)
    # Modulo 2**64, which is exact for every result that fits in int64.
    times = (days.astype(_U64) * _U64(NS_PER_DAY) + offsets.astype(_U64)).view(np.int64)
    return times, fits


def _distance(times: np.ndarray, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``|times - origins|`` as exact uint64, and whether times come before origins.
    The difference of two stamps may need 64 bits without a sign (1677 to 2262)."""
    before = times < origins
    later = np.where(before, origins, times).view(_U64)
    earlier = np.where(before, times, origins).view(_U64)
    return later - earlier, before  # modulo 2**64: exact, as later >= earlier


def step_positions(times: np.ndarray, origins: np.ndarray, freq: Frequency) -> np.ndarray:
    """Whole steps from each series' origin to each timestamp, or -1 where off the grid.

    ``times`` and ``origins`` are aligned (N,) int64 arrays: origins[k] is the
    first timestamp of the series that times[k] belongs to.
    """
    if not freq.is_calendar:
        distance, before = _distance(times, origins)
        step = _U64(freq.step_ns)
        # Fewer than 2**63 steps fit between representable stamps unless the step is
        # 1 ns; such a grid is refused long before it is laid out (grid._check_grid_size).
        whole = np.minimum(distance // step, _U64(LAST_NS)).astype(np.int64)
        positions = np.where(before, -whole, whole)
        return np.where(distance % step == 0, positions, -1)
    month_delta = _month_number(times) - _month_number(origins)
    positions = month_delta // freq.months
    on_grid = month_delta % freq.months == 0
    if freq.month_end:
        on_grid &= _is_month_end(times)
        on_grid &= _time_of_day_ns(times) == _time_of_day_ns(origins)
    else:
        on_grid &= _phase_in_month(times) == _phase_in_month(origins)
    return np.where(on_grid, positions, -1)


def shift_times(origins: np.ndarray, steps: np.ndarray, freq: Frequency) -> np.ndarray:
    """Timestamps ``steps`` whole steps after ``origins`` (aligned int64 arrays).

    Raises DataError when one falls outside the representable years rather than
    wrapping to the other end; ``steps_that_fit`` tells a caller beforehand, so that
    it can name the series.
    """
    origins = np.asarray(origins, dtype=np.int64)
    steps = np.broadcast_to(np.asarray(steps, dtype=np.int64), origins.shape)
    times, fits = _shift(origins, steps, freq)
    if not fits.all():
        first = int(np.flatnonzero(~fits)[0])
        count = int(steps[first])
        raise DataError(
            f"the time {count} step(s) ({freq.alias}) from "
            f"{format_time(int(origins[first]), None)} falls outside {_LIMITS}"
        )
    return times


def steps_that_fit(origins: np.ndarray, freq: Frequency) -> np.ndarray:
    """(N,) int64: how many whole steps after each origin stay representable (the
    last stamps end in April 2262), so that a forecast can be refused by series."""
    origins = np.asarray(origins, dtype=np.int64)
    if not freq.is_calendar:
        room, _ = _distance(np.full(origins.shape, LAST_NS), origins)
        return (room // _U64(freq.step_ns)).astype(np.int64)
    last_month = int(_month_number(np.array([LAST_NS]))[0])
    fit = (last_month - _month_number(origins)) // freq.months
    # The step into the last months may still land past the last instant: try it.
    _, fits = _shift(origins, fit, freq)
    return np.where(fits, fit, fit - 1)


def _shift(
    origins: np.ndarray, steps: np.ndarray, freq: Frequency
) -> tuple[np.ndarray, np.ndarray]:
    """Shifted times and whether each is representable; times where not are garbage."""
    if not freq.is_calendar:
        forward, backward = steps >= 0, steps < 0
        magnitude = np.where(backward, 0 - steps.view(_U64), steps.view(_U64))
        room_after, _ = _distance(np.full(origins.shape, LAST_NS), origins)
        room_before, _ = _distance(origins, np.full(origins.shape, FIRST_NS))
        step = _U64(freq.step_ns)
        fits = np.where(forward, magnitude <= room_after // step, magnitude <= room_before // step)
        # Modulo 2**64, exact for every result that fits in int64.
        shifted = origins.view(_U64) + steps.view(_U64) * step
        return shifted.view(np.int64), fits
    # Far beyond the representable years in months, the sum below could overflow.
    sane = np.abs(np.clip(steps, -(10**9), 10**9)) * freq.months <= 12 * 1000
    months = _month_number(origins) + np.where(sane, steps, 0) * freq.months
    if freq.month_end:
        days = _month_start_day(months + 1) - 1
        offsets = _time_of_day_ns(origins)
    else:
        days = _month_start_day(months)
        offsets = _phase_in_month(origins)
    times, fits = _from_days(days, offsets)
    return times, fits & sane


def infer_frequency(times: np.ndarray, offsets: np.ndarray) -> Frequency | None:
    """The finest regular step that puts every series' timestamps on one grid.

    ``times`` holds each series' timestamps sorted and unique, series i being
    ``times[offsets[i]:offsets[i + 1]]``. Returns None when no series has two
    timestamps. Calendar months are tried first when consecutive stamps are at
    least 28 days apart; otherwise the step is the greatest common divisor of all
    consecutive differences, so gaps do not change the answer. The caller judges
    whether the grid this implies is plausible (see ``grid_size``).
    """
    # Sorted within a series, so each difference is exact as uint64 (it may need all
    # 64 bits: 1677 to 2262); a diff across two series means nothing and is left out.
    diffs, _ = _distance(times[1:], times[:-1])
    inside = np.ones(diffs.shape, dtype=bool)
    inside[offsets[1:-1] - 1] = False
    diffs = diffs[inside]
    if diffs.size == 0:
        return None
    if diffs.min() >= _U64(28 * NS_PER_DAY):
        calendar = _infer_calendar(times, offsets)
        if calendar is not None:
            return calendar
    return Frequency(step_ns=int(np.gcd.reduce(diffs)))


def _infer_calendar(times: np.ndarray, offsets: np.ndarray) -> Frequency | None:
    lengths = np.diff(offsets)
    origins = np.repeat(times[offsets[:-1]], lengths)
    month_delta = _month_number(times) - _month_number(origins)
    months = int(np.gcd.reduce(month_delta))
    if months == 0:
        return None
    # Month end first: 31 December every year also fits "day 31 of the month".
    for month_end in (True, False):
        candidate = Frequency(months=months, month_end=month_end)
        if (step_positions(times, origins, candidate) >= 0).all():
            return candidate
    return None


def grid_times(origins: np.ndarray, lengths: np.ndarray, freq: Frequency) -> np.ndarray:
    """All timestamps of series with the given first stamps and lengths, concatenated."""
    steps = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(lengths) - lengths, lengths
    )
    return shift_times(np.repeat(origins, lengths), steps, freq)


def calendar_feature_names(freq: Frequency) -> tuple[str, ...]:
    """Names of the calendar features that suit ``freq``, as sin/cos pairs."""
    if freq.is_calendar:
        cycles = ("month_of_year",) if freq.months < 12 else ()
    elif freq.step_ns < NS_PER_DAY:
        cycles = ("time_of_day", "day_of_week", "day_of_year")
    elif freq.step_ns < NS_PER_WEEK:
        cycles = ("day_of_week", "day_of_month", "day_of_year")
    else:
        cycles = ("day_of_year",)
    return tuple(f"{cycle}_{part}" for cycle in cycles for part in ("sin", "cos"))


def calendar_features(times: np.ndarray, freq: Frequency) -> np.ndarray:
    """Calendar features (N, F) float32 for wall-clock timestamps (N,) int64.

    Each cycle is a sin/cos pair so that the end of a cycle sits next to its start
    (23:00 next to 00:00, December next to January). Columns follow
    ``calendar_feature_names(freq)``.
    """
    names = calendar_feature_names(freq)
    stamps = times.astype("datetime64[ns]")
    days = stamps.astype("datetime64[D]")
    phase_by_cycle = {
        "time_of_day": lambda: _time_of_day_ns(times) / NS_PER_DAY,
        # 1970-01-01 was a Thursday; +3 makes Monday phase 0.
        "day_of_week": lambda: np.mod(days.astype(np.int64) + 3, 7) / 7,
        "day_of_month": lambda: (days - days.astype("datetime64[M]")).astype(np.int64) / 31,
        "day_of_year": lambda: (days - days.astype("datetime64[Y]")).astype(np.int64) / 366,
        "month_of_year": lambda: np.mod(days.astype("datetime64[M]").astype(np.int64), 12) / 12,
    }
    cycles = list(dict.fromkeys(name.rsplit("_", 1)[0] for name in names))
    features = np.empty((times.shape[0], len(names)), dtype=np.float32)
    for column, cycle in enumerate(cycles):
        angle = 2 * np.pi * phase_by_cycle[cycle]()
        features[:, 2 * column] = np.sin(angle)
        features[:, 2 * column + 1] = np.cos(angle)
    return features


def counts_in_wall_clock(freq: Frequency) -> bool:
    """Whether steps of ``freq`` are counted on the wall clock of the data's zone.

    Daily and longer steps are: a day stays a day across daylight saving. Shorter
    steps are counted on UTC instants, so no hour is lost or doubled.
    """
    return freq.is_calendar or freq.step_ns % NS_PER_DAY == 0


def wall_clock(instants: np.ndarray, tz: str) -> np.ndarray:
    """UTC instants (int64 ns) as wall-clock times in ``tz`` (int64 ns, no zone)."""
    import pandas as pd

    index = pd.DatetimeIndex(instants.astype("datetime64[ns]")).tz_localize("UTC")
    try:
        return index.tz_convert(tz).tz_localize(None).asi8
    except (pd.errors.OutOfBoundsDatetime, OverflowError) as exc:
        raise DataError(f"a time in zone {tz} falls outside {_LIMITS} ({exc})") from exc


def to_datetimes(times: np.ndarray, tz: str | None, freq: Frequency):
    """A pandas DatetimeIndex, in ``tz`` when given, of a panel's int64 times."""
    import pandas as pd

    index = pd.DatetimeIndex(times.astype("datetime64[ns]"))
    if tz is None:
        return index
    if counts_in_wall_clock(freq):
        # Midnight rarely falls in a daylight-saving switch; where it does, take the
        # first of a repeated time and move a skipped time forward.
        standard = np.zeros(index.shape[0], dtype=bool)
        try:
            return index.tz_localize(tz, ambiguous=standard, nonexistent="shift_forward")
        except (pd.errors.OutOfBoundsDatetime, OverflowError) as exc:
            raise DataError(f"a time in zone {tz} falls outside {_LIMITS} ({exc})") from exc
    return index.tz_localize("UTC").tz_convert(tz)


def format_time(nanoseconds: int, tz: str | None, freq: Frequency | None = None) -> str:
    """An ISO-8601 timestamp for messages and reports, in the data's own zone.

    Without ``freq`` (or without ``tz``) the time is shown as it is stored.
    """
    import pandas as pd

    try:
        if tz is None or freq is None:
            stamp = pd.Timestamp(nanoseconds, unit="ns", tz="UTC" if tz else None)
            return (stamp.tz_convert(tz) if tz else stamp).isoformat(sep=" ")
        return to_datetimes(np.array([nanoseconds]), tz, freq)[0].isoformat(sep=" ")
    except (DataError, pd.errors.OutOfBoundsDatetime, OverflowError):
        # Within minutes of the limits a zone's local time may not be representable;
        # a message still needs the time, so it is shown as stored.
        return f"{pd.Timestamp(nanoseconds, unit='ns').isoformat(sep=' ')} (as stored)"
