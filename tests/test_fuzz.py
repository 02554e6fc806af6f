"""Property tests: ``rnncast check`` on hostile input never crashes and says what is wrong.

Whatever it is given, ``check`` exits 0 (usable), 2 (a bad option) or 3 (bad data),
never 1 (a bug), and never prints a traceback. On failure stdout is empty and stderr
holds exactly one ``error:`` line, naming the file for data errors, after any
``warning:`` lines. On success ``--json`` describes the data. ``run_check`` asserts
this contract on every call; the tests below add what each case must give exactly.

Hypothesis runs derandomized and without an example database, so every run tries
the same examples: CI is reproducible, and the whole file takes seconds.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rnncast.cli import app
from rnncast.config import DUPLICATE_POLICIES, FILL_POLICIES

RUNNER = CliRunner()


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ---------------------------------------------------------------------------------------
# Running the command and checking the contract every run must keep
# ---------------------------------------------------------------------------------------

# Python shows these categories by default, so in a real run they reach the user's stderr.
_HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    description: dict[str, Any] | None = None  # the --json output when the code is 0

    @property
    def error(self) -> str:
        """The ``error:`` line (the last line of stderr)."""
        return self.stderr.splitlines()[-1] if self.stderr else ""


def _invoke(path: Path, args: list[str]) -> Outcome:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = RUNNER.invoke(app, ["check", str(path), *args])
    out, err = result.stdout, result.stderr
    context = (
        f"rnncast check {path.name} {' '.join(args)}\nexit {result.exit_code}\n"
        f"stdout: {out[:2000]!r}\nstderr: {err[:2000]!r}\nexception: {result.exception!r}"
    )
    assert "Traceback" not in out + err, context
    assert result.exit_code != 1, f"exit 1 means a bug in rnncast\n{context}"
    assert result.exit_code in (0, 2, 3), context
    assert result.exception is None or isinstance(result.exception, SystemExit), context
    shown = [w for w in caught if not issubclass(w.category, _HIDDEN_WARNINGS)]
    assert not shown, (
        "Python warnings would be printed on the user's stderr: "
        f"{[f'{w.category.__name__}: {w.message}' for w in shown]}\n{context}"
    )
    assert "\x1b[" not in err, f"colour codes on a non-terminal stderr\n{context}"
    lines = err.splitlines()
    if result.exit_code == 0:
        assert all(line.startswith("warning: ") for line in lines), context
    else:
        assert out == "", f"stdout must be empty on error\n{context}"
        assert lines, f"no error message\n{context}"
        assert lines[-1].startswith("error: "), f"last stderr line is not 'error: ...'\n{context}"
        assert all(line.startswith("warning: ") for line in lines[:-1]), (
            f"stderr must be warning lines then one error line\n{context}"
        )
        if result.exit_code == 3:
            assert path.name in lines[-1], f"a data error must name the file\n{context}"
        assert "np.float64(" not in err, f"numpy repr in a user message\n{context}"
    return Outcome(result.exit_code, out, err)


def run_check(path: Path, *options: str, plain: bool = False) -> Outcome:
    """Run ``rnncast check --json`` and assert the contract. With ``plain``, also run it
    without --json (the table for people) and check that the verdict is the same."""
    outcome = _invoke(path, [*options, "--json"])
    if plain:
        table = _invoke(path, list(options))
        assert (table.code, table.stderr) == (outcome.code, outcome.stderr), (
            f"--json changed the verdict: {outcome.code} {outcome.stderr!r} vs "
            f"{table.code} {table.stderr!r}"
        )
        assert table.code != 0 or table.stdout.strip(), "check printed no description"
    if outcome.code == 0:
        description = json.loads(outcome.stdout)
        assert description["usable"] is True
        assert description["series"] >= 1
        assert description["length"]["min"] >= 1
        assert description["steps"] >= description["series"]
        warned = [f"warning: {text}" for text in description["ingest"]["warnings"]]
        assert outcome.stderr.splitlines() == warned, outcome.stderr
        outcome.description = description
    return outcome


def comparable(description: dict[str, Any] | None, *ingest_keys: str) -> dict[str, Any]:
    """A description without its source path (and the named ingest fields), to compare."""
    assert description is not None
    result = copy.deepcopy(description)
    for key in ("source", *ingest_keys):
        result["ingest"].pop(key)
    return result


@contextmanager
def folder() -> Iterator[Path]:
    # Function-scoped fixtures (tmp_path) do not mix with @given: one folder per example.
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


# ---------------------------------------------------------------------------------------
# Writing tables
# ---------------------------------------------------------------------------------------

FORMATS = ("csv", "parquet")


def _as_text(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def write(frame: pd.DataFrame, directory: Path, fmt: str, stem: str = "x") -> Path:
    """Write ``frame`` as ``stem.csv`` or ``stem.parquet``. Columns Parquet cannot hold as
    they are (mixed Python types) are written as text, as a spreadsheet export would."""
    path = directory / f"{stem}.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
        return path
    try:
        frame.to_parquet(path, index=False)
    except (TypeError, ValueError, pa.ArrowException):
        frame = frame.copy()
        for name in frame.columns:
            if frame[name].dtype == object:
                frame[name] = frame[name].map(_as_text)
        frame.to_parquet(path, index=False)
    return path


def write_both(frame: pd.DataFrame, directory: Path, stem: str = "x") -> dict[str, Path]:
    return {fmt: write(frame, directory, fmt, stem) for fmt in FORMATS}


# ---------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------

# pandas alias used to build the stamps -> the alias rnncast should infer from them.
FREQUENCIES = {"h": "h", "15min": "15min", "D": "D", "W": "7D", "MS": "MS", "ME": "ME"}
FIXED = ("h", "15min", "D")
STEP = {"h": pd.Timedelta(hours=1), "15min": pd.Timedelta(minutes=15), "D": pd.Timedelta(days=1)}

SERIES_IDS = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")),
    min_size=1,
    max_size=6,
).filter(lambda name: name.strip() == name)  # blank or padded ids are another matter
VALUES = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@dataclass
class Case:
    """A table of series as column lists; ``lengths`` gives the rows of each series."""

    columns: dict[str, list[Any]]
    ids: list[str]
    lengths: list[int]
    freq: str  # pandas alias the stamps were built with
    covariate: bool = False
    starts: list[int] = field(default_factory=list)  # first row of each series

    @property
    def n_rows(self) -> int:
        return sum(self.lengths)

    @property
    def expected_alias(self) -> str:
        return FREQUENCIES[self.freq]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.columns)

    def series_of(self, row: int) -> int:
        return max(i for i, start in enumerate(self.starts) if start <= row)

    def interior_rows(self) -> list[int]:
        """Rows that are neither the first nor the last of their series."""
        return [
            row
            for start, length in zip(self.starts, self.lengths, strict=True)
            for row in range(start + 1, start + length - 1)
        ]

    def later_rows(self) -> list[int]:
        """Rows that are not the first of their series."""
        return [
            row
            for start, length in zip(self.starts, self.lengths, strict=True)
            for row in range(start + 1, start + length)
        ]


@st.composite
def valid_cases(
    draw: st.DrawFn,
    min_length: int = 2,
    max_length: int = 8,
    max_series: int = 3,
    freqs: tuple[str, ...] = tuple(FREQUENCIES),
    covariate: bool | None = None,
    same_start: bool = False,
) -> Case:
    """A well-formed long table, sorted by series then time: every row usable."""
    freq = draw(st.sampled_from(freqs))
    n_series = draw(st.integers(1, max_series))
    ids = draw(st.lists(SERIES_IDS, min_size=n_series, max_size=n_series, unique=True))
    with_covariate = draw(st.booleans()) if covariate is None else covariate
    columns: dict[str, list[Any]] = {"unique_id": [], "ds": [], "y": []}
    if with_covariate:
        columns["temperature"] = []
    lengths, starts = [], []
    for name in ids:
        length = draw(st.integers(min_length, max_length))
        offset = 0 if same_start else draw(st.integers(0, 3))
        stamps = pd.date_range("2024-01-01", periods=offset + length, freq=freq)[offset:]
        starts.append(len(columns["y"]))
        lengths.append(length)
        columns["unique_id"] += [name] * length
        columns["ds"] += list(stamps)
        columns["y"] += draw(st.lists(VALUES, min_size=length, max_size=length))
        if with_covariate:
            columns["temperature"] += draw(st.lists(VALUES, min_size=length, max_size=length))
    return Case(columns, ids, lengths, freq, with_covariate, starts)


def with_row(case: Case, column: str, row: int, value: Any) -> pd.DataFrame:
    values = list(case.columns[column])
    values[row] = value
    return pd.DataFrame({**case.columns, column: values})


# Things that go wrong in real files, each a change to the column lists.
SPECIAL_TARGETS = st.sampled_from(
    [math.nan, math.inf, -math.inf, 1e300, -1e300, 1e-300, 3.5e38, 0.0, None, "", "abc",
     "1.5", "1,5", True, False, 7, "NaN", "∞"]
)  # fmt: skip
BAD_TIMES = st.sampled_from(
    ["not a date", "2024-13-45", "2024-02-30", "9999/12/31", "1000-01-01", "", None, 17, 1.5,
     "2024-01-01", "2024-01-01T00:00:00Z", "2024-01-01 00:00:00+05:30", "01/02/2024",
     "2024-01-01 25:00", "  2024-01-02 00:00:00 ", "2262-04-12 00:00:00"]
)  # fmt: skip
EXTRA_COLUMNS = st.sampled_from(
    ["note", "temperature", "price", "flag", "empty", "Unnamed: 0", "timestamp", "value", "id"]
)
MISSPELT = {
    "unique_id": ["uniqe_id", "unique_idd", "UniqueId", "unique id", "_unique_id"],
    "ds": ["dss", "d_s", "Ds_", "datestamp", "dt"],
    "y": ["yy", "Y_", "targ", "values", "y1"],
}
TIME_TEXT_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M", "%d.%m.%Y"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


def _mutate(draw: st.DrawFn, columns: dict[str, list[Any]], kind: str) -> None:
    n = len(next(iter(columns.values()), []))
    rows = st.lists(st.integers(0, max(n - 1, 0)), min_size=1, max_size=3) if n else st.just([])
    if kind == "duplicate":
        for row in draw(rows):
            for values in columns.values():
                values.append(values[row])
    elif kind == "shuffle" and n:
        order = draw(st.permutations(range(n)))
        for name, values in columns.items():
            columns[name] = [values[i] for i in order]
    elif kind == "extra":
        name = draw(EXTRA_COLUMNS)
        cells = draw(st.sampled_from([VALUES, st.text(max_size=4), st.booleans(), st.none()]))
        columns[name] = draw(st.lists(cells, min_size=n, max_size=n))
    elif kind == "drop" and columns:
        del columns[draw(st.sampled_from(sorted(columns)))]
    elif kind == "rename":
        present = [name for name in MISSPELT if name in columns]
        if present:
            old = draw(st.sampled_from(present))
            new = draw(st.sampled_from(MISSPELT[old]))
            renamed = {new if name == old else name: values for name, values in columns.items()}
            columns.clear()
            columns.update(renamed)
    elif kind == "truncate":
        keep = draw(st.integers(0, 2))
        for name in columns:
            columns[name] = columns[name][:keep]
    elif kind == "target_values" and "y" in columns:
        for row in draw(rows):
            columns["y"][row] = draw(SPECIAL_TARGETS)
    elif kind == "target_type" and "y" in columns:
        convert: Callable[[Any], Any] = draw(st.sampled_from([bool, int, str, lambda v: [v]]))
        columns["y"] = [
            convert(v) if isinstance(v, float) and math.isfinite(v) else v for v in columns["y"]
        ]
    elif kind == "time_values" and "ds" in columns:
        for row in draw(rows):
            columns["ds"][row] = draw(BAD_TIMES)
    elif kind == "time_text" and "ds" in columns:
        text_format = draw(st.sampled_from(TIME_TEXT_FORMATS))
        columns["ds"] = [
            v.strftime(text_format) if isinstance(v, pd.Timestamp) else v for v in columns["ds"]
        ]
    elif kind == "time_zone" and "ds" in columns:
        zones = draw(st.lists(st.sampled_from(ZONES), min_size=1, max_size=2))
        columns["ds"] = [
            v.tz_localize("UTC").tz_convert(zones[i % len(zones)])
            if isinstance(v, pd.Timestamp) and v.tz is None
            else v
            for i, v in enumerate(columns["ds"])
        ]
    elif kind == "jitter" and "ds" in columns:
        seconds = draw(st.integers(1, 3600))
        for row in draw(rows):
            if isinstance(columns["ds"][row], pd.Timestamp):
                columns["ds"][row] += pd.Timedelta(seconds=seconds)
    elif kind == "id_values" and "unique_id" in columns:
        for row in draw(rows):
            columns["unique_id"][row] = draw(st.sampled_from([None, "", 12, " a", "a"]))


MUTATIONS = (
    "duplicate", "shuffle", "extra", "drop", "rename", "truncate", "target_values",
    "target_type", "time_values", "time_text", "time_zone", "jitter", "id_values",
)  # fmt: skip


@st.composite
def messy_frames(draw: st.DrawFn) -> pd.DataFrame:
    """A long table with some of the things real files get wrong."""
    case = draw(valid_cases(min_length=1, max_length=6))
    columns = {name: list(values) for name, values in case.columns.items()}
    for kind in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3)):
        _mutate(draw, columns, kind)
    return pd.DataFrame(columns)


OPTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("--horizon"), st.integers(1, 8).map(str)),
        st.tuples(st.just("--duplicates"), st.sampled_from(DUPLICATE_POLICIES)),
        st.tuples(st.just("--fill"), st.sampled_from(FILL_POLICIES)),
        st.tuples(
            st.just("--freq"),
            st.sampled_from(["h", "D", "15min", "MS", "W", "fortnight", "0h", "10000000000000D"]),
        ),
        st.tuples(st.just("--covariates"), st.sampled_from(["temperature", "all", "nope", "y"])),
    ),
    max_size=2,
    unique_by=lambda option: option[0],
).map(lambda pairs: [part for pair in pairs for part in pair])


# ---------------------------------------------------------------------------------------
# 1. Arbitrary bytes
# ---------------------------------------------------------------------------------------


def _sample_bytes() -> tuple[bytes, bytes]:
    import io

    frame = pd.DataFrame(
        {
            "unique_id": ["a"] * 4 + ["b"] * 4,
            "ds": list(pd.date_range("2024-01-01", periods=4, freq="h")) * 2,
            "y": [float(i) for i in range(8)],
            "temperature": [float(i) / 2 for i in range(8)],
        }
    )
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return frame.to_csv(index=False).encode(), buffer.getvalue()


SAMPLE_CSV, SAMPLE_PARQUET = _sample_bytes()


def _damaged(original: bytes) -> st.SearchStrategy[bytes]:
    def apply(edits: list[tuple[int, int]]) -> bytes:
        damaged = bytearray(original)
        for position, byte in edits:
            damaged[position] = byte
        return bytes(damaged)

    edits = st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255))
    return st.lists(edits, min_size=1, max_size=6).map(apply)


def _truncated(original: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(0, len(original) - 1).map(lambda n: original[:n])


CSV_TOKENS = st.sampled_from(
    ["unique_id", "ds", "y", "id", "date", "value", "a", "b", "2024-01-01", "2024-01-01 01:00",
     "2024-01-02T00:00:00Z", "1", "-2.5", "1e400", "nan", "", '"', '""', "x,y", "\t", " ", "é",
     "\ufeff", "\x00"]
)  # fmt: skip


@st.composite
def csv_like_text(draw: st.DrawFn) -> bytes:
    rows = draw(st.lists(st.lists(CSV_TOKENS, max_size=5), min_size=1, max_size=6))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(",".join(row) for row in rows)
    return text.encode(draw(st.sampled_from(["utf-8", "utf-16", "latin-1"])), "replace")


FILE_BYTES = st.one_of(
    st.binary(max_size=400),
    csv_like_text(),
    _damaged(SAMPLE_CSV),
    _truncated(SAMPLE_CSV),
    _damaged(SAMPLE_PARQUET),
    _truncated(SAMPLE_PARQUET),
)


@fuzz_settings(80)
@given(data=FILE_BYTES)
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    with folder() as directory:
        for name in ("x.csv", "x.parquet"):
            path = directory / name
            path.write_bytes(data)
            outcome = run_check(path, plain=True)
            assert outcome.code in (0, 3), outcome.stderr


# ---------------------------------------------------------------------------------------
# 2. Well-formed but wrong tables
# ---------------------------------------------------------------------------------------


@fuzz_settings(80)
@given(frame=messy_frames(), options=OPTIONS, data=st.data())
def test_messy_tables_give_a_verdict(
    frame: pd.DataFrame, options: list[str], data: st.DataObject
) -> None:
    # Sometimes name a column for a role, rightly or wrongly.
    role = st.sampled_from(["--id-col", "--time-col", "--target-col", "--covariates"])
    names = st.sampled_from([*map(str, frame.columns), "nope"])
    for option, name in data.draw(st.lists(st.tuples(role, names), max_size=1)):
        options = [*options, option, name]
    with folder() as directory:
        for path in write_both(frame, directory).values():
            outcome = run_check(path, *options, plain=True)
            assert outcome.code in (0, 2, 3), outcome.stderr
            if "--freq" in options and "fortnight" in options:
                assert outcome.code in (2, 3), "an unknown --freq was accepted"


# ---------------------------------------------------------------------------------------
# 3. Deterministic verdicts
# ---------------------------------------------------------------------------------------


@fuzz_settings(20)
@given(case=valid_cases(), use_covariate=st.booleans())
def test_valid_tables_are_described_exactly(case: Case, use_covariate: bool) -> None:
    options = ["--covariates", "temperature"] if case.covariate and use_covariate else []
    descriptions = {}
    with folder() as directory:
        for fmt, path in write_both(case.frame(), directory).items():
            outcome = run_check(path, *options, plain=True)
            assert outcome.code == 0, outcome.stderr
            found = outcome.description
            assert found is not None
            assert found["series"] == len(case.ids)
            assert found["steps"] == case.n_rows
            assert found["length"]["min"] == min(case.lengths)
            assert found["length"]["max"] == max(case.lengths)
            assert found["frequency"] == case.expected_alias
            assert found["time_zone"] is None
            assert found["covariates"] == (["temperature"] if options else [])
            ingest = found["ingest"]
            assert ingest["rows_read"] == case.n_rows
            assert ingest["was_sorted"] is True
            assert ingest["skipped"] == []
            for count in ("duplicates_combined", "missing_timestamps", "missing_values"):
                assert ingest[count] == 0, count
            spare = ["temperature"] if case.covariate and not options else []
            assert ingest["columns"]["spare_numeric"] == spare
            descriptions[fmt] = comparable(found)
    assert descriptions["csv"] == descriptions["parquet"]


@fuzz_settings(15)
@given(case=valid_cases(), data=st.data())
def test_shuffled_rows_give_the_same_description(case: Case, data: st.DataObject) -> None:
    order = data.draw(st.permutations(range(case.n_rows)))
    shuffled = case.frame().iloc[list(order)]
    with folder() as directory:
        for fmt in FORMATS:
            (directory / "sorted").mkdir(exist_ok=True)
            (directory / "shuffled").mkdir(exist_ok=True)
            ordered = run_check(write(case.frame(), directory / "sorted", fmt))
            mixed = run_check(write(shuffled, directory / "shuffled", fmt))
            assert ordered.code == mixed.code == 0, mixed.stderr
            assert ordered.description is not None
            assert ordered.description["ingest"]["was_sorted"] is True
            assert comparable(mixed.description, "was_sorted") == comparable(
                ordered.description, "was_sorted"
            )


@fuzz_settings(12)
@given(case=valid_cases(), data=st.data())
def test_duplicate_stamps_are_refused_unless_a_policy_combines_them(
    case: Case, data: st.DataObject
) -> None:
    copies = data.draw(st.lists(st.integers(0, case.n_rows - 1), min_size=1, max_size=4))
    columns = {
        name: [*values, *(values[i] for i in copies)] for name, values in case.columns.items()
    }
    if "y" in columns:  # a repeated row may carry a different value
        columns["y"][case.n_rows :] = data.draw(
            st.lists(VALUES, min_size=len(copies), max_size=len(copies))
        )
    with folder() as directory:
        for path in write_both(pd.DataFrame(columns), directory).values():
            refused = run_check(path)
            assert refused.code == 3, refused.stderr
            assert "duplicated" in refused.error
            assert "--duplicates" in refused.error
            for policy in ("mean", "sum", "last"):
                combined = run_check(path, "--duplicates", policy)
                assert combined.code == 0, combined.stderr
                assert combined.description is not None
                assert combined.description["ingest"]["duplicates_combined"] == len(copies)
                assert combined.description["steps"] == case.n_rows
                assert combined.description["series"] == len(case.ids)


@fuzz_settings(20)
@given(
    case=valid_cases(),
    data=st.data(),
    value=st.sampled_from([math.inf, -math.inf, 1e300, -1e300, 3.5e38, -1e39]),
)
def test_infinite_or_huge_targets_are_refused(
    case: Case, data: st.DataObject, value: float
) -> None:
    row = data.draw(st.integers(0, case.n_rows - 1))
    with folder() as directory:
        for path in write_both(with_row(case, "y", row, value), directory).values():
            outcome = run_check(path)
            assert outcome.code == 3, outcome.stderr
            assert "'y'" in outcome.error
            assert f"row {row + 1}" in outcome.error


@fuzz_settings(15)
@given(case=valid_cases(), data=st.data(), value=st.sampled_from([1e-300, -1e-300, 5e-324]))
def test_tiny_targets_are_accepted(case: Case, data: st.DataObject, value: float) -> None:
    row = data.draw(st.integers(0, case.n_rows - 1))
    with folder() as directory:
        for path in write_both(with_row(case, "y", row, value), directory).values():
            outcome = run_check(path)
            assert outcome.code == 0, outcome.stderr
            assert outcome.description is not None
            assert outcome.description["steps"] == case.n_rows


@fuzz_settings(15)
@given(case=valid_cases(min_length=3), data=st.data())
def test_missing_values_are_filled_or_refused(case: Case, data: st.DataObject) -> None:
    inner = data.draw(st.sampled_from(case.interior_rows()))
    name = case.ids[case.series_of(inner)]
    with folder() as directory:
        for path in write_both(with_row(case, "y", inner, math.nan), directory).values():
            filled = run_check(path)
            assert filled.code == 0, filled.stderr
            assert filled.description is not None
            assert filled.description["ingest"]["missing_values"] == 1
            assert filled.description["steps"] == case.n_rows
            refused = run_check(path, "--fill", "error")
            assert refused.code == 3, refused.stderr
            assert "missing" in refused.error
            assert repr(name) in refused.error
        # A missing value at the end of a series is trimmed, not filled.
        last = case.starts[0] + case.lengths[0] - 1
        for path in write_both(with_row(case, "y", last, math.nan), directory, "end").values():
            trimmed = run_check(path)
            assert trimmed.code == 0, trimmed.stderr
            assert trimmed.description is not None
            assert trimmed.description["ingest"]["trimmed_rows"] == 1
            assert trimmed.description["ingest"]["missing_values"] == 0
            assert trimmed.description["steps"] == case.n_rows - 1


_NULL_TOKENS = {"NA", "NULL", "NaN", "N/A", "nan", "null", "n/a", "None", "none"}


def _not_a_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return token not in _NULL_TOKENS
    return False


@fuzz_settings(20)
@given(
    case=valid_cases(),
    data=st.data(),
    token=st.text(alphabet="abcdefxyzTRUEtrue", min_size=1, max_size=5).filter(_not_a_number),
)
def test_text_in_the_target_is_refused(case: Case, data: st.DataObject, token: str) -> None:
    row = data.draw(st.integers(0, case.n_rows - 1))
    with folder() as directory:
        paths = write_both(with_row(case, "y", row, token), directory)
        for fmt, path in paths.items():
            outcome = run_check(path)
            assert outcome.code == 3, outcome.stderr
            assert "'y'" in outcome.error
            assert "numeric" in outcome.error
            if fmt == "csv":
                assert f"row {row + 1}" in outcome.error
                assert repr(token) in outcome.error


@fuzz_settings(6)
@given(case=valid_cases(covariate=False))
def test_target_types_get_one_verdict_in_csv_and_parquet(case: Case) -> None:
    with folder() as directory:
        for kind, convert in (("int", int), ("bool", bool)):
            frame = pd.DataFrame({**case.columns, "y": [convert(v) for v in case.columns["y"]]})
            paths = write_both(frame, directory, kind)
            csv, parquet = run_check(paths["csv"]), run_check(paths["parquet"])
            assert csv.code == parquet.code, (
                f"{kind} target: CSV gives {csv.code} {csv.stderr!r}, "
                f"Parquet gives {parquet.code} {parquet.stderr!r}"
            )
            if kind == "int":
                assert csv.code == 0, csv.stderr


@fuzz_settings(10)
@given(case=valid_cases(covariate=False))
def test_a_missing_time_or_target_column_is_named(case: Case) -> None:
    with folder() as directory:
        for column, option in (("ds", "--time-col"), ("y", "--target-col")):
            frame = case.frame().drop(columns=[column])
            for path in write_both(frame, directory, column).values():
                outcome = run_check(path)
                assert outcome.code == 3, outcome.stderr
                assert option in outcome.error


@fuzz_settings(15)
@given(case=valid_cases(same_start=True), data=st.data())
def test_misspelled_columns_lead_to_the_fix(case: Case, data: st.DataObject) -> None:
    with folder() as directory:
        for column, spellings in MISSPELT.items():
            misspelt = data.draw(st.sampled_from(spellings))
            frame = case.frame().rename(columns={column: misspelt})
            for path in write_both(frame, directory, column).values():
                outcome = run_check(path)
                if column == "ds":
                    assert outcome.code == 3, outcome.stderr
                    assert "--time-col" in outcome.error
                    assert repr(misspelt) in outcome.error
                elif column == "y" and not case.covariate:
                    # The only numeric column left is taken as the target.
                    assert outcome.code == 0, outcome.stderr
                    assert outcome.description is not None
                    assert outcome.description["ingest"]["columns"]["target"] == [misspelt]
                elif column == "y":
                    assert outcome.code == 3, outcome.stderr
                    assert "--target-col" in outcome.error
                else:
                    # A text column named almost like an id is taken for a misspelt id,
                    # never read as one merged series: the message names the fix.
                    assert outcome.code == 3, outcome.stderr
                    assert f"--id-col {misspelt}" in outcome.error, outcome.error


@fuzz_settings(15)
@given(case=valid_cases())
def test_a_table_without_rows_is_refused(case: Case) -> None:
    with folder() as directory:
        for path in write_both(case.frame().iloc[:0], directory).values():
            outcome = run_check(path)
            assert outcome.code == 3, outcome.stderr
            assert "no data rows" in outcome.error


@fuzz_settings(15)
@given(case=valid_cases(min_length=1, max_length=1, freqs=FIXED))
def test_single_row_series_need_freq(case: Case) -> None:
    with folder() as directory:
        for path in write_both(case.frame(), directory).values():
            refused = run_check(path)
            assert refused.code == 3, refused.stderr
            assert "--freq" in refused.error
            accepted = run_check(path, "--freq", case.freq)
            assert accepted.code == 0, accepted.stderr
            assert accepted.description is not None
            assert accepted.description["steps"] == len(case.ids)
            assert accepted.description["frequency"] == case.expected_alias


@fuzz_settings(20)
@given(case=valid_cases(min_length=3, freqs=FIXED), data=st.data())
def test_off_grid_timestamps_are_found(case: Case, data: st.DataObject) -> None:
    row = data.draw(st.sampled_from(case.later_rows()))
    step_seconds = int(STEP[case.freq].total_seconds())
    shift = pd.Timedelta(seconds=data.draw(st.integers(1, step_seconds - 1)))
    frame = with_row(case, "ds", row, case.columns["ds"][row] + shift)
    with folder() as directory:
        for path in write_both(frame, directory).values():
            stated = run_check(path, "--freq", case.freq)
            assert stated.code == 3, stated.stderr
            assert "grid" in stated.error
            assert f"row {row + 1}" in stated.error
            inferred = run_check(path)
            if inferred.code == 0:
                # Accepted on a finer grid: the invented steps must at least be reported.
                assert inferred.description is not None
                assert inferred.description["frequency"] != case.expected_alias
                assert inferred.description["ingest"]["missing_timestamps"] > 0
            else:
                assert inferred.code == 3, inferred.stderr
                assert "grid" in inferred.error


@fuzz_settings(20)
@given(case=valid_cases(freqs=("h", "15min")), zone=st.sampled_from(ZONES))
def test_zoned_timestamps_keep_their_grid(case: Case, zone: str) -> None:
    stamps = [stamp.tz_localize("UTC").tz_convert(zone) for stamp in case.columns["ds"]]
    frame = pd.DataFrame({**case.columns, "ds": stamps})
    with folder() as directory:
        for path in write_both(frame, directory).values():
            outcome = run_check(path)
            assert outcome.code == 0, outcome.stderr
            assert outcome.description is not None
            assert outcome.description["steps"] == case.n_rows
            assert outcome.description["frequency"] == case.expected_alias
            assert outcome.description["time_zone"] is not None


@fuzz_settings(15)
@given(
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney"]),
    length=st.integers(3, 400),
    start=st.dates(min_value=date(2023, 1, 1), max_value=date(2024, 12, 31)),
)
def test_daily_stamps_in_a_daylight_saving_zone_stay_daily(
    zone: str, length: int, start: date
) -> None:
    # Local midnights are 23 or 25 hours apart across a clock change; still daily data.
    # Parquet only: CSV text carries offsets, not the zone's name, and is read as UTC
    # (a known gap, in README.md).
    stamps = pd.date_range(pd.Timestamp(start), periods=length, freq="D", tz=zone)
    frame = pd.DataFrame({"unique_id": "a", "ds": stamps, "y": range(length)})
    with folder() as directory:
        for path in [write(frame, directory, "parquet")]:
            outcome = run_check(path)
            assert outcome.code == 0, outcome.stderr
            assert outcome.description is not None
            assert outcome.description["frequency"] == "D"
            assert outcome.description["steps"] == length


@fuzz_settings(15)
@given(case=valid_cases(freqs=("h", "D")), data=st.data())
def test_a_mix_of_zoned_and_plain_stamps_is_refused(case: Case, data: st.DataObject) -> None:
    row = data.draw(st.integers(0, case.n_rows - 1))
    offset = data.draw(st.sampled_from(["+00:00", "+02:00", "-05:30", "Z"]))
    text = [stamp.strftime("%Y-%m-%d %H:%M:%S") for stamp in case.columns["ds"]]
    text[row] += offset
    frame = pd.DataFrame({**case.columns, "ds": text})
    with folder() as directory:
        for path in write_both(frame, directory).values():
            outcome = run_check(path)
            assert outcome.code == 3, outcome.stderr
            assert "zone" in outcome.error


def _text_formats(freq: str) -> list[str]:
    formats = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
    return [*formats, "%Y-%m-%d"] if freq not in ("h", "15min") else formats


@fuzz_settings(20)
@given(case=valid_cases(), data=st.data())
def test_timestamps_written_as_text_read_as_timestamps(case: Case, data: st.DataObject) -> None:
    text_format = data.draw(st.sampled_from(_text_formats(case.freq)))
    text = [stamp.strftime(text_format) for stamp in case.columns["ds"]]
    with folder() as directory:
        reference = run_check(write(case.frame(), directory, "parquet", "typed"))
        assert reference.code == 0, reference.stderr
        for path in write_both(pd.DataFrame({**case.columns, "ds": text}), directory).values():
            outcome = run_check(path)
            assert outcome.code == 0, outcome.stderr
            assert comparable(outcome.description) == comparable(reference.description)


@fuzz_settings(20)
@given(
    case=valid_cases(freqs=("h", "D")),
    data=st.data(),
    token=st.sampled_from(
        ["not a date", "2024-13-45", "2024-02-30", "31/31/2024", "2024-01-01 25:00:00", "??"]
    ),
)
def test_an_unparseable_timestamp_is_named(case: Case, data: st.DataObject, token: str) -> None:
    text_format = data.draw(st.sampled_from(_text_formats(case.freq)))
    text = [stamp.strftime(text_format) for stamp in case.columns["ds"]]
    row = data.draw(st.integers(0, case.n_rows - 1))
    text[row] = token
    with folder() as directory:
        for path in write_both(pd.DataFrame({**case.columns, "ds": text}), directory).values():
            outcome = run_check(path)
            assert outcome.code == 3, outcome.stderr
            assert "'ds'" in outcome.error
            assert "zone" not in outcome.error, f"misleading message: {outcome.error}"
            assert repr(token) in outcome.error
            assert f"row {row + 1}" in outcome.error


@fuzz_settings(15)
@given(
    year=st.sampled_from([1, 1000, 1677, 2263, 3000, 9999]),
    separator=st.sampled_from(["-", "/"]),
    clock=st.sampled_from(["", " 00:00:00", "T12:00"]),
    length=st.integers(2, 5),
)
def test_timestamps_out_of_range_are_refused(
    year: int, separator: str, clock: str, length: int
) -> None:
    # Years 1678 to 2261 fit in int64 nanoseconds; these do not.
    stamps = [f"{year:04d}{separator}01{separator}{day:02d}{clock}" for day in range(1, length + 1)]
    frame = pd.DataFrame({"unique_id": "a", "ds": stamps, "y": [1.0] * length})
    with folder() as directory:
        for path in write_both(frame, directory).values():
            outcome = run_check(path)
            assert outcome.code == 3, outcome.stderr
            assert "'ds'" in outcome.error


@fuzz_settings(20)
@given(case=valid_cases(min_length=1), horizon=st.integers(1, 8))
def test_series_too_short_for_the_horizon_are_skipped(case: Case, horizon: int) -> None:
    short = [name for name, length in zip(case.ids, case.lengths, strict=True) if length <= horizon]
    options = ["--horizon", str(horizon), "--freq", case.freq]
    with folder() as directory:
        for path in write_both(case.frame(), directory).values():
            outcome = run_check(path, *options)
            if len(short) == len(case.ids):
                assert outcome.code == 3, outcome.stderr
                assert f"--horizon {horizon}" in outcome.error
                continue
            assert outcome.code == 0, outcome.stderr
            assert outcome.description is not None
            assert outcome.description["series"] == len(case.ids) - len(short)
            skipped = [name for name, _ in outcome.description["ingest"]["skipped"]]
            assert sorted(skipped) == sorted(short)
            assert len(outcome.stderr.splitlines()) == len(short)


@fuzz_settings(20)
@given(case=valid_cases(), data=st.data())
def test_a_row_without_a_series_id_is_refused(case: Case, data: st.DataObject) -> None:
    # None is an empty cell in the CSV file and a null in the Parquet file.
    row = data.draw(st.integers(0, case.n_rows - 1))
    with folder() as directory:
        for path in write_both(with_row(case, "unique_id", row, None), directory).values():
            outcome = run_check(path)
            assert outcome.code == 3, outcome.stderr
            assert f"row {row + 1}" in outcome.error


@fuzz_settings(20)
@given(case=valid_cases(covariate=True), data=st.data())
def test_infinite_or_huge_covariates_are_refused(case: Case, data: st.DataObject) -> None:
    row = data.draw(st.integers(0, case.n_rows - 1))
    value = data.draw(st.sampled_from([math.inf, -math.inf, 1e300, -3.5e38]))
    with folder() as directory:
        for path in write_both(with_row(case, "temperature", row, value), directory).values():
            outcome = run_check(path, "--covariates", "temperature")
            assert outcome.code == 3, outcome.stderr
            assert "'temperature'" in outcome.error
            assert f"row {row + 1}" in outcome.error


@fuzz_settings(20)
@given(case=valid_cases(freqs=("h", "D")), data=st.data(), blank=st.sampled_from([None, "", " "]))
def test_a_blank_timestamp_is_named(case: Case, data: st.DataObject, blank: str | None) -> None:
    text = [stamp.strftime("%Y-%m-%d %H:%M:%S") for stamp in case.columns["ds"]]
    row = data.draw(st.integers(0, case.n_rows - 1))
    text[row] = blank
    with folder() as directory:
        for path in write_both(pd.DataFrame({**case.columns, "ds": text}), directory).values():
            outcome = run_check(path)
            assert outcome.code == 3, outcome.stderr
            assert "'ds'" in outcome.error
            assert f"row {row + 1}" in outcome.error


@fuzz_settings(20)
@given(case=valid_cases(freqs=("D",), min_length=2, max_length=12), start=st.integers(1, 12))
def test_day_first_dates_are_read_right_or_refused(case: Case, start: int) -> None:
    # 01.02.2024 is the first of February; read month first it is the second of January.
    stamps = [stamp + pd.Timedelta(days=start) for stamp in case.columns["ds"]]
    text = [stamp.strftime("%d.%m.%Y") for stamp in stamps]
    with folder() as directory:
        for path in write_both(pd.DataFrame({**case.columns, "ds": text}), directory).values():
            outcome = run_check(path)
            if outcome.code == 0:
                assert outcome.description is not None
                assert outcome.description["frequency"] == "D", outcome.description
                assert outcome.description["start"] == str(min(stamps).date())
            else:
                assert outcome.code == 3, outcome.stderr
                assert "'ds'" in outcome.error


ROLE_CONFLICTS = [
    ("--id-col", "ds"),
    ("--id-col", "y"),
    ("--time-col", "unique_id"),
    ("--time-col", "y"),
    ("--target-col", "ds"),
    ("--target-col", "unique_id"),
    ("--covariates", "ds"),
    ("--covariates", "y"),
    ("--covariates", "unique_id"),
]


@fuzz_settings(5)
@given(case=valid_cases(covariate=False))
def test_one_column_cannot_play_two_roles(case: Case) -> None:
    with folder() as directory:
        for path in write_both(case.frame(), directory).values():
            for option, column in ROLE_CONFLICTS:
                outcome = run_check(path, option, column)
                # errors.py: conflicting options are a ConfigError (exit 2), as --covariates has.
                assert outcome.code == 2, (option, column, outcome.stderr)
                assert repr(column) in outcome.error


@fuzz_settings(5)
@given(case=valid_cases(covariate=False))
def test_duplicate_column_names_are_refused(case: Case) -> None:
    table = pa.Table.from_pandas(case.frame(), preserve_index=False)
    with folder() as directory:
        for twice in ("unique_id", "ds", "y"):
            doubled = table.append_column(twice, table.column(twice))  # two columns, one name
            csv_path, parquet_path = directory / f"{twice}.csv", directory / f"{twice}.parquet"
            pa_csv.write_csv(doubled, csv_path)
            pq.write_table(doubled, parquet_path)
            for path in (csv_path, parquet_path):
                outcome = run_check(path)
                assert outcome.code == 3, outcome.stderr
                assert repr(twice) in outcome.error


@fuzz_settings(15)
@given(
    case=valid_cases(freqs=FIXED),
    count=st.one_of(st.integers(0, 100), st.integers(10**9, 10**30)),
    unit=st.sampled_from(["s", "min", "h", "D", "W", "MS", "ME", "QS", "YS"]),
)
def test_any_freq_gives_a_verdict(case: Case, count: int, unit: str) -> None:
    with folder() as directory:
        path = write(case.frame(), directory, "csv")
        outcome = run_check(path, "--freq", f"{count}{unit}")
        if count == 0:
            assert outcome.code == 2, outcome.stderr
        if count >= 10**12:  # a step far beyond the data's span
            assert outcome.code in (2, 3), outcome.stderr
            assert "--freq" in outcome.error or "grid" in outcome.error


@fuzz_settings(10)
@given(case=valid_cases(freqs=("D", "W", "MS", "ME")), fmt=st.sampled_from(FORMATS))
def test_a_freq_far_finer_than_the_data_is_refused(case: Case, fmt: str) -> None:
    # One-nanosecond steps over days of data: a grid of ~10^14 steps must be refused, as
    # an inferred step that fine is, not attempted. (Coarser steps such as 1ms are not
    # tried here: before the fix they allocate gigabytes.)
    with folder() as directory:
        outcome = run_check(write(case.frame(), directory, fmt), "--freq", "1ns")
        assert outcome.code == 3, outcome.stderr
        assert "--freq" in outcome.error


@fuzz_settings(10)
@given(case=valid_cases(freqs=("h",), max_length=6))
def test_times_without_dates_are_refused(case: Case) -> None:
    # 13:00 names no day; reading it as today would make the data depend on the run date.
    text = [stamp.strftime("%H:%M") for stamp in case.columns["ds"]]
    with folder() as directory:
        for path in write_both(pd.DataFrame({**case.columns, "ds": text}), directory).values():
            outcome = run_check(path)
            assert outcome.code == 3, outcome.stderr
            assert "'ds'" in outcome.error
