"""Where series come from: a file, a glob or a dataset directory, and its files' schemas.

``resolve_source`` turns what the user named into a list of files of one format.
``file_schemas`` reads each file's own schema (a footer or a CSV header: cheap),
with hive folder keys (``unique_id=01/``) added as text columns, and
``check_names_agree`` / ``check_files_agree`` name the file whose columns or
types differ from the others', where pyarrow would cast every file to the first
one's schema or fill a missing column with nulls.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet

from rnncast.columns import ID_TYPES, Columns, is_id_type, is_text, time_kind, value_type
from rnncast.config import ID_COLUMN_NAMES, TARGET_COLUMN_NAMES, TIME_COLUMN_NAMES, DataConfig
from rnncast.errors import DataError

if TYPE_CHECKING:
    import pyarrow.dataset as pa_dataset

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
# Hive's name for a null partition value (what Spark and pyarrow write for None).
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


@dataclass(frozen=True)
class Source:
    """Where data comes from: what the user named and the files it stands for."""

    label: str
    paths: tuple[Path, ...]
    format: str  # "csv", "parquet", or "arrow" for a table already in memory
    root: Path | None = None  # a dataset directory, whose hive partitions become columns


def resolve_source(location: str | Path) -> Source:
    """Turn a path, a glob or a directory into the list of files to read.

    A path that exists is read as what it is, whatever characters its name holds
    (``a[1].csv`` is a file, not a pattern); only a path that does not exist is
    taken for a glob pattern.
    """
    label = str(location)
    path = Path(location)
    root = None
    if path.is_dir():
        root = path
        paths = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not p.name.startswith((".", "_")) and format_of(p) is not None
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
    elif any(char in label for char in "*?["):
        paths = [Path(p) for p in sorted(glob.glob(label, recursive=True)) if Path(p).is_file()]
        if not paths:
            raise DataError(f"{label}: no file matches this pattern")
    else:
        raise DataError(f"{label}: no such file or directory")
    formats = {format_of(p) for p in paths}
    if None in formats:
        unknown = next(p for p in paths if format_of(p) is None)
        raise DataError(
            f"{unknown}: rnncast reads CSV ({', '.join(CSV_SUFFIXES)}) and Parquet "
            f"({', '.join(PARQUET_SUFFIXES)}) files; cannot tell what {unknown.name!r} is"
        )
    if len(formats) > 1:
        raise DataError(f"{label}: mixes CSV and Parquet files; point rnncast at one kind")
    return Source(label=label, paths=tuple(paths), format=formats.pop(), root=root)


def format_of(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def csv_parse_options(path: Path) -> pa_csv.ParseOptions:
    tab = ".tsv" in path.name.lower()
    return pa_csv.ParseOptions(delimiter="\t" if tab else ",")


def partition_keys(source: Source, path: Path) -> dict[str, str | None]:
    """The hive keys of one file of a dataset directory, as written: ``unique_id=01/``
    gives ``{"unique_id": "01"}``. Kept as text, because inferring integers would turn
    the folders ``01`` and ``1`` into one series."""
    if source.root is None:
        return {}
    keys: dict[str, str | None] = {}
    for part in path.relative_to(source.root).parts[:-1]:
        name, equals, value = part.partition("=")
        if equals and name:
            # Hive escapes characters such as '/' and '=' in folder names as %XX.
            keys[unquote(name)] = None if value == _HIVE_NULL else unquote(value)
    return keys


def file_schemas(source: Source) -> list[pa.Schema]:
    """Each file's own schema, hive keys appended as text columns. DataError naming
    the file when one cannot be read, repeats a column name, or has a column that is
    also one of its folder keys."""
    schemas = []
    for path in source.paths:
        try:
            if source.format == "csv":
                with pa_csv.open_csv(path, parse_options=csv_parse_options(path)) as reader:
                    schema = reader.schema
            else:
                schema = pa_parquet.read_schema(path)
            names = schema.names  # names decode lazily; a bad header fails here
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: {describe_unreadable(exc, source.format, path)}") from exc
        repeated = sorted({name for name in names if name.strip() and names.count(name) > 1})
        if repeated:
            raise DataError(f"{path}: column {repeated[0]!r} appears more than once; rename one")
        for key in partition_keys(source, path):
            if key in names:
                raise DataError(
                    f"{path}: column {key!r} is both a column of this file and the name of "
                    f"one of its folders ({key}=...); rename the column or the folder"
                )
            schema = schema.append(pa.field(key, pa.string()))
        schemas.append(schema)
    return schemas


def merge_schemas(schemas: list[pa.Schema]) -> pa.Schema:
    """Every column of any file, in order of first appearance, with the type of the
    first file that has it. Reading checks that each file has the columns it needs."""
    fields: dict[str, pa.Field] = {}
    for schema in schemas:
        for field in schema:
            fields.setdefault(field.name, field)
    return pa.schema(list(fields.values()))


def read_schema(source: Source) -> pa.Schema:
    """The columns of ``source`` (see ``merge_schemas``)."""
    return merge_schemas(file_schemas(source))


def check_names_agree(source: Source, schemas: list[pa.Schema], config: DataConfig) -> None:
    """A column that could take a part, spelt in another case in another file ('y' in
    one, 'Y' in the next): name both files, rather than two columns for one part."""
    chosen = [config.id_col, config.time_col, config.target_col]
    if config.covariates != "all":
        chosen += list(config.covariates)
    usual = (*ID_COLUMN_NAMES, *TIME_COLUMN_NAMES, *TARGET_COLUMN_NAMES)
    watched = {name.lower() for name in (*usual, *chosen) if name}
    first_seen: dict[str, tuple[str, Path]] = {}
    for path, schema in zip(source.paths, schemas, strict=True):
        for name in schema.names:
            if name.lower() not in watched:
                continue
            seen, seen_in = first_seen.setdefault(name.lower(), (name, path))
            if seen != name and seen_in != path:  # within one file, resolve_columns says
                raise DataError(
                    f"{path}: column {name!r} is spelt {seen!r} in {seen_in.name}; every "
                    f"file of {source.label} must name its columns alike"
                )


def check_files_agree(
    source: Source, schemas: list[pa.Schema], columns: Columns, layout: str
) -> None:
    """Every file has every column read, with a type that fits its part and the other
    files': pyarrow would otherwise fill a missing column with nulls (a series read as
    having no values) or cast every file to the first one's types. In the wide layout a
    file may lack a series column: that series has no values in that file's rows."""
    needed = [columns.time] if layout == "wide" else columns.wanted
    for path, schema in zip(source.paths, schemas, strict=True):
        missing = [name for name in needed if name not in schema.names]
        if missing:
            other, other_schema = next(
                (p, s) for p, s in zip(source.paths, schemas, strict=True) if missing[0] in s.names
            )
            extra = [name for name in schema.names if name not in other_schema.names]
            instead = f" and has {_names(extra)} instead" if extra else ""
            raise DataError(
                f"{path}: has no column {missing[0]!r}, which {other.name} has: its columns "
                f"differ from {other.name}'s (it lacks {_names(missing)}{instead}); every file "
                f"of {source.label} must name its columns alike"
            )
        if source.format == "parquet":
            for name in columns.wanted:
                if name in schema.names:
                    _check_type(path, name, schema.field(name).type, columns)
    if source.format == "parquet":
        first_with: dict[str, Path] = {}
        for path, schema in zip(source.paths, schemas, strict=True):
            kind = time_kind(schema.field(columns.time).type)
            if kind != "empty":  # an all-empty column is refused when read, with its row
                first_with.setdefault(kind, path)
        if len(first_with) > 1:
            (kind, path), (other_kind, other) = list(first_with.items())[:2]
            raise DataError(
                f"{source.label}: column {columns.time!r} holds {kind} in {path.name} but "
                f"{other_kind} in {other.name}; write it with one type in every file"
            )


def _names(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names[:6]) + (", …" if len(names) > 6 else "")


def _check_type(path: Path, name: str, arrow_type: pa.DataType, columns: Columns) -> None:
    kind = value_type(arrow_type)
    if name == columns.id:
        if not is_id_type(kind):
            raise DataError(
                f"{path}: column {name!r} is {arrow_type}; the series id column must hold "
                f"{ID_TYPES} (name another with --id-col)"
            )
    elif name == columns.time:
        if time_kind(arrow_type) == "other":
            raise DataError(
                f"{path}: column {name!r} holds {arrow_type} values, not timestamps; write "
                "them as dates such as 2024-01-31 or 2024-01-31 13:00:00, or choose another "
                "--time-col"
            )
    elif not (
        is_text(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_null(kind)
    ):
        role = "covariate" if name in columns.covariates else "target"
        raise DataError(f"{path}: {role} column {name!r} is {arrow_type}; it must hold numbers")


def describe_unreadable(exc: Exception, file_format: str, path: Path | None = None) -> str:
    text = str(exc)
    if "Empty CSV file" in text:
        if path is not None and _has_text(path):
            # pyarrow calls a header without a line break after it empty, too.
            return "has a header but no data rows"
        return "the file is empty"
    if isinstance(exc, UnicodeDecodeError):
        return "not a readable CSV file (its header is not UTF-8 text)"
    if file_format == "parquet":
        # pyarrow nests its reasons as "context: context: cause"; the cause is what helps.
        return f"not a readable Parquet file ({text.splitlines()[0].rsplit(': ', 1)[-1]})"
    return f"not a readable CSV file ({text.splitlines()[0] if text else type(exc).__name__})"


def _has_text(path: Path) -> bool:
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            return bool(stream.read(4096).strip())
    except (pa.ArrowException, OSError, ValueError):
        return False


def parquet_dataset(source: Source, dictionary_columns: tuple[str, ...] = ()) -> pa_dataset.Dataset:
    """The Parquet files of ``source`` as one pyarrow dataset, hive keys as text
    columns. Its schema is the first file's: reading file by file (``read_table``)
    is what copes with files whose types differ."""
    # Imported here: the module (and pandas, which it imports) costs a cold forecast
    # of one file about 0.2 s it has no use for.
    import pyarrow.dataset as pa_dataset

    file_format = pa_dataset.ParquetFileFormat(
        read_options=pa_dataset.ParquetReadOptions(dictionary_columns=list(dictionary_columns))
    )
    keys = dict.fromkeys(name for path in source.paths for name in partition_keys(source, path))
    partitioning = None
    if keys:
        partitioning = pa_dataset.partitioning(
            pa.schema([(name, pa.string()) for name in keys]), flavor="hive"
        )
    return pa_dataset.dataset(
        [str(p) for p in source.paths],
        format=file_format,
        partitioning=partitioning,
        partition_base_dir=str(source.root) if source.root is not None else None,
    )
