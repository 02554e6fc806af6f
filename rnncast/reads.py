"""The reads of a dataset too large to hold at once: each a batch of whole series.

A forecast (streaming.py) and a training read in shares (shared_read.py) both read a
Parquet dataset a part at a time. Each part must hold whole series, and the parts
must follow the order ``build_panel`` gives the series of the whole dataset, so that
what is made of them, joined, is what one read of the whole would make:

1. A scan reads only the id column of a Parquet source, file by file, to learn
   the series and the order ``build_panel`` would give them (first seen, file
   after file), and whether each series lives in one file.
2. The reads: groups of whole files when every series lives in one file (a
   dataset partitioned by series), else the rows of a slice of the ids from every
   file (``pc.field(id).isin(...)``), so a series split across files (a dataset
   partitioned by date) is still read whole.

``read_part`` then reads one of them as ``read_table`` reads the whole. CSV sources
and series without an id column are one read, as ``read_panel`` reads them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pa_parquet

from rnncast.config import DataConfig
from rnncast.errors import DataError
from rnncast.io import (
    Columns,
    Source,
    Table,
    concat_tables,
    parquet_dataset,
    read_schema,
    read_table,
    resolve_columns,
    settle_types,
)


@dataclass(frozen=True)
class Read:
    """One read of the data: whole series, in the order they are written.

    ``ids`` is None when the series are only known once read (CSV, no id column).
    ``by_id``: the files hold other series too, so only the rows of ``ids`` are read.
    """

    paths: tuple[Path, ...]
    ids: pa.Array | None
    by_id: bool = False


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


def has_values(table: Table) -> bool:
    """Whether any row of ``table`` holds a target value."""
    target = table.data.column(table.columns.targets[0])
    return bool(pc.any(pc.invert(pc.is_nan(target.fill_null(math.nan)))).as_py())
