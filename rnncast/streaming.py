"""Forecasts over datasets too large to hold at once: a batch of whole series at a time.

``forecast_dataset`` writes what ``forecast`` followed by ``write_table`` writes
for the whole dataset (the same rows, in the same order, with the same column
types), while holding at most ``series_per_read`` series in memory:

1. A scan reads only the id column of a Parquet source, file by file, to learn
   the series and the order ``build_panel`` would give them (first seen, file
   after file), and whether each series lives in one file.
2. The reads: groups of whole files when every series lives in one file (a
   dataset partitioned by series), else the rows of a slice of the ids from every
   file (``pc.field(id).isin(...)``), so a series split across files (a dataset
   partitioned by date) is still read whole.
3. Each read becomes a Panel on the model's grid, is forecast and appended to one
   output, which replaces ``out`` only when every read has succeeded.

Memory then grows with the rows of one read, plus the ids of all series (the
plan). CSV sources and series without an id column are read in one go, as
``read_panel`` reads them.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pa_parquet

from rnncast.ahead import add_future_rows, read_future_file
from rnncast.artifact import Model
from rnncast.config import DataConfig
from rnncast.errors import ConfigError, DataError
from rnncast.forecasting import Forecasts, forecast
from rnncast.frequency import parse_frequency
from rnncast.io import (
    Columns,
    Source,
    Table,
    concat_tables,
    parquet_dataset,
    read_schema,
    read_table,
    resolve_columns,
    resolve_source,
    settle_types,
)
from rnncast.model_data import data_config
from rnncast.panel import Panel, build_panel
from rnncast.read_frequency import FrequencyCheck
from rnncast.sinks import table_sink
from rnncast.writing import check_destination

log = logging.getLogger("rnncast")


@dataclass(frozen=True)
class Read:
    """One read of the data: whole series, in the order they are written.

    ``ids`` is None when the series are only known once read (CSV, no id column).
    ``by_id``: the files hold other series too, so only the rows of ``ids`` are read.
    """

    paths: tuple[Path, ...]
    ids: pa.Array | None
    by_id: bool = False


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


def plan_reads(
    source: Source, config: DataConfig, series_per_read: int, *, shares: int | None = None
) -> list[Read]:
    """Split ``source`` into reads of at most ``series_per_read`` whole series (with
    ``shares``, of about 1 / ``shares`` of the series each, or of one whole file where
    a file holds more), in the order ``build_panel`` gives the series of the whole
    source."""
    if source.format != "parquet":
        return [Read(source.paths, None)]
    columns = resolve_columns(read_schema(source), config, source.label)
    if columns.id is None:
        return [Read(source.paths, None)]
    order, files = _scan_ids(source, columns.id)
    if shares is not None:
        # A share of whole files where every file holds whole series (a file with more
        # series than a share is not cut: the processes get uneven shares instead).
        largest = max((len(ids) for _, ids in files), default=0) if files is not None else 0
        series_per_read = max(1, math.ceil(len(order) / shares), largest)
    if len(order) <= series_per_read:
        return [Read(source.paths, order)]
    if files is not None:
        reads = _group_files(files, order, series_per_read)
        if reads is not None:
            return reads
    return [
        Read(source.paths, order.slice(begin, series_per_read), by_id=True)
        for begin in range(0, len(order), series_per_read)
    ]


def _scan_ids(
    source: Source, id_column: str
) -> tuple[pa.Array, list[tuple[Path, pa.Array]] | None]:
    """The ids of ``source`` in the order ``build_panel`` numbers them, and each file
    with its ids, or None for the latter when some series spans several files.

    That order is the one the id dictionary takes when ``read_table`` unifies the
    files' dictionaries: dictionary values (used or not) chunk after chunk, then
    values first seen in plain columns; ids that no row uses are dropped, as
    ``compact_codes`` drops them.
    """
    seen = used = pa.array([], pa.string())
    files: list[tuple[Path, pa.Array]] | None = []
    for path, batches in _id_batches(source, id_column):
        offered, in_file, rows = [seen], [], 0
        for batch in batches:
            column = batch.column(0)
            _refuse_missing_ids(column, id_column, source.label, path, rows)
            rows += batch.num_rows
            if pa.types.is_dictionary(column.type):
                offered.append(column.dictionary.cast(pa.string()))
                in_file.append(column.dictionary.take(pc.unique(column.indices)).cast(pa.string()))
            else:
                offered.append(pc.unique(column.cast(pa.string())))
                in_file.append(offered[-1])
        seen = pc.unique(pa.concat_arrays(offered))
        file_ids = pc.unique(pa.concat_arrays(in_file or [pa.array([], pa.string())]))
        before = len(used)
        used = pc.unique(pa.concat_arrays([used, file_ids]))
        if files is not None:
            # Once a series is found in two files, reads must select by id: stop keeping these.
            files = [*files, (path, file_ids)] if len(used) == before + len(file_ids) else None
    if len(used) == 0:
        raise DataError(f"{source.label}: has a header but no data rows")
    return seen.filter(pc.is_in(seen, value_set=used)), files


def _id_batches(source: Source, id_column: str) -> Iterable[tuple[Path, list[pa.RecordBatch]]]:
    """Each file of ``source`` with the batches of its id column, ids as dictionaries
    where the file stores them so. One file outside a dataset directory is read
    directly: pyarrow's dataset module, which a directory needs for its hive keys and
    for files whose schemas differ, takes longer to import than a cold forecast of a
    small file spends reading it."""
    if len(source.paths) == 1 and source.root is None:
        path = source.paths[0]
        try:
            with pa_parquet.ParquetFile(path, read_dictionary=[id_column]) as file:
                batches = list(file.iter_batches(columns=[id_column]))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
        yield path, batches
        return
    dataset = parquet_dataset(source, (id_column,))
    fragments = {Path(fragment.path): fragment for fragment in dataset.get_fragments()}
    for path in source.paths:
        if path not in fragments:
            continue
        try:
            batches = list(fragments[path].to_batches(columns=[id_column], schema=dataset.schema))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
        yield path, batches


def _refuse_missing_ids(
    column: pa.Array, id_column: str, label: str, path: Path, rows_before: int
) -> None:
    """Refuse a null or blank id as ``read_table`` does: a read by id would skip it."""
    # The dictionary alone first: a few strings, however many rows.
    values = column.dictionary if pa.types.is_dictionary(column.type) else column
    if not column.null_count and not pc.any(_blank(values)).as_py():
        return
    text = column.cast(pa.string())
    row = pc.index(pc.or_(pc.is_null(text), _blank(text)), True).as_py()
    if row >= 0:  # else a blank dictionary entry that no row uses
        raise DataError(
            f"{label}: column {id_column!r} is empty at {path.name}, row {rows_before + row + 1}; "
            "every row needs a series id"
        )


def _blank(text: pa.Array) -> pa.Array:
    return pc.equal(pc.utf8_trim_whitespace(text.cast(pa.string())), "").fill_null(False)


def _group_files(
    files: list[tuple[Path, pa.Array]], order: pa.Array, limit: int
) -> list[Read] | None:
    """Consecutive files grouped into reads of at most ``limit`` series; a file with
    more is read in slices of its ids. None when the groups would not follow ``order``
    (a file's id dictionary naming series of a later file): then reads go by id."""
    reads: list[Read] = []
    group: list[tuple[Path, pa.Array]] = []

    def close_group() -> None:
        if group:
            ids = pa.concat_arrays([ids for _, ids in group])
            reads.append(Read(tuple(path for path, _ in group), _sorted(ids, order)))
            group.clear()

    for path, ids in files:
        if len(ids) == 0:
            continue  # a file without rows adds nothing
        if len(ids) > limit:
            close_group()
            ids = _sorted(ids, order)
            reads += [
                Read((path,), ids.slice(begin, limit), by_id=True)
                for begin in range(0, len(ids), limit)
            ]
            continue
        if sum(len(held) for _, held in group) + len(ids) > limit:
            close_group()
        group.append((path, ids))
    close_group()
    ranks = [pc.index_in(read.ids, value_set=order).to_numpy() for read in reads]
    if any(before.max() >= after.min() for before, after in itertools.pairwise(ranks)):
        return None
    return reads


def _sorted(ids: pa.Array, order: pa.Array) -> pa.Array:
    """``ids`` in the order they take in ``order``."""
    return ids.take(np.argsort(pc.index_in(ids, value_set=order).to_numpy(), kind="stable"))


def read_part(source: Source, read: Read, config: DataConfig) -> Table:
    """The settled table of one read, as ``read_table`` would give it."""
    if read.paths == source.paths and not read.by_id:
        return read_table(source, config)
    # A read of one file names that file in messages (with its own row numbers).
    label = str(read.paths[0]) if len(read.paths) == 1 else source.label
    part = replace(source, label=label, paths=read.paths)
    if not read.by_id:
        return read_table(part, config)
    columns = resolve_columns(read_schema(part), config, source.label)
    return _read_by_id(part, columns, read.ids, config)


def _read_by_id(source: Source, columns: Columns, ids: pa.Array, config: DataConfig) -> Table:
    """The rows of the series ``ids`` from every file of ``source``."""
    wanted = columns.wanted
    dataset = parquet_dataset(source, (columns.id,))
    id_type = dataset.schema.field(columns.id).type
    if pa.types.is_dictionary(id_type):
        id_type = id_type.value_type
    # The ids were read as text; compare them in the column's own type (integer ids).
    wanted_rows = pc.field(columns.id).isin(ids.cast(id_type))
    fragments = {Path(fragment.path): fragment for fragment in dataset.get_fragments()}
    try:
        parts = [
            fragments[path].to_table(columns=wanted, schema=dataset.schema, filter=wanted_rows)
            for path in source.paths
            if path in fragments
        ]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise DataError(f"{source.label}: not a readable Parquet dataset ({exc})") from exc
    # One chunk: filtering leaves many small ones, each with the files' whole id
    # dictionary, which settle_types would look through chunk by chunk.
    data = concat_tables(parts, source.label).combine_chunks()
    table = Table(data, columns, source, config, tuple(part.num_rows for part in parts))
    return settle_types(table)


def _panel(table: Table, read: Read, several: bool) -> Panel | None:
    """The Panel of one read. None, with a warning per series, when ``several`` reads
    make the data and no series of this one has a value: ``build_panel`` refuses a
    table without values, which is right for the whole data, not for a part of it."""
    if several and not has_values(table):
        for name in read.ids.to_pylist():
            _warn(f"series {name!r} skipped: no values")
        return None
    return build_panel(table)


def has_values(table: Table) -> bool:
    """Whether any row of ``table`` holds a target value."""
    target = table.data.column(table.columns.targets[0])
    return bool(pc.any(pc.invert(pc.is_nan(target.fill_null(math.nan)))).as_py())


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
