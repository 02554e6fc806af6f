"""Gaps in the grids: how much of each series is filled rather than observed, and
the filling itself (``--fill``), all series at once, in place.

A few missing steps are normal and filled without a word; a series whose grid is
mostly invented (a daily series among hourly ones) gets a warning naming it, and
``--fill error`` refuses any gap, naming the series and how many steps it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnncast.errors import DataError
from rnncast.frequency import Frequency
from rnncast.io import Table
from rnncast.time_axis import shift_times
from rnncast.timezones import format_time


@dataclass(frozen=True)
class Sparse:
    """A series whose grid is mostly filled, not observed (see ``mostly_filled``)."""

    code: int
    filled: int  # steps without a value, to be filled
    observed: int  # steps with a value
    usual_gap: int  # the median distance, in steps, between its observed steps


def mostly_filled(grid: np.ndarray, offsets: np.ndarray) -> list[Sparse]:
    """Series of a grid (NaN where no value) whose filled share is large: more steps to
    fill than observed, or observed steps usually more than one step apart (a daily
    series among hourly ones). A few missing steps in a series do not count."""
    missing = np.isnan(grid)
    if not missing.any():
        return []
    lengths = np.diff(offsets)
    series_of = np.repeat(np.arange(lengths.shape[0]), lengths)
    filled = np.bincount(series_of, weights=missing, minlength=lengths.shape[0]).astype(np.int64)
    observed = lengths - filled
    present = np.flatnonzero(~missing)
    # Consecutive observed steps of one series: one step apart, or further.
    same_series = series_of[present[1:]] == series_of[present[:-1]]
    adjacent = np.bincount(
        series_of[present[1:]],
        weights=same_series & (np.diff(present) == 1),
        minlength=lengths.shape[0],
    )
    flagged = (filled > 0) & ((filled > observed) | (2 * adjacent < observed - 1))
    found = []
    for code in np.flatnonzero(flagged):
        begin, end = np.searchsorted(present, offsets[code : code + 2])
        own_gaps = np.diff(present[begin:end])
        usual = int(np.median(own_gaps)) if own_gaps.size else int(lengths[code])
        found.append(Sparse(int(code), int(filled[code]), int(observed[code]), usual))
    return found


def fill_missing(
    grid: np.ndarray,
    grid_covariates: np.ndarray,
    offsets: np.ndarray,
    start_times: np.ndarray,
    freq: Frequency,
    table: Table,
    ids: np.ndarray,
    tz: str | None,
) -> None:
    """Fill missing steps in place. The target has a value at both ends of every series
    (see trim_missing_ends); covariates may not, so their ends are carried."""
    policy = table.config.fill
    missing = np.isnan(grid)
    if policy == "error" and missing.any():
        first = int(np.flatnonzero(missing)[0])
        code = int(np.searchsorted(offsets, first, side="right") - 1)
        when = shift_times(start_times[code : code + 1], np.array([first - offsets[code]]), freq)
        raise DataError(
            f"{table.source.label}: series {ids[code]!r} is missing "
            f"{int(missing[offsets[code] : offsets[code + 1]].sum()):,} step(s), the first at "
            f"{format_time(int(when[0]), tz)} ({int(missing.sum()):,} in all); "
            "pass --fill interpolate|ffill|zero to fill them"
        )
    _fill_column(grid, offsets, policy)
    for column, name in enumerate(table.columns.covariates):
        values = grid_covariates[:, column]
        lengths = np.diff(offsets)
        present = np.bincount(
            np.repeat(np.arange(len(lengths)), lengths),
            weights=~np.isnan(values),
            minlength=len(lengths),
        )
        if (present == 0).any():
            code = int(np.flatnonzero(present == 0)[0])
            raise DataError(
                f"{table.source.label}: covariate {name!r} has no value at all for series "
                f"{ids[code]!r}; give it values or leave it out of --covariates"
            )
        if np.isnan(values).any():
            if policy == "error":
                code = int(np.searchsorted(offsets, np.flatnonzero(np.isnan(values))[0], "right"))
                raise DataError(
                    f"{table.source.label}: covariate {name!r} has missing values in series "
                    f"{ids[code - 1]!r}; pass --fill interpolate|ffill|zero to fill them"
                )
            _fill_column(values, offsets, policy)
            grid_covariates[:, column] = values


def _fill_column(column: np.ndarray, offsets: np.ndarray, policy: str) -> None:
    """Fill NaNs in place within each series: linear, last value, or zero. A series
    whose first values are missing takes its first present value for them."""
    missing = np.isnan(column)
    if not missing.any():
        return
    if policy == "zero":
        column[missing] = 0.0
        return
    index = np.arange(column.shape[0])
    series_of = np.repeat(np.arange(offsets.shape[0] - 1), np.diff(offsets))
    series_start = offsets[:-1][series_of]
    series_last = offsets[1:][series_of] - 1
    previous = np.maximum.accumulate(np.where(missing, -1, index))
    following = np.minimum.accumulate(np.where(missing, column.shape[0], index)[::-1])[::-1]
    has_previous = previous >= series_start
    has_following = following <= series_last
    previous = np.where(has_previous, previous, following)
    following = np.where(has_following, following, previous)
    if policy == "ffill":
        column[missing] = column[previous[missing]]
        return
    span = (following - previous).astype(np.float64)
    weight = np.divide(index - previous, span, out=np.zeros_like(span), where=span > 0)
    filled = column[previous] + weight * (column[following] - column[previous])
    column[missing] = filled[missing]


def filled_warnings(
    sparse: list[Sparse], ids: np.ndarray, freq: Frequency, fill: str
) -> tuple[str, ...]:
    """Warnings for series filled more than observed (``mostly_filled``); the first
    five are named. A few missing steps are normal and not worth a word."""
    label = freq.label
    steps = f"steps ({freq.alias})" if label.startswith("every") else f"{label} steps"
    warnings = tuple(
        f"series {str(ids[found.code])!r} is mostly filled, not observed: "
        f"{found.filled:,} of its {found.filled + found.observed:,} {steps} "
        f"have no value and were filled by --fill {fill} (its values are usually "
        f"{_steps(found.usual_gap)} apart); check that it belongs with the others, or "
        "pass --fill error to refuse gaps"
        for found in sparse[:5]
    )
    if len(sparse) > 5:
        warnings += (f"{len(sparse) - 5} more series are mostly filled, not observed",)
    return warnings


def _steps(count: int) -> str:
    return f"{count} step" if count == 1 else f"{count} steps"
