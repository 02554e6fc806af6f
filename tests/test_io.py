from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rnncast.config import DataConfig
from rnncast.errors import ConfigError, DataError
from rnncast.io import read_table, resolve_columns, resolve_source


def schema(**types: pa.DataType) -> pa.Schema:
    return pa.schema(list(types.items()))


def test_columns_are_detected_by_common_names_in_any_case() -> None:
    columns = resolve_columns(
        schema(Series=pa.string(), Timestamp=pa.string(), Value=pa.float64(), temp=pa.float64()),
        DataConfig(),
        "f.csv",
    )
    assert (columns.id, columns.time, columns.targets) == ("Series", "Timestamp", ("Value",))
    assert columns.spare_numeric == ("temp",)


def test_the_only_numeric_column_is_the_target_when_none_is_named() -> None:
    columns = resolve_columns(schema(date=pa.string(), kwh=pa.int64()), DataConfig(), "f.csv")
    assert (columns.id, columns.targets) == (None, ("kwh",))


def test_all_covariates_takes_every_spare_numeric_column() -> None:
    columns = resolve_columns(
        schema(ds=pa.string(), y=pa.float64(), a=pa.int32(), b=pa.float32(), note=pa.string()),
        DataConfig(covariates="all"),
        "f.csv",
    )
    assert columns.covariates == ("a", "b")


def test_a_text_covariate_is_refused_with_its_type() -> None:
    with pytest.raises(DataError, match="covariate column 'note' is string, not numeric"):
        resolve_columns(
            schema(ds=pa.string(), y=pa.float64(), note=pa.string()),
            DataConfig(covariates=("note",)),
            "f.csv",
        )


def test_wide_layout_refuses_text_columns_and_id_options() -> None:
    with pytest.raises(DataError, match="column 'store' is not numeric"):
        resolve_columns(
            schema(date=pa.string(), store=pa.string(), a=pa.float64()),
            DataConfig(layout="wide"),
            "f.csv",
        )
    with pytest.raises(ConfigError, match="do not apply to --layout wide"):
        DataConfig(layout="wide", id_col="store")


def test_an_integer_column_with_a_decimal_far_down_reads_as_numbers(tmp_path) -> None:
    # pyarrow infers CSV types from the first block (1 MiB); the target is forced to float64.
    rows = 120_000
    values = np.arange(rows).astype(str).astype(object)
    values[-1] = "2.5"
    frame = pd.DataFrame({"ds": pd.date_range("2000-01-01", periods=rows, freq="h"), "y": values})
    path = tmp_path / "long.csv"
    frame.to_csv(path, index=False)
    table = read_table(resolve_source(path), DataConfig())
    assert table.data.column("y").type == pa.float64()
    assert table.data.column("y")[rows - 1].as_py() == 2.5


def test_numeric_ids_become_strings(tmp_path) -> None:
    frame = pd.DataFrame(
        {"id": [7, 7, 8, 8], "ds": pd.date_range("2024-01-01", periods=2).tolist() * 2, "y": 1.0}
    )
    path = tmp_path / "ids.parquet"
    frame.to_parquet(path)
    table = read_table(resolve_source(path), DataConfig())
    assert table.data.column("id").combine_chunks().dictionary.to_pylist() == ["7", "8"]


def test_zoned_parquet_timestamps_keep_their_zone(tmp_path) -> None:
    stamps = pd.date_range("2024-01-01", periods=3, freq="h", tz="America/New_York")
    path = tmp_path / "zoned.parquet"
    pd.DataFrame({"ds": stamps, "y": [1.0, 2.0, 3.0]}).to_parquet(path)
    table = read_table(resolve_source(path), DataConfig())
    assert table.data.column("ds").type == pa.timestamp("ns", "America/New_York")


def test_tab_separated_files_are_read(tmp_path) -> None:
    path = tmp_path / "data.tsv"
    path.write_text("ds\ty\n2024-01-01\t1\n2024-01-02\t2\n")
    assert read_table(resolve_source(path), DataConfig()).data.num_rows == 2


def test_an_empty_id_is_refused_with_its_row(tmp_path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(
        pa.table(
            {"unique_id": ["a", None], "ds": pa.array([0, 1], pa.timestamp("s")), "y": [1.0, 2.0]}
        ),
        path,
    )
    with pytest.raises(DataError, match="column 'unique_id' is empty at row 2"):
        read_table(resolve_source(path), DataConfig())


def test_a_directory_without_data_files_is_an_error(tmp_path) -> None:
    (tmp_path / "_SUCCESS").write_text("")
    with pytest.raises(DataError, match=r"holds no \.csv or \.parquet files"):
        resolve_source(tmp_path)


def test_a_glob_matching_nothing_is_an_error(tmp_path) -> None:
    with pytest.raises(DataError, match="no file matches this pattern"):
        resolve_source(str(tmp_path / "*.parquet"))


def test_mixed_formats_in_one_source_are_refused(tmp_path) -> None:
    (tmp_path / "a.csv").write_text("ds,y\n2024-01-01,1\n")
    pd.DataFrame({"ds": [pd.Timestamp("2024-01-02")], "y": [2.0]}).to_parquet(
        tmp_path / "b.parquet"
    )
    with pytest.raises(DataError, match="mixes CSV and Parquet files"):
        resolve_source(tmp_path)


def test_rows_are_located_by_file_when_a_source_has_several(tmp_path) -> None:
    for part, day in enumerate(("01", "02")):
        (tmp_path / f"part-{part}.csv").write_text(
            f"ds,y\n2024-01-{day},1\n2024-01-0{part + 3},x\n"
        )
    with pytest.raises(DataError, match=r"part-0.csv: column 'y' must be numeric but row 2"):
        read_table(resolve_source(str(tmp_path / "part-*.csv")), DataConfig())


def test_a_path_that_exists_is_a_file_even_with_glob_characters(tmp_path) -> None:
    path = tmp_path / "a[1]*.csv"
    path.write_text("ds,y\n2024-01-01,1\n")
    assert resolve_source(path).paths == (path,)
    (tmp_path / "b1.csv").write_text("ds,y\n2024-01-01,1\n")
    assert resolve_source(tmp_path / "b[1].csv").paths == (tmp_path / "b1.csv",)


def test_hive_folder_keys_are_read_as_text_as_written(tmp_path) -> None:
    for key in ("7", "07", "x%2Fy"):
        folder = tmp_path / f"unique_id={key}"
        folder.mkdir()
        pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=2), "y": 1.0}).to_parquet(
            folder / "part.parquet"
        )
    table = read_table(resolve_source(tmp_path), DataConfig())
    ids = table.data.column("unique_id").combine_chunks().dictionary.to_pylist()
    assert sorted(ids) == ["07", "7", "x/y"]


def test_a_column_that_is_also_a_folder_key_is_refused(tmp_path) -> None:
    folder = tmp_path / "unique_id=a"
    folder.mkdir()
    pd.DataFrame({"unique_id": ["b"], "ds": [pd.Timestamp("2024-01-01")], "y": 1.0}).to_parquet(
        folder / "part.parquet"
    )
    with pytest.raises(DataError, match=r"column 'unique_id' is both a column of this file"):
        read_table(resolve_source(tmp_path), DataConfig())


def test_a_time_format_is_used_even_for_iso_looking_csv_text(tmp_path) -> None:
    path = tmp_path / "ydm.csv"
    path.write_text("ds,y\n2024-02-01,1\n2024-03-01,2\n")  # 2 and 3 January, day first
    table = read_table(resolve_source(path), DataConfig(time_format="%Y-%d-%m"))
    assert table.data.column("ds").to_pylist() == [
        pd.Timestamp("2024-01-02"),
        pd.Timestamp("2024-01-03"),
    ]


def test_a_bad_stamp_past_the_first_csv_block_is_named(tmp_path) -> None:
    # pyarrow infers timestamps from the first block (1 MiB) and fails on a later row;
    # the column is then read again as text, so that the row can be named.
    rows = 60_000
    stamps = pd.date_range("2000-01-01", periods=rows, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    stamps = stamps.tolist()
    stamps[-1] = "oops"
    path = tmp_path / "long.csv"
    pd.DataFrame({"ds": stamps, "y": 1.0}).to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"column 'ds' holds 'oops' at row {rows}, which"):
        read_table(resolve_source(path), DataConfig())


def test_csv_files_whose_stamps_infer_differently_are_read_as_one(tmp_path) -> None:
    (tmp_path / "a.csv").write_text("unique_id,ds,y\na,2024-01-01,1\na,2024-01-02,2\n")
    (tmp_path / "b.csv").write_text("unique_id,ds,y\nb,2024-01-01 00:00,1\nb,2024-01-02 00:00,2\n")
    table = read_table(resolve_source(tmp_path), DataConfig())
    assert table.data.column("ds").type == pa.timestamp("ns")
    assert table.data.num_rows == 4


def test_timestamps_beyond_nanoseconds_are_named_with_their_row(tmp_path) -> None:
    path = tmp_path / "far.parquet"
    seconds = pa.array([0, 10**10], pa.int64()).cast(pa.timestamp("s"))  # 2286
    pq.write_table(pa.table({"ds": seconds, "y": [1.0, 2.0]}), path)
    with pytest.raises(DataError, match=r"column 'ds' holds '2286-11-20 17:46:40' at row 2"):
        read_table(resolve_source(path), DataConfig())


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_wide_file_may_lack_a_series_that_others_have(tmp_path, fmt) -> None:
    early = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=3), "a": [1.0, 2.0, 3.0]})
    late = pd.DataFrame(
        {"ds": pd.date_range("2024-01-04", periods=2), "a": [4.0, 5.0], "b": [1.0, 2.0]}
    )
    for name, part in (("1", early), ("2", late)):
        path = tmp_path / f"part-{name}.{fmt}"
        part.to_csv(path, index=False) if fmt == "csv" else part.to_parquet(path)
    table = read_table(resolve_source(tmp_path), DataConfig(layout="wide"))
    assert table.data.column("b").to_pylist() == [None, None, None, 1.0, 2.0]
