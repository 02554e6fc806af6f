"""Which column plays which part: the id, the time, the target and the covariates.

Columns are named by the user or found by common names, case-insensitively
(README.md, "Input data"). Detection never guesses between two candidates: two
columns that differ only in case, or a column without a name, are reported with
the option that settles them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import pyarrow as pa

from rnncast.config import ID_COLUMN_NAMES, TARGET_COLUMN_NAMES, TIME_COLUMN_NAMES, DataConfig
from rnncast.errors import ConfigError, DataError

ID_TYPES = "text or integers"  # what a series id column may hold, for messages
_OPTION = {"id": "--id-col", "time": "--time-col", "target": "--target-col"}


@dataclass(frozen=True)
class Columns:
    """Which column plays which part. In wide layout, ``targets`` has one column per series."""

    time: str
    targets: tuple[str, ...]
    id: str | None = None
    # Every covariate that varies in time: those known up to the last value, then
    # those known ahead (``future``, the last ones).
    covariates: tuple[str, ...] = ()
    spare_numeric: tuple[str, ...] = ()  # numeric columns left over: possible covariates
    future: tuple[str, ...] = ()
    statics: tuple[str, ...] = ()  # one value per series, read from the data file

    @property
    def wanted(self) -> list[str]:
        """The columns to read, each once, in role order."""
        names = [self.id, self.time, *self.targets, *self.covariates, *self.statics]
        return list(dict.fromkeys(name for name in names if name))


def resolve_columns(schema: pa.Schema, config: DataConfig, label: str) -> Columns:
    """Decide the role of each column from the config, or from common names."""
    names = list(schema.names)
    repeated = sorted({name for name in names if name.strip() and names.count(name) > 1})
    if repeated:
        raise DataError(f"{label}: column {repeated[0]!r} appears more than once; rename one")
    if len(names) == 1 and any(mark in names[0] for mark in ";|\t"):
        raise DataError(
            f"{label}: found one column, {names[0]!r}; rnncast reads comma-separated CSV "
            "(tab-separated when the file ends in .tsv)"
        )
    # A header cell left empty (``unique_id,ds,``) cannot be named with an option, so
    # such a column takes no part; it is reported when a part goes unfilled, or when
    # it holds text and no column is named as the ids.
    unnamed = [position for position, name in enumerate(names, 1) if not name.strip()]
    named = [name for name in names if name.strip()]
    time = _pick_column(names, config.time_col, TIME_COLUMN_NAMES, "time", label)
    if time is None:
        raise DataError(
            f"{label}: no time column; looked for {', '.join(TIME_COLUMN_NAMES)} among "
            f"{_list(names)}{_unnamed_hint(unnamed)}. Name it with --time-col"
        )
    numeric = [n for n in named if n != time and _is_numeric(schema.field(n).type)]
    if config.layout == "wide":
        if unnamed:
            raise DataError(
                f"{label}: column {unnamed[0]} has no name; in --layout wide the column "
                "names are the series ids, so give it one in the header"
            )
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
        _refuse_likely_id(named, time, label)
        for position in unnamed:
            # Unnamed numbers are often a saved row index; unnamed text may be the ids.
            if is_text(schema.field(position - 1).type):
                raise DataError(
                    f"{label}: no series id column found, but column {position} has no name "
                    "and holds text; if it holds the series ids, name it in the header "
                    "(e.g. unique_id)"
                )
    candidates = [n for n in numeric if n != series_id]
    target = _pick_column(names, config.target_col, TARGET_COLUMN_NAMES, "target", label)
    if target is None:
        if len(candidates) != 1 or unnamed:
            hint = " (or --layout wide if each column is a series)" if candidates else ""
            raise DataError(
                f"{label}: no target column; looked for {', '.join(TARGET_COLUMN_NAMES)} "
                f"among {_list(names)}{_unnamed_hint(unnamed)}. Name it with --target-col{hint}"
            )
        target = candidates[0]
    roles = {"time": time, "id": series_id, "target": target}
    for first, second in (("time", "id"), ("time", "target"), ("id", "target")):
        if roles[first] is not None and roles[first] == roles[second]:
            raise ConfigError(
                f"column {roles[first]!r} cannot be both the {first} and the {second} column"
            )
    target_type = schema.field(target).type
    if not (_is_numeric(target_type) or is_text(target_type)):
        # Text may hold numbers (reading names any row that does not); other types cannot.
        raise DataError(f"{label}: target column {target!r} is {target_type}; it must hold numbers")
    spare = tuple(n for n in candidates if n != target)
    taken = (time, series_id, target)
    future = _named(config.future_covariates, "--future-covariates", schema, spare, taken, label)
    statics = tuple(
        n for n in config.static_columns if not config.static_file or n == config.holidays_column
    )
    for name in statics:
        if name not in names:
            role = "static covariate" if name in config.static_covariates else "holidays"
            raise DataError(f"{label}: {role} {_missing(name, names)}")
        if name in taken:
            raise ConfigError(
                f"--static-covariates: column {name!r} is already the id, time or target"
            )
        kind = schema.field(name).type
        if not (_is_numeric(kind) or is_text(kind)):
            raise DataError(
                f"{label}: static covariate column {name!r} is {kind}; it must hold numbers or text"
            )
    if config.covariates == "all":
        covariates = tuple(n for n in spare if n not in future and n not in statics)
    else:
        covariates = _named(config.covariates, "--covariates", schema, spare, taken, label)
    return Columns(
        time=time,
        targets=(target,),
        id=series_id,
        covariates=covariates + future,
        spare_numeric=tuple(n for n in spare if n not in (*covariates, *future, *statics)),
        future=future,
        statics=statics,
    )


def _named(
    chosen: tuple[str, ...],
    option: str,
    schema: pa.Schema,
    spare: tuple[str, ...],
    taken: tuple[str | None, ...],
    label: str,
) -> tuple[str, ...]:
    """The numeric columns an option names, each checked to exist and be free."""
    names = list(schema.names)
    for name in chosen:
        if name not in names:
            raise DataError(f"{label}: covariate {_missing(name, names)}")
        if name in taken:
            raise ConfigError(f"{option}: column {name!r} is already the id, time or target")
        if name not in spare:
            raise DataError(
                f"{label}: covariate column {name!r} is {schema.field(name).type}, "
                "not numeric; covariates must be numbers"
            )
    return chosen


def is_text(arrow_type: pa.DataType) -> bool:
    """Whether values of this type are text (of any width or layout)."""
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_string_view(arrow_type)
    )


def value_type(arrow_type: pa.DataType) -> pa.DataType:
    return arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type


def is_binary(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
        or pa.types.is_fixed_size_binary(arrow_type)
        or pa.types.is_binary_view(arrow_type)
    )


def is_id_type(kind: pa.DataType) -> bool:
    return is_text(kind) or is_binary(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind)


def time_kind(arrow_type: pa.DataType) -> str:
    """What a time column holds, in words; files whose kinds differ are refused."""
    kind = value_type(arrow_type)
    if pa.types.is_timestamp(kind):
        return f"timestamps in zone {kind.tz}" if kind.tz else "timestamps without a zone"
    if pa.types.is_date(kind):
        return "timestamps without a zone"  # a date is midnight of that day
    if is_text(kind):
        return "text"
    return "empty" if pa.types.is_null(kind) else "other"


def _is_numeric(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type)
        or pa.types.is_null(arrow_type)  # an all-empty column; its values are simply missing
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
    for usual_name in usual:
        found = [name for name in names if name.lower() == usual_name]
        if len(found) > 1:
            # 'y' beside 'Y': taking either would silently drop the other.
            raise DataError(
                f"{label}: columns {found[0]!r} and {found[1]!r} could both be the {role} "
                f"column; name the one to use with {_OPTION[role]}"
            )
        if found:
            return found[0]
    return None


def _unnamed_hint(unnamed: list[int]) -> str:
    if not unnamed:
        return ""
    return f" (column {unnamed[0]} has no name: give it one in the header)"


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
