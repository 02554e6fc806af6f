"""On the error path of a read only: the first value of a column that rnncast cannot
take (text that is not a number, bytes that are not UTF-8), so that the message
names the column, the row and the value. A CSV whose read failed is read again, its
columns as text or bytes, to find it (io.py reads; this module explains a failure)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from rnncast.sources import csv_parse_options


def _read_csv_as(path: Path, names: list[str], kind: pa.DataType) -> pa.Table | None:
    """On the error path only: re-read some columns with one type, to find the bad value."""
    try:
        return pa_csv.read_csv(
            path,
            parse_options=csv_parse_options(path),
            convert_options=pa_csv.ConvertOptions(
                include_columns=names, column_types=dict.fromkeys(names, kind)
            ),
        )
    except (pa.ArrowInvalid, OSError):
        return None


def describe_first_non_utf8(path: Path, names: list[str]) -> str | None:
    """The first value of ``names`` in the CSV at ``path`` that is not UTF-8, as a message."""

    def describe(name: str, row: int) -> str:
        return (
            f"column {name!r} holds text that is not UTF-8 at row {row + 1}; save the file as UTF-8"
        )

    return _first_problem(path, names, pa.binary(), first_non_utf8_row, describe)


def describe_first_non_number(path: Path, numeric: list[str]) -> str | None:
    """The first value of ``numeric`` in the CSV at ``path`` that is not a number, as a
    message."""

    def describe(name: str, bad: tuple[int, object]) -> str:
        return (
            f"column {name!r} must be numeric but row {bad[0] + 1} holds {bad[1]!r}; "
            "fix or remove that row"
        )

    return _first_problem(path, numeric, pa.string(), first_non_numeric_row, describe)


def _first_problem(
    path: Path, names: list[str], as_type: pa.DataType, find, describe
) -> str | None:
    """Re-read ``names`` of a CSV as ``as_type`` and describe the first value ``find``
    flags (None: every value is fine, or the re-read failed too)."""
    table = _read_csv_as(path, names, as_type) if names else None
    for name in names if table is not None else []:
        found = find(table.column(name))
        if found is not None:
            return describe(name, found)
    return None


def first_non_numeric_row(column: pa.ChunkedArray) -> tuple[int, object] | None:
    """The first row of a column that does not read as a number, and its value."""
    import pandas as pd

    values = column.to_pandas()
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        parsed = pd.to_numeric(values, errors="coerce")
        bad = np.flatnonzero((parsed.isna() & values.notna()).to_numpy())
        if bad.size:
            return int(bad[0]), values.iloc[int(bad[0])]
    return None


def first_non_utf8_row(column: pa.ChunkedArray | pa.Array) -> int | None:
    """The first row of a binary column that is not UTF-8 text, or None. Bisects on
    prefixes, each checked by pyarrow's own cast: O(n) work, no Python loop per row."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    try:
        array.cast(pa.string())
        return None
    except pa.ArrowInvalid:
        pass
    valid, invalid = 0, len(array)  # prefix lengths: [:valid] is text, [:invalid] is not
    while invalid - valid > 1:
        middle = (valid + invalid) // 2
        try:
            array.slice(0, middle).cast(pa.string())
            valid = middle
        except pa.ArrowInvalid:
            invalid = middle
    return valid
