"""Future rows: the values of known-ahead covariates for the steps to forecast.

A file for ``rnncast forecast`` holds, for each series, its history and then H rows
whose target is empty and whose future covariates (``--future-covariates``) are
filled: a weather forecast, a planned price. rnncast tells them apart by where the
series' last value is: every row after it is a future row. Those rows must start at
the step after the last value and hold a value of every future covariate on each of
the next H steps; anything else is a DataError naming the file, the column, the
series and the first bad timestamp. Nothing is filled in: a forecast that silently
repeated the last known temperature would look fine and be wrong.
"""

from __future__ import annotations

import numpy as np

from rnncast.errors import DataError
from rnncast.frequency import Frequency, format_time, shift_times, step_positions
from rnncast.grid import Rows
from rnncast.io import Table


def split_future_rows(rows: Rows, n_ids: int) -> Rows:
    """Take each series' rows after its last value out of ``rows``; return them.

    A series with no value at all keeps its rows (it is reported as empty)."""
    present = ~np.isnan(rows.values)
    counts = np.bincount(rows.codes, minlength=n_ids)
    total = np.bincount(rows.codes, weights=present, minlength=n_ids).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    running = np.cumsum(present)
    before = np.concatenate([[0], running])[starts]
    seen_so_far = running - before[rows.codes]  # values up to and including each row
    after_last = (seen_so_far == total[rows.codes]) & ~present & (total[rows.codes] > 0)
    if rows.origin is None:
        rows.origin = np.arange(rows.codes.shape[0], dtype=np.int64)
    future = Rows(
        codes=rows.codes[after_last],
        times=rows.times[after_last],
        values=rows.values[after_last],
        covariates=rows.covariates[after_last],
        origin=rows.origin[after_last],
    )
    rows.keep(~after_last)
    return future


def lay_ahead(
    future: Rows,
    end_times: np.ndarray,
    horizon: int | None,
    freq: Frequency,
    table: Table,
    ids: np.ndarray,
    tz: str | None,
    mode: str,
) -> np.ndarray:
    """(S, A, Cf) float32 values of the future covariates on the A steps after each
    series' last value (``end_times``, aligned with ``ids``; ``future.codes`` index
    them): A is ``horizon``, or when None the most future rows a series has (the
    caller checks there are enough). NaN for a series without future rows, which
    ``mode`` "require" refuses; future rows that are off the grid, start late, skip a
    step, lack a value or (with ``horizon``) are too few are refused. Rows past the
    A-th step are not read."""
    names = table.columns.future
    known = len(names)
    label = table.source.label
    has_rows = np.bincount(future.codes, minlength=len(ids)) > 0
    if mode == "require" and not has_rows.all():
        code = int(np.flatnonzero(~has_rows)[0])
        first = _step_after(end_times[code], 1, freq, tz)
        more = f" ({int((~has_rows).sum())} series in all)" if (~has_rows).sum() > 1 else ""
        raise DataError(
            f"{label}: series {str(ids[code])!r} has no future rows{more}: the model needs "
            f"{_named(names)} on each forecast step after its last value, from "
            f"{first}; add those rows with the target empty"
        )
    # Steps after the series' last value: 1 is the first future step.
    steps = step_positions(future.times, end_times[future.codes], freq)
    span = horizon or int(max(steps.max(initial=1), 1))
    ahead = np.full((len(ids), span, known), np.nan, dtype=np.float32)
    if not future.codes.size:
        return ahead
    series = future.codes
    first_row = np.concatenate([[True], series[1:] != series[:-1]])
    late = first_row & (steps != 1)
    if late.any():
        row = int(np.flatnonzero(late)[0])
        code = int(series[row])
        expected = _step_after(end_times[code], 1, freq, tz)
        raise DataError(
            f"{label}: series {str(ids[code])!r}: its future rows start at "
            f"{format_time(int(future.times[row]), tz, freq)}, not at "
            f"{expected}, the step after its last value"
        )
    wanted = (steps >= 1) & (steps <= span)
    filled = np.zeros((len(ids), span), dtype=bool)
    filled[series[wanted], steps[wanted] - 1] = True
    ahead[series[wanted], steps[wanted] - 1] = future.covariates[wanted][:, -known:]
    # A step left out before a series' last future row is a gap; with a horizon, so is
    # any of its steps.
    reach = np.zeros(len(ids), dtype=np.int64)
    np.maximum.at(reach, series[wanted], steps[wanted])
    needed = np.where(has_rows, horizon or 0, 0)[:, None] > np.arange(span)
    gaps = (needed | (np.arange(span) < reach[:, None])) & ~filled
    if gaps.any():
        code, step = (int(i) for i in np.argwhere(gaps)[0])
        when = _step_after(end_times[code], step + 1, freq, tz)
        steps_named = horizon or int(reach[code])
        raise DataError(
            f"{label}: " + too_few_rows(str(ids[code]), int(filled[code].sum()), steps_named,
                                        when, names)
        )  # fmt: skip
    blank = filled[:, :, None] & np.isnan(ahead)
    if blank.any():
        code, step, column = (int(i) for i in np.argwhere(blank)[0])
        when = _step_after(end_times[code], step + 1, freq, tz)
        raise DataError(
            f"{label}: column {names[column]!r}, series {str(ids[code])!r}: no value at "
            f"{when}, a future row; a future covariate needs a value on each of the "
            "forecast steps"
        )
    return ahead


def too_few_rows(series: str, given: int, needed: int, first: str, names: tuple[str, ...]) -> str:
    """The message for a series with fewer future rows than the forecast needs."""
    return (
        f"series {series!r} has {given} of the {needed} future rows the forecast needs; the "
        f"first missing is at {first}. Give {_named(names)} on each of the {needed} steps "
        "after the last value, with the target empty"
    )


def _named(names: tuple[str, ...]) -> str:
    return ", ".join(repr(name) for name in names)


def _step_after(end: np.int64, steps: int, freq: Frequency, tz: str | None) -> str:
    return format_time(int(shift_times(np.array([end]), steps, freq)[0]), tz, freq)
