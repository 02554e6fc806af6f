"""Forecasts of a run over many processes (torchrun): each process forecasts its
share of the reads into part files, and rank 0 joins the parts into the one output,
in the order a single process writes them, once every process has succeeded.

Data whose series are known only once read (CSV, or no id column) is one read: rank
0 reads it and deals it out (shared_read.read_dealt), and each process forecasts its
consecutive share of the series into a part of its own. Reading
is then rank 0's alone, and the forecasts, the work that grows with the network and
the histories, are shared as with many reads.

The parts are Parquet files (lossless for every column type) in a staging folder
beside the output, ``.NAME.incoming-PID``: a run killed half-way leaves only that
folder, which the next run on the same output removes (writing.clear_leftovers),
and the output itself is replaced whole or not at all, as in one process. Across
machines, the output's folder must be one that every process sees.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from rnncast import distributed
from rnncast.artifact import Model
from rnncast.errors import DataError, OutputError, RnncastError
from rnncast.forecasting import forecast
from rnncast.panel import Panel
from rnncast.shared_read import read_dealt
from rnncast.sinks import table_sink
from rnncast.streaming import (
    ForecastPlan,
    StreamSummary,
    forecast_reads,
    plan_forecast,
    read_panel_of,
    summarise,
)
from rnncast.writing import check_destination


def forecast_in_parts(
    model: Model,
    location: str | Path,
    out: str | Path,
    *,
    series_per_read: int,
    context: int | None,
    batch_size: int,
    device: Any,
    static_file: str | None = None,
    future_file: str | None = None,
) -> StreamSummary:
    """``streaming.forecast_dataset`` shared among the processes of the run: the same
    output. Every process calls it; each returns the whole run's summary. Where the
    series are known before reading (Parquet with an id column), the reads are cut so
    that every process gets some, and the output is one process's with the same
    reads, byte for byte; otherwise the one read's series are shared (see the
    module's docstring), and the values are one process's to float32's rounding."""
    current = distributed.world()
    file_format = check_destination(out)
    plan = plan_forecast(model, location, series_per_read, static_file, at_least=current.size)
    staging = _staging_folder(out, current)
    try:
        mine = range(current.rank, len(plan.reads), current.size)
        options = {"context": context, "batch_size": batch_size, "device": device,
                   "future_file": future_file}  # fmt: skip
        written: dict[int, int] = {}  # series forecast by each read of this process
        skipped = 0
        failure = None
        # Rank 0 alone reads data whose series are known only once read, and raises
        # what that read raises on every process.
        unknown = plan.reads[0].ids is None
        share = None
        if unknown:
            share = read_dealt(lambda: _whole_read(plan, future_file), empty_shares=True)
        try:
            if unknown:
                written, skipped = _forecast_a_share(model, share, staging, current, options)
            for number in mine if not unknown else ():
                with table_sink(staging / _part_name(number), "parquet") as write:
                    found, left_out = forecast_reads(model, plan, [number], write, **options)
                written[number], skipped = found, skipped + left_out
        except RnncastError as exc:
            failure = exc
        distributed.raise_together(failure)
        for counts in distributed.gather_to_all(written):
            written.update(counts)
        series = sum(written.values())
        skipped = int(distributed.sum_numbers([skipped])[0])
        check = plan.frequency_check
        if check is not None:
            for state in distributed.gather_to_all(check.state()):
                check.absorb(state)
            check.finish(plan.source.label)
        if series == 0:
            raise DataError(f"{plan.source.label}: no series has any value")
        failure = None
        if current.is_main:
            try:
                _join(staging, written, out, file_format)
            except RnncastError as exc:
                failure = exc
        # No process reports success before the output is in place.
        distributed.raise_together(failure)
    finally:
        if current.is_main:
            shutil.rmtree(staging, ignore_errors=True)
    return summarise(model, plan, out, file_format, series, skipped)


def _forecast_a_share(
    model: Model, share: Panel | None, staging: Path, current: distributed.World, options: dict
) -> tuple[dict[int, int], int]:
    """This process's consecutive share of the series of one read (None: none, where
    there are fewer series than processes) forecast into the part numbered by its
    rank: the series it forecast ({rank: count}) and, on rank 0, those the read
    skipped. Shares joined in rank order are one process's output."""
    found = 0
    with table_sink(staging / _part_name(current.rank), "parquet") as write:
        if share is not None:
            settings = {k: v for k, v in options.items() if k != "future_file"}
            result = forecast(model, share, **settings)
            write(result.to_frame())
            found = len(result.ids)
    skipped = len(share.ingest.skipped) if current.is_main and share is not None else 0
    return {current.rank: found}, skipped


def _whole_read(plan: ForecastPlan, future_file: str | None) -> Panel:
    panel, _ = read_panel_of(plan, 0, future_file)
    if panel is None:  # only where several reads make the data
        raise DataError(f"{plan.source.label}: no series has any value")
    return panel


def _staging_folder(out: str | Path, current: distributed.World) -> Path:
    """The folder of the parts, made by rank 0 (which holds the output's lock) and
    named to every process."""
    failure, folder = None, None
    if current.is_main:
        target = Path("rnncast-forecast" if str(out) == "-" else out).absolute()
        folder = target.parent / f".{target.name}.incoming-{os.getpid()}"
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            failure = OutputError(f"cannot make the folder of the forecast parts {folder}: {exc}")
    distributed.raise_together(failure)
    return Path(distributed.from_main(str(folder)))


def _part_name(number: int) -> str:
    return f"part-{number:06d}.parquet"


def _join(staging: Path, written: dict[int, int], out: str | Path, file_format: str) -> None:
    """The parts, read by read in order, as one output (replaced whole). ``written``:
    the series each read forecast (a read with none wrote an empty part)."""
    import pyarrow.parquet as pa_parquet

    with table_sink(out, file_format) as write:
        for number in sorted(written):
            if not written[number]:
                continue
            path = staging / _part_name(number)
            if not path.is_file():
                raise OutputError(
                    f"the forecasts of read {number + 1} are not in {staging}: on several "
                    "machines, --out must be in a folder that every machine sees"
                )
            part = pa_parquet.ParquetFile(path)
            for group in range(part.num_row_groups):
                write(part.read_row_group(group).to_pandas())
