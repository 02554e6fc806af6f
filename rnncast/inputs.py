"""What a model reads beside its target and covariates, made alike in training and
forecasting: static covariates encoded as training fitted them, and holiday
features of every step, history and future alike.

``fit_inputs`` decides it from the training panel and the data settings and returns
plain JSON (kept in config.json under ``data.inputs``); ``input_arrays`` makes the
arrays ``batches.lay_out`` takes from any panel with that spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnncast import panel_shares
from rnncast.config import DataConfig
from rnncast.errors import ConfigError, DataError
from rnncast.frequency import NS_PER_DAY
from rnncast.holiday_features import (
    HOLIDAY_FEATURES,
    check_country,
    holiday_feature_names,
    holiday_features,
)
from rnncast.panel import Panel
from rnncast.statics import encode_statics, fit_statics
from rnncast.time_axis import grid_times, shift_times
from rnncast.timezones import counts_in_wall_clock, wall_clock


@dataclass(frozen=True)
class InputArrays:
    """The arrays ``lay_out`` takes beside the panel."""

    static_numbers: np.ndarray | None = None  # (S, Cn) float32, scaled
    static_codes: np.ndarray | None = None  # (S, Cc) int64, 0: a level never seen
    known_features: np.ndarray | None = None  # (R, Fh) float32, holiday features per row


def fit_inputs(panel: Panel, data: DataConfig | None) -> dict[str, Any]:
    """The spec of a model's extra inputs, from its training panel and data settings
    (holidays come from ``data`` alone; without it, the panel's static covariates)."""
    statics = None
    # Levels and spreads of every series, under torchrun of every process's share.
    every = panel_shares.joined_statics(panel.statics)
    if data is None and every is not None:
        # A panel read with static covariates, trained without its DataConfig (the
        # Python API): they are the panel's own, the holidays column aside.
        column = panel.ingest.columns.get("static_covariates") if panel.ingest else None
        names = tuple(column) if column is not None else every.names
        statics = fit_statics(every, names) if names else None
    data = data or DataConfig()
    if data.static_covariates and every is not None:
        statics = fit_statics(every, data.static_covariates)
    holidays = None
    if data.holidays or data.holidays_column:
        holidays = {"countries": list(data.holidays), "column": data.holidays_column}
    return {"static_covariates": statics, "holidays": holidays}


def static_levels(spec: dict[str, Any] | None) -> tuple[int, ...]:
    """Rows of each static category's embedding: its levels and "unknown"."""
    statics = (spec or {}).get("static_covariates")
    return tuple(len(c["levels"]) + 1 for c in statics["categories"]) if statics else ()


def known_names(spec: dict[str, Any] | None) -> tuple[str, ...]:
    """The extra columns known ahead, in ``lay_out`` order: the static numbers, then
    the holiday features."""
    spec = spec or {}
    statics = spec.get("static_covariates")
    names = tuple(n["name"] for n in statics["numbers"]) if statics else ()
    holidays = spec.get("holidays")
    if holidays:
        if holidays["countries"]:
            names += holiday_feature_names(tuple(holidays["countries"]))
        if holidays["column"]:
            names += tuple(f"{name}_by_{holidays['column']}" for name in HOLIDAY_FEATURES)
    return names


def input_arrays(panel: Panel, spec: dict[str, Any] | None, horizon: int) -> InputArrays:
    """The extra inputs of ``panel``'s series, as the model with ``spec`` reads them.

    Raises DataError when the panel lacks a static covariate the model needs, or a
    series' holidays column names no known country."""
    spec = spec or {}
    numbers = codes = known = None
    statics = spec.get("static_covariates")
    if statics:
        needed = [n["name"] for n in statics["numbers"]] + [
            c["name"] for c in statics["categories"]
        ]
        have = panel.statics.names if panel.statics is not None else ()
        absent = [name for name in needed if name not in have]
        if absent:
            raise DataError(
                f"the model needs the static covariate {absent[0]!r}; pass it with "
                "--static-covariates or --static FILE as in training"
            )
        numbers, codes = encode_statics(panel.statics, statics)
    holidays = spec.get("holidays")
    if holidays:
        known = _holiday_columns(panel, holidays, horizon)
    return InputArrays(numbers, codes, known)


def row_times(panel: Panel, horizon: int) -> np.ndarray:
    """(R,) int64 wall-clock time of every row ``lay_out`` makes: each series' steps
    and its ``horizon`` future steps, series after series."""
    extended = panel.lengths.astype(np.int64) + horizon
    times = grid_times(panel.start_times, extended, panel.freq)
    if panel.tz is not None and not counts_in_wall_clock(panel.freq):
        times = wall_clock(times, panel.tz)
    return times


def _holiday_columns(panel: Panel, holidays: dict[str, Any], horizon: int) -> np.ndarray:
    times = row_times(panel, horizon)
    if counts_in_wall_clock(panel.freq):
        step_end = shift_times(times, np.ones_like(times), panel.freq)
    else:
        step_end = times + panel.freq.step_ns
    blocks = [holiday_features(times, step_end, code) for code in holidays["countries"]]
    column = holidays["column"]
    if column:
        if panel.statics is None or column not in panel.statics.category_names:
            raise DataError(
                f"the model reads each series' country from column {column!r} "
                "(--holidays-column); this data has no such text column"
            )
        countries = panel.statics.categories[:, panel.statics.category_names.index(column)]
        per_row = np.repeat(countries, panel.lengths.astype(np.int64) + horizon)
        by_series = np.zeros((times.shape[0], len(HOLIDAY_FEATURES)), dtype=np.float32)
        for country in np.unique(countries.astype(str)):
            series = str(panel.ids[np.flatnonzero(countries == country)[0]])
            label = f"{panel.ingest.source}: " if panel.ingest is not None else ""
            try:
                code = check_country(country, f"{label}column {column!r}, series {series!r}")
            except ConfigError as exc:
                raise DataError(str(exc)) from None
            rows = np.flatnonzero(per_row == country)
            by_series[rows] = holiday_features(times[rows], step_end[rows], code)
        blocks.append(by_series)
    return np.concatenate(blocks, axis=1)


def holidays_found(panel: Panel, countries: tuple[str, ...], column: str | None) -> dict:
    """For ``rnncast check``: the public holidays of each country between the panel's
    first and last step (the countries of ``column`` as its series name them)."""
    named = list(countries)
    if column and panel.statics is not None and column in panel.statics.category_names:
        found = panel.statics.categories[:, panel.statics.category_names.index(column)]
        named += [str(c) for c in dict.fromkeys(found.tolist()) if str(c) not in named]
    first = int(panel.start_times.min()) // NS_PER_DAY
    last = int(panel.end_times().max()) // NS_PER_DAY
    days = np.arange(first, last + 1, dtype=np.int64) * NS_PER_DAY
    counts = {}
    for code in named:
        flags = holiday_features(days, days + NS_PER_DAY, code)
        counts[code] = int(flags[:, 0].sum())
    return {"countries": list(countries), "column": column, "holidays_in_range": counts}
