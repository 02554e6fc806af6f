"""Rows written in batches make the same file as all rows written at once (issue 5)."""

from __future__ import annotations

import pandas as pd
import pytest

from rnncast.sinks import table_sink, write_table


@pytest.mark.parametrize(
    "hours", [[0, 0, 0], [0, 13, 0], [13, 0, 0], [0, 0, 13]], ids=lambda h: "-".join(map(str, h))
)
def test_csv_dates_alone_only_when_every_batch_is_at_midnight(tmp_path, hours):
    """pandas writes a column of midnights as dates; the batches must agree with it."""
    frames = [
        pd.DataFrame(
            {
                "unique_id": [f"b{number}"] * 2,
                "ds": pd.to_datetime(["2024-01-01", "2024-01-02"]) + pd.Timedelta(hours=hour),
                "y_hat": [1.5, 1 / 3],
            }
        )
        for number, hour in enumerate(hours)
    ]
    with table_sink(tmp_path / "out.csv", "csv") as write:
        for frame in frames:
            write(frame)
    expected = pd.concat(frames, ignore_index=True).to_csv(index=False)
    assert (tmp_path / "out.csv").read_text() == expected
    assert ("00:00:00" in expected) == any(hours)


def test_parquet_in_batches_reads_back_as_one_table(tmp_path) -> None:
    frames = [
        pd.DataFrame({"unique_id": [f"s{k}"] * 3, "ds": pd.date_range("2024-01-01", periods=3,
                      freq="h"), "y_hat": [0.5, 1.5, 2.5]})
        for k in range(3)
    ]  # fmt: skip
    with table_sink(tmp_path / "batches.parquet", "parquet") as write:
        for frame in frames:
            write(frame)
    write_table(pd.concat(frames, ignore_index=True), tmp_path / "once.parquet")
    batches = pd.read_parquet(tmp_path / "batches.parquet")
    pd.testing.assert_frame_equal(batches, pd.read_parquet(tmp_path / "once.parquet"))
    assert len(batches) == 9


def test_a_failing_batch_leaves_no_file(tmp_path) -> None:
    frame = pd.DataFrame({"unique_id": ["a"], "ds": pd.to_datetime(["2024-01-01"]), "y_hat": [1.0]})
    with pytest.raises(RuntimeError), table_sink(tmp_path / "f.csv", "csv") as write:
        write(frame)
        raise RuntimeError("the second read failed")
    assert list(tmp_path.iterdir()) == []
