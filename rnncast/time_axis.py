"""The time axis in calendar terms: where each timestamp sits on its series' grid, the
times whole steps away, the grids themselves, the frequency that times imply, and the
calendar features of each time.

Every stage that puts times on a grid (grid, gaps, panel, forecasts, evaluation) comes
here, so that calendar months, which have no fixed length in nanoseconds, and the
limits of int64 nanoseconds, past which numpy wraps silently, are handled in one place.
Everything here is vectorised over all series at once: no Python loop per row.
"""

from __future__ import annotations

import numpy as np

from rnncast.errors import DataError
from rnncast.frequency import (
    FIRST_NS,
    LAST_NS,
    NS_PER_DAY,
    NS_PER_WEEK,
    REPRESENTABLE_TIMES,
    Frequency,
)
from rnncast.timezones import format_time

_FIRST_DAY = FIRST_NS // NS_PER_DAY
_LAST_DAY = LAST_NS // NS_PER_DAY
_U64 = np.uint64


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
            f"{format_time(int(origins[first]), None)} falls outside {REPRESENTABLE_TIMES}"
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
