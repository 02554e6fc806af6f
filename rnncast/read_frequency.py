"""The frequency of data read in several reads (streaming.py), checked read by read
against a model's, and at the end as the whole data would have shown it: what
``build_panel`` checks once when it reads everything at once.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from rnncast.errors import DataError
from rnncast.frequency import Frequency
from rnncast.io import Table
from rnncast.time_axis import infer_frequency
from rnncast.timezones import counts_in_wall_clock, wall_clock


class FrequencyCheck:
    """The check the non-streaming path makes once, that the frequency inferred from
    all the data is the model's, made read by read.

    Inference takes the greatest common divisor of the steps between consecutive
    stamps of each series, or of their calendar months when every step is 28 days or
    more (``infer_frequency``); both combine over reads by their gcd. A read whose
    steps the model's step does not divide fails at once: no later read can mend it.
    """

    def __init__(self, model: Frequency) -> None:
        self.model = model
        self.step_ns = 0  # gcd of every step seen so far; 0 before the first
        self.months = 0  # gcd of the calendar steps, which count while every read has one
        self.calendar = True
        self.month_ends: set[bool] = set()

    def add(self, table: Table) -> None:
        times, offsets = _series_times(table, self.model)
        found = infer_frequency(times, offsets)
        if found is None:
            return  # no series of this read has two stamps
        inside = np.ones(times.shape[0] - 1, dtype=bool)
        inside[offsets[1:-1] - 1] = False
        self.step_ns = math.gcd(self.step_ns, int(np.gcd.reduce(np.diff(times)[inside])))
        if found.is_calendar:
            self.months = math.gcd(self.months, found.months)
            self.month_ends.add(found.month_end)
        else:
            self.calendar = False
        model = self.model
        if model.is_calendar:
            # Month ends for the whole data only if every read has them (checked at the end).
            fits = self.calendar and self.months % model.months == 0
            fits = fits and not (model.month_end and False in self.month_ends)
        else:
            fits = self.step_ns % model.step_ns == 0
        if not fits:
            raise _mismatch(model, self._whole())

    def state(self) -> tuple[int, int, bool, tuple[bool, ...]]:
        """What the reads so far showed, to combine with other processes' reads."""
        return self.step_ns, self.months, self.calendar, tuple(sorted(self.month_ends))

    def absorb(self, state: tuple[int, int, bool, tuple[bool, ...]]) -> None:
        """Add what another process's reads showed (``state``)."""
        step_ns, months, calendar, month_ends = state
        self.step_ns = math.gcd(self.step_ns, step_ns)
        self.months = math.gcd(self.months, months)
        self.calendar = self.calendar and calendar
        self.month_ends |= set(month_ends)

    def finish(self, label: str) -> None:
        if self.step_ns == 0:
            raise DataError(
                f"{label}: every series has a single timestamp, so the frequency cannot be "
                "inferred; pass --freq (e.g. --freq h or --freq D)"
            )
        whole = self._whole()
        if whole.alias != self.model.alias:
            raise _mismatch(self.model, whole)

    def _whole(self) -> Frequency:
        if self.calendar and self.months:
            return Frequency(months=self.months, month_end=self.month_ends == {True})
        return Frequency(step_ns=self.step_ns)


def _mismatch(model: Frequency, found: Frequency) -> DataError:
    # Worded as model_data.check_fits words it for the whole data (a test compares them).
    return DataError(
        f"the model was trained on {model.alias} data; this data is {found.label} "
        f"({found.alias}); resample it or train a model on it"
    )


def _series_times(table: Table, model: Frequency) -> tuple[np.ndarray, np.ndarray]:
    """Each series' distinct stamps, sorted, and the offsets between series, as
    ``build_panel`` infers the frequency from them (wall-clock for daily steps)."""
    times = table.data.column(table.columns.time).combine_chunks().cast(pa.int64()).to_numpy()
    codes = table.data.column(table.columns.id).combine_chunks().indices.to_numpy()
    if not _in_series_order(codes, times):
        order = np.lexsort((times, codes))
        codes, times = codes[order], times[order]
    tz = table.data.schema.field(table.columns.time).type.tz
    if tz is not None and counts_in_wall_clock(model):
        times = wall_clock(times, tz)
    fresh = np.ones(times.shape[0], dtype=bool)
    fresh[1:] = (codes[1:] != codes[:-1]) | (times[1:] != times[:-1])
    codes, times = codes[fresh], times[fresh]
    starts = np.flatnonzero(np.concatenate([[True], codes[1:] != codes[:-1]]))
    return times, np.append(starts, codes.shape[0])


def _in_series_order(codes: np.ndarray, times: np.ndarray) -> bool:
    return bool((codes[1:] >= codes[:-1]).all()) and bool(
        ((times[1:] >= times[:-1]) | (codes[1:] != codes[:-1])).all()
    )
