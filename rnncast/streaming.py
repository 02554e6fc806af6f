"""Forecasts over datasets too large to hold at once: a batch of whole series at a time.

``forecast_dataset`` writes what ``forecast`` followed by ``write_table`` writes
for the whole dataset (the same rows, in the same order, with the same column
types), while holding at most ``series_per_read`` series in memory:

1. The data's reads are planned (reads.py): groups of whole files, or slices of
   the ids read from every file, each of whole series, in the order ``build_panel``
   would give the series of the whole dataset.
2. Each read becomes a Panel on the model's grid, is forecast and appended to one
   output, which replaces ``out`` only when every read has succeeded.

Memory then grows with the rows of one read, plus the ids of all series (the
plan). CSV sources and series without an id column are read in one go, as
``read_panel`` reads them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rnncast.ahead import add_future_rows, read_future_file
from rnncast.artifact import Model
from rnncast.config import DataConfig
from rnncast.errors import ConfigError, DataError
from rnncast.forecasting import Forecasts, forecast
from rnncast.frequency import parse_frequency
from rnncast.io import Source, Table, resolve_source
from rnncast.model_data import data_config
from rnncast.panel import Panel, build_panel
from rnncast.read_frequency import FrequencyCheck
from rnncast.reads import Read, has_values, plan_reads, read_part
from rnncast.sinks import table_sink
from rnncast.writing import check_destination

log = logging.getLogger("rnncast")


@dataclass(frozen=True)
class StreamSummary:
    """What ``forecast_dataset`` wrote."""

    series: int  # series forecast
    rows: int  # rows written: series x horizon
    reads: int  # reads of the data, each of at most series_per_read series
    horizon: int
    written: str  # the output file, or "stdout"
    skipped: int  # series without any value, each logged as a warning


def forecast_dataset(
    model: Model,
    location: str | Path,
    out: str | Path,
    *,
    series_per_read: int = 10_000,
    context: int | None = None,
    batch_size: int = 512,
    device: Any = None,  # a torch.device; None: the CPU
    static_file: str | None = None,
    future_file: str | None = None,
) -> StreamSummary:
    """Forecast every series of ``location`` and write them to ``out``, reading at
    most ``series_per_read`` whole series at a time (see the module docstring).

    ``out`` is a .csv or .parquet file, replaced only once every read has been
    forecast (nothing is written if one fails), or ``-`` for CSV on stdout, which
    is streamed. ``context``, ``batch_size`` and ``device`` are ``forecast``'s;
    ``static_file`` replaces the file training read static covariates from;
    ``future_file`` holds the future rows, if DATA does not.
    Skipped series are logged as warnings on the "rnncast" logger, as they are
    found. Raises ConfigError for a bad ``out``, DataError as ``read_panel`` and
    ``forecast`` do; with several reads, a message's row numbers count the rows of
    the read that failed when it selected series by id.
    """
    if series_per_read < 1:
        raise ConfigError(f"--series-per-read must be at least 1, got {series_per_read}")
    file_format = check_destination(out)
    plan = plan_forecast(model, location, series_per_read, static_file)
    options = {"context": context, "batch_size": batch_size, "device": device,
               "future_file": future_file}  # fmt: skip
    with table_sink(out, file_format) as write:
        series, skipped = forecast_reads(model, plan, range(len(plan.reads)), write, **options)
        if plan.frequency_check is not None:
            plan.frequency_check.finish(plan.source.label)
        if series == 0:
            raise DataError(f"{plan.source.label}: no series has any value")
    return summarise(model, plan, out, file_format, series, skipped)


def summarise(
    model: Model, plan: ForecastPlan, out: str | Path, file_format: str, series: int, skipped: int
) -> StreamSummary:
    """What a forecast of ``plan`` wrote to ``out``."""
    return StreamSummary(
        series=series,
        rows=series * model.config.horizon,
        reads=len(plan.reads),
        horizon=model.config.horizon,
        written="stdout" if file_format == "stdout" else str(out),
        skipped=skipped,
    )


@dataclass
class ForecastPlan:
    """The reads a forecast makes of its data, and how each is read."""

    source: Source
    reads: list[Read]
    config: DataConfig  # how each read is read
    # Several reads are each laid on the model's grid; this check then confirms that
    # the whole data's frequency, as one read would have inferred it, is the model's.
    frequency_check: FrequencyCheck | None


def plan_forecast(
    model: Model,
    location: str | Path,
    series_per_read: int,
    static_file: str | None = None,
    at_least: int = 1,
) -> ForecastPlan:
    """The reads of ``location``, each of at most ``series_per_read`` series, and at
    least ``at_least`` of them where the series are known before reading (a Parquet
    source with an id column), so that as many processes can share them."""
    config = replace(data_config(model, static_file), horizon=None)
    source = resolve_source(location)
    reads = plan_reads(source, config, series_per_read)
    if len(reads) < at_least and reads[0].ids is not None:
        series = sum(len(read.ids) for read in reads)
        reads = plan_reads(source, config, max(1, math.ceil(series / at_least)))
    model_freq = parse_frequency(model.schema["frequency"])
    # One read is the non-streaming path exactly.
    several = len(reads) > 1
    return ForecastPlan(
        source=source,
        reads=reads,
        config=replace(config, freq=model_freq.alias) if several else config,
        frequency_check=FrequencyCheck(model_freq) if several else None,
    )


def forecast_reads(
    model: Model,
    plan: ForecastPlan,
    numbers: Iterable[int],
    write: Callable[[Any], None],
    *,
    context: int | None,
    batch_size: int,
    device: Any,
    future_file: str | None,
) -> tuple[int, int]:
    """Forecast the reads ``numbers`` (indices into ``plan.reads``) and ``write`` each
    one's rows; the series forecast and the series skipped."""
    several = len(plan.reads) > 1
    series = skipped = 0
    future = None  # the --future file's rows, read with the first read's columns
    for number in numbers:
        read = plan.reads[number]
        panel, future = read_panel_of(plan, number, future_file, future)
        if panel is None:
            skipped += len(read.ids)
            continue
        skipped += len(panel.ingest.skipped)
        result = forecast(model, panel, context=context, batch_size=batch_size, device=device)
        result = _in_order(result, read.ids)
        write(result.to_frame())
        series += len(result.ids)
        if several:
            _note_read(number + 1, len(plan.reads), len(result.ids))
    return series, skipped


def read_panel_of(
    plan: ForecastPlan, number: int, future_file: str | None, future: Table | None = None
) -> tuple[Panel | None, Table | None]:
    """The Panel of read ``number`` (None when several reads make the data and none of
    its series has a value), its warnings logged, and the ``--future`` file's rows,
    ``future`` when already read (they are read once, with the first read's columns)."""
    read = plan.reads[number]
    table = read_part(plan.source, read, plan.config)
    if future_file is not None:
        future = future if future is not None else read_future_file(future_file, table)
        table = add_future_rows(table, future)
    if plan.frequency_check is not None:
        plan.frequency_check.add(table)
    panel = _panel(table, read, len(plan.reads) > 1)
    if panel is not None:
        for warning in panel.ingest.warnings:
            _warn(warning)
    return panel, future


def _note_read(number: int, reads: int, series: int) -> None:
    # Progress for long unattended runs: one line per read.
    fields = {"read": number, "reads": reads, "series": series}
    message = f"read {number} of {reads}: {series:,} series forecast"
    log.info(message, extra={"event": "forecast_read", "fields": fields})


def _warn(message: str) -> None:
    # The event name the CLI gives the same warnings from read_panel.
    log.warning(message, extra={"event": "data_warning", "fields": {}})


def _panel(table: Table, read: Read, several: bool) -> Panel | None:
    """The Panel of one read. None, with a warning per series, when ``several`` reads
    make the data and no series of this one has a value: ``build_panel`` refuses a
    table without values, which is right for the whole data, not for a part of it."""
    if several and not has_values(table):
        for name in read.ids.to_pylist():
            _warn(f"series {name!r} skipped: no values")
        return None
    return build_panel(table)


def _in_order(result: Forecasts, ids: pa.Array | None) -> Forecasts:
    """``result`` with its series in the order of ``ids`` (those it has)."""
    if ids is None:
        return result
    ranks = pc.index_in(pa.array(result.ids.astype(str)), value_set=ids).to_numpy()
    order = np.argsort(ranks, kind="stable")
    if (order == np.arange(order.shape[0])).all():
        return result
    return replace(result, ids=result.ids[order], times=result.times[order],
                   values=result.values[order])  # fmt: skip
