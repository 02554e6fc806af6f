"""Reading series files (CSV, Parquet; one file, a glob or a dataset directory).

``read_table`` resolves which columns hold the id, the time and the target
(``rnncast.columns``), checks that every file of the source has them with types
that agree, reads only those, file by file, and hands on an Arrow table whose
types are settled: the id dictionary-encoded text, the time as timestamp[ns]
(with its zone, if any), the target and covariates as float64. Every problem
becomes a DataError naming the file, the column and, where there is one, the row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet

from rnncast.bad_values import (
    describe_first_non_number,
    describe_first_non_utf8,
    first_non_numeric_row,
    first_non_utf8_row,
)
from rnncast.columns import (
    ID_TYPES,
    Columns,
    is_binary,
    is_id_type,
    is_text,
    resolve_columns,
    time_kind,
    value_type,
)
from rnncast.config import DataConfig
from rnncast.errors import DataError
from rnncast.sources import (
    Source,
    check_files_agree,
    check_names_agree,
    csv_parse_options,
    describe_unreadable,
    file_schemas,
    merge_schemas,
    parquet_dataset,
    partition_keys,
    read_schema,
    resolve_source,
)
from rnncast.timeparse import check_time_format, to_timestamps

# Importers of this module (reads, streaming, forecasting, the CLI) find these here.
__all__ = [
    "Columns",
    "Source",
    "Table",
    "concat_tables",
    "parquet_dataset",
    "read_schema",
    "read_table",
    "resolve_columns",
    "resolve_source",
    "settle_types",
    "table_from_arrow",
]


@dataclass(frozen=True)
class Table:
    """An Arrow table with settled column types, and where each of its rows came from."""

    data: pa.Table
    columns: Columns
    source: Source
    config: DataConfig
    file_rows: tuple[int, ...]  # rows contributed by each file of the source, in order

    def where(self, row: int) -> str:
        """Describe a 0-based row of ``data`` for a message: 1-based data row, and the
        file when the source has several."""
        if len(self.source.paths) == 1:
            return f"row {row + 1}"
        for path, count in zip(self.source.paths, self.file_rows, strict=True):
            if row < count:
                return f"{path.name}, row {row + 1}"
            row -= count
        return f"row {row + 1}"


def read_table(source: Source, config: DataConfig) -> Table:
    """Read the columns ``config`` asks for from ``source``, with settled types."""
    if config.time_format is not None:
        check_time_format(config.time_format)  # a bad option, whatever the data holds
    schemas = file_schemas(source)
    check_names_agree(source, schemas, config)
    columns = resolve_columns(merge_schemas(schemas), config, source.label)
    check_files_agree(source, schemas, columns, config.layout)
    if source.format == "csv":
        parts = _read_csv(source, schemas, columns, config, time_as_text=False)
    else:
        parts = _read_parquet(source, schemas, columns, config)
    data = concat_tables(parts, source.label)
    if data.num_rows == 0:
        raise DataError(f"{source.label}: has a header but no data rows")
    file_rows = tuple(part.num_rows for part in parts)
    return settle_types(Table(data, columns, source, config, file_rows))


def table_from_arrow(data: pa.Table, config: DataConfig, label: str) -> Table:
    """Settle an in-memory Arrow table (from a DataFrame, say) as if read from a file."""
    if config.time_format is not None:
        check_time_format(config.time_format)
    columns = resolve_columns(data.schema, config, label)
    if data.num_rows == 0:
        raise DataError(f"{label}: has no rows")
    source = Source(label=label, paths=(Path(label),), format="arrow")
    selected = data.select(columns.wanted)
    return settle_types(Table(selected, columns, source, config, (data.num_rows,)))


def _read_parquet(
    source: Source, schemas: list[pa.Schema], columns: Columns, config: DataConfig
) -> list[pa.Table]:
    """Each file read with its own schema, then given the types every file shares."""
    parts = []
    for path, schema in zip(source.paths, schemas, strict=True):
        keys = partition_keys(source, path)
        stored = [name for name in columns.wanted if name in schema.names and name not in keys]
        try:
            # Dictionary-encoding the id while reading keeps 10 M repeated ids as one
            # small dictionary and an int32 array instead of 10 M Python-visible strings.
            dictionary = [columns.id] if columns.id in stored else None
            with pa_parquet.ParquetFile(path, read_dictionary=dictionary) as file:
                part = file.read(columns=stored)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise DataError(f"{path}: {describe_unreadable(exc, 'parquet')}") from exc
        for name in columns.wanted:
            if name in keys:  # a hive folder key: one value, as written, for the whole file
                value = pa.array([keys[name]] * part.num_rows, pa.string())
                part = part.append_column(name, value)
            elif name not in stored:  # a wide file without this series (check_files_agree)
                part = part.append_column(name, pa.nulls(part.num_rows, pa.float64()))
        parts.append(_conform(part.select(columns.wanted), source, path, columns, config))
    return parts


def _conform(
    part: pa.Table, source: Source, path: Path, columns: Columns, config: DataConfig
) -> pa.Table:
    """One file's columns in the types settle_types gives, so that files agree.
    Messages locate rows as ``Table.where`` does."""
    label = source.label

    def where(row: int) -> str:
        return f"row {row + 1}" if len(source.paths) == 1 else f"{path.name}, row {row + 1}"

    conformed = {}
    for name in part.column_names:
        column = part.column(name)
        if name == columns.id:
            conformed[name] = _ids_as_text(column, label, name, where)
        elif name == columns.time:
            if time_kind(column.type) == "text":  # parsed over all files, by settle_types
                conformed[name] = column.cast(value_type(column.type)).cast(pa.string())
            else:
                conformed[name] = to_timestamps(column, label, name, where, config.time_format)
        elif name in columns.statics and is_text(column.type):
            conformed[name] = column.cast(value_type(column.type)).cast(pa.string())
        else:
            conformed[name] = _to_numbers(column, label, name, where)
    return pa.table(conformed)


def _read_csv(
    source: Source,
    schemas: list[pa.Schema],
    columns: Columns,
    config: DataConfig,
    *,
    time_as_text: bool,
) -> list[pa.Table]:
    """The CSV files of ``source``. Stamps are left to pyarrow to infer (fast) unless
    they read as different types in different files or blocks, or a --time-format is
    given (the format given is the format used, even for ISO-looking text): then they
    are read as text, and parsed over all files at once."""
    numeric = [*columns.targets, *columns.covariates]
    # Numbers are read as float64 from the start: pyarrow infers types from the first
    # block only, so an integer column with a decimal further down would fail.
    types: dict[str, pa.DataType] = dict.fromkeys(numeric, pa.float64())
    if columns.id:
        types[columns.id] = pa.dictionary(pa.int32(), pa.string())
    inferred = {time_kind(schema.field(columns.time).type) for schema in schemas}
    if config.time_format is not None or len(inferred) > 1:
        time_as_text = True
    if time_as_text:
        types[columns.time] = pa.string()
    parts = []
    for path in source.paths:
        # Missing columns can only be a wide file's series (check_files_agree): empty.
        convert = pa_csv.ConvertOptions(
            include_columns=columns.wanted, include_missing_columns=True, column_types=types
        )
        try:
            parts.append(
                pa_csv.read_csv(
                    path, parse_options=csv_parse_options(path), convert_options=convert
                )
            )
        except pa.ArrowInvalid as exc:
            text_columns = [name for name, kind in types.items() if not pa.types.is_floating(kind)]
            bad = describe_first_non_utf8(path, text_columns) or describe_first_non_number(
                path, numeric
            )
            if bad is not None:
                raise DataError(f"{path}: {bad}") from exc
            if not time_as_text:  # a stamp further down that pyarrow cannot read
                return _read_csv(source, schemas, columns, config, time_as_text=True)
            raise DataError(f"{path}: {describe_unreadable(exc, 'csv', path)}") from exc
        except (pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: {describe_unreadable(exc, 'csv', path)}") from exc
    if len({part.schema.field(columns.time).type for part in parts}) > 1 and not time_as_text:
        return _read_csv(source, schemas, columns, config, time_as_text=True)
    return parts


def concat_tables(parts: list[pa.Table], label: str) -> pa.Table:
    """One table of the parts read file by file; DataError when their schemas differ."""
    try:
        # Dictionaries differ file by file; unify so one code means one id everywhere.
        return pa.concat_tables(parts, promote_options="permissive").unify_dictionaries()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{label}: its files do not share one schema ({exc})") from exc


def settle_types(table: Table) -> Table:
    """Give the columns of a table as read the types later stages rely on (see module)."""
    data, columns, label = table.data, table.columns, table.source.label
    settled = {}
    for name in data.column_names:
        column = data.column(name)
        if name == columns.time:
            settled[name] = to_timestamps(
                column, label, name, table.where, table.config.time_format
            )
        elif name == columns.id:
            settled[name] = _ids_as_text(column, label, name, table.where)
        elif name in columns.statics and is_text(column.type):
            settled[name] = column.cast(value_type(column.type)).cast(pa.string())
        else:
            settled[name] = _to_numbers(column, label, name, table.where)
    return replace(table, data=pa.table(settled))


def _to_numbers(
    column: pa.ChunkedArray, label: str, name: str, where: Callable[[int], str]
) -> pa.ChunkedArray:
    kind = value_type(column.type)
    if pa.types.is_dictionary(column.type):
        column = column.cast(kind)
    if pa.types.is_integer(kind) or pa.types.is_decimal(kind) or pa.types.is_floating(kind):
        # Unchecked: a 64-bit integer beyond 2**53 becomes the nearest double, as it
        # would in any spreadsheet, rather than an error.
        return column.cast(pa.float64(), safe=False)
    try:
        return column.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        bad = first_non_numeric_row(column) if is_text(kind) else None
        held = f" {where(bad[0])} holds {bad[1]!r};" if bad else ""
        raise DataError(
            f"{label}: column {name!r} must be numeric but{held} its type is {column.type}"
        ) from exc


def _ids_as_text(
    column: pa.ChunkedArray, label: str, name: str, where: Callable[[int], str]
) -> pa.ChunkedArray:
    """Series ids as dictionary-encoded text: text as it is, integers written out,
    bytes only when they are UTF-8. DataError for any other type, a missing id, or
    bytes that are not text."""
    kind = value_type(column.type)
    if pa.types.is_dictionary(column.type) and not is_text(kind):
        column = column.cast(kind)  # integers or bytes: decoded, then handled as plain
    if not is_id_type(kind):
        raise DataError(
            f"{label}: column {name!r} is {column.type}; the series id column must "
            f"hold {ID_TYPES} (name another with --id-col)"
        )
    if pa.types.is_null(kind):  # every id missing: refused below, with its row
        column = column.cast(pa.string())
    if is_binary(kind):
        row = first_non_utf8_row(column)
        if row is not None:
            raise DataError(
                f"{label}: column {name!r} holds bytes that are not UTF-8 text at "
                f"{where(row)} ({column[row].as_py()!r}); series ids must be text"
            )
    if pa.types.is_dictionary(column.type):
        column = column.cast(pa.dictionary(pa.int32(), pa.string()))
    else:
        column = column.cast(pa.string()).dictionary_encode()
    if column.null_count or _has_blank_id(column):
        row = _first_null(column) if column.null_count else _first_blank(column)
        raise DataError(
            f"{label}: column {name!r} is empty at {where(row)}; every row needs a series id"
        )
    return column


def _has_blank_id(column: pa.ChunkedArray) -> bool:
    # Only the dictionaries are looked at: a few strings, however many rows. After
    # unify_dictionaries every chunk shares one, so each distinct one is checked once
    # (checking it per chunk cost seconds on datasets of many files).
    seen: set[tuple] = set()
    for chunk in column.chunks:
        dictionary = chunk.dictionary
        identity = (dictionary.offset, len(dictionary),
                    *(b.address if b is not None else 0 for b in dictionary.buffers()))  # fmt: skip
        if identity in seen:
            continue
        seen.add(identity)
        trimmed = pc.utf8_trim_whitespace(dictionary)
        if pc.any(pc.equal(trimmed, "")).as_py():
            return True
    return False


def _first_blank(column: pa.ChunkedArray) -> int:
    blank = pc.equal(pc.utf8_trim_whitespace(column.cast(pa.string())), "")
    return int(pc.index(blank, True).as_py())


def _first_null(column: pa.ChunkedArray) -> int:
    return int(pc.index(pc.is_null(column), True).as_py())
