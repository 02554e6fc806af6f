"""sample_data/ is made by scripts/make_sample_data.py, never edited by hand."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT, SAMPLE_DATA


def test_generator_reproduces_the_committed_csv_files(tmp_path) -> None:
    subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "make_sample_data.py"),
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    for name in ("load_hourly.csv", "load_hourly_next_day.csv", "sales_daily_wide.csv"):
        assert (tmp_path / name).read_bytes() == (SAMPLE_DATA / name).read_bytes(), name


def test_parquet_and_csv_samples_hold_the_same_series() -> None:
    from rnncast.config import DataConfig
    from rnncast.panel import read_panel

    for stem, config in (
        ("load_hourly", DataConfig(covariates="all")),
        ("load_hourly_next_day", DataConfig(covariates="all")),
        ("sales_daily_wide", DataConfig(layout="wide")),
    ):
        from_csv = read_panel(SAMPLE_DATA / f"{stem}.csv", config)
        from_parquet = read_panel(SAMPLE_DATA / f"{stem}.parquet", config)
        assert from_csv.ids.tolist() == from_parquet.ids.tolist()
        assert (from_csv.values == from_parquet.values).all()
        assert (from_csv.start_times == from_parquet.start_times).all()


def test_the_next_day_file_is_the_history_then_a_day_of_future_rows() -> None:
    """load_hourly_next_day holds load_hourly and, per meter, the next 24 hours with
    the temperature forecast filled and the load empty (issue 14)."""
    import pandas as pd

    history = pd.read_parquet(SAMPLE_DATA / "load_hourly.parquet")
    both = pd.read_parquet(SAMPLE_DATA / "load_hourly_next_day.parquet")
    pd.testing.assert_frame_equal(both[both["ds"] <= history["ds"].max()].reset_index(drop=True),
                                  history)  # fmt: skip
    future = both[both["ds"] > history["ds"].max()]
    assert future.groupby("unique_id").size().to_dict() == dict.fromkeys(
        sorted(history["unique_id"].unique()), 24
    )
    assert future["y"].isna().all() and future["temperature_forecast"].notna().all()
