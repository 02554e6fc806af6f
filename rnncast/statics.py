"""Static covariates: one value per series (a region, a tariff, a store's floor area).

They come from columns of the data file, where each series must hold one value on
every row, or from a file keyed by series id (``--static FILE``). Text is a
category: the network learns an embedding per level it saw in training, and a
level it never saw gets the embedding of "unknown". Numbers are scaled over the
series with a mean and a spread kept in the model's config.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rnncast.columns import is_text
from rnncast.errors import ConfigError, DataError
from rnncast.io import Table


@dataclass(frozen=True, eq=False)
class Statics:
    """Static covariates of S series, numbers and categories apart."""

    numeric_names: tuple[str, ...] = ()
    numeric: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.float64))  # (S, Cn)
    category_names: tuple[str, ...] = ()
    categories: np.ndarray = field(default_factory=lambda: np.empty((0, 0), object))  # (S, Cc)

    @property
    def names(self) -> tuple[str, ...]:
        return self.numeric_names + self.category_names

    def take(self, chosen: np.ndarray) -> Statics:
        return replace(self, numeric=self.numeric[chosen], categories=self.categories[chosen])


def read_statics(table: Table, codes: np.ndarray, n_ids: int, ids: np.ndarray) -> Statics | None:
    """The static covariates of series ``0..n_ids-1`` (``ids``), from the data's
    columns (``codes``: the series code of each table row) or from ``--static FILE``.

    Raises DataError naming the file, the column and the series when a series holds
    two values, none, or has no row in the static file."""
    names = table.config.static_columns
    if not names:
        return None
    if table.config.static_file is not None:
        given = _from_file(table.config.static_file, table.config.static_covariates, table, ids)
        column = table.config.holidays_column
        if column is None or column in given.names:
            return given
        from_data = _from_columns(table, (column,), codes, n_ids, ids)
        return Statics(
            given.numeric_names,
            given.numeric,
            given.category_names + from_data.category_names,
            np.column_stack([given.categories, from_data.categories]),
        )
    statics = _from_columns(table, names, codes, n_ids, ids)
    _check_countries(statics, table, ids)
    return statics


def _check_countries(statics: Statics, table: Table, ids: np.ndarray) -> None:
    """Refuse a holidays column naming a country the holidays library does not know,
    before any work, naming the column and the first series that holds it."""
    column = table.config.holidays_column
    if column is None:
        return
    from rnncast.holiday_features import check_country

    countries = statics.categories[:, statics.category_names.index(column)]
    for country in dict.fromkeys(countries.tolist()):
        series = str(ids[np.flatnonzero(countries == country)[0]])
        try:
            check_country(
                str(country), f"{table.source.label}: column {column!r}, series {series!r}"
            )
        except ConfigError as exc:
            raise DataError(str(exc)) from None


def _from_columns(
    table: Table, names: tuple[str, ...], codes: np.ndarray, n_ids: int, ids: np.ndarray
) -> Statics:
    label = table.source.label
    numeric, categories = [], []
    for name in names:
        column = table.data.column(name)
        if is_text(column.type):
            # An empty cell of a CSV file reads as "", which is no level.
            column = column.combine_chunks()
            blank = pc.equal(pc.utf8_trim_whitespace(column), "")
            column = pc.if_else(blank, pa.scalar(None, column.type), column).dictionary_encode()
            levels = column.dictionary.to_numpy(zero_copy_only=False).astype(object)
            index = column.indices.to_numpy(zero_copy_only=False)
            index = np.where(column.is_null().to_numpy(zero_copy_only=False), np.nan, index)
            per_series = _one_per_series(index.astype(np.float64), codes, n_ids, name, ids, label)
            categories.append(levels[per_series.astype(np.int64)])
        else:
            values = column.to_numpy().astype(np.float64)
            _refuse_infinite(values, name, ids, codes, label)
            numeric.append(_one_per_series(values, codes, n_ids, name, ids, label))
    return _statics(names, table, numeric, categories, n_ids)


def _statics(
    names: tuple[str, ...], table: Table, numeric: list, categories: list, n_ids: int
) -> Statics:
    text = [name for name in names if is_text(table.data.column(name).type)]
    return Statics(
        numeric_names=tuple(n for n in names if n not in text),
        numeric=np.column_stack(numeric) if numeric else np.empty((n_ids, 0)),
        category_names=tuple(text),
        categories=np.column_stack(categories) if categories else np.empty((n_ids, 0), object),
    )


def _refuse_infinite(
    values: np.ndarray, name: str, ids: np.ndarray, codes: np.ndarray, label: str
) -> None:
    """A static number that is infinite would make every input of its series so."""
    bad = np.isinf(values)
    if bad.any():
        code = int(codes[np.flatnonzero(bad)[0]])
        raise DataError(
            f"{label}: static covariate {name!r} is infinite for series {str(ids[code])!r}; "
            "give it a finite value"
        )


def _one_per_series(
    values: np.ndarray, codes: np.ndarray, n_ids: int, name: str, ids: np.ndarray, label: str
) -> np.ndarray:
    """(n_ids,) the value each series holds on all its rows (NaN: missing)."""
    missing = np.isnan(values)
    first = np.full(n_ids, np.nan)
    first[codes[::-1]] = values[::-1]  # repeated indices keep the last write: the first row
    if missing.any():
        code = int(codes[np.flatnonzero(missing)[0]])
        raise DataError(
            f"{label}: static covariate {name!r} has no value on some rows of series "
            f"{str(ids[code])!r}; a static covariate needs its one value on every row"
        )
    differs = values != first[codes]
    if differs.any():
        row = int(np.flatnonzero(differs)[0])
        code = int(codes[row])
        raise DataError(
            f"{label}: static covariate {name!r} changes within series {str(ids[code])!r} "
            f"(row {row + 1}); a static covariate holds one value per series. Pass it "
            "with --future-covariates or --covariates if it varies in time"
        )
    return first


def _from_file(path: str, names: tuple[str, ...], table: Table, ids: np.ndarray) -> Statics:
    """Static covariates from a CSV or Parquet file with one row per series id."""
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pa_parquet

    id_name = table.columns.id
    try:
        if path.endswith(".parquet"):
            data = pa_parquet.read_table(path)
        else:
            data = pa_csv.read_csv(
                path, convert_options=pa_csv.ConvertOptions(strings_can_be_null=True)
            )
    except (OSError, ValueError) as exc:
        raise DataError(f"--static {path}: cannot read it: {exc}".splitlines()[0]) from None
    if id_name not in data.column_names:
        raise DataError(
            f"--static {path}: no column {id_name!r}; it needs the series id column of the "
            f"data and one row per series"
        )
    for name in names:
        if name not in data.column_names:
            raise DataError(f"--static {path}: no column {name!r} (--static-covariates)")
    keys = [str(key) for key in data.column(id_name).to_pylist()]
    position: dict[str, int] = {}
    for row, key in enumerate(keys):
        if key in position:
            raise DataError(
                f"--static {path}: series {key!r} has two rows ({position[key] + 1} and "
                f"{row + 1}); give each series one"
            )
        position[key] = row
    absent = [str(name) for name in ids if str(name) not in position]
    if absent:
        raise DataError(
            f"--static {path}: no row for series {absent[0]!r} ({len(absent)} series in all); "
            "every series of the data needs its static covariates"
        )
    rows = np.array([position[str(name)] for name in ids], dtype=np.int64)
    numeric, categories = [], []
    for name in names:
        column = data.column(name)
        values = np.asarray(column.to_pylist(), dtype=object)[rows]
        blank = [i for i, value in enumerate(values) if value is None]
        if blank:
            raise DataError(
                f"--static {path}: column {name!r} has no value for series {str(ids[blank[0]])!r}"
            )
        if is_text(column.type):
            categories.append(values.astype(str).astype(object))
        else:
            numbers = values.astype(np.float64)
            _refuse_infinite(numbers, name, ids, np.arange(len(ids)), f"--static {path}")
            numeric.append(numbers)
    text = tuple(n for n in names if is_text(data.column(n).type))
    return Statics(
        numeric_names=tuple(n for n in names if n not in text),
        numeric=np.column_stack(numeric) if numeric else np.empty((len(ids), 0)),
        category_names=text,
        categories=np.column_stack(categories) if categories else np.empty((len(ids), 0), object),
    )


def fit_statics(statics: Statics, names: tuple[str, ...]) -> dict[str, Any]:
    """What the model keeps to encode the static covariates ``names`` of new data the
    same way: each number's mean and spread over the series, each category's levels."""
    numbers = []
    for column, name in enumerate(statics.numeric_names):
        if name not in names:
            continue
        values = statics.numeric[:, column]
        spread = float(values.std())
        numbers.append(
            {"name": name, "loc": float(values.mean()), "scale": spread if spread > 0 else 1.0}
        )
    categories = [
        {"name": name, "levels": sorted({str(v) for v in statics.categories[:, column]})}
        for column, name in enumerate(statics.category_names)
        if name in names
    ]
    return {"numbers": numbers, "categories": categories}


def encode_statics(statics: Statics, fitted: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(numbers (S, Cn) float32 scaled, codes (S, Cc) int64)``; code 0 is a level
    the model never saw, level i of the fitted levels is i + 1."""
    numbers = np.empty((statics.numeric.shape[0], len(fitted["numbers"])), dtype=np.float32)
    for column, spec in enumerate(fitted["numbers"]):
        values = statics.numeric[:, statics.numeric_names.index(spec["name"])]
        numbers[:, column] = (values - spec["loc"]) / spec["scale"]
    codes = np.zeros((statics.categories.shape[0], len(fitted["categories"])), dtype=np.int64)
    for column, spec in enumerate(fitted["categories"]):
        lookup = {level: i + 1 for i, level in enumerate(spec["levels"])}
        values = statics.categories[:, statics.category_names.index(spec["name"])]
        codes[:, column] = [lookup.get(str(v), 0) for v in values]
    return numbers, codes
