"""From a settled table to the arrays of a Panel: the steps of ``build_panel``.

Sorting, duplicates, trimming, the future rows after each series' last value, the
static covariates, the frequency, the grid and its gaps each have a module of their
own (grid, ahead, statics, gaps); this one runs them in order over one table and
reports what they found and did (``IngestReport``, for ``rnncast check``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnncast.ahead import lay_ahead, split_future_rows
from rnncast.errors import DataError
from rnncast.frequency import Frequency
from rnncast.gaps import fill_missing, filled_warnings, mostly_filled
from rnncast.grid import (
    check_finite,
    choose_frequency,
    combine_duplicates,
    compact_codes,
    extract_rows,
    lay_on_grid,
    sort_rows,
    trim_missing_ends,
    use_wall_clock,
)
from rnncast.io import Table
from rnncast.statics import read_statics
from rnncast.time_axis import shift_times, steps_that_fit
from rnncast.timezones import format_time


@dataclass(frozen=True)
class IngestReport:
    """What building the Panel found and did to the data, for ``rnncast check``."""

    source: str
    layout: str
    columns: dict[str, object]
    rows_read: int
    was_sorted: bool
    duplicates_combined: int = 0
    missing_timestamps: int = 0
    missing_values: int = 0
    trimmed_rows: int = 0
    # Rows after a series' last value: read as future rows (forecast, check) or left
    # out of training.
    future_rows: int = 0
    skipped: tuple[tuple[str, str], ...] = ()  # (series id, why)
    warnings: tuple[str, ...] = ()


def assemble(table: Table) -> dict[str, Any]:
    """Sort, combine duplicates, trim, grid and fill a settled table: the arguments of
    the Panel it makes (``panel.build_panel``)."""
    config = table.config
    rows, ids, tz = extract_rows(table)
    statics = read_statics(table, rows.codes, len(ids), ids)
    was_sorted = sort_rows(rows)
    combined = combine_duplicates(rows, table, ids, tz)
    check_finite(rows, table, ids, tz)
    nan_values = int(np.isnan(rows.values).sum())
    reads_future = bool(table.columns.future) or config.future_rows != "skip"
    future = split_future_rows(rows, len(ids)) if reads_future else None
    trimmed, empty = trim_missing_ends(rows, len(ids))
    skipped = [(str(ids[code]), "no values") for code in empty]
    if rows.codes.size == 0:
        raise DataError(f"{table.source.label}: no series has any value")
    used = np.flatnonzero(np.bincount(rows.codes, minlength=len(ids)) > 0)
    rows.codes, ids = compact_codes(rows.codes, ids)
    if future is not None:
        code_of = np.full(int(used.max()) + 1 if used.size else 0, -1)
        code_of[used] = np.arange(used.size)
        future.renumber(code_of)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows.codes, minlength=len(ids)))])
    tz_of_times = tz
    if tz is not None and use_wall_clock(rows, offsets, table, tz):
        tz_of_times = None  # messages show the wall-clock times as they now are
        if future is not None:
            future.to_wall_clock(tz)
    freq = choose_frequency(rows, offsets, table, ids, tz_of_times)
    values, covariates, grid_offsets = lay_on_grid(rows, offsets, freq, table, ids, tz_of_times)
    missing_timestamps = int(values.shape[0] - rows.values.shape[0])
    start_times = rows.times[offsets[:-1]]
    sparse = mostly_filled(values, grid_offsets)
    fill_missing(values, covariates, grid_offsets, start_times, freq, table, ids, tz_of_times)
    lengths = np.diff(grid_offsets)

    keep = np.ones(len(ids), dtype=bool)
    if config.horizon is not None:
        short = lengths < config.horizon + 1
        skipped += [
            (
                str(ids[i]),
                f"{_steps(int(lengths[i]))}; --horizon {config.horizon} needs at least "
                f"{config.horizon + 1}",
            )
            for i in np.flatnonzero(short)
        ]
        keep = ~short
        if not keep.any():
            raise DataError(
                f"{table.source.label}: no series is long enough for --horizon "
                f"{config.horizon}: the longest has {_steps(int(lengths.max()))} and each needs "
                f"at least {config.horizon + 1}"
            )
    kept = np.flatnonzero(keep)
    if config.horizon is not None:
        ends = shift_times(start_times[kept], lengths[kept] - 1, freq)
        where = f"{table.source.label}: "
        refuse_past_the_limit(ends, config.horizon, freq, ids[kept], tz_of_times, where)
    ahead = None
    if future is not None and table.columns.future and config.future_rows != "skip":
        position = np.full(len(ids), -1)
        position[kept] = np.arange(kept.size)
        future.renumber(position)
        ends = shift_times(start_times[kept], lengths[kept] - 1, freq)
        steps = config.future_steps or config.horizon
        ahead = lay_ahead(
            future, ends, steps, freq, table, ids[kept], tz_of_times, config.future_rows
        )
    warnings = tuple(f"series {name!r} skipped: {why}" for name, why in skipped)
    warnings += filled_warnings(sparse, ids, freq, config.fill)
    report = IngestReport(
        source=table.source.label,
        layout="wide" if table.columns.id is None and len(table.columns.targets) > 1 else "long",
        columns={
            "id": table.columns.id,
            "time": table.columns.time,
            "target": list(table.columns.targets),
            "covariates": [n for n in table.columns.covariates if n not in table.columns.future],
            "future_covariates": list(table.columns.future),
            "static_covariates": list(table.config.static_covariates),
            "spare_numeric": list(table.columns.spare_numeric),
        },
        rows_read=int(table.data.num_rows),
        was_sorted=was_sorted,
        duplicates_combined=combined,
        missing_timestamps=missing_timestamps,
        missing_values=nan_values - trimmed - (future.rows.codes.size if future else 0),
        trimmed_rows=trimmed,
        future_rows=future.rows.codes.size if future is not None else 0,
        skipped=tuple(skipped),
        warnings=warnings,
    )
    return dict(
        ids=ids[kept],
        values=values.astype(np.float32),
        begins=grid_offsets[:-1][kept].astype(np.int64),
        ends=grid_offsets[1:][kept].astype(np.int64),
        start_times=start_times[kept].astype(np.int64),
        freq=freq,
        covariates=covariates.astype(np.float32),
        covariate_names=table.columns.covariates,
        tz=tz,
        target_name=table.columns.targets[0] if table.columns.id is not None else "y",
        ingest=report,
        future_covariates=table.columns.future,
        ahead=ahead,
        statics=None if statics is None else statics.take(used[kept]),
    )


def refuse_past_the_limit(
    ends: np.ndarray, horizon: int, freq: Frequency, ids: np.ndarray, tz: str | None, where: str
) -> None:
    """DataError naming the first series whose ``horizon`` steps after its end (int64
    ns) cannot be represented: int64 nanoseconds end on 2262-04-11."""
    fit = steps_that_fit(ends, freq)
    short = np.flatnonzero(fit < horizon)
    if short.size:
        index = int(short[0])
        more = f" ({short.size} series in all)" if short.size > 1 else ""
        fewest = int(fit[short].min())
        fix = (
            f"Shorten --horizon to {fewest}, or leave the series out"
            if fewest > 0
            else "Leave the series out, or end it earlier"
        )
        end = format_time(int(ends[index]), tz, freq)
        raise DataError(
            f"{where}series {str(ids[index])!r} ends at {end}, so its next "
            f"{_steps(horizon)} ({freq.alias}) would fall past 2262-04-11 23:47:16, the last "
            f"time rnncast can represent; only {_steps(int(fit[index]))} fit{more}. {fix}"
        )


def _steps(count: int) -> str:
    return f"{count} step" if count == 1 else f"{count} steps"
