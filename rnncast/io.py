"""Reading series files (CSV, Parquet; one file, a glob or a dataset directory).

``read_table`` resolves which columns hold the id, the time and the target,
reads only those with pyarrow, and hands on an Arrow table whose types are
settled: the id dictionary-encoded, the time as timestamp[ns] (with its zone,
if any), the target and covariates as float64. Every problem becomes a
DataError naming the file, the column and, where there is one, the row.
"""

from __future__ import annotations

import difflib
import glob
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.dataset as pa_dataset
import pyarrow.parquet as pa_parquet

from rnncast.config import ID_COLUMN_NAMES, TARGET_COLUMN_NAMES, TIME_COLUMN_NAMES, DataConfig
from rnncast.errors import ConfigError, DataError

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv", ".tsv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
# A zone designator after a time of day: "...13:00Z", "...13:00:00+01:00", "...13:00 -0500".
_ZONE_SUFFIX = r"\d{2}:\d{2}(:\d{2}(\.\d*)?)?\s*(Z|UTC|[+-]\d{2}(:?\d{2})?)$"


@dataclass(frozen=True)
class Source:
    """Where data comes from: what the user named and the files it stands for."""

    label: str
    paths: tuple[Path, ...]
    format: str  # "csv", "parquet", or "arrow" for a table already in memory
    root: Path | None = None  # a dataset directory, whose hive partitions become columns


@dataclass(frozen=True)
class Columns:
    """Which column plays which part. In wide layout, ``targets`` has one column per series."""

    time: str
    targets: tuple[str, ...]
    id: str | None = None
    covariates: tuple[str, ...] = ()
    spare_numeric: tuple[str, ...] = ()  # numeric columns left over: possible covariates


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


def resolve_source(location: str | Path) -> Source:
    """Turn a path, a glob or a directory into the list of files to read."""
    label = str(location)
    path = Path(location)
    root = None
    if any(char in label for char in "*?["):
        paths = [Path(p) for p in sorted(glob.glob(label, recursive=True)) if Path(p).is_file()]
        if not paths:
            raise DataError(f"{label}: no file matches this pattern")
    elif path.is_dir():
        root = path
        paths = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not p.name.startswith((".", "_")) and _format_of(p) is not None
        )
        if not paths:
            raise DataError(
                f"{label}: this directory holds no .csv or .parquet files "
                "(hidden files and names starting with '_' are skipped)"
            )
    elif path.is_file():
        paths = [path]
    elif path.exists():
        raise DataError(f"{label}: not a regular file or directory")
    else:
        raise DataError(f"{label}: no such file or directory")
    formats = {_format_of(p) for p in paths}
    if None in formats:
        unknown = next(p for p in paths if _format_of(p) is None)
        raise DataError(
            f"{unknown}: rnncast reads CSV ({', '.join(_CSV_SUFFIXES)}) and Parquet "
            f"({', '.join(_PARQUET_SUFFIXES)}) files; cannot tell what {unknown.name!r} is"
        )
    if len(formats) > 1:
        raise DataError(f"{label}: mixes CSV and Parquet files; point rnncast at one kind")
    return Source(label=label, paths=tuple(paths), format=formats.pop(), root=root)


def read_table(source: Source, config: DataConfig) -> Table:
    """Read the columns ``config`` asks for from ``source``, with settled types."""
    schema = read_schema(source)
    columns = resolve_columns(schema, config, source.label)
    wanted = [
        name for name in (columns.id, columns.time, *columns.targets, *columns.covariates) if name
    ]
    numeric = [*columns.targets, *columns.covariates]
    if source.format == "csv":
        data, file_rows = _read_csv(source, wanted, columns.id, numeric)
    else:
        data, file_rows = _read_parquet(source, wanted, columns.id)
    if data.num_rows == 0:
        raise DataError(f"{source.label}: has a header but no data rows")
    return settle_types(Table(data, columns, source, config, file_rows))


def table_from_arrow(data: pa.Table, config: DataConfig, label: str) -> Table:
    """Settle an in-memory Arrow table (from a DataFrame, say) as if read from a file."""
    columns = resolve_columns(data.schema, config, label)
    wanted = [
        name for name in (columns.id, columns.time, *columns.targets, *columns.covariates) if name
    ]
    if data.num_rows == 0:
        raise DataError(f"{label}: has no rows")
    source = Source(label=label, paths=(Path(label),), format="arrow")
    return settle_types(Table(data.select(wanted), columns, source, config, (data.num_rows,)))


def resolve_columns(schema: pa.Schema, config: DataConfig, label: str) -> Columns:
    """Decide the role of each column from the config, or from common names."""
    names = list(schema.names)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"{label}: column {repeated[0]!r} appears more than once; rename one")
    if len(names) == 1 and any(mark in names[0] for mark in ";|\t"):
        raise DataError(
            f"{label}: found one column, {names[0]!r}; rnncast reads comma-separated CSV "
            "(tab-separated when the file ends in .tsv)"
        )
    time = _pick_column(names, config.time_col, TIME_COLUMN_NAMES, "time", label)
    if time is None:
        raise DataError(
            f"{label}: no time column; looked for {', '.join(TIME_COLUMN_NAMES)} among "
            f"{_list(names)}. Name it with --time-col"
        )
    numeric = [n for n in names if n != time and _is_numeric(schema.field(n).type)]
    if config.layout == "wide":
        not_numeric = [n for n in names if n != time and n not in numeric]
        if not_numeric:
            raise DataError(
                f"{label}: column {not_numeric[0]!r} is not numeric; in --layout wide every "
                "column but the time column must be a numeric series"
            )
        if not numeric:
            raise DataError(f"{label}: no series columns besides the time column {time!r}")
        return Columns(time=time, targets=tuple(numeric))

    series_id = _pick_column(names, config.id_col, ID_COLUMN_NAMES, "id", label)
    if series_id is None:
        _refuse_likely_id(names, time, label)
    candidates = [n for n in numeric if n != series_id]
    target = _pick_column(names, config.target_col, TARGET_COLUMN_NAMES, "target", label)
    if target is None:
        if len(candidates) != 1:
            hint = " (or --layout wide if each column is a series)" if candidates else ""
            raise DataError(
                f"{label}: no target column; looked for {', '.join(TARGET_COLUMN_NAMES)} "
                f"among {_list(names)}. Name it with --target-col{hint}"
            )
        target = candidates[0]
    roles = {"time": time, "id": series_id, "target": target}
    for first, second in (("time", "id"), ("time", "target"), ("id", "target")):
        if roles[first] is not None and roles[first] == roles[second]:
            raise ConfigError(
                f"column {roles[first]!r} cannot be both the {first} and the {second} column"
            )
    target_type = schema.field(target).type
    if not (
        _is_numeric(target_type)
        or pa.types.is_string(target_type)
        or pa.types.is_large_string(target_type)
    ):
        # Text may hold numbers (reading names any row that does not); other types cannot.
        raise DataError(f"{label}: target column {target!r} is {target_type}; it must hold numbers")
    spare = tuple(n for n in candidates if n != target)
    if config.covariates == "all":
        covariates = spare
    else:
        for name in config.covariates:
            if name not in names:
                raise DataError(f"{label}: covariate {_missing(name, names)}")
            if name in (time, series_id, target):
                raise ConfigError(
                    f"--covariates: column {name!r} is already the id, time or target"
                )
            if name not in spare:
                raise DataError(
                    f"{label}: covariate column {name!r} is {schema.field(name).type}, "
                    "not numeric; covariates must be numbers"
                )
        covariates = config.covariates
    return Columns(
        time=time,
        targets=(target,),
        id=series_id,
        covariates=covariates,
        spare_numeric=tuple(n for n in spare if n not in covariates),
    )


def _refuse_likely_id(names: list[str], time: str, label: str) -> None:
    """A column named almost like an id column is a misspelt id, not a value to
    ignore: reading the file as one series would silently merge many."""
    for name in (n for n in names if n != time):
        close = difflib.get_close_matches(name.lower(), ID_COLUMN_NAMES, n=1, cutoff=0.75)
        if close:
            raise DataError(
                f"{label}: no series id column found, but column {name!r} looks like one "
                f"(like {close[0]!r}); pass --id-col {name} if it holds the series ids"
            )


def _pick_column(
    names: list[str], chosen: str | None, usual: tuple[str, ...], role: str, label: str
) -> str | None:
    if chosen is not None:
        if chosen not in names:
            raise DataError(f"{label}: {role} {_missing(chosen, names)}")
        return chosen
    by_lower = {name.lower(): name for name in names}
    return next((by_lower[name] for name in usual if name in by_lower), None)


def _missing(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if not close:
        lowered = [n for n in names if n.lower() == name.lower()]
        close = lowered[:1]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"column {name!r} not found; columns are {_list(names)}{hint}"


def _list(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:12])
    return f"[{shown}{', …' if len(names) > 12 else ''}]"


def _is_numeric(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type)
        or pa.types.is_null(arrow_type)  # an all-empty column; its values are simply missing
    )


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    return None


def _csv_parse_options(path: Path) -> pa_csv.ParseOptions:
    tab = ".tsv" in path.name.lower()
    return pa_csv.ParseOptions(delimiter="\t" if tab else ",")


def read_schema(source: Source) -> pa.Schema:
    first = source.paths[0]
    try:
        if source.format == "csv":
            with pa_csv.open_csv(first, parse_options=_csv_parse_options(first)) as reader:
                schema = reader.schema
        else:
            # The first file's own schema, so that repeated names are reported as such
            # rather than as a failure to unify the dataset.
            schema = pa_parquet.read_schema(first)
            if len(set(schema.names)) == len(schema.names):
                schema = parquet_dataset(source).schema
        schema.names  # noqa: B018 -- names decode lazily; a bad header fails here
        return schema
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{first}: {_describe_unreadable(exc, source.format)}") from exc


def _describe_unreadable(exc: Exception, file_format: str) -> str:
    text = str(exc)
    if "Empty CSV file" in text:
        return "the file is empty"
    if isinstance(exc, UnicodeDecodeError):
        return "not a readable CSV file (its header is not UTF-8 text)"
    if file_format == "parquet":
        # pyarrow nests its reasons as "context: context: cause"; the cause is what helps.
        return f"not a readable Parquet file ({text.splitlines()[0].rsplit(': ', 1)[-1]})"
    return f"not a readable CSV file ({text.splitlines()[0] if text else type(exc).__name__})"


def parquet_dataset(source: Source, dictionary_columns: tuple[str, ...] = ()) -> pa_dataset.Dataset:
    """The Parquet files of ``source`` as one pyarrow dataset (hive partitions as columns)."""
    file_format = pa_dataset.ParquetFileFormat(
        read_options=pa_dataset.ParquetReadOptions(dictionary_columns=list(dictionary_columns))
    )
    return pa_dataset.dataset(
        [str(p) for p in source.paths],
        format=file_format,
        partitioning="hive" if source.root is not None else None,
        partition_base_dir=str(source.root) if source.root is not None else None,
    )


def _read_parquet(
    source: Source, wanted: list[str], id_column: str | None
) -> tuple[pa.Table, tuple[int, ...]]:
    # Dictionary-encoding the id while reading keeps 10 M repeated ids as one small
    # dictionary and an int32 array instead of 10 M Python-visible strings.
    dataset = parquet_dataset(source, (id_column,) if id_column else ())
    try:
        fragments = list(dataset.get_fragments())
        parts = [fragment.to_table(columns=wanted, schema=dataset.schema) for fragment in fragments]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise DataError(f"{source.label}: {_describe_unreadable(exc, 'parquet')}") from exc
    by_path = {Path(fragment.path): part for fragment, part in zip(fragments, parts, strict=True)}
    parts = [by_path[path] for path in source.paths if path in by_path]
    return concat_tables(parts, source.label), tuple(part.num_rows for part in parts)


def _read_csv(
    source: Source, wanted: list[str], id_column: str | None, numeric: list[str]
) -> tuple[pa.Table, tuple[int, ...]]:
    # Numbers are read as float64 from the start: pyarrow infers types from the first
    # block only, so an integer column with a decimal further down would fail.
    types: dict[str, pa.DataType] = dict.fromkeys(numeric, pa.float64())
    if id_column:
        types[id_column] = pa.dictionary(pa.int32(), pa.string())
    parts = []
    for path in source.paths:
        convert = pa_csv.ConvertOptions(include_columns=wanted, column_types=types)
        try:
            parts.append(
                pa_csv.read_csv(
                    path, parse_options=_csv_parse_options(path), convert_options=convert
                )
            )
        except pa.ArrowInvalid as exc:
            bad = _find_non_numeric(path, numeric)
            if bad is not None:
                raise DataError(f"{path}: {bad}") from exc
            raise DataError(f"{path}: {_describe_unreadable(exc, 'csv')}") from exc
        except (pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: {_describe_unreadable(exc, 'csv')}") from exc
    return concat_tables(parts, source.label), tuple(part.num_rows for part in parts)


def _find_non_numeric(path: Path, numeric: list[str]) -> str | None:
    """On the error path only: re-read numeric columns as text to name the bad value."""
    try:
        text = pa_csv.read_csv(
            path,
            parse_options=_csv_parse_options(path),
            convert_options=pa_csv.ConvertOptions(
                include_columns=numeric, column_types=dict.fromkeys(numeric, pa.string())
            ),
        )
    except (pa.ArrowInvalid, OSError):
        return None
    for name in numeric:
        bad = _first_non_numeric(text.column(name))
        if bad is not None:
            return (
                f"column {name!r} must be numeric but row {bad[0] + 1} holds {bad[1]!r}; "
                "fix or remove that row"
            )
    return None


def _first_non_numeric(column: pa.ChunkedArray) -> tuple[int, object] | None:
    """The first row of a column that does not read as a number, and its value."""
    import pandas as pd

    values = column.to_pandas()
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        parsed = pd.to_numeric(values, errors="coerce")
        bad = np.flatnonzero((parsed.isna() & values.notna()).to_numpy())
        if bad.size:
            return int(bad[0]), values.iloc[int(bad[0])]
    return None


def concat_tables(parts: list[pa.Table], label: str) -> pa.Table:
    """One table of the parts read file by file; DataError when their schemas differ."""
    try:
        # Dictionaries differ file by file; unify so one code means one id everywhere.
        return pa.concat_tables(parts, promote_options="permissive").unify_dictionaries()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{label}: its files do not share one schema ({exc})") from exc


def settle_types(table: Table) -> Table:
    """Give the columns of a table as read the types later stages rely on (see module)."""
    data = table.data
    columns = table.columns
    settled = {}
    for name in data.column_names:
        column = data.column(name)
        if name == columns.time:
            settled[name] = _to_timestamps(column, table)
        elif name == columns.id:
            if pa.types.is_dictionary(column.type):
                column = column.cast(pa.dictionary(pa.int32(), pa.string()))
            else:
                column = column.cast(pa.string()).dictionary_encode()
            if column.null_count or _has_blank_id(column):
                row = _first_null(column) if column.null_count else _first_blank(column)
                raise DataError(
                    f"{table.source.label}: column {name!r} is empty at {table.where(row)}; "
                    "every row needs a series id"
                )
            settled[name] = column
        else:
            try:
                settled[name] = column.cast(pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                bad = _first_non_numeric(column)
                where = f" {table.where(bad[0])} holds {bad[1]!r};" if bad else ""
                raise DataError(
                    f"{table.source.label}: column {name!r} must be numeric but{where} "
                    f"its type is {column.type}"
                ) from exc
    return replace(table, data=pa.table(settled))


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


def _to_timestamps(column: pa.ChunkedArray, table: Table) -> pa.ChunkedArray:
    label, name = table.source.label, table.columns.time
    if column.null_count:
        row = _first_null(column)
        raise DataError(f"{label}: column {name!r} is empty at {table.where(row)}")
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_timestamp(kind):
        target = pa.timestamp("ns", kind.tz)
    elif pa.types.is_date(kind):
        target = pa.timestamp("ns")
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _parse_timestamp_text(column, table)
    else:
        raise DataError(
            f"{label}: column {name!r} holds {kind} values, not timestamps; write them as "
            "dates such as 2024-01-31 or 2024-01-31 13:00:00, or choose another --time-col"
        )
    try:
        return column.cast(target)
    except pa.ArrowInvalid as exc:
        raise DataError(
            f"{label}: column {name!r} has a timestamp outside the years 1678-2261 ({exc})"
        ) from exc


def _parse_timestamp_text(column: pa.ChunkedArray, table: Table) -> pa.ChunkedArray:
    import pandas as pd

    label, name = table.source.label, table.columns.time
    zoned = pc.match_substring_regex(pc.utf8_trim_whitespace(column), _ZONE_SUFFIX)
    zoned_count = pc.sum(zoned).as_py() or 0
    if 0 < zoned_count < len(column):
        row = int(pc.index(zoned, zoned_count < len(column) / 2).as_py())
        raise DataError(
            f"{label}: column {name!r} mixes timestamps with and without a time zone "
            f"(e.g. {column[row].as_py()!r} at {table.where(row)}); write all in one zone"
        )
    text = column.to_pandas()
    blank = text.str.strip().eq("").to_numpy()
    if blank.any():
        row = int(np.flatnonzero(blank)[0])
        raise DataError(f"{label}: column {name!r} is empty at {table.where(row)}")
    # Text timestamps must be ISO 8601 unless a format is given: guessing turns
    # 01.02.2024 into 2 January as readily as into 1 February, silently.
    time_format = table.config.time_format or "ISO8601"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns before it raises; we explain instead
        try:
            # With offsets on every stamp, offsets that differ only by daylight saving
            # name one zone, so they are read as UTC instants.
            parsed = pd.to_datetime(text, format=time_format, utc=bool(zoned_count))
        except (ValueError, OverflowError) as exc:
            coerced = pd.to_datetime(
                text, format=time_format, utc=bool(zoned_count), errors="coerce"
            )
            bad = np.flatnonzero(coerced.isna().to_numpy())
            row = int(bad[0]) if bad.size else 0
            expected = (
                f"in the format {table.config.time_format!r}"
                if table.config.time_format
                else "in ISO 8601 form such as 2024-01-31 or 2024-01-31 13:00:00; for "
                "another form pass --time-format, e.g. --time-format '%d.%m.%Y %H:%M'"
            )
            raise DataError(
                f"{label}: column {name!r} holds {text.iloc[row]!r} at {table.where(row)}, "
                f"which is not a timestamp {expected}"
            ) from exc
    try:
        tz = parsed.dt.tz
        parsed = parsed.astype(f"datetime64[ns, {tz}]" if tz else "datetime64[ns]")
    except (ValueError, OverflowError) as exc:
        raise DataError(
            f"{label}: column {name!r} has a timestamp outside the years 1678-2261, "
            "which rnncast cannot represent"
        ) from exc
    return pa.chunked_array([pa.array(parsed)])
