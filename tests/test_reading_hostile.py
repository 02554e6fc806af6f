"""Hostile inputs to the shared reading path (io, sources, columns, timeparse, grid,
frequency), through the command line: each ends in exit 0, 2 or 3 with one ``error:``
line naming the file, column and series, never exit 1 and never a silent wrong result.

The first part pins the defects of the reading-path review one by one (cases 1-12);
the second holds property tests over Arrow types, timestamps near the limits of
int64 nanoseconds, ambiguous columns and datasets whose files disagree.
"""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from rnncast.cli import app
from rnncast.panel import read_panel
from tests.test_fuzz import folder, fuzz_settings, run_check

RUNNER = CliRunner()
LAST = pd.Timestamp.max  # 2262-04-11 23:47:16.854775807
FIRST = pd.Timestamp.min  # 1677-09-21 00:12:43.145224193


def rnncast(*args: Any):
    return RUNNER.invoke(app, [str(arg) for arg in args])


def error_line(result) -> str:
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("error: "), result.stderr
    assert "This is a bug" not in result.stderr, result.stderr
    return lines[-1]


def frame(ids: list[str], stamps: Any, values: Any = None) -> pd.DataFrame:
    stamps = list(stamps)
    values = np.arange(len(stamps), dtype=float) if values is None else values
    return pd.DataFrame({"unique_id": ids, "ds": stamps, "y": values})


def daily(name: str, periods: int, start: str = "2024-01-01") -> pd.DataFrame:
    return frame([name] * periods, pd.date_range(start, periods=periods, freq="D"))


def write_parquet(path: Path, **columns: pa.Array) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


# ---------------------------------------------------------------------------------------
# Cases 1-12 of the reading-path review
# ---------------------------------------------------------------------------------------


def test_1_dataset_files_with_string_and_large_string_ids_are_read(tmp_path) -> None:
    stamps = pa.array(pd.date_range("2024-01-01", periods=4, freq="h").values)
    for number, kind in enumerate([pa.string(), pa.large_string(), pa.int64()]):
        ids = [f"s{number}"] * 4 if kind != pa.int64() else [7] * 4
        write_parquet(
            tmp_path / "data" / f"part{number}.parquet",
            unique_id=pa.array(ids, kind),
            ds=stamps,
            y=pa.array([1.0, 2.0, 3.0, 4.0]),
        )
    result = rnncast("check", tmp_path / "data", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["series"] == 3
    panel = read_panel(tmp_path / "data")
    assert sorted(panel.ids.tolist()) == ["7", "s0", "s1"]


def test_1_dataset_files_whose_time_types_differ_are_named(tmp_path) -> None:
    write_parquet(
        tmp_path / "data" / "a.parquet",
        unique_id=pa.array(["a"] * 3),
        ds=pa.array(pd.date_range("2024-01-01", periods=3, freq="D").values),
        y=pa.array([1.0, 2.0, 3.0]),
    )
    write_parquet(
        tmp_path / "data" / "b.parquet",
        unique_id=pa.array(["b"] * 3),
        ds=pa.array(["2024-01-01", "2024-01-02", "2024-01-03"]),
        y=pa.array([1.0, 2.0, 3.0]),
    )
    result = rnncast("check", tmp_path / "data")
    assert result.exit_code == 3
    assert error_line(result) == (
        f"error: {tmp_path / 'data'}: column 'ds' holds timestamps without a zone in "
        "a.parquet but text in b.parquet; write it with one type in every file"
    )


def test_2_a_header_that_leaves_the_target_unnamed_names_its_position(write_csv) -> None:
    path = write_csv("unique_id,ds,\na,2024-01-01,1\na,2024-01-02,2\n")
    result = rnncast("check", path)
    assert result.exit_code == 3
    line = error_line(result)
    assert line.startswith(f"error: {path}: no target column")
    assert "column 3 has no name: give it one in the header" in line
    assert "--target-col" in line


def test_2_an_unnamed_empty_column_beside_named_ones_is_ignored(write_csv) -> None:
    # A trailing comma on every line is a common export habit, not a missing name.
    path = write_csv("unique_id,ds,y,\na,2024-01-01,1,\na,2024-01-02,2,\n")
    result = rnncast("check", path, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["ingest"]["columns"]["spare_numeric"] == []


def test_2_an_unnamed_text_column_without_an_id_column_is_refused(write_csv) -> None:
    path = write_csv(",ds,y\na,2024-01-01,1\nb,2024-01-01,2\n")
    result = rnncast("check", path)
    assert result.exit_code == 3
    assert error_line(result) == (
        f"error: {path}: no series id column found, but column 1 has no name and holds "
        "text; if it holds the series ids, name it in the header (e.g. unique_id)"
    )
    # Unnamed numbers are a saved row index (pandas' to_csv): one series, read as such.
    index = write_csv(",ds,y\n0,2024-01-01,1\n1,2024-01-02,2\n", "index.csv")
    assert json.loads(rnncast("check", index, "--json").stdout)["series"] == 1


@pytest.mark.parametrize(
    "ids",
    [
        pa.array([["a"], ["a"], ["a"]], pa.list_(pa.string())),
        pa.array([{"k": "a"}] * 3, pa.struct([("k", pa.string())])),
        pa.array([[("a", 1)]] * 3, pa.map_(pa.string(), pa.int32())),
        pa.array([1.5, 1.5, 1.5]),
        pa.array([True, True, True]),
    ],
    ids=["list", "struct", "map", "float", "bool"],
)
def test_3_an_id_column_that_is_not_text_or_integers_is_refused(tmp_path, ids) -> None:
    path = write_parquet(
        tmp_path / "x.parquet",
        unique_id=ids,
        ds=pa.array(pd.date_range("2024-01-01", periods=3, freq="D").values),
        y=pa.array([1.0, 2.0, 3.0]),
    )
    stored = pq.read_schema(path).field("unique_id").type  # as Parquet gives it back
    result = rnncast("check", path)
    assert result.exit_code == 3
    assert error_line(result) == (
        f"error: {path}: column 'unique_id' is {stored}; the series id column must hold "
        "text or integers (name another with --id-col)"
    )


def test_4_a_binary_id_that_is_not_utf8_is_named_with_its_row(tmp_path) -> None:
    path = write_parquet(
        tmp_path / "x.parquet",
        unique_id=pa.array([b"a", b"a", b"\xff\xfe"], pa.binary()),
        ds=pa.array(pd.date_range("2024-01-01", periods=3, freq="D").values),
        y=pa.array([1.0, 2.0, 3.0]),
    )
    result = rnncast("check", path)
    assert result.exit_code == 3
    assert error_line(result) == (
        f"error: {path}: column 'unique_id' holds bytes that are not UTF-8 text at row 3 "
        "(b'\\xff\\xfe'); series ids must be text"
    )
    # UTF-8 bytes are text: read as the ids they spell.
    write_parquet(
        tmp_path / "ok.parquet",
        unique_id=pa.array(["é".encode()] * 3, pa.binary()),
        ds=pa.array(pd.date_range("2024-01-01", periods=3, freq="D").values),
        y=pa.array([1.0, 2.0, 3.0]),
    )
    assert read_panel(tmp_path / "ok.parquet").ids.tolist() == ["é"]


def test_4_a_csv_id_that_is_not_utf8_is_named_with_its_row(tmp_path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("unique_id,ds,y\na,2024-01-01,1\ncafé,2024-01-01,2\n".encode("latin-1"))
    result = rnncast("check", path)
    assert result.exit_code == 3
    assert error_line(result) == (
        f"error: {path}: column 'unique_id' holds text that is not UTF-8 at row 2; "
        "save the file as UTF-8"
    )


@pytest.fixture
def ends_in_2262(tmp_path) -> Path:
    path = tmp_path / "late.csv"
    stamps = pd.date_range(end="2262-04-11 23:00", periods=48, freq="h")
    frame(["late"] * 48, stamps).to_csv(path, index=False)
    return path


def test_5_forecast_steps_past_2262_are_refused_naming_the_series(ends_in_2262, tmp_path):
    assert rnncast("check", ends_in_2262).exit_code == 0  # the data itself is fine
    expected = (
        f"error: {ends_in_2262}: series 'late' ends at 2262-04-11 23:00:00, so its next "
        "3 steps (h) would fall past 2262-04-11 23:47:16, the last time rnncast can "
        "represent; only 0 steps fit. Leave the series out, or end it earlier"
    )
    checked = rnncast("check", ends_in_2262, "--horizon", 3)
    assert checked.exit_code == 3
    assert error_line(checked) == expected
    trained = rnncast("train", ends_in_2262, "--horizon", 3, "--out", tmp_path / "model")
    assert trained.exit_code == 3
    assert error_line(trained) == expected
    assert not (tmp_path / "model" / "model.safetensors").exists()


def test_5_a_model_forecasting_past_2262_writes_nothing(tmp_path) -> None:
    # The saved golden model forecasts 7 daily steps; this data ends 3 days before
    # the last representable day. Before, every forecast stamp wrapped to 1677.
    golden = Path(__file__).parent / "golden" / "model_v1"
    rows = 30
    data = pd.DataFrame(
        {
            "unique_id": "north",
            "ds": pd.date_range(end="2262-04-08", periods=rows, freq="D"),
            "y": np.sin(np.arange(rows) / 3.0),
            "temperature": 12.0,
        }
    )
    path = tmp_path / "late.csv"
    data.to_csv(path, index=False)
    out = tmp_path / "forecast.csv"
    result = rnncast("forecast", path, "--model", golden, "--out", out, "--device", "cpu")
    assert result.exit_code == 3, result.stderr
    line = error_line(result)
    assert "2262" in line and "1677-09-21 00" not in line
    assert not out.exists()


def test_6_the_time_format_given_is_the_format_used(tmp_path) -> None:
    stamps = pd.date_range("2024-01-01", periods=12, freq="D")
    path = tmp_path / "ydm.csv"
    frame(["a"] * 12, [s.strftime("%Y-%d-%m") for s in stamps]).to_csv(path, index=False)
    result = rnncast("check", path, "--time-format", "%Y-%d-%m", "--json")
    assert result.exit_code == 0, result.stderr
    description = json.loads(result.stdout)
    assert (description["frequency"], description["steps"]) == ("D", 12)
    assert (description["start"], description["end"]) == ("2024-01-01", "2024-01-12")


def test_6_a_time_format_that_does_not_fit_names_the_first_value(tmp_path) -> None:
    path = tmp_path / "iso.csv"
    daily("a", 3).to_csv(path, index=False)
    result = rnncast("check", path, "--time-format", "%d.%m.%Y")
    assert result.exit_code == 3
    assert error_line(result) == (
        f"error: {path}: column 'ds' holds '2024-01-01' at row 1, which is not a "
        "timestamp in the format '%d.%m.%Y'"
    )


@pytest.mark.parametrize(
    ("time_format", "why"),
    [("%Q%Q%", "is not a strftime format"), ("%H:%M", "has no year (%Y or %y)")],
)
def test_6_a_broken_time_format_is_a_usage_error(tmp_path, time_format: str, why: str) -> None:
    path = tmp_path / "iso.csv"
    daily("a", 3).to_csv(path, index=False)
    daily("a", 3).to_parquet(tmp_path / "typed.parquet")  # no text: still a bad option
    for source in (path, tmp_path / "typed.parquet"):
        result = rnncast("check", source, "--time-format", time_format)
        assert result.exit_code == 2, result.stderr
        assert error_line(result).startswith(f"error: --time-format {time_format!r} {why}")


@pytest.mark.parametrize(
    ("names", "option"),
    [
        (["unique_id", "ds", "y", "Y"], "--target-col"),
        (["unique_id", "ds", "DS", "y"], "--time-col"),
        (["id", "ID", "ds", "y"], "--id-col"),
        (["unique_id", "ds", "Value", "value"], "--target-col"),
    ],
)
def test_7_columns_that_differ_only_in_case_are_ambiguous(tmp_path, names, option) -> None:
    columns = {
        name: (
            pd.date_range("2024-01-01", periods=4, freq="D")
            if name.lower() == "ds"
            else ["a"] * 4
            if "id" in name.lower()
            else [1.0, 2.0, 3.0, 4.0]
        )
        for name in names
    }
    path = tmp_path / "x.parquet"
    pd.DataFrame(columns).to_parquet(path)
    first, second = (name for name in names if names.count(name) == 1 and any(
        other != name and other.lower() == name.lower() for other in names
    ))  # fmt: skip
    result = rnncast("check", path)
    assert result.exit_code == 3
    assert error_line(result) == (
        f"error: {path}: columns {first!r} and {second!r} could both be the "
        f"{option.split('-')[2]} column; name the one to use with {option}"
    )
    chosen = rnncast("check", path, option, second, "--json")
    assert chosen.exit_code == 0, chosen.stderr


def test_8_a_dataset_file_naming_the_target_differently_is_named(tmp_path) -> None:
    for fmt in ("parquet", "csv"):
        directory = tmp_path / fmt
        directory.mkdir()
        first, second = daily("a", 5), daily("b", 5).rename(columns={"y": "value"})
        if fmt == "csv":
            first.to_csv(directory / "a.csv", index=False)
            second.to_csv(directory / "b.csv", index=False)
        else:
            first.to_parquet(directory / "a.parquet")
            second.to_parquet(directory / "b.parquet")
        result = rnncast("check", directory)
        assert result.exit_code == 3
        assert error_line(result) == (
            f"error: {directory / f'b.{fmt}'}: has no column 'y', which a.{fmt} has: its "
            f"columns differ from a.{fmt}'s (it lacks 'y' and has 'value' instead); every "
            f"file of {directory} must name its columns alike"
        )


def test_9_hive_folder_keys_are_kept_as_written(tmp_path) -> None:
    for key in ("1", "01"):
        (tmp_path / f"unique_id={key}").mkdir()
        daily("x", 5).drop(columns="unique_id").to_parquet(
            tmp_path / f"unique_id={key}" / "part.parquet"
        )
    result = rnncast("check", tmp_path, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["series"] == 2
    assert sorted(read_panel(tmp_path).ids.tolist()) == ["01", "1"]


def test_10_an_existing_file_with_glob_characters_is_read(tmp_path) -> None:
    path = tmp_path / "a[1].csv"
    daily("a", 5).to_csv(path, index=False)
    result = rnncast("check", path, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["steps"] == 5
    # A path that does not exist is still a pattern.
    daily("b", 4).to_csv(tmp_path / "b1.csv", index=False)
    assert json.loads(rnncast("check", tmp_path / "b[1].csv", "--json").stdout)["steps"] == 4


def _hourly_with_a_daily_series(path: Path) -> Path:
    hours = pd.date_range("2024-01-01", periods=200, freq="h")
    days = pd.date_range("2024-01-01", periods=100, freq="D")
    pd.concat([frame(["h"] * 200, hours), frame(["d"] * 100, days)]).to_csv(path, index=False)
    return path


def test_11_a_daily_series_among_hourly_ones_is_warned_about(tmp_path) -> None:
    path = _hourly_with_a_daily_series(tmp_path / "mixed.csv")
    result = rnncast("check", path, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: series 'd' is mostly filled, not observed: 2,277 of its 2,377 hourly "
        "steps have no value and were filled by --fill interpolate (its values are usually "
        "24 steps apart); check that it belongs with the others, or pass --fill error to "
        "refuse gaps"
    ]
    refused = rnncast("check", path, "--fill", "error")
    assert refused.exit_code == 3
    assert error_line(refused) == (
        f"error: {path}: series 'd' is missing 2,277 step(s), the first at 2024-01-01 "
        "01:00:00 (2,277 in all); pass --fill interpolate|ffill|zero to fill them"
    )


def test_11_a_few_missing_steps_are_filled_without_a_word(tmp_path) -> None:
    hours = pd.date_range("2024-01-01", periods=100, freq="h")
    path = tmp_path / "gaps.csv"
    frame(["h"] * 95, hours.delete([10, 11, 40, 70, 71])).to_csv(path, index=False)
    result = rnncast("check", path, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["ingest"]["missing_timestamps"] == 5
    assert result.stderr == ""


def test_11_a_series_observed_every_other_step_is_warned_about(tmp_path) -> None:
    hours = pd.date_range("2024-01-01", periods=100, freq="h")
    path = tmp_path / "sparse.csv"
    pd.concat([frame(["h"] * 100, hours), frame(["e"] * 50, hours[::2])]).to_csv(path, index=False)
    result = rnncast("check", path, "--json")
    assert result.exit_code == 0, result.stderr
    assert "series 'e' is mostly filled" in result.stderr
    assert "usually 2 steps apart" in result.stderr
    assert "'h'" not in result.stderr


@pytest.mark.parametrize("opener", [open, gzip.open], ids=["csv", "csv.gz"])
def test_12_a_header_without_a_line_break_has_no_rows(tmp_path, opener) -> None:
    path = tmp_path / ("x.csv" if opener is open else "x.csv.gz")
    with opener(path, "wb") as handle:
        handle.write(b"unique_id,ds,y")
    result = rnncast("check", path)
    assert result.exit_code == 3
    assert error_line(result) == f"error: {path}: has a header but no data rows"
    with opener(path, "wb"):
        pass
    assert error_line(rnncast("check", path)) == f"error: {path}: the file is empty"


# ---------------------------------------------------------------------------------------
# Properties: Arrow types of the id, time and target columns
# ---------------------------------------------------------------------------------------

ROWS = 3  # per series; two series, "a" and "b"
NAMES = ["a"] * ROWS + ["b"] * ROWS
ZONES = [None, "UTC", "Europe/Berlin", "Asia/Kolkata", "+05:30"]


def _id_arrays() -> dict[str, tuple[pa.Array, bool]]:
    """Id columns by name: the array and whether it is a usable id column."""
    numbers = [1] * ROWS + [2] * ROWS
    arrays: dict[str, tuple[pa.Array, bool]] = {
        "string": (pa.array(NAMES, pa.string()), True),
        "large_string": (pa.array(NAMES, pa.large_string()), True),
        "string_view": (pa.array(NAMES, pa.string_view()), True),
        "dictionary": (pa.array(NAMES).dictionary_encode(), True),
        "dictionary_int8": (
            pa.array(NAMES).dictionary_encode().cast(pa.dictionary(pa.int8(), pa.string())),
            True,
        ),
        "binary": (pa.array([n.encode() for n in NAMES], pa.binary()), True),
        "large_binary": (pa.array([n.encode() for n in NAMES], pa.large_binary()), True),
        "not_utf8": (pa.array([b"a"] * ROWS + [b"\xc3\x28"] * ROWS, pa.binary()), False),
        "bool": (pa.array([True] * ROWS + [False] * ROWS), False),
        "float64": (pa.array(numbers, pa.float64()), False),
        "decimal": (pa.array([decimal.Decimal(n) for n in numbers], pa.decimal128(4, 1)), False),
        "date32": (pa.array([dt.date(2020, 1, n) for n in numbers], pa.date32()), False),
        "timestamp": (
            pa.array([dt.datetime(2020, 1, n) for n in numbers], pa.timestamp("s")),
            False,
        ),
        "list": (pa.array([[n] for n in NAMES], pa.list_(pa.string())), False),
        "struct": (pa.array([{"k": n} for n in NAMES], pa.struct([("k", pa.string())])), False),
        "null": (pa.nulls(2 * ROWS), False),
    }
    for kind in (pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint64()):
        arrays[str(kind)] = (pa.array(numbers, kind), True)
    arrays["dictionary_int"] = (pa.array(numbers, pa.int32()).dictionary_encode(), True)
    return arrays


ID_ARRAYS = _id_arrays()


# Where the stamps of each series start: far from the limits, or days from either end.
def _seconds(text: str) -> int:
    return int(np.datetime64(text, "s").astype(np.int64))


# Where the stamps of each series start, in seconds since 1970: far from the limits,
# days from either end, or far beyond them (Arrow holds years that ns cannot).
STARTS = {
    "2024": _seconds("2024-01-01"),
    "after 1677-09-21": _seconds("1677-09-22"),
    "before 2262-04-11": _seconds("2262-04-09"),
    "past 2262-04-11": _seconds("2262-04-11"),  # the third day is out of range
    "year 1": _seconds("0001-01-01"),
    "year 9999": _seconds("9999-12-01"),
    "year 36812": 2**40,
    "before year 1": -(2**40),
}
SECONDS_HELD = (-(-FIRST.value // 10**9), LAST.value // 10**9)


def _time_array(kind: str, unit: str, zone: str | None, start: int) -> pa.Array:
    """Two series of daily stamps from ``start`` seconds, in coarse units when ns
    cannot hold them."""
    days = np.arange(ROWS, dtype=np.int64)
    stamps = np.tile(start + days * 86_400, 2)
    if kind == "timestamp":
        if unit == "ns" and not SECONDS_HELD[0] <= stamps.min() <= stamps.max() <= SECONDS_HELD[1]:
            unit = "us"  # ns cannot hold them: write what can
        per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[unit]
        return pa.array(stamps * per_second, pa.int64()).cast(pa.timestamp(unit, zone))
    if kind in ("date32", "date64"):
        dates = pa.array(stamps // 86_400, pa.int32()).cast(pa.date32())
        return dates if kind == "date32" else pa.array(stamps * 1000, pa.int64()).cast(pa.date64())
    text = [str(np.datetime64(int(second), "s")).replace("T", " ") for second in stamps]
    if kind in ("string", "large_string"):
        return pa.array(text, getattr(pa, kind)())
    if kind == "dictionary":
        return pa.array(text).dictionary_encode()
    if kind == "int64":
        return pa.array(stamps)
    if kind == "float64":
        return pa.array(stamps.astype(np.float64))
    if kind == "duration":
        return pa.array(days.tolist() * 2, pa.duration("s"))
    if kind == "time64":
        return pa.array([dt.time(int(d)) for d in days] * 2, pa.time64("us"))
    if kind == "list":
        return pa.array([[t] for t in text])
    return pa.nulls(2 * ROWS)


TIME_KINDS = ["timestamp"] * 4 + [
    "date32", "date64", "string", "large_string", "dictionary", "int64", "float64",
    "duration", "time64", "list", "null",
]  # fmt: skip
TIME_USABLE = {"timestamp", "date32", "date64", "string", "large_string", "dictionary"}


def _target_arrays() -> dict[str, tuple[pa.Array, bool]]:
    values = [1.5, 2.0, 3.0, 4.0, 5.0, 6.0]
    whole = [int(v) for v in values]
    arrays: dict[str, tuple[pa.Array, bool]] = {
        "float64": (pa.array(values), True),
        "float32": (pa.array(values, pa.float32()), True),
        "float16": (pa.array(np.array(values, np.float16)), True),
        "decimal128": (pa.array([decimal.Decimal(v) for v in whole], pa.decimal128(6, 2)), True),
        "decimal256": (pa.array([decimal.Decimal(v) for v in whole], pa.decimal256(40, 2)), True),
        "string": (pa.array([str(v) for v in values]), True),
        "large_string": (pa.array([str(v) for v in values], pa.large_string()), True),
        "text": (pa.array(["x"] * 6), False),
        "bool": (pa.array([True] * 6), False),
        "list": (pa.array([[v] for v in values]), False),
        "date32": (pa.array([dt.date(2020, 1, 1)] * 6), False),
        "null": (pa.nulls(6, pa.float64()), False),  # no series has a value
    }
    for kind in (pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint64()):
        arrays[str(kind)] = (pa.array(whole, kind), True)
    return arrays


TARGET_ARRAYS = _target_arrays()


def assert_within_limits(description: dict[str, Any]) -> None:
    """No stamp described wrapped around or fell outside int64 nanoseconds."""
    # Compared as ISO text: a zone's offset in 1677 (local mean time, +00:53:28 in
    # Berlin) is more than pandas parses back.
    start, end = description["start"][:19], description["end"][:19]
    assert "1677-09-21" <= start <= end <= "2262-04-11 23:47:16", description


@fuzz_settings(120)
@given(
    id_kind=st.sampled_from(sorted(ID_ARRAYS)),
    time_kind=st.sampled_from(TIME_KINDS),
    unit=st.sampled_from(["s", "ms", "us", "ns"]),
    zone=st.sampled_from(ZONES),
    start=st.sampled_from(sorted(STARTS)),
    target_kind=st.sampled_from(sorted(TARGET_ARRAYS)),
    horizon=st.sampled_from([None, 1, ROWS - 1]),
)
def test_any_arrow_types_get_a_verdict(
    id_kind: str,
    time_kind: str,
    unit: str,
    zone: str | None,
    start: str,
    target_kind: str,
    horizon: int | None,
) -> None:
    ids, id_usable = ID_ARRAYS[id_kind]
    target, target_usable = TARGET_ARRAYS[target_kind]
    stamps = _time_array(time_kind, unit, zone, STARTS[start])
    options = ["--horizon", str(horizon)] if horizon else []
    with folder() as directory:
        path = write_parquet(directory / "typed.parquet", unique_id=ids, ds=stamps, y=target)
        outcome = run_check(path, *options)
    first_second, last_second = STARTS[start], STARTS[start] + (ROWS - 1) * 86_400
    held = SECONDS_HELD[0] <= first_second and last_second <= SECONDS_HELD[1]
    usable = id_usable and target_usable and time_kind in TIME_USABLE and held
    if not usable:
        assert outcome.code == 3, outcome.stderr
        return
    if horizon and last_second + horizon * 86_400 > SECONDS_HELD[1]:
        assert outcome.code == 3, outcome.stderr
        assert "2262-04-11" in outcome.error and "series" in outcome.error
        return
    assert outcome.code == 0, outcome.stderr
    assert outcome.description is not None
    assert outcome.description["series"] == 2
    assert outcome.description["steps"] == 2 * ROWS
    assert_within_limits(outcome.description)


# ---------------------------------------------------------------------------------------
# Properties: timestamps near 1677 and 2262, with horizons that cross the limit
# ---------------------------------------------------------------------------------------

# Steps in plain datetime arithmetic: pandas itself cannot step past 2262 in ns.
STEPS = {
    "h": dt.timedelta(hours=1),
    "15min": dt.timedelta(minutes=15),
    "D": dt.timedelta(days=1),
    "W": dt.timedelta(weeks=1),
    "MS": 1,  # months
    "ME": 1,
    "QS": 3,
}
# The last and first stamps of each grid that int64 nanoseconds hold.
EDGES = {
    "MS": (dt.datetime(2262, 4, 1), dt.datetime(1677, 10, 1)),
    "ME": (dt.datetime(2262, 3, 31), dt.datetime(1677, 9, 30)),
    "QS": (dt.datetime(2262, 4, 1), dt.datetime(1677, 10, 1)),
}


def _step(stamp: dt.datetime, freq: str, count: int) -> dt.datetime:
    step = STEPS[freq]
    if isinstance(step, dt.timedelta):
        return stamp + count * step
    month = stamp.year * 12 + stamp.month - 1 + count * step
    year, month = divmod(month, 12)
    if freq != "ME":
        return stamp.replace(year=year, month=month + 1)
    following = dt.datetime(year + (month == 11), (month + 1) % 12 + 1, 1)
    return following - dt.timedelta(days=1)


@fuzz_settings(60)
@given(
    freq=st.sampled_from(sorted(STEPS)),
    side=st.sampled_from(["end", "start"]),
    gap=st.integers(0, 4),
    length=st.integers(2, 5),
    horizon=st.integers(1, 6),
    fmt=st.sampled_from(["csv", "parquet"]),
)
def test_stamps_near_the_limits_never_wrap(
    freq: str, side: str, gap: int, length: int, horizon: int, fmt: str
) -> None:
    last_held = LAST.to_pydatetime(warn=False)
    latest, earliest = EDGES.get(freq, (dt.datetime(2262, 4, 11), dt.datetime(1677, 9, 22)))
    if side == "end":  # the series ends ``gap`` steps before the last stamp held
        last = _step(latest, freq, -gap)
        stamps = [_step(last, freq, k - length + 1) for k in range(length)]
    else:
        stamps = [_step(earliest, freq, gap + k) for k in range(length)]
    fit = sum(1 for k in range(1, horizon + 1) if _step(stamps[-1], freq, k) <= last_held)
    data = frame(["edge"] * length, [pd.Timestamp(stamp) for stamp in stamps])
    with folder() as directory:
        path = directory / f"edge.{fmt}"
        data.to_csv(path, index=False) if fmt == "csv" else data.to_parquet(path)
        plain = run_check(path)
        assert plain.code == 0, plain.stderr
        assert plain.description is not None
        assert_within_limits(plain.description)
        assert plain.description["steps"] == length
        assert pd.Timestamp(plain.description["end"]) == pd.Timestamp(stamps[-1])
        crossing = run_check(path, "--horizon", str(horizon))
    if length <= horizon:  # too short for the horizon: refused before any shift
        assert crossing.code == 3, crossing.stderr
        assert "long enough" in crossing.error
    elif fit == horizon:
        assert crossing.code == 0, crossing.stderr
    else:
        assert crossing.code == 3, crossing.stderr
        assert "series 'edge'" in crossing.error
        assert f"only {fit} step" in crossing.error


# ---------------------------------------------------------------------------------------
# Properties: ambiguous columns (case variants, repeated names)
# ---------------------------------------------------------------------------------------

VARIANTS = {
    "id": ["unique_id", "UNIQUE_ID", "Unique_Id", "id", "ID", "Id"],
    "time": ["ds", "DS", "Ds", "date", "Date", "DATE"],
    "target": ["y", "Y", "value", "Value", "VALUE"],
}
USUAL = {
    "id": ("unique_id", "series_id", "id", "series", "item_id"),
    "time": ("ds", "timestamp", "date", "time", "datetime"),
    "target": ("y", "target", "value"),
}


def _column_for(role: str) -> pa.Array:
    if role == "id":
        return pa.array(NAMES)
    if role == "time":
        return pa.array(np.tile(pd.date_range("2024-01-01", periods=ROWS).values, 2))
    return pa.array(np.arange(2.0 * ROWS))


def _expected_pick(names: list[str], role: str) -> tuple[str | None, bool]:
    """The column detection should pick for ``role``, and whether it is ambiguous."""
    for usual in USUAL[role]:
        found = [name for name in names if name.lower() == usual]
        if found:
            return found[0], len(found) > 1
    return None, False


@fuzz_settings(80)
@given(
    chosen=st.fixed_dictionaries(
        {
            role: st.lists(st.sampled_from(names), min_size=1, max_size=3)
            for role, names in VARIANTS.items()
        }
    ),
    order=st.randoms(use_true_random=False),
    fmt=st.sampled_from(["csv", "parquet"]),
)
def test_ambiguous_columns_are_never_guessed(chosen: dict, order: Any, fmt: str) -> None:
    columns = [(name, role) for role, names in chosen.items() for name in names]
    order.shuffle(columns)
    names = [name for name, _ in columns]
    table = pa.Table.from_arrays([_column_for(role) for _, role in columns], names=names)
    with folder() as directory:
        path = directory / f"cols.{fmt}"
        if fmt == "csv":
            import pyarrow.csv as pa_csv

            pa_csv.write_csv(table, path)
        else:
            pq.write_table(table, path)
        outcome = run_check(path)
    picks = {role: _expected_pick(names, role) for role in VARIANTS}
    repeated = [name for name in names if names.count(name) > 1]
    if repeated:
        assert outcome.code == 3, outcome.stderr
        assert "more than once" in outcome.error or "could both be" in outcome.error
        return
    ambiguous = [role for role, (_, twice) in picks.items() if twice]
    if ambiguous:
        assert outcome.code == 3, outcome.stderr
        assert "could both be" in outcome.error, outcome.error
        return
    # Unambiguous: exactly the columns named as detection documents, or a refusal
    # (e.g. a spare text column named like an id that is not one).
    assert outcome.code in (0, 3), outcome.stderr
    if outcome.code == 0:
        assert outcome.description is not None
        found = outcome.description["ingest"]["columns"]
        assert (found["id"], found["time"], found["target"]) == (
            picks["id"][0],
            picks["time"][0],
            [picks["target"][0]],
        )


# ---------------------------------------------------------------------------------------
# Properties: dataset directories whose files disagree
# ---------------------------------------------------------------------------------------

FILE_ID_TYPES = ["string", "large_string", "dictionary", "int64", "int32", "binary"]
FILE_TIME_TYPES = ["ns", "us", "ms", "s", "date32", "string", "large_string"]
FILE_TARGET_TYPES = ["float64", "float32", "int64", "decimal", "string", "large_string"]
MUTATIONS = ["none"] * 4 + ["rename_target", "case_target", "drop_target", "extra_column"]


@st.composite
def dataset_files(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(2, 3))
    return [
        {
            "id": draw(st.sampled_from(FILE_ID_TYPES)),
            "time": draw(st.sampled_from(FILE_TIME_TYPES)),
            "target": draw(st.sampled_from(FILE_TARGET_TYPES)),
            "mutation": draw(st.sampled_from(MUTATIONS)) if number else "none",
            "rows": draw(st.integers(2, 4)),
        }
        for number in range(count)
    ]


def _file_table(number: int, spec: dict[str, Any]) -> pa.Table:
    rows = spec["rows"]
    days = pd.date_range("2024-01-01", periods=rows, freq="D")
    name = f"s{number}" if spec["id"] not in ("int64", "int32") else number
    ids = {
        "string": lambda: pa.array([name] * rows, pa.string()),
        "large_string": lambda: pa.array([name] * rows, pa.large_string()),
        "dictionary": lambda: pa.array([name] * rows).dictionary_encode(),
        "binary": lambda: pa.array([str(name).encode()] * rows, pa.binary()),
        "int64": lambda: pa.array([name] * rows, pa.int64()),
        "int32": lambda: pa.array([name] * rows, pa.int32()),
    }[spec["id"]]()
    kind = spec["time"]
    if kind in ("string", "large_string"):
        stamps = pa.array([str(d.date()) for d in days], getattr(pa, kind)())
    elif kind == "date32":
        stamps = pa.array(days.date, pa.date32())
    else:
        stamps = pa.array(days.values.astype(f"datetime64[{kind}]"), pa.timestamp(kind))
    values = np.arange(rows, dtype=float) + 1
    target = {
        "float64": lambda: pa.array(values),
        "float32": lambda: pa.array(values, pa.float32()),
        "int64": lambda: pa.array(values.astype(int)),
        "decimal": lambda: pa.array([decimal.Decimal(int(v)) for v in values], pa.decimal128(5, 1)),
        "string": lambda: pa.array([str(v) for v in values]),
        "large_string": lambda: pa.array([str(v) for v in values], pa.large_string()),
    }[spec["target"]]()
    columns = {"unique_id": ids, "ds": stamps, "y": target}
    mutation = spec["mutation"]
    if mutation == "rename_target":
        columns["value"] = columns.pop("y")
    elif mutation == "case_target":
        columns["Y"] = columns.pop("y")
    elif mutation == "drop_target":
        columns.pop("y")
    elif mutation == "extra_column":
        columns["note"] = pa.array(["n"] * rows)
    return pa.table(columns)


@fuzz_settings(60)
@given(files=dataset_files())
def test_dataset_files_that_disagree_are_read_alike_or_named(files: list[dict]) -> None:
    with folder() as directory:
        data = directory / "dataset"
        data.mkdir()
        for number, spec in enumerate(files):
            pq.write_table(_file_table(number, spec), data / f"part-{number}.parquet")
        outcome = run_check(data)
    text = {"string", "large_string"}
    time_kinds = {"text" if spec["time"] in text else "typed" for spec in files}
    renamed = [
        n for n, spec in enumerate(files) if spec["mutation"] not in ("none", "extra_column")
    ]
    if renamed:
        assert outcome.code == 3, outcome.stderr
        assert any(f"part-{n}.parquet" in outcome.error for n in renamed), outcome.error
        assert "'y'" in outcome.error
    elif len(time_kinds) > 1:
        assert outcome.code == 3, outcome.stderr
        assert "one type in every file" in outcome.error
    else:
        assert outcome.code == 0, outcome.stderr
        assert outcome.description is not None
        assert outcome.description["series"] == len(files)
        assert outcome.description["steps"] == sum(spec["rows"] for spec in files)
        assert outcome.description["frequency"] == "D"
