"""Streaming forecasts: a batch of whole series at a time, written as one output that
matches the non-streaming path (read_panel + forecast + write_table) row for row."""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import rnncast.streaming
from rnncast import DataConfig, ModelConfig, Panel, TrainConfig, forecast, read_panel, train
from rnncast.errors import DataError
from rnncast.io import resolve_source
from rnncast.model_data import data_config
from rnncast.reads import plan_reads
from rnncast.sinks import write_table
from rnncast.streaming import forecast_dataset

HORIZON = 3
N_SERIES = 10


def hourly(n_series: int = N_SERIES, length: int = 48, step_hours: int = 1) -> pd.DataFrame:
    """Equal-length hourly series with their own level and start hour. Rows are listed
    in a shuffled series order, so first-seen order differs from sorted order."""
    rng = np.random.default_rng(0)
    frames = []
    for index in rng.permutation(n_series):
        steps = np.arange(length)
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": f"s{index:02d}",
                    "ds": pd.Timestamp("2024-01-01")
                    + pd.to_timedelta(int(index) % 5 + steps * step_hours, unit="h"),
                    "y": 10.0 + index + np.sin(2 * np.pi * steps / 24) + rng.normal(0, 0.1, length),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def model():
    return train(
        Panel.from_frame(hourly(4)),
        ModelConfig(horizon=HORIZON, cell="gru", hidden=8, layers=1),
        TrainConfig(max_epochs=1, device="cpu", seed=0),
        data=DataConfig(),
    )


def by_series(frame: pd.DataFrame, folder: Path) -> Path:
    """A hive dataset with one directory (one file) per series."""
    pq.write_to_dataset(pa.Table.from_pandas(frame, preserve_index=False), folder,
                        partition_cols=["unique_id"])  # fmt: skip
    return folder


def by_day(frame: pd.DataFrame, folder: Path) -> Path:
    """A hive dataset partitioned by day: every series is split across files."""
    frame = frame.assign(day=frame["ds"].dt.strftime("%m%d"))
    pq.write_to_dataset(pa.Table.from_pandas(frame, preserve_index=False), folder,
                        partition_cols=["day"])  # fmt: skip
    return folder


def whole_path(model, location: Path, out: Path, batch_size: int = 512) -> None:
    """What ``rnncast forecast`` wrote before streaming."""
    panel = read_panel(location, replace(data_config(model), horizon=None))
    write_table(forecast(model, panel, batch_size=batch_size).to_frame(), out)


def assert_same_output(left: Path, right: Path) -> None:
    if left.suffix == ".csv":
        assert left.read_bytes() == right.read_bytes()
    else:
        # Row groups differ (one per read); the rows, types and pandas metadata do not.
        expected, got = pq.read_table(left), pq.read_table(right)
        assert got.schema.equals(expected.schema, check_metadata=True)
        assert got.equals(expected)


def test_a_dataset_partitioned_by_series_is_read_file_group_by_file_group(model, tmp_path):
    data = by_series(hourly(), tmp_path / "data")
    reads = plan_reads(resolve_source(data), data_config(model), 4)
    assert [len(read.ids) for read in reads] == [4, 4, 2]
    assert [len(read.paths) for read in reads] == [4, 4, 2]
    assert not any(read.by_id for read in reads)


def test_series_split_across_files_are_read_whole_by_id(model, tmp_path):
    data = by_day(hourly(), tmp_path / "data")
    reads = plan_reads(resolve_source(data), data_config(model), 4)
    assert [len(read.ids) for read in reads] == [4, 4, 2]
    assert all(read.by_id and len(read.paths) == 3 for read in reads)  # 48 hours: 3 days


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize("layout", [by_series, by_day], ids=["by_series", "by_day"])
def test_several_reads_write_what_the_whole_path_writes(model, tmp_path, layout, suffix):
    data = layout(hourly(), tmp_path / "data")
    # With series of one length, forecast batches of 4 hold the same series either way,
    # so even the float32 arithmetic of the network is the same.
    whole_path(model, data, tmp_path / f"whole{suffix}", batch_size=4)
    summary = forecast_dataset(model, str(data), tmp_path / f"streamed{suffix}", series_per_read=4)
    assert_same_output(tmp_path / f"whole{suffix}", tmp_path / f"streamed{suffix}")
    assert (summary.series, summary.rows, summary.reads) == (N_SERIES, N_SERIES * HORIZON, 3)
    assert (summary.horizon, summary.skipped) == (HORIZON, 0)
    assert summary.written == str(tmp_path / f"streamed{suffix}")


def test_integer_ids_split_across_files_are_selected_in_their_own_type(model, tmp_path):
    frame = hourly()
    frame["unique_id"] = frame["unique_id"].str[1:].astype(int) * 7
    data = by_day(frame, tmp_path / "data")
    whole_path(model, data, tmp_path / "whole.csv", batch_size=3)
    summary = forecast_dataset(model, data, tmp_path / "streamed.csv", series_per_read=3)
    assert summary.reads == 4
    assert_same_output(tmp_path / "whole.csv", tmp_path / "streamed.csv")


def test_values_agree_with_the_whole_path_whatever_its_batches(model, tmp_path):
    data = by_day(hourly(), tmp_path / "data")
    whole_path(model, data, tmp_path / "whole.parquet")
    forecast_dataset(model, data, tmp_path / "streamed.parquet", series_per_read=3)
    expected = pd.read_parquet(tmp_path / "whole.parquet")
    got = pd.read_parquet(tmp_path / "streamed.parquet")
    pd.testing.assert_frame_equal(got, expected, rtol=1e-5)


def test_a_file_of_many_series_is_read_in_slices_that_equal_one_read(model, tmp_path):
    data = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pandas(hourly(), preserve_index=False), data, row_group_size=50)
    one = forecast_dataset(model, data, tmp_path / "one.csv", batch_size=3)
    several = forecast_dataset(model, data, tmp_path / "several.csv", series_per_read=3)
    assert (one.reads, several.reads) == (1, 4)
    assert_same_output(tmp_path / "one.csv", tmp_path / "several.csv")


def test_csv_input_is_one_read_like_read_panel(model, tmp_path):
    data = tmp_path / "data.csv"
    hourly().to_csv(data, index=False)
    whole_path(model, data, tmp_path / "whole.csv")
    summary = forecast_dataset(model, data, tmp_path / "streamed.csv", series_per_read=2)
    assert summary.reads == 1
    assert_same_output(tmp_path / "whole.csv", tmp_path / "streamed.csv")


def test_dash_streams_csv_to_stdout(model, tmp_path, capsys):
    data = by_series(hourly(), tmp_path / "data")
    whole_path(model, data, tmp_path / "whole.csv", batch_size=4)
    summary = forecast_dataset(model, data, "-", series_per_read=4)
    assert capsys.readouterr().out == (tmp_path / "whole.csv").read_text()
    assert summary.written == "stdout"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_failing_read_leaves_the_previous_output_as_it_was(model, tmp_path, monkeypatch, suffix):
    data = by_series(hourly(), tmp_path / "data")
    out = tmp_path / "out" / f"forecasts{suffix}"
    out.parent.mkdir()
    out.write_bytes(b"the previous forecasts")
    calls = []

    def fail_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise DataError("forecasts of 1 series are not finite ('s05'); nothing was written")
        return forecast(*args, **kwargs)

    monkeypatch.setattr(rnncast.streaming, "forecast", fail_second)
    with pytest.raises(DataError, match="'s05'"):
        forecast_dataset(model, data, out, series_per_read=4)
    assert len(calls) == 2
    assert out.read_bytes() == b"the previous forecasts"
    assert [path.name for path in out.parent.iterdir()] == [out.name]


def test_bad_rows_in_a_later_read_fail_as_in_the_whole_path(model, tmp_path):
    frame = hourly()
    last = frame[frame["unique_id"] == "s09"].iloc[[5]]
    data = by_series(pd.concat([frame, last], ignore_index=True), tmp_path / "data")
    out = tmp_path / "forecasts.csv"
    out.write_text("old\n")
    with pytest.raises(DataError) as whole:
        read_panel(data, replace(data_config(model), horizon=None))
    with pytest.raises(DataError) as streamed:
        forecast_dataset(model, data, out, series_per_read=4)
    assert "'s09'" in str(streamed.value) and "duplicated" in str(streamed.value)
    assert str(streamed.value).split(" (")[0] == str(whole.value).split(" (")[0]
    assert out.read_text() == "old\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data", "forecasts.csv"]


@pytest.mark.parametrize("layout", [by_series, "file"])
def test_a_missing_column_names_the_data_and_the_column(model, tmp_path, layout):
    frame = hourly().rename(columns={"y": "load"})
    if layout == "file":
        data = tmp_path / "data.parquet"
        frame.to_parquet(data, index=False)
    else:
        data = layout(frame, tmp_path / "data")
    with pytest.raises(DataError) as raised:
        forecast_dataset(model, data, tmp_path / "out.csv", series_per_read=3)
    assert str(raised.value).startswith(f"{data}: target column 'y' not found; columns are [")
    assert not (tmp_path / "out.csv").exists()


def test_a_missing_id_names_the_file_and_row_as_read_panel_does(model, tmp_path):
    frame = hourly()
    frame["unique_id"] = frame["unique_id"].astype(object)
    frame.loc[30, "unique_id"] = None
    data = by_day(frame, tmp_path / "data")
    with pytest.raises(DataError) as whole:
        read_panel(data, data_config(model))
    with pytest.raises(DataError) as streamed:
        forecast_dataset(model, data, tmp_path / "out.csv", series_per_read=3)
    assert "is empty at" in str(whole.value)
    assert str(streamed.value) == str(whole.value)


def test_series_without_values_are_skipped_with_a_warning(model, tmp_path, caplog):
    frame = hourly()
    # s00 to s03 make the first read and have no value at all; s07 has none either.
    frame.loc[frame["unique_id"].isin(["s00", "s01", "s02", "s03", "s07"]), "y"] = np.nan
    data = by_series(frame, tmp_path / "data")
    with caplog.at_level(logging.WARNING, logger="rnncast"):
        whole_path(model, data, tmp_path / "whole.csv", batch_size=4)
        caplog.clear()
        summary = forecast_dataset(model, data, tmp_path / "streamed.csv", series_per_read=4)
    skipped = [f"series 's0{i}' skipped: no values" for i in (0, 1, 2, 3, 7)]
    assert [record.getMessage() for record in caplog.records] == skipped
    assert (summary.series, summary.skipped, summary.reads) == (5, 5, 3)
    got = pd.read_csv(tmp_path / "streamed.csv")
    pd.testing.assert_frame_equal(got, pd.read_csv(tmp_path / "whole.csv"), rtol=1e-5)


def test_data_coarser_than_the_model_is_refused_as_in_the_whole_path(model, tmp_path):
    data = by_series(hourly(step_hours=2), tmp_path / "data")
    with pytest.raises(DataError) as whole:
        whole_path(model, data, tmp_path / "whole.csv")
    with pytest.raises(DataError) as streamed:
        forecast_dataset(model, data, tmp_path / "streamed.csv", series_per_read=4)
    assert str(streamed.value) == str(whole.value)
    assert "trained on h data; this data is every 2h" in str(streamed.value)
    assert not (tmp_path / "streamed.csv").exists()


def test_a_read_with_gaps_is_laid_on_the_grid_of_the_whole_data(model, tmp_path):
    frame = hourly()
    # Every other hour of s08 and s09 (the last read) is missing: alone they step by
    # 2 h, but with the rest the data is hourly and their gaps are filled.
    gaps = frame["unique_id"].isin(["s08", "s09"]) & (frame["ds"].dt.hour % 2 == 1)
    data = by_series(frame[~gaps], tmp_path / "data")
    whole_path(model, data, tmp_path / "whole.csv", batch_size=4)
    summary = forecast_dataset(model, data, tmp_path / "streamed.csv", series_per_read=4)
    assert summary.reads == 3
    # Their lengths differ from the others', so the whole path batches the network's
    # work differently: values agree to float32 rounding, ids and times exactly.
    got = pd.read_csv(tmp_path / "streamed.csv")
    pd.testing.assert_frame_equal(got, pd.read_csv(tmp_path / "whole.csv"), rtol=1e-5)
    assert got["ds"].str.endswith(":00:00").all() and len(got) == N_SERIES * HORIZON


def test_forecasts_of_a_read_are_put_in_the_order_of_the_plan():
    from rnncast.forecasting import Forecasts
    from rnncast.frequency import parse_frequency
    from rnncast.streaming import _in_order

    result = Forecasts(
        ids=np.array(["b", "a", "c"], dtype=object),
        times=np.arange(6).reshape(3, 2),
        quantiles=(0.5,),
        values=np.arange(6.0).reshape(3, 2, 1),
        columns=(),
        freq=parse_frequency("h"),
        tz=None,
    )
    ordered = _in_order(result, pa.array(["a", "b", "c"]))
    assert ordered.ids.tolist() == ["a", "b", "c"]
    assert ordered.times.tolist() == [[2, 3], [0, 1], [4, 5]]
    assert ordered.values[:, :, 0].tolist() == [[2.0, 3.0], [0.0, 1.0], [4.0, 5.0]]


@pytest.mark.parametrize("ids", ["text", "integer", "categorical"])
def test_one_file_is_planned_as_the_dataset_path_plans_it(model, tmp_path, ids):
    """One file is scanned without pyarrow's dataset module; a folder holding the same
    file goes through it: both must plan the same reads, in the same order."""
    frame = hourly()
    if ids == "integer":
        frame["unique_id"] = frame["unique_id"].str[1:].astype(int) * 7
    elif ids == "categorical":
        # Levels in another order than the rows give them, one of them unused.
        levels = [*sorted(frame["unique_id"].unique(), reverse=True), "unused"]
        frame["unique_id"] = pd.Categorical(frame["unique_id"], categories=levels)
    folder = tmp_path / "folder"
    folder.mkdir()
    frame.to_parquet(folder / "data.parquet", index=False, row_group_size=100)
    alone = resolve_source(folder / "data.parquet")
    in_folder = resolve_source(folder)
    assert alone.root is None and in_folder.root is not None
    config = data_config(model)
    direct, through_dataset = plan_reads(alone, config, 4), plan_reads(in_folder, config, 4)
    assert [read.ids.to_pylist() for read in direct] == [
        read.ids.to_pylist() for read in through_dataset
    ]
    assert [read.by_id for read in direct] == [read.by_id for read in through_dataset]
    assert sum(len(read.ids) for read in direct) == N_SERIES


def test_an_unreadable_single_parquet_file_is_a_data_error(model, tmp_path):
    path = tmp_path / "broken.parquet"
    hourly().to_parquet(path, index=False)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"broken\.parquet"):
        plan_reads(resolve_source(path), data_config(model), 4)


def test_a_forecast_of_one_file_off_a_terminal_loads_no_dataset_module_or_rich(model, tmp_path):
    """Cron pays every import on every run: one Parquet file needs neither pyarrow's
    dataset module nor rich, whose console only draws colours on a terminal."""
    from rnncast.artifact import save_model

    save_model(model, tmp_path / "model")
    hourly(4).to_parquet(tmp_path / "data.parquet", index=False)
    code = (
        "import sys\n"
        "from rnncast.cli import main\n"
        f"sys.argv = ['rnncast', 'forecast', {str(tmp_path / 'data.parquet')!r}, '--model',"
        f" {str(tmp_path / 'model')!r}, '--out', {str(tmp_path / 'f.parquet')!r}]\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "heavy = ('pyarrow.dataset', 'rich', 'rich.console')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "wrote 3 steps of 4 series" in done.stderr
    assert pq.read_table(tmp_path / "f.parquet").num_rows == 4 * HORIZON
