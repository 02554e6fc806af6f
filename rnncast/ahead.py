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

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rnncast.errors import DataError
from rnncast.frequency import Frequency
from rnncast.grid import Rows
from rnncast.io import Table, concat_tables, settle_types
from rnncast.time_axis import shift_times, step_positions
from rnncast.timezones import format_time, wall_clock


@dataclass
class FutureRows:
    """The rows after each series' last value, and where an empty-target run ends
    at that value: a hint that the value is a stray target among future rows."""

    rows: Rows
    gap_from: np.ndarray  # (n_ids,) int64 time of the first empty target of the run
    gapped: np.ndarray  # (n_ids,) bool: the last value follows at least one empty target

    def to_wall_clock(self, tz: str) -> None:
        """Times as the zone's wall clock, as the history's became (grid.use_wall_clock)."""
        if self.rows.times.size:
            self.rows.times = wall_clock(self.rows.times, tz)
        if self.gap_from.size:
            self.gap_from = wall_clock(self.gap_from, tz)

    def renumber(self, code_of: np.ndarray) -> None:
        """Series codes to new ones (``code_of[old]``; -1: dropped), rows and all."""
        rows = self.rows
        rows.keep(np.flatnonzero(rows.codes < code_of.size))
        rows.codes = code_of[rows.codes]
        rows.keep(np.flatnonzero(rows.codes >= 0))
        size = int(code_of.max(initial=-1)) + 1
        kept = np.flatnonzero(code_of >= 0)
        gap_from, gapped = np.zeros(size, np.int64), np.zeros(size, bool)
        inside = kept[kept < self.gapped.size]
        gap_from[code_of[inside]] = self.gap_from[inside]
        gapped[code_of[inside]] = self.gapped[inside]
        self.gap_from, self.gapped = gap_from, gapped


def split_future_rows(rows: Rows, n_ids: int) -> FutureRows:
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
    # The row of each series' last value, and of the value before it: the rows between
    # them, if any, have empty targets.
    last = np.full(n_ids, -1)
    np.maximum.at(last, rows.codes[present], np.flatnonzero(present))
    earlier = present & (np.arange(present.size) != last[rows.codes])
    previous = np.full(n_ids, -1)
    np.maximum.at(previous, rows.codes[earlier], np.flatnonzero(earlier))
    first_row = np.where(previous >= 0, previous + 1, starts)
    gapped = (last >= 0) & (first_row < last)
    gap_from = rows.times[np.minimum(first_row, rows.times.size - 1)].copy()
    future = Rows(
        codes=rows.codes[after_last],
        times=rows.times[after_last],
        values=rows.values[after_last],
        covariates=rows.covariates[after_last],
        origin=rows.origin[after_last],
    )
    rows.keep(~after_last)
    return FutureRows(future, gap_from, gapped)


def lay_ahead(
    found: FutureRows,
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
    future = found.rows
    names = table.columns.future
    known = len(names)
    label = table.source.label
    has_rows = np.bincount(future.codes, minlength=len(ids)) > 0
    if horizon:
        _refuse_stray_targets(found, end_times, horizon, table, ids, tz, freq, mode)
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
    off_grid = steps < 1  # after a first row on the grid: a stamp between two steps
    if off_grid.any():
        row = int(np.flatnonzero(off_grid)[0])
        raise DataError(
            f"{label}: series {str(ids[int(series[row])])!r}: the future row at "
            f"{format_time(int(future.times[row]), tz, freq)} is off the series' grid "
            f"({freq.alias} steps from its last value)"
        )
    wanted = steps <= span
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


def _refuse_stray_targets(
    found: FutureRows,
    end_times: np.ndarray,
    horizon: int,
    table: Table,
    ids: np.ndarray,
    tz: str | None,
    freq: Frequency,
    mode: str,
) -> None:
    """A target value among a series' future rows makes that row its last value, and
    the future rows before it a gap in its history: the series then has too few
    future rows after it. Where empty targets run up to the last value and too few
    future rows follow, name that value rather than the rows that seem missing."""
    counts = np.bincount(found.rows.codes, minlength=len(ids))
    # Where future rows are optional (check, evaluate), a series without any is fine.
    suspect = found.gapped[: len(ids)] & (counts < horizon) & ((counts > 0) | (mode == "require"))
    if not suspect.any():
        return
    code = int(np.flatnonzero(suspect)[0])
    target = table.columns.targets[0]
    gap_start = format_time(int(found.gap_from[code]), tz, freq)
    value_at = format_time(int(end_times[code]), tz, freq)
    raise DataError(
        f"{table.source.label}: column {target!r}, series {str(ids[code])!r}: a target value "
        f"at {value_at} follows empty targets from {gap_start}, and {int(counts[code])} of "
        f"the {horizon} future rows come after it. If the rows from {gap_start} on are its "
        "future rows, leave the target empty on all of them"
    )


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


def read_future_file(path: str, history: Table) -> pa.Table:
    """The future rows in ``path`` (``--future FILE``), as columns of ``history``'s table:
    its id, time and future covariate columns, the target empty, the covariates known
    up to the last value empty, each series' static values copied from its history.

    Raises DataError naming the file when it cannot be read, lacks a column, or holds a
    target value: future rows leave the target empty."""
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pa_parquet

    columns = history.columns
    label = f"--future {path}"
    try:
        data = (
            pa_parquet.read_table(path)
            if str(path).endswith(".parquet")
            else pa_csv.read_csv(
                path, convert_options=pa_csv.ConvertOptions(strings_can_be_null=True)
            )
        )
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{label}: cannot be read ({str(exc).splitlines()[0]})") from None
    roles = [(columns.id, "series id"), (columns.time, "time")] + [
        (name, "future covariate") for name in columns.future
    ]
    for name, role in roles:
        if name not in data.column_names:
            raise DataError(f"{label}: no column {name!r} ({role}); it holds {data.column_names}")
    target = columns.targets[0]
    if target in data.column_names:
        values = pc.cast(data.column(target), pa.float64(), safe=False)
        given = pc.and_(pc.is_valid(values), pc.invert(pc.is_nan(values.fill_null(0.0))))
        if pc.any(given).as_py():
            row = int(pc.index(given, True).as_py())
            raise DataError(
                f"{label}: column {target!r}, series {data.column(columns.id)[row].as_py()!r}: "
                f"a target value at {data.column(columns.time)[row].as_py()} (row {row + 1}); "
                "future rows leave the target empty"
            )
    rows = data.num_rows
    ids = pc.cast(data.column(columns.id), pa.string())
    built = {}
    for field in history.data.schema:
        name = field.name
        if name == columns.id:
            built[name] = ids
        elif name == columns.time or name in columns.future:
            built[name] = data.column(name)
        elif name in columns.statics:
            built[name] = _statics_by_id(history, name, ids)
        else:  # the target and the covariates known up to the last value only
            built[name] = pa.nulls(rows, pa.float64())
    part = Table(pa.table(built), columns, history.source, history.config, (rows,))
    return settle_types(part).data


def _statics_by_id(history: Table, name: str, ids: pa.ChunkedArray) -> pa.Array:
    """The value of static column ``name`` each series holds in ``history``, per row
    of ``ids`` (null for a series the history lacks)."""
    own_ids = pc.cast(history.data.column(history.columns.id), pa.string())
    pairs = pa.table({"id": own_ids, "value": history.data.column(name)})
    first = pairs.group_by("id", use_threads=False).aggregate([("value", "first")])
    position = pc.index_in(ids, value_set=first.column("id"))
    return pc.take(first.column("value_first"), position)


def add_future_rows(history: Table, future: pa.Table) -> Table:
    """``history`` with the rows of ``future`` (``read_future_file``) whose series it
    holds appended: build_panel then finds them after each series' last value."""
    own = pc.unique(pc.cast(history.data.column(history.columns.id), pa.string()))
    mine = future.filter(pc.is_in(pc.cast(future.column(history.columns.id), pa.string()), own))
    if not mine.num_rows:
        return history
    data = concat_tables(
        [history.data, mine.cast(history.data.schema, safe=False)], history.source.label
    )
    return Table(data, history.columns, history.source, history.config,
                 (*history.file_rows, mine.num_rows))  # fmt: skip
