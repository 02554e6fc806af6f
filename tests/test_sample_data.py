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
    for name in ("load_hourly.csv", "sales_daily_wide.csv"):
        assert (tmp_path / name).read_bytes() == (SAMPLE_DATA / name).read_bytes(), name


def test_parquet_and_csv_samples_hold_the_same_series() -> None:
    from rnncast.config import DataConfig
    from rnncast.panel import read_panel

    for stem, config in (
        ("load_hourly", DataConfig(covariates="all")),
        ("sales_daily_wide", DataConfig(layout="wide")),
    ):
        from_csv = read_panel(SAMPLE_DATA / f"{stem}.csv", config)
        from_parquet = read_panel(SAMPLE_DATA / f"{stem}.parquet", config)
        assert from_csv.ids.tolist() == from_parquet.ids.tolist()
        assert (from_csv.values == from_parquet.values).all()
        assert (from_csv.start_times == from_parquet.start_times).all()
