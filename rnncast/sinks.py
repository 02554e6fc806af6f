"""Where rows of forecasts go: a CSV or Parquet file written batch by batch and
replaced whole (writing.replacing), or CSV on stdout as the rows come.

Whether the rows come in one batch (``write_table``) or many (a streamed
forecast), the file is byte for byte the same: what pandas' ``to_csv`` or
pyarrow's ``write_table`` writes for all rows at once.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from rnncast.frequency import NS_PER_DAY
from rnncast.writing import check_destination, replacing

if TYPE_CHECKING:
    import pandas as pd


def write_table(frame: pd.DataFrame, destination: str | Path) -> str:
    """Write a DataFrame as CSV or Parquet, chosen by the suffix; ``-`` is CSV on stdout.

    The file is replaced atomically (see ``writing.replacing``). Returns a label
    of where it went.
    """
    file_format = check_destination(destination)
    with table_sink(destination, file_format) as write:
        write(frame)
    return "stdout" if file_format == "stdout" else str(destination)


@contextlib.contextmanager
def table_sink(out: str | Path, file_format: str) -> Iterator[Callable[[pd.DataFrame], None]]:
    """A function that appends a batch of forecast rows (a DataFrame as
    ``Forecasts.to_frame`` makes it) to ``out``, which the file replaces when the
    block ends without an exception. On stdout, rows go out as they come."""
    with contextlib.ExitStack() as stack:
        if file_format == "stdout":
            stream, folder = sys.stdout, None
        else:
            stream, folder = stack.enter_context(replacing(out)), Path(out).parent
        writer = _ParquetWriter(stream) if file_format == "parquet" else _CsvWriter(stream, folder)
        try:
            yield writer.write
        except BaseException:
            writer.abandon()
            raise
        writer.close()
        stream.flush()


class _ParquetWriter:
    """Batches of rows as one Parquet file, typed as ``write_table`` types them."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.writer = None

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow.parquet as pa_parquet

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.writer = pa_parquet.ParquetWriter(self.stream, table.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def abandon(self) -> None:
        with contextlib.suppress(Exception):  # the file is discarded; its footer is moot
            self.close()


class _CsvWriter:
    """Batches of rows as CSV, byte for byte what ``DataFrame.to_csv`` writes for
    all of them at once (as ``write_table`` does).

    pandas writes zone-less timestamps as dates alone when every one of them is at
    midnight, a choice over the whole column. Batches all at midnight are therefore
    held back, in an Arrow stream in an unnamed temporary file (memory stays flat),
    until a batch with a time of day says the column has times; from then on every
    batch is written with times. (pandas also widens fractions of a second over the
    whole column; forecasts on a grid of whole seconds have none.)
    """

    _WITH_TIMES = "%Y-%m-%d %H:%M:%S"

    def __init__(self, stream, spill_folder: Path | None) -> None:
        self.stream = stream
        self.spill_folder = spill_folder
        self.header = True
        self.has_times = False
        self.held: tuple[object, pa.ipc.RecordBatchStreamWriter] | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if not _dates_only(frame):
            self._release(self._WITH_TIMES)
            self.has_times = True
            self._render(frame, None)
        elif self.has_times:
            self._render(frame, self._WITH_TIMES)
        else:
            self._hold(frame)

    def close(self) -> None:
        self._release(None)  # every batch was at midnight: dates alone, as pandas writes them

    def abandon(self) -> None:
        if self.held is not None:
            self.held[0].close()
            self.held = None

    def _render(self, frame: pd.DataFrame, date_format: str | None) -> None:
        frame.to_csv(self.stream, index=False, header=self.header, date_format=date_format)
        self.header = False

    def _hold(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.held is None:
            # Unnamed (O_TMPFILE where the system has it): nothing is left if the run dies.
            spill = tempfile.TemporaryFile(dir=self.spill_folder)  # noqa: SIM115 -- _release closes it
            self.held = (spill, pa.ipc.new_stream(spill, table.schema))
        self.held[1].write_table(table)

    def _release(self, date_format: str | None) -> None:
        if self.held is None:
            return
        spill, writer = self.held
        self.held = None
        with spill:
            writer.close()
            spill.seek(0)
            for batch in pa.ipc.open_stream(spill):
                self._render(pa.Table.from_batches([batch]).to_pandas(), date_format)


def _dates_only(frame: pd.DataFrame) -> bool:
    """Whether pandas would write this frame's ``ds`` as dates alone."""
    stamps = frame["ds"]
    if getattr(stamps.dt, "tz", None) is not None:
        return False
    nanoseconds = stamps.to_numpy().astype("datetime64[ns]").astype(np.int64)
    return bool((nanoseconds % NS_PER_DAY == 0).all())
