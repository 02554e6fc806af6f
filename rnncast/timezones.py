"""Time zones: a panel's times to and from the wall clock of the data's zone, and
timestamps written for people.

With a zone, a panel holds UTC instants for steps shorter than a day, so that no hour
is lost or doubled at a daylight-saving switch, and wall-clock times for daily and
longer steps, so that a day stays a day (``counts_in_wall_clock``). These functions
cross between the two where data comes in and where times go out (files, reports,
messages). pandas knows the zone rules; it is imported inside each function, so
``import rnncast`` and the CLI's start-up do not pay for it.
"""

from __future__ import annotations

import numpy as np

from rnncast.errors import DataError
from rnncast.frequency import NS_PER_DAY, REPRESENTABLE_TIMES, Frequency


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
        raise DataError(f"a time in zone {tz} falls outside {REPRESENTABLE_TIMES} ({exc})") from exc


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
            raise DataError(
                f"a time in zone {tz} falls outside {REPRESENTABLE_TIMES} ({exc})"
            ) from exc
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
