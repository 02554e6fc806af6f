"""The time column as read: Arrow timestamps, dates or text, to timestamp[ns].

Timestamps are int64 nanoseconds, so only 1677-09-21 to 2262-04-11 can be held;
a stamp beyond is refused with its row, never wrapped. Text is ISO 8601 unless
``--time-format`` is given, and then that format and no other is used.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rnncast.errors import ConfigError, DataError
from rnncast.frequency import FIRST_NS, LAST_NS, NS_PER_DAY

# A zone designator after a time of day: "...13:00Z", "...13:00:00+01:00", "...13:00 -0500".
_ZONE_SUFFIX = r"\d{2}:\d{2}(:\d{2}(\.\d*)?)?\s*(Z|UTC|[+-]\d{2}(:?\d{2})?)$"
_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_RANGE = "outside the years 1678-2261, which rnncast cannot represent"
# strftime directives that fix the year; without one, pandas dates every stamp in 1900.
_YEAR_DIRECTIVES = re.compile(r"%[-#]?[YyGs]")


def to_timestamps(
    column: pa.ChunkedArray,
    label: str,
    name: str,
    where: Callable[[int], str],
    time_format: str | None,
) -> pa.ChunkedArray:
    """The time column ``name`` as timestamp[ns] (with its zone, if any). ``where``
    describes a 0-based row for messages. Raises DataError naming the row at fault."""
    if column.null_count:
        row = int(pc.index(pc.is_null(column), True).as_py())
        raise DataError(f"{label}: column {name!r} is empty at {where(row)}")
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_timestamp(kind):
        _check_range(column, _NS_PER_UNIT[kind.unit], label, name, where)
        return column.cast(pa.timestamp("ns", kind.tz))
    if pa.types.is_date(kind):
        per_count = NS_PER_DAY if pa.types.is_date32(kind) else _NS_PER_UNIT["ms"]
        _check_range(column, per_count, label, name, where)
        return column.cast(pa.timestamp("ns"))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return parse_timestamp_text(column.cast(pa.string()), label, name, where, time_format)
    raise DataError(
        f"{label}: column {name!r} holds {kind} values, not timestamps; write them as "
        "dates such as 2024-01-31 or 2024-01-31 13:00:00, or choose another --time-col"
    )


def _check_range(
    column: pa.ChunkedArray, per_count: int, label: str, name: str, where: Callable[[int], str]
) -> None:
    """Refuse stamps that nanoseconds cannot hold; ``per_count`` is the nanoseconds
    in one unit of the stored integers (days for date32)."""
    storage = pa.int32() if pa.types.is_date32(column.type) else pa.int64()
    counts = column.cast(storage).to_numpy().astype(np.int64, copy=False)
    lowest = -(-FIRST_NS // per_count)  # rounded up: the first whole unit inside
    outside = (counts < lowest) | (counts > LAST_NS // per_count)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise DataError(
            f"{label}: column {name!r} holds {_show(column[row])} at {where(row)}, "
            f"a timestamp {_RANGE}"
        )


def _show(value: pa.Scalar) -> str:
    # Scalars beyond Python's datetime range (year 10000 and on) cannot become objects,
    # and the smallest int64 reads back as NaT: then the stored number is shown.
    try:
        shown = str(value.as_py())
    except (ValueError, OverflowError, pa.ArrowException):
        shown = "NaT"
    if shown in ("NaT", "None"):
        date32 = pa.types.is_date32(value.type)
        unit = "days" if date32 else getattr(value.type, "unit", "ms")
        stored = value.cast(pa.int32() if date32 else pa.int64()).as_py()
        return f"{stored} ({unit} since 1970)"
    return repr(shown)


def check_time_format(time_format: str) -> None:
    """ConfigError unless ``time_format`` is a strftime format that names the year."""
    import pandas as pd

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # With errors="coerce" only a broken format raises; unparsed text does not.
            pd.to_datetime(pd.Series(["2024"]), format=time_format, errors="coerce")
    except ValueError as exc:
        raise ConfigError(
            f"--time-format {time_format!r} is not a strftime format ({exc}); "
            "write e.g. '%d.%m.%Y %H:%M'"
        ) from exc
    if not _YEAR_DIRECTIVES.search(time_format):
        raise ConfigError(
            f"--time-format {time_format!r} has no year (%Y or %y), so every date would "
            "fall in 1900; include the year, e.g. '%d.%m.%Y %H:%M'"
        )


def parse_timestamp_text(
    column: pa.ChunkedArray,
    label: str,
    name: str,
    where: Callable[[int], str],
    time_format: str | None,
) -> pa.ChunkedArray:
    import pandas as pd

    if time_format is not None:
        check_time_format(time_format)
    zoned = pc.match_substring_regex(pc.utf8_trim_whitespace(column), _ZONE_SUFFIX)
    zoned_count = pc.sum(zoned).as_py() or 0
    if 0 < zoned_count < len(column):
        row = int(pc.index(zoned, zoned_count < len(column) / 2).as_py())
        raise DataError(
            f"{label}: column {name!r} mixes timestamps with and without a time zone "
            f"(e.g. {column[row].as_py()!r} at {where(row)}); write all in one zone"
        )
    text = column.to_pandas()
    blank = text.str.strip().eq("").to_numpy()
    if blank.any():
        row = int(np.flatnonzero(blank)[0])
        raise DataError(f"{label}: column {name!r} is empty at {where(row)}")
    # Text timestamps must be ISO 8601 unless a format is given: guessing turns
    # 01.02.2024 into 2 January as readily as into 1 February, silently.
    chosen = time_format or "ISO8601"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns before it raises; we explain instead
        # With offsets on every stamp, offsets that differ only by daylight saving
        # name one zone, so they are read as UTC instants.
        parsed = pd.to_datetime(text, format=chosen, utc=bool(zoned_count), errors="coerce")
    failed = np.flatnonzero(parsed.isna().to_numpy())
    if failed.size:
        row = int(failed[0])
        expected = (
            f"in the format {time_format!r}"
            if time_format
            else "in ISO 8601 form such as 2024-01-31 or 2024-01-31 13:00:00; for "
            "another form pass --time-format, e.g. --time-format '%d.%m.%Y %H:%M'"
        )
        raise DataError(
            f"{label}: column {name!r} holds {text.iloc[row]!r} at {where(row)}, "
            f"which is not a timestamp {expected}"
        )
    instants = parsed.dt.tz_convert(None) if parsed.dt.tz is not None else parsed
    outside = ((instants < pd.Timestamp.min) | (instants > pd.Timestamp.max)).to_numpy()
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise DataError(
            f"{label}: column {name!r} holds {text.iloc[row]!r} at {where(row)}, "
            f"a timestamp {_RANGE}"
        )
    tz = parsed.dt.tz
    parsed = parsed.astype(f"datetime64[ns, {tz}]" if tz else "datetime64[ns]")
    return pa.chunked_array([pa.array(parsed)])
