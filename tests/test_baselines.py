"""Baselines: hand-written forecasts on a ragged panel, their fallbacks, and M4 Hourly.

The panel: series a = [1, 2, 3, 4, 5, 6, 7] at buffer position 0 and series
b = [10, 20, 40] at position 7, each cut at two origins (K = 2).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnncast.baselines import baseline_forecasts, drift, naive, seasonal_naive
from rnncast.metrics import score, seasonal_scales

VALUES = np.array([1, 2, 3, 4, 5, 6, 7, 10, 20, 40], dtype=np.float32)
BEGINS = np.array([0, 7], dtype=np.int64)


def test_naive_repeats_the_last_value() -> None:
    cuts = np.array([[7, 4], [3, 1]])
    expected = [
        [[7, 7, 7], [4, 4, 4]],
        [[40, 40, 40], [10, 10, 10]],
    ]
    forecast = naive(VALUES, BEGINS, cuts, 3)
    np.testing.assert_array_equal(forecast, expected)
    assert forecast.dtype == np.float64
    assert forecast.shape == (2, 2, 3)


def test_seasonal_naive_repeats_the_last_season() -> None:
    cuts = np.array([[7, 4], [3, 2]])
    # m = 3, step h reads position cut - 3 + (h - 1) mod 3:
    # a cut 7 -> positions 4, 5, 6, 4 -> 5, 6, 7, 5; a cut 4 -> 1, 2, 3, 1 -> 2, 3, 4, 2;
    # b cut 3 -> 0, 1, 2, 0 -> 10, 20, 40, 10; b cut 2 < m -> naive: 20 four times.
    expected = [
        [[5, 6, 7, 5], [2, 3, 4, 2]],
        [[10, 20, 40, 10], [20, 20, 20, 20]],
    ]
    np.testing.assert_array_equal(seasonal_naive(VALUES, BEGINS, cuts, 4, season=3), expected)


def test_seasonal_naive_with_season_one_is_naive() -> None:
    cuts = np.array([[7, 1], [3, 2]])
    np.testing.assert_array_equal(
        seasonal_naive(VALUES, BEGINS, cuts, 5, season=1), naive(VALUES, BEGINS, cuts, 5)
    )


def test_drift_extends_the_line_through_first_and_last_value() -> None:
    cuts = np.array([[7, 4], [3, 1]])
    # a cut 7: 7 + h (7 - 1) / 6 -> 8, 9; a cut 4: 4 + h (4 - 1) / 3 -> 5, 6;
    # b cut 3: 40 + h (40 - 10) / 2 -> 55, 70; b cut 1: no slope, naive -> 10, 10.
    expected = [
        [[8, 9], [5, 6]],
        [[55, 70], [10, 10]],
    ]
    np.testing.assert_array_equal(drift(VALUES, BEGINS, cuts, 2), expected)


def test_baseline_forecasts_in_report_order() -> None:
    cuts = np.array([[7, 4], [3, 2]])
    forecasts = baseline_forecasts(VALUES, BEGINS, cuts, 4, season=3)
    assert list(forecasts) == ["naive", "seasonal_naive", "drift"]
    np.testing.assert_array_equal(forecasts["naive"], naive(VALUES, BEGINS, cuts, 4))
    np.testing.assert_array_equal(
        forecasts["seasonal_naive"], seasonal_naive(VALUES, BEGINS, cuts, 4, 3)
    )
    np.testing.assert_array_equal(forecasts["drift"], drift(VALUES, BEGINS, cuts, 4))


def test_baselines_refuse_an_empty_horizon_or_season() -> None:
    cuts = np.array([[7], [3]])
    with pytest.raises(ValueError, match="horizon must be >= 1, got 0"):
        naive(VALUES, BEGINS, cuts, 0)
    with pytest.raises(ValueError, match="season must be >= 1, got 0"):
        seasonal_naive(VALUES, BEGINS, cuts, 2, season=0)


# --- M4 Hourly: the published scores of the benchmarks --------------------------------

M4_HORIZON = 48
M4_SEASON = 24


def read_m4(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """ids (n,) and y (n,) float64 of a long M4 file, sorted by unique_id then ds."""
    import pyarrow.parquet as pq

    table = pq.read_table(path).sort_by([("unique_id", "ascending"), ("ds", "ascending")])
    ids = np.asarray(table.column("unique_id").to_pylist(), dtype=object)
    return ids, table.column("y").to_numpy()


@pytest.mark.slow
def test_m4_hourly_benchmarks_match_the_published_scores(shared_data: Path) -> None:
    train_ids, values = read_m4(shared_data / "m4_hourly_train.parquet")
    test_ids, test_values = read_m4(shared_data / "m4_hourly_test.parquet")
    ids, lengths = np.unique(train_ids, return_counts=True)
    assert len(ids) == 414
    np.testing.assert_array_equal(np.unique(test_ids), ids)
    begins = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    cuts = lengths[:, None]  # (S, 1): one origin, at the end of the training part
    actual = test_values.reshape(len(ids), 1, M4_HORIZON)  # (S, K, H)

    scale = seasonal_scales(values, begins, cuts, M4_SEASON)
    forecasts = baseline_forecasts(values, begins, cuts, M4_HORIZON, M4_SEASON)
    seasonal = score(actual, forecasts["seasonal_naive"], scale)
    naive1 = score(actual, forecasts["naive"], scale)

    # Makridakis, Spiliotis & Assimakopoulos (2020), M4 Hourly: sNaive and Naive1.
    assert round(seasonal.summary["smape"]["mean"], 3) == 13.912
    assert round(seasonal.summary["mase"]["mean"], 3) == 1.193
    assert round(naive1.summary["smape"]["mean"], 3) == 43.003
    assert round(naive1.summary["mase"]["mean"], 3) == 11.608
    assert seasonal.counts == {
        "series": 414,
        "points": 414 * 48,
        "missing": 0,
        "mape_skipped_zero": 0,
        "mase_undefined_series": 0,
    }

    for name in ["H1", "H413"]:
        index = int(np.flatnonzero(ids == name)[0])
        insample = values[begins[index] : begins[index] + lengths[index]]
        outsample = actual[index, 0]
        # The M4 benchmark code: the last season repeated, sMAPE and MASE per series.
        forecast = np.tile(insample[-M4_SEASON:], 2)
        smape = np.mean(200 * np.abs(outsample - forecast) / (np.abs(outsample) + np.abs(forecast)))
        mase = np.mean(np.abs(outsample - forecast)) / np.mean(
            np.abs(insample[M4_SEASON:] - insample[:-M4_SEASON])
        )
        np.testing.assert_array_equal(forecasts["seasonal_naive"][index, 0], forecast)
        assert seasonal.per_series["smape"][index] == pytest.approx(smape, rel=1e-12)
        assert seasonal.per_series["mase"][index] == pytest.approx(mase, rel=1e-9)
