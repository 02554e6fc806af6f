"""The Panel: many regular time series in shared contiguous arrays.

A Panel guarantees, checked once when it is made, so later stages trust it:

- ``values`` is one C-contiguous float32 buffer, read-only; series i is
  ``values[begins[i]:ends[i]]``, a view. Slicing a Panel in time makes new
  ``begins``/``ends`` over the same buffer, never a copy.
- every series has at least one step, a regular grid at ``freq`` starting at
  ``start_times[i]``, with no missing step and only finite values;
- ``covariates`` has one float32 row per row of ``values``, the same views apply;
- series ids are unique strings.

``build_panel`` turns a settled Arrow table (see ``rnncast.io``) into a Panel:
it sorts, combines duplicates, trims, infers the frequency, lays each series on
its grid and fills the gaps, all with whole-array numpy operations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rnncast.config import DataConfig
from rnncast.errors import DataError
from rnncast.frequency import (
    NS_PER_DAY,
    Frequency,
    calendar_feature_names,
    grid_times,
    infer_frequency,
    parse_frequency,
    shift_times,
    step_positions,
)

if TYPE_CHECKING:
    import pandas as pd

    from rnncast.io import Table

# A grid this many times larger than the rows read means the timestamps are not
# regular (a stray second makes the greatest common step one second): refuse it
# rather than allocate a huge, almost empty grid.
_MAX_GRID_INFLATION = 20
_FLOAT32_MAX = float(np.finfo(np.float32).max)


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
    skipped: tuple[tuple[str, str], ...] = ()  # (series id, why)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Panel:
    """Regular time series sharing contiguous buffers. See the module docstring."""

    ids: np.ndarray  # (S,) str
    values: np.ndarray  # (N,) float32 buffer shared by all views
    begins: np.ndarray  # (S,) int64
    ends: np.ndarray  # (S,) int64
    start_times: np.ndarray  # (S,) int64 ns of each series' first step
    freq: Frequency
    covariates: np.ndarray  # (N, C) float32, rows aligned with values
    covariate_names: tuple[str, ...] = ()
    tz: str | None = None  # with a zone, times are UTC instants
    target_name: str = "y"
    ingest: IngestReport | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        n_series = self.ids.shape[0]
        if self.values.dtype != np.float32 or self.values.ndim != 1:
            raise ValueError("Panel.values must be a 1-D float32 array")
        if not self.values.flags.c_contiguous:
            raise ValueError("Panel.values must be C-contiguous")
        for name in ("begins", "ends", "start_times"):
            array = getattr(self, name)
            if array.shape != (n_series,) or array.dtype != np.int64:
                raise ValueError(f"Panel.{name} must be int64 with one entry per series")
        if n_series == 0:
            raise ValueError("a Panel holds at least one series")
        if (self.begins < 0).any() or (self.ends > self.values.shape[0]).any():
            raise ValueError("Panel series bounds fall outside the values buffer")
        if (self.ends <= self.begins).any():
            raise ValueError("every Panel series has at least one step")
        if self.covariates.shape != (self.values.shape[0], len(self.covariate_names)):
            raise ValueError("Panel.covariates must have one row per value, one column per name")
        if np.unique(self.ids).shape[0] != n_series:
            raise ValueError("Panel series ids must be unique")
        for array in (self.values, self.covariates, self.begins, self.ends, self.start_times):
            array.flags.writeable = False

    @property
    def n_series(self) -> int:
        return int(self.ids.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """(S,) int64 number of steps of each series."""
        return self.ends - self.begins

    @property
    def n_steps(self) -> int:
        return int(self.lengths.sum())

    def series(self, index: int) -> np.ndarray:
        """The values of one series, a read-only view: (T,) float32."""
        return self.values[self.begins[index] : self.ends[index]]

    def series_covariates(self, index: int) -> np.ndarray:
        """The covariates of one series, a read-only view: (T, C) float32."""
        return self.covariates[self.begins[index] : self.ends[index]]

    def end_times(self) -> np.ndarray:
        """(S,) int64 ns timestamp of each series' last step."""
        return shift_times(self.start_times, self.lengths - 1, self.freq)

    def times(self) -> np.ndarray:
        """(n_steps,) int64 ns timestamps of every step, series after series."""
        return grid_times(self.start_times, self.lengths, self.freq)

    def index(self, series_id: str) -> int:
        """Position of a series by id; KeyError if absent."""
        found = np.flatnonzero(self.ids == series_id)
        if found.size == 0:
            raise KeyError(series_id)
        return int(found[0])

    def take(self, indices: np.ndarray | list[int]) -> Panel:
        """A Panel of some series, in the given order, sharing this one's buffers."""
        chosen = np.asarray(indices, dtype=np.int64)
        return replace(
            self,
            ids=self.ids[chosen],
            begins=self.begins[chosen],
            ends=self.ends[chosen],
            start_times=self.start_times[chosen],
        )

    def split_tail(self, steps: int) -> tuple[Panel, Panel]:
        """Split every series before its last ``steps`` steps: (head, tail), both views.

        Raises ValueError when a series has no more than ``steps`` steps, as its
        head would be empty; callers drop or reject such series first.
        """
        if steps < 1:
            raise ValueError(f"split_tail needs steps >= 1, got {steps}")
        if (self.lengths <= steps).any():
            shortest = int(self.lengths.min())
            raise ValueError(f"cannot hold out {steps} steps of a series with {shortest}")
        cut = self.ends - steps
        head = replace(self, ends=cut)
        tail = replace(
            self,
            begins=cut,
            start_times=shift_times(self.start_times, self.lengths - steps, self.freq),
        )
        return head, tail

    def to_frame(self) -> pd.DataFrame:
        """A long DataFrame: ``unique_id``, ``ds``, the target, then the covariates."""
        import pandas as pd

        rows = np.concatenate(
            [np.arange(b, e) for b, e in zip(self.begins, self.ends, strict=True)]
        )
        stamps = pd.to_datetime(self.times(), utc=self.tz is not None)
        if self.tz is not None:
            stamps = stamps.tz_convert(self.tz)
        frame = pd.DataFrame(
            {
                "unique_id": pd.Categorical.from_codes(
                    np.repeat(np.arange(self.n_series), self.lengths), categories=self.ids
                ),
                "ds": stamps,
                self.target_name: self.values[rows],
            }
        )
        for column, name in enumerate(self.covariate_names):
            frame[name] = self.covariates[rows, column]
        return frame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, config: DataConfig | None = None) -> Panel:
        """Build a Panel from a DataFrame laid out as a file would be (see DataConfig)."""
        import pyarrow as pa

        from rnncast.io import table_from_arrow

        data = pa.Table.from_pandas(frame, preserve_index=False)
        return build_panel(table_from_arrow(data, config or DataConfig(), "<DataFrame>"))

    def format_time(self, nanoseconds: int) -> str:
        """A timestamp of this panel as text: a date alone for daily and longer steps."""
        text = format_time(nanoseconds, self.tz)
        daily_or_longer = self.freq.is_calendar or self.freq.step_ns % NS_PER_DAY == 0
        if daily_or_longer and self.tz is None and text.endswith(" 00:00:00"):
            return text.removesuffix(" 00:00:00")
        return text

    def describe(self) -> dict[str, object]:
        """Plain facts about the panel, for people and for ``check --json``."""
        lengths = self.lengths
        return {
            "series": self.n_series,
            "steps": self.n_steps,
            "length": {
                "min": int(lengths.min()),
                "median": float(np.median(lengths)),
                "max": int(lengths.max()),
            },
            "frequency": self.freq.alias,
            "frequency_label": self.freq.label,
            "season_length": self.freq.season_length,
            "start": self.format_time(int(self.start_times.min())),
            "end": self.format_time(int(self.end_times().max())),
            "time_zone": self.tz,
            "covariates": list(self.covariate_names),
            "calendar_features": list(calendar_feature_names(self.freq)),
            "ingest": asdict(self.ingest) if self.ingest is not None else None,
        }


def read_panel(location: str | Path, config: DataConfig | None = None) -> Panel:
    """Read a file, glob or dataset directory of series into a Panel.

    Raises DataError (exit code 3) for anything about the data that cannot be
    used, ConfigError (2) for contradictory settings.
    """
    from rnncast.io import read_table, resolve_source

    config = config or DataConfig()
    return build_panel(read_table(resolve_source(location), config))


def format_time(nanoseconds: int, tz: str | None) -> str:
    """An ISO-8601 timestamp for messages and reports, in the data's own zone."""
    import pandas as pd

    stamp = pd.Timestamp(nanoseconds, unit="ns", tz="UTC" if tz else None)
    if tz:
        stamp = stamp.tz_convert(tz)
    return stamp.isoformat(sep=" ")


@dataclass
class _Rows:
    """Row-aligned arrays while the panel is being built; kept in step by ``keep``."""

    codes: np.ndarray  # (n,) int64 series code
    times: np.ndarray  # (n,) int64 ns
    values: np.ndarray  # (n,) float64
    covariates: np.ndarray  # (n, C) float64
    origin: np.ndarray  # (n,) int64 row number in the table, for messages

    def keep(self, mask_or_index: np.ndarray) -> None:
        for name in ("codes", "times", "values", "covariates", "origin"):
            setattr(self, name, getattr(self, name)[mask_or_index])


def build_panel(table: Table) -> Panel:
    """Sort, combine duplicates, trim, grid and fill a settled table into a Panel."""
    config = table.config
    rows, ids, tz = _extract_rows(table)
    was_sorted = _sort_rows(rows)
    combined = _combine_duplicates(rows, table, ids, tz)
    _check_finite(rows, table, ids, tz)
    nan_values = int(np.isnan(rows.values).sum())
    trimmed, empty = _trim_missing_ends(rows, len(ids))
    skipped = [(str(ids[code]), "no values") for code in empty]
    if rows.codes.size == 0:
        raise DataError(f"{table.source.label}: no series has a single value")
    rows.codes, ids = _compact_codes(rows.codes, ids)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows.codes, minlength=len(ids)))])
    freq = _frequency(rows, offsets, table, ids, tz)
    grid, grid_covariates, grid_offsets = _lay_on_grid(rows, offsets, freq, table, ids, tz)
    missing_timestamps = int(grid.shape[0] - rows.values.shape[0])
    start_times = rows.times[offsets[:-1]]
    _fill_missing(grid, grid_covariates, grid_offsets, start_times, freq, table, ids, tz)
    lengths = np.diff(grid_offsets)

    keep = np.ones(len(ids), dtype=bool)
    if config.horizon is not None:
        short = lengths < config.horizon + 1
        skipped += [
            (
                str(ids[i]),
                f"{lengths[i]} steps; --horizon {config.horizon} needs at least "
                f"{config.horizon + 1}",
            )
            for i in np.flatnonzero(short)
        ]
        keep = ~short
        if not keep.any():
            raise DataError(
                f"{table.source.label}: no series is long enough for --horizon "
                f"{config.horizon}: the longest has {int(lengths.max())} steps and each needs "
                f"at least {config.horizon + 1}"
            )
    kept = np.flatnonzero(keep)
    warnings = tuple(f"series {name!r} skipped: {why}" for name, why in skipped)
    report = IngestReport(
        source=table.source.label,
        layout="wide" if table.columns.id is None and len(table.columns.targets) > 1 else "long",
        columns={
            "id": table.columns.id,
            "time": table.columns.time,
            "target": list(table.columns.targets),
            "covariates": list(table.columns.covariates),
            "spare_numeric": list(table.columns.spare_numeric),
        },
        rows_read=int(table.data.num_rows),
        was_sorted=was_sorted,
        duplicates_combined=combined,
        missing_timestamps=missing_timestamps,
        missing_values=nan_values - trimmed,
        trimmed_rows=trimmed,
        skipped=tuple(skipped),
        warnings=warnings,
    )
    return Panel(
        ids=ids[kept],
        values=grid.astype(np.float32),
        begins=grid_offsets[:-1][kept].astype(np.int64),
        ends=grid_offsets[1:][kept].astype(np.int64),
        start_times=start_times[kept].astype(np.int64),
        freq=freq,
        covariates=grid_covariates.astype(np.float32),
        covariate_names=table.columns.covariates,
        tz=tz,
        target_name=table.columns.targets[0] if table.columns.id is not None else "y",
        ingest=report,
    )


def _extract_rows(table: Table) -> tuple[_Rows, np.ndarray, str | None]:
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
        rows = _Rows(
            codes=np.repeat(np.arange(n_series, dtype=np.int64), n_rows),
            times=np.tile(times, n_series),
            values=np.ascontiguousarray(block.T, dtype=np.float64).reshape(-1),  # (S*T,)
            covariates=np.tile(covariates, (n_series, 1)),
            origin=np.tile(np.arange(n_rows, dtype=np.int64), n_series),
        )
        return rows, ids, tz
    id_column = data.column(columns.id).combine_chunks()
    ids = id_column.dictionary.to_numpy(zero_copy_only=False).astype(object)
    rows = _Rows(
        codes=id_column.indices.to_numpy().astype(np.int64),
        times=times,
        values=data.column(columns.targets[0]).to_numpy().astype(np.float64),
        covariates=covariates,
        origin=np.arange(n_rows, dtype=np.int64),
    )
    return rows, ids, tz


def _sort_rows(rows: _Rows) -> bool:
    """Sort by (series, time), stably so --duplicates last keeps file order. Returns
    whether the input was already sorted (the common case costs one pass, no sort)."""
    codes, times = rows.codes, rows.times
    same_series = codes[1:] == codes[:-1]
    in_order = bool((codes[1:] >= codes[:-1]).all()) and bool(
        (times[1:][same_series] >= times[:-1][same_series]).all()
    )
    if not in_order:
        rows.keep(np.lexsort((times, codes)))
    return in_order


def _combine_duplicates(rows: _Rows, table: Table, ids: np.ndarray, tz: str | None) -> int:
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
            f"({table.where(int(rows.origin[second - 1]))} and "
            f"{table.where(int(rows.origin[second]))}); remove them or pass "
            "--duplicates mean|sum|last"
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


def _check_finite(rows: _Rows, table: Table, ids: np.ndarray, tz: str | None) -> None:
    magnitude = np.abs(rows.values)
    bad = np.isinf(magnitude) | (magnitude > _FLOAT32_MAX)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{table.source.label}: column {table.columns.targets[0]!r} holds "
            f"{float(rows.values[first])} for series {ids[rows.codes[first]]!r} at "
            f"{format_time(int(rows.times[first]), tz)} "
            f"({table.where(int(rows.origin[first]))}); {int(bad.sum())} value(s) are "
            f"infinite or beyond ±{_FLOAT32_MAX:.3g}: remove them or mark them missing"
        )
    for column, name in enumerate(table.columns.covariates):
        if np.isinf(rows.covariates[:, column]).any():
            first = int(np.flatnonzero(np.isinf(rows.covariates[:, column]))[0])
            raise DataError(
                f"{table.source.label}: covariate {name!r} is infinite for series "
                f"{ids[rows.codes[first]]!r} at {table.where(int(rows.origin[first]))}"
            )


def _trim_missing_ends(rows: _Rows, n_ids: int) -> tuple[int, list[int]]:
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


def _compact_codes(codes: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber codes to 0..S-1 over the ids that still have rows, in first-seen order."""
    used = np.bincount(codes, minlength=len(ids)) > 0
    if used.all():
        return codes, ids
    new_code = np.cumsum(used) - 1
    return new_code[codes], ids[used]


def _frequency(
    rows: _Rows, offsets: np.ndarray, table: Table, ids: np.ndarray, tz: str | None
) -> Frequency:
    label = table.source.label
    if table.config.freq is not None:
        return parse_frequency(table.config.freq)
    freq = infer_frequency(rows.times, offsets)
    if freq is None:
        raise DataError(
            f"{label}: every series has a single timestamp, so the frequency cannot be "
            "inferred; pass --freq (e.g. --freq h or --freq D)"
        )
    span_steps = _grid_lengths(rows, offsets, freq).sum()
    if span_steps > _MAX_GRID_INFLATION * rows.times.shape[0] and span_steps > 10_000:
        step = freq.label.removeprefix("every ")
        raise DataError(
            f"{label}: timestamps are not on a regular grid: the largest step that fits "
            f"them all is {step}, which would make {span_steps:,} steps out of "
            f"{rows.times.shape[0]:,} rows. Pass --freq with the intended step "
            "(timestamps off that step are then reported)"
        )
    return freq


def _grid_lengths(rows: _Rows, offsets: np.ndarray, freq: Frequency) -> np.ndarray:
    first, last = rows.times[offsets[:-1]], rows.times[offsets[1:] - 1]
    return step_positions(last, first, freq) + 1


def _lay_on_grid(
    rows: _Rows,
    offsets: np.ndarray,
    freq: Frequency,
    table: Table,
    ids: np.ndarray,
    tz: str | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lengths = np.diff(offsets)
    origins = np.repeat(rows.times[offsets[:-1]], lengths)
    positions = step_positions(rows.times, origins, freq)
    off_grid = positions < 0
    if off_grid.any():
        first = int(np.flatnonzero(off_grid)[0])
        code = rows.codes[first]
        raise DataError(
            f"{table.source.label}: series {ids[code]!r} has "
            f"{format_time(int(rows.times[first]), tz)} ({table.where(int(rows.origin[first]))}),"
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


def _fill_missing(
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
    (see _trim_missing_ends); covariates may not, so their ends are carried."""
    policy = table.config.fill
    missing = np.isnan(grid)
    if policy == "error" and missing.any():
        first = int(np.flatnonzero(missing)[0])
        code = int(np.searchsorted(offsets, first, side="right") - 1)
        when = shift_times(start_times[code : code + 1], np.array([first - offsets[code]]), freq)
        raise DataError(
            f"{table.source.label}: series {ids[code]!r} is missing "
            f"{int(missing[offsets[code] : offsets[code + 1]].sum())} step(s), the first at "
            f"{format_time(int(when[0]), tz)} ({int(missing.sum())} in all); "
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
