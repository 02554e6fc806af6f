"""End-to-end tests of the command line, through Typer's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rnncast import __version__
from rnncast.cli import app
from tests.conftest import SAMPLE_DATA

runner = CliRunner()


def check(*args: str):
    return runner.invoke(app, ["check", *map(str, args)])


def test_check_describes_the_hourly_sample_as_json() -> None:
    result = check(SAMPLE_DATA / "load_hourly.parquet", "--covariates", "temperature", "--json")
    assert result.exit_code == 0, result.stderr
    description = json.loads(result.stdout)
    assert description["usable"] is True
    assert description["series"] == 5
    assert description["length"] == {"min": 2184, "median": 2184.0, "max": 2184}
    assert (description["frequency"], description["season_length"]) == ("h", 24)
    assert description["start"] == "2025-01-06 00:00:00"
    assert description["covariates"] == ["temperature"]
    assert description["ingest"]["missing_timestamps"] == 8
    assert description["ingest"]["missing_values"] == 4
    assert result.stderr == ""


def test_check_reads_the_wide_sample_with_one_series_per_column() -> None:
    result = check(SAMPLE_DATA / "sales_daily_wide.csv", "--layout", "wide", "--json")
    assert result.exit_code == 0, result.stderr
    description = json.loads(result.stdout)
    assert description["series"] == 6
    assert description["frequency"] == "D"
    assert description["ingest"]["columns"]["target"][0] == "store_a_bread"


def test_check_prints_a_table_for_people() -> None:
    result = check(SAMPLE_DATA / "load_hourly.csv")
    assert result.exit_code == 0
    assert "hourly" in result.stdout
    assert "meter_05" in result.stdout
    assert "missing timestamps filled" in result.stdout


def test_quiet_check_prints_nothing_when_all_is_well() -> None:
    result = check(SAMPLE_DATA / "load_hourly.csv", "--quiet")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


BAD_INPUTS = {
    "missing": (None, "no such file or directory"),
    "empty": ("", "the file is empty"),
    "header only": ("unique_id,ds,y\n", "has a header but no data rows"),
    "non-numeric target": (
        "unique_id,ds,y\na,2024-01-01,1\na,2024-01-02,abc\n",
        "column 'y' must be numeric but row 2 holds 'abc'; fix or remove that row",
    ),
    "unparseable time": (
        "unique_id,ds,y\na,2024-01-01,1\na,someday,2\n",
        "column 'ds' holds 'someday' at row 2, which is not a timestamp in ISO 8601 form",
    ),
    "mixed zones": (
        "unique_id,ds,y\na,2024-01-01 00:00:00+01:00,1\na,2024-01-01 01:00:00,2\n",
        "column 'ds' mixes timestamps with and without a time zone "
        "(e.g. '2024-01-01 01:00:00' at row 2); write all in one zone",
    ),
    "duplicates": (
        "unique_id,ds,y\na,2024-01-01,1\na,2024-01-01,2\na,2024-01-02,3\n",
        "1 duplicated (series, time) pair(s), e.g. series 'a' at 2024-01-01 00:00:00 "
        "(row 1 and row 2); remove them or pass --duplicates mean|sum|last",
    ),
    "infinite target": (
        "unique_id,ds,y\na,2024-01-01,1\na,2024-01-02,inf\na,2024-01-03,3\n",
        "column 'y' holds inf for series 'a' at 2024-01-02 00:00:00 (row 2)",
    ),
    "irregular": (
        "ds,y\n2024-01-01 00:00:00,1\n2024-01-01 01:00:07,2\n2024-01-01 03:00:00,3\n",
        "timestamps are not on a regular grid: the largest step that fits them all, 1s, "
        "would make 10,801 steps out of 3 rows",
    ),
    "numbers as time": (
        "unique_id,ds,y\na,1,1\na,2,2\n",
        "column 'ds' holds int64 values, not timestamps",
    ),
    "no time column": (
        "unique_id,when,y\na,2024-01-01,1\n",
        "no time column; looked for ds, timestamp, date, time, datetime among "
        "['unique_id', 'when', 'y']. Name it with --time-col",
    ),
    "no target column": (
        "unique_id,ds,a,b\nx,2024-01-01,1,2\n",
        "no target column; looked for y, target, value among ['unique_id', 'ds', 'a', 'b']. "
        "Name it with --target-col (or --layout wide if each column is a series)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_3_with_one_line_naming_the_file(case, tmp_path) -> None:
    text, message = BAD_INPUTS[case]
    path = tmp_path / "input.csv"
    if text is not None:
        path.write_text(text)
    result = check(path)
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}: {message}")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_a_file_that_is_neither_csv_nor_parquet_is_named(tmp_path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK\x03\x04")
    result = check(path)
    assert result.exit_code == 3
    assert "cannot tell what 'data.xlsx' is" in result.stderr


def test_a_corrupt_parquet_file_is_named(tmp_path) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(b"this is not parquet")
    result = check(path)
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {path}: not a readable Parquet file")


def test_a_misspelled_column_gets_the_closest_name(write_csv) -> None:
    path = write_csv("unique_id,ds,sales\na,2024-01-01,1\na,2024-01-02,2\n")
    result = check(path, "--target-col", "sale")
    assert result.exit_code == 3
    assert result.stderr == (
        f"error: {path}: target column 'sale' not found; columns are "
        "['unique_id', 'ds', 'sales']; did you mean 'sales'?\n"
    )


def test_missing_values_with_fill_error_exit_3(write_csv) -> None:
    path = write_csv("unique_id,ds,y\na,2024-01-01,1\na,2024-01-02,\na,2024-01-03,3\n")
    result = check(path, "--fill", "error")
    assert result.exit_code == 3
    assert "series 'a' is missing 1 step(s), the first at 2024-01-02 00:00:00" in result.stderr
    assert check(path, "--json").exit_code == 0


def test_short_series_are_skipped_with_a_warning_then_an_error(write_csv) -> None:
    rows = [f"a,2024-01-0{d},1" for d in range(1, 4)] + [f"b,2024-01-0{d},1" for d in range(1, 7)]
    path = write_csv("unique_id,ds,y\n" + "\n".join(rows) + "\n")
    result = check(path, "--horizon", "3", "--json")
    assert result.exit_code == 0
    assert result.stderr == "warning: series 'a' skipped: 3 steps; --horizon 3 needs at least 4\n"
    assert json.loads(result.stdout)["series"] == 1
    result = check(path, "--horizon", "6")
    assert result.exit_code == 3
    assert "no series is long enough for --horizon 6: the longest has 6 steps" in result.stderr


def test_usage_errors_exit_2(write_csv) -> None:
    path = write_csv("ds,y\n2024-01-01,1\n")
    assert check(path, "--fill", "sideways").exit_code == 2
    assert (
        "fill must be one of interpolate, ffill, zero, error"
        in check(path, "--fill", "sideways").stderr
    )
    assert check(path, "--freq", "fortnightly").exit_code == 2
    assert check(path, "--no-such-option").exit_code == 2
    assert check(path, "--horizon", "0").exit_code == 2


def test_debug_shows_the_traceback_for_a_data_error(write_csv) -> None:
    path = write_csv("")
    result = runner.invoke(app, ["check", str(path), "--debug"])
    assert result.exit_code != 0
    assert result.exc_info is not None
    assert type(result.exception).__name__ == "DataError"


def test_version_and_help() -> None:
    assert runner.invoke(app, ["--version"]).stdout == f"rnncast {__version__}\n"
    result = runner.invoke(app, ["check", "--help"])
    assert result.exit_code == 0
    assert "--covariates" in result.stdout


def test_python_dash_m_runs_the_same_cli() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "rnncast", "--version"], capture_output=True, text=True, check=False
    )
    assert (completed.returncode, completed.stdout) == (0, f"rnncast {__version__}\n")


def test_check_reads_a_partitioned_dataset_directory(tmp_path) -> None:
    import pandas as pd

    frame = pd.read_csv(SAMPLE_DATA / "load_hourly.csv", parse_dates=["ds"])
    frame.to_parquet(tmp_path / "dataset", partition_cols=["unique_id"])
    result = check(tmp_path / "dataset", "--json")
    assert result.exit_code == 0, result.stderr
    description = json.loads(result.stdout)
    assert description["series"] == 5
    assert description["ingest"]["rows_read"] == len(frame)


def test_check_reads_a_glob_of_csv_files(tmp_path) -> None:
    text = (SAMPLE_DATA / "load_hourly.csv").read_text().splitlines()
    header, rows = text[0], text[1:]
    for part in range(3):
        (tmp_path / f"part-{part}.csv").write_text("\n".join([header, *rows[part::3]]) + "\n")
    result = check(str(tmp_path / "part-*.csv"), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["ingest"]["was_sorted"] is False
    assert json.loads(result.stdout)["length"]["max"] == 2184


def test_a_blank_series_id_is_refused_with_its_row(write_csv) -> None:
    path = write_csv("unique_id,ds,y\na,2024-01-01,1\n,2024-01-02,2\n")
    result = check(path)
    assert result.exit_code == 3
    assert "column 'unique_id' is empty at row 2; every row needs a series id" in result.stderr
