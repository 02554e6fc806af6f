"""The Panel: many regular time series in shared contiguous arrays.

A Panel guarantees, checked once when it is made, so later stages trust it:

- ``values`` is one C-contiguous float32 buffer, read-only; series i is
  ``values[begins[i]:ends[i]]``, a view. Slicing a Panel in time makes new
  ``begins``/``ends`` over the same buffer, never a copy.
- every series has at least one step, a regular grid at ``freq`` starting at
  ``start_times[i]``, with no missing step and only finite values;
- ``covariates`` has one float32 row per row of ``values``, the same views apply;
  the last ``len(future_covariates)`` columns are known ahead, and ``ahead`` holds
  their values for the steps after each series' end (NaN where the data gave none);
- ``statics`` holds one value per series for each static covariate;
- series ids are unique strings.

``build_panel`` turns a settled Arrow table (see ``rnncast.io``) into a Panel:
``rnncast.assembly`` sorts, combines duplicates, trims, infers the frequency, lays
each series on its grid and fills the gaps, all with whole-array numpy operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rnncast.assembly import IngestReport, assemble, refuse_past_the_limit
from rnncast.config import DataConfig
from rnncast.errors import DataError
from rnncast.frequency import Frequency
from rnncast.statics import Statics
from rnncast.time_axis import grid_times, shift_times
from rnncast.timezones import counts_in_wall_clock, format_time, to_datetimes, wall_clock

if TYPE_CHECKING:
    import pandas as pd

    from rnncast.io import Table


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
    # With a zone, times are UTC instants for sub-daily steps and wall-clock times in
    # that zone for daily and longer ones (see timezones.counts_in_wall_clock).
    tz: str | None = None
    target_name: str = "y"
    ingest: IngestReport | None = field(default=None, compare=False)
    future_covariates: tuple[str, ...] = ()  # the last covariate columns, known ahead
    ahead: np.ndarray | None = None  # (S, A, len(future_covariates)) float32, NaN: unknown
    statics: Statics | None = None

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
        known = len(self.future_covariates)
        if self.covariate_names[len(self.covariate_names) - known :] != self.future_covariates:
            raise ValueError("Panel.future_covariates must be the last covariate names")
        if self.ahead is not None and (
            self.ahead.ndim != 3 or self.ahead.shape[0] != n_series or self.ahead.shape[2] != known
        ):
            raise ValueError("Panel.ahead must be (series, steps, future covariates)")
        if self.statics is not None and (
            self.statics.numeric.shape != (n_series, len(self.statics.numeric_names))
            or self.statics.categories.shape != (n_series, len(self.statics.category_names))
        ):
            raise ValueError("Panel.statics must hold one row per series, one column per name")
        for array in (self.values, self.covariates, self.begins, self.ends, self.start_times):
            array.flags.writeable = False

    @property
    def n_series(self) -> int:
        return int(self.ids.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """(S,) int64 number of steps of each series."""
        return self.ends - self.begins

    def step_rows(self) -> np.ndarray:
        """Buffer rows of every step of the panel, series after series."""
        lengths = self.lengths
        within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return np.repeat(self.begins, lengths) + within

    @property
    def n_steps(self) -> int:
        return int(self.lengths.sum())

    def series(self, index: int) -> np.ndarray:
        """The values of one series, a read-only view: (T,) float32."""
        return self.values[self.begins[index] : self.ends[index]]

    def series_covariates(self, index: int) -> np.ndarray:
        """The covariates of one series, a read-only view: (T, C) float32."""
        return self.covariates[self.begins[index] : self.ends[index]]

    def wall_times(self) -> np.ndarray:
        """(n_steps,) int64 ns wall-clock time of every step in the data's zone, which
        is what calendar features (hour of day, day of week) must be computed from."""
        times = self.times()
        if self.tz is None or counts_in_wall_clock(self.freq):
            return times
        return wall_clock(times, self.tz)

    def end_times(self) -> np.ndarray:
        """(S,) int64 ns timestamp of each series' last step."""
        return shift_times(self.start_times, self.lengths - 1, self.freq)

    def times(self) -> np.ndarray:
        """(n_steps,) int64 ns timestamps of every step, series after series."""
        return grid_times(self.start_times, self.lengths, self.freq)

    def future_times(self, horizon: int) -> np.ndarray:
        """(S, H) int64 ns timestamps of the ``horizon`` steps after each series' end.

        Raises DataError naming the first series whose steps would fall past the last
        representable time (April 2262), rather than wrapping to 1677.
        """
        ends = self.end_times()
        where = f"{self.ingest.source}: " if self.ingest is not None else ""
        refuse_past_the_limit(ends, horizon, self.freq, self.ids, self.tz, where)
        steps = np.tile(np.arange(1, horizon + 1, dtype=np.int64), self.n_series)
        times = shift_times(np.repeat(ends, horizon), steps, self.freq)
        return times.reshape(self.n_series, horizon)  # (S, H)

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
            ahead=None if self.ahead is None else self.ahead[chosen],
            statics=None if self.statics is None else self.statics.take(chosen),
        )

    def cut(self, ends: np.ndarray, steps: int) -> Panel:
        """Every series ended at row ``ends[i]`` (a view), with ``steps`` steps of its
        known-ahead covariates after each new end taken from what came next: the
        covariates where the series goes on, its own ``ahead`` past its old end."""
        ends = np.asarray(ends, dtype=np.int64)
        known = len(self.future_covariates)
        if not known:
            return replace(self, ends=ends, ahead=None)
        positions = ends[:, None] + np.arange(steps)[None, :]  # (S, A) buffer rows
        inside = positions < self.ends[:, None]
        ahead = np.full((self.n_series, steps, known), np.nan, dtype=np.float32)
        rows = np.minimum(positions, self.covariates.shape[0] - 1)
        within = self.covariates[rows][..., -known:]  # (S, A, Cf)
        ahead[inside] = within[inside]
        if self.ahead is not None:
            beyond = positions - self.ends[:, None]  # steps past the old end
            usable = (~inside) & (beyond < self.ahead.shape[1])
            series = np.broadcast_to(np.arange(self.n_series)[:, None], beyond.shape)
            ahead[usable] = self.ahead[series[usable], beyond[usable]]
        return replace(self, ends=ends, ahead=ahead)

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
        head = self.cut(cut, steps)
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
        stamps = to_datetimes(self.times(), self.tz, self.freq)
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
        text = format_time(nanoseconds, self.tz, self.freq)
        if counts_in_wall_clock(self.freq) and self.tz is None and text.endswith(" 00:00:00"):
            return text.removesuffix(" 00:00:00")
        return text


def read_panel(location: str | Path, config: DataConfig | None = None) -> Panel:
    """Read a file, glob or dataset directory of series into a Panel.

    Raises DataError (exit code 3) for anything about the data that cannot be
    used, ConfigError (2) for contradictory settings.
    """
    from rnncast.io import read_table, resolve_source

    config = config or DataConfig()
    panel = build_panel(read_table(resolve_source(location), config))
    hand_back_read_memory()
    return panel


def hand_back_read_memory() -> None:
    """Arrow's pool keeps what a read freed for Arrow's next allocations, and what
    follows a whole read (training, a report) makes few: handed back to the system,
    it stops adding to every later peak (bench/read_memory.py)."""
    import pyarrow

    pyarrow.default_memory_pool().release_unused()


def keep_long_enough(panel: Panel, needed: int, what: str) -> Panel:
    """The series of ``panel`` with at least ``needed`` steps; each one dropped is
    logged as a warning naming it. ``what`` says what needs them, e.g. "--horizon 24".

    Raises DataError when no series is long enough.
    """
    short = panel.lengths < needed
    if short.all():
        raise refuse_none_long_enough(int(panel.lengths.max()), needed, what)
    warn_too_short(panel, short, needed, what)
    return panel.take(np.flatnonzero(~short)) if short.any() else panel


def warn_too_short(panel: Panel, short: np.ndarray, needed: int, what: str) -> None:
    """A warning naming each of the first five ``short`` series of ``panel``, and one
    counting the rest."""
    import logging

    log = logging.getLogger("rnncast")
    for index in np.flatnonzero(short)[:5]:
        log.warning(
            "series %r skipped: %s; %s needs at least %d",
            str(panel.ids[index]), _steps(int(panel.lengths[index])), what, needed,
            extra={"event": "series_skipped", "fields": {"series": str(panel.ids[index]),
                   "steps": int(panel.lengths[index]), "needed": needed}},
        )  # fmt: skip
    if short.sum() > 5:
        log.warning(
            "%d more series skipped as too short", int(short.sum()) - 5,
            extra={"event": "series_skipped", "fields": {"more": int(short.sum()) - 5}},
        )  # fmt: skip


def refuse_none_long_enough(longest: int, needed: int, what: str) -> DataError:
    """The error when the longest series, of ``longest`` steps, is too short."""
    return DataError(
        f"no series is long enough for {what}: the longest has "
        f"{_steps(longest)} and each needs at least {needed}"
    )


def build_panel(table: Table) -> Panel:
    """Sort, combine duplicates, trim, grid and fill a settled table into a Panel."""
    return Panel(**assemble(table))


def _steps(count: int) -> str:
    return f"{count} step" if count == 1 else f"{count} steps"
