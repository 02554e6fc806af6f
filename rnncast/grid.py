"""From rows to regular grids: the array work behind ``build_panel``.

Each function takes the row-aligned arrays of a table being built (``Rows``)
and does one job over all series at once with whole-array numpy operations:
sort, combine duplicates, refuse non-finite values, trim missing ends, choose
the frequency and lay every series on its grid (``rnncast.gaps`` fills it).
Problems become DataErrors that name the file, the series, the timestamp and the row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnncast.errors import DataError
from rnncast.frequency import FIRST_NS, LAST_NS, MAX_STEP_NS, NS_PER_DAY, Frequency, parse_frequency
from rnncast.io import Table
from rnncast.time_axis import infer_frequency, step_positions
from rnncast.timezones import counts_in_wall_clock, format_time, wall_clock

# A grid this many times larger than the rows read means the timestamps are not
# regular (a stray second makes the greatest common step one second): refuse it
# rather than allocate a huge, almost empty grid.
_MAX_GRID_INFLATION = 20
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class Rows:
    """Row-aligned arrays while the panel is being built; kept in step by ``keep``."""

    codes: np.ndarray  # (n,) int64 series code
    times: np.ndarray  # (n,) int64 ns
    values: np.ndarray  # (n,) float64
    covariates: np.ndarray  # (n, C) float64
    # (n,) int64 row number in the table, for messages; None while rows are still in
    # table order, which saves an array of n int64 in the common, already clean case.
    origin: np.ndarray | None = None

    def keep(self, mask_or_index: np.ndarray) -> None:
        if self.origin is None:
            self.origin = np.arange(self.codes.shape[0], dtype=np.int64)
        for name in ("codes", "times", "values", "covariates", "origin"):
            setattr(self, name, getattr(self, name)[mask_or_index])

    def row(self, position: int) -> int:
        """The table row that row ``position`` came from."""
        return position if self.origin is None else int(self.origin[position])


def extract_rows(table: Table) -> tuple[Rows, np.ndarray, str | None]:
    import pyarrow as pa

    data, columns = table.data, table.columns
    time_column = data.column(columns.time)
    tz = time_column.type.tz
    times = time_column.combine_chunks().cast(pa.int64()).to_numpy()
    n_rows = times.shape[0]
    covariates = np.column_stack(
        [data.column(name).to_numpy().astype(np.float64) for name in columns.covariates]
        or [np.empty((n_rows, 0))]
    )
    if len(columns.targets) > 1 or columns.id is None:
        # Wide layout (or one series without an id): column j is series j.
        ids = np.asarray(columns.targets, dtype=object)
        block = np.column_stack([data.column(name).to_numpy() for name in columns.targets])
        n_series = len(columns.targets)
        rows = Rows(
            codes=np.repeat(np.arange(n_series, dtype=np.int64), n_rows),
            times=np.tile(times, n_series),
            values=np.ascontiguousarray(block.T, dtype=np.float64).reshape(-1),  # (S*T,)
            covariates=np.tile(covariates, (n_series, 1)),
            origin=np.tile(np.arange(n_rows, dtype=np.int64), n_series),
        )
        return rows, ids, tz
    id_column = data.column(columns.id).combine_chunks()
    ids = id_column.dictionary.to_numpy(zero_copy_only=False).astype(object)
    rows = Rows(
        codes=id_column.indices.to_numpy().astype(np.int64),
        times=times,
        values=data.column(columns.targets[0]).to_numpy().astype(np.float64, copy=False),
        covariates=covariates,
    )
    return rows, ids, tz


def sort_rows(rows: Rows) -> bool:
    """Sort by (series, time), stably so --duplicates last keeps file order. Returns
    whether the input was already sorted (the common case costs one pass, no sort)."""
    codes, times = rows.codes, rows.times
    # Booleans only: masking the int64 times would copy them twice.
    in_order = bool((codes[1:] >= codes[:-1]).all()) and bool(
        ((times[1:] >= times[:-1]) | (codes[1:] != codes[:-1])).all()
    )
    if not in_order:
        rows.keep(np.lexsort((times, codes)))
    return in_order


def combine_duplicates(rows: Rows, table: Table, ids: np.ndarray, tz: str | None) -> int:
    duplicate = (rows.codes[1:] == rows.codes[:-1]) & (rows.times[1:] == rows.times[:-1])
    count = int(duplicate.sum())
    if count == 0:
        return 0
    policy = table.config.duplicates
    if policy == "error":
        second = int(np.flatnonzero(duplicate)[0]) + 1
        raise DataError(
            f"{table.source.label}: {count} duplicated (series, time) pair(s), e.g. series "
            f"{ids[rows.codes[second]]!r} at {format_time(int(rows.times[second]), tz)} "
            f"({table.where(rows.row(second - 1))} and "
            f"{table.where(rows.row(second))}); remove them or pass "
            "--duplicates mean|sum|last"
            + (
                "; no series id column was found, so if the file holds several series, "
                "name it with --id-col"
                if table.columns.id is None
                else ""
            )
        )
    first = np.concatenate([[True], ~duplicate])
    group = np.cumsum(first) - 1
    n_groups = int(group[-1]) + 1
    last = np.concatenate([np.flatnonzero(first)[1:] - 1, [first.shape[0] - 1]])

    def combine(column: np.ndarray) -> np.ndarray:
        if policy == "last":
            return column[last]
        present = ~np.isnan(column)
        totals = np.bincount(group, weights=np.where(present, column, 0.0), minlength=n_groups)
        counts = np.bincount(group, weights=present, minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            combined = totals / counts if policy == "mean" else totals
        return np.where(counts > 0, combined, np.nan)

    values = combine(rows.values)
    covariates = np.column_stack(
        [combine(rows.covariates[:, j]) for j in range(rows.covariates.shape[1])]
        or [np.empty((n_groups, 0))]
    )
    rows.keep(first)
    rows.values, rows.covariates = values, covariates
    return count


def check_finite(rows: Rows, table: Table, ids: np.ndarray, tz: str | None) -> None:
    """Refuse infinite values and values float32 cannot hold, in the target and the
    covariates alike. NaN is not refused here: it is a missing value."""
    columns = [(f"column {table.columns.targets[0]!r}", rows.values)]
    columns += [
        (f"covariate {name!r}", rows.covariates[:, j])
        for j, name in enumerate(table.columns.covariates)
    ]
    for what, values in columns:
        bad = np.abs(values) > _FLOAT32_MAX  # inf included
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{table.source.label}: {what} holds {float(values[first])} for series "
                f"{ids[rows.codes[first]]!r} at {format_time(int(rows.times[first]), tz)} "
                f"({table.where(rows.row(first))}); {int(bad.sum())} value(s) are "
                f"infinite or beyond ±{_FLOAT32_MAX:.3g}: remove them or mark them missing"
            )


def trim_missing_ends(rows: Rows, n_ids: int) -> tuple[int, list[int]]:
    """Drop leading and trailing missing values of each series: a series spans its first
    to its last observed value. Returns rows dropped and codes left with no value."""
    present = ~np.isnan(rows.values)
    if present.all():
        return 0, []
    counts = np.bincount(rows.codes, minlength=n_ids)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    running = np.cumsum(present)
    before = np.concatenate([[0], running])[starts]  # present rows before each series
    seen_so_far = running - before[rows.codes]
    total = np.bincount(rows.codes, weights=present, minlength=n_ids).astype(np.int64)
    still_to_come = total[rows.codes] - seen_so_far + present
    keep = (seen_so_far > 0) & (still_to_come > 0)
    empty = [int(code) for code in np.flatnonzero((counts > 0) & (total == 0))]
    dropped = int((~keep).sum()) - int(counts[empty].sum())
    rows.keep(keep)
    return dropped, empty


def compact_codes(codes: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber codes to 0..S-1 over the ids that still have rows, in first-seen order."""
    used = np.bincount(codes, minlength=len(ids)) > 0
    if used.all():
        return codes, ids
    new_code = np.cumsum(used) - 1
    return new_code[codes], ids[used]


def use_wall_clock(rows: Rows, offsets: np.ndarray, table: Table, tz: str) -> bool:
    """Switch zoned times to wall-clock when the data steps by days or longer, so that
    daily stamps at local midnight stay one day apart across daylight saving."""
    try:
        local = wall_clock(rows.times, tz)
    except DataError as exc:
        # Hours from the limits, a UTC instant may have no local time in int64 ns:
        # name the stamp nearest to either limit.
        latest, earliest = int(rows.times.max()), int(rows.times.min())
        nearer = latest if LAST_NS - latest < earliest - FIRST_NS else earliest
        edge = format_time(nearer, None)
        raise DataError(
            f"{table.source.label}: column {table.columns.time!r} holds {edge} UTC, which in "
            f"zone {tz} falls outside 1677-09-21 to 2262-04-11, the times rnncast can represent"
        ) from exc
    freq_text = table.config.freq
    freq = parse_frequency(freq_text) if freq_text else infer_frequency(local, offsets)
    if freq is None or not counts_in_wall_clock(freq):
        return False
    rows.times = local
    return True


def choose_frequency(
    rows: Rows, offsets: np.ndarray, table: Table, ids: np.ndarray, tz: str | None
) -> Frequency:
    label = table.source.label
    n_rows = rows.times.shape[0]
    if table.config.freq is not None:
        freq = parse_frequency(table.config.freq)
        _check_grid_size(rows, offsets, freq, f"--freq {table.config.freq}", label)
        return freq
    freq = infer_frequency(rows.times, offsets)
    if freq is None:
        raise DataError(
            f"{label}: every series has a single timestamp, so the frequency cannot be "
            "inferred; pass --freq (e.g. --freq h or --freq D)"
        )
    if freq.step_ns > MAX_STEP_NS:
        raise DataError(
            f"{label}: its timestamps are {freq.step_ns // NS_PER_DAY:,} days apart, a step "
            "longer than two hundred years; pass --freq with the intended step"
        )
    if not freq.is_calendar and _grid_lengths(rows, offsets, freq).sum() > 2 * n_rows:
        # A few stray stamps (02:01 among hourly ones) shrink the common step to a
        # minute. The usual step is then the one meant: lay_on_grid names the strays.
        usual, share = _most_common_step(rows, offsets)
        if share > 0.5 and usual > freq.step_ns and usual % freq.step_ns == 0:
            freq = Frequency(step_ns=usual)
    step = freq.label.removeprefix("every ")
    _check_grid_size(rows, offsets, freq, f"the largest step that fits them all, {step},", label)
    return freq


def _check_grid_size(
    rows: Rows, offsets: np.ndarray, freq: Frequency, what: str, label: str
) -> None:
    n_rows = rows.times.shape[0]
    # Summed as floats: a 1 ns grid over centuries has more steps than int64 can count.
    span_steps = float(np.maximum(_grid_lengths(rows, offsets, freq), 1).astype(np.float64).sum())
    if span_steps > _MAX_GRID_INFLATION * n_rows and span_steps > 1_000:
        raise DataError(
            f"{label}: timestamps are not on a regular grid: {what} would make "
            f"{span_steps:,.0f} steps out of {n_rows:,} rows. Pass --freq with the intended "
            "step (timestamps off that step are then reported)"
        )


def _most_common_step(rows: Rows, offsets: np.ndarray) -> tuple[int, float]:
    """The most common step between consecutive stamps, and the share it has."""
    diffs = np.diff(rows.times)
    inside = np.ones(diffs.shape, dtype=bool)
    inside[offsets[1:-1] - 1] = False
    steps, counts = np.unique(diffs[inside], return_counts=True)
    best = int(np.argmax(counts))
    return int(steps[best]), float(counts[best] / counts.sum())


def _grid_lengths(rows: Rows, offsets: np.ndarray, freq: Frequency) -> np.ndarray:
    first, last = rows.times[offsets[:-1]], rows.times[offsets[1:] - 1]
    return step_positions(last, first, freq) + 1


def lay_on_grid(
    rows: Rows,
    offsets: np.ndarray,
    freq: Frequency,
    table: Table,
    ids: np.ndarray,
    tz: str | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not freq.is_calendar:
        boundary = rows.codes[1:] != rows.codes[:-1]
        if ((np.diff(rows.times) == freq.step_ns) | boundary).all():
            # Already a complete grid, the usual case: no scatter, no copy. The values
            # may be a read-only view of Arrow memory, but then they hold no NaN (NaNs
            # pass through trim_missing_ends, which copies), so nothing writes to them.
            return rows.values, rows.covariates, offsets
    lengths = np.diff(offsets)
    origins = np.repeat(rows.times[offsets[:-1]], lengths)
    positions = step_positions(rows.times, origins, freq)
    off_grid = positions < 0
    if off_grid.any():
        first = int(np.flatnonzero(off_grid)[0])
        code = rows.codes[first]
        raise DataError(
            f"{table.source.label}: series {ids[code]!r} has "
            f"{format_time(int(rows.times[first]), tz)} ({table.where(rows.row(first))}),"
            f" which is off its {freq.label} ({freq.alias}) grid starting at "
            f"{format_time(int(rows.times[offsets[code]]), tz)}; "
            f"{int(off_grid.sum())} timestamp(s) are off the grid. Check --freq"
        )
    grid_lengths = positions[offsets[1:] - 1] + 1
    grid_offsets = np.concatenate([[0], np.cumsum(grid_lengths)])
    slots = grid_offsets[:-1][rows.codes] + positions
    grid = np.full(int(grid_offsets[-1]), np.nan)
    grid[slots] = rows.values
    grid_covariates = np.full((grid.shape[0], rows.covariates.shape[1]), np.nan)
    grid_covariates[slots] = rows.covariates
    return grid, grid_covariates, grid_offsets
