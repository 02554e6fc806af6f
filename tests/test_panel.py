from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncast.config import DataConfig
from rnncast.describing_run import describe_panel
from rnncast.errors import DataError
from rnncast.frequency import NS_PER_HOUR, Frequency
from rnncast.panel import Panel, read_panel
from tests.conftest import SAMPLE_DATA


def hourly(series_id: str, start: str, values: list[float], drop: tuple[int, ...] = ()):
    frame = pd.DataFrame(
        {
            "unique_id": series_id,
            "ds": pd.date_range(start, periods=len(values), freq="h"),
            "y": values,
        }
    )
    return frame.drop(index=list(drop))


def two_series() -> pd.DataFrame:
    return pd.concat(
        [
            hourly("a", "2024-01-01", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            hourly("b", "2024-01-02", [10.0, 20.0, 30.0, 40.0]),
        ],
        ignore_index=True,
    )


def test_panel_holds_series_in_one_contiguous_float32_buffer() -> None:
    panel = Panel.from_frame(two_series())
    assert panel.ids.tolist() == ["a", "b"]
    assert panel.values.dtype == np.float32
    assert panel.values.flags.c_contiguous
    assert panel.begins.tolist() == [0, 6]
    assert panel.ends.tolist() == [6, 10]
    assert panel.series(1).tolist() == [10.0, 20.0, 30.0, 40.0]
    assert panel.freq == Frequency(step_ns=NS_PER_HOUR)
    assert not panel.values.flags.writeable


def test_unsorted_rows_are_sorted_and_reported() -> None:
    frame = two_series().sample(frac=1.0, random_state=3)
    panel = Panel.from_frame(frame)
    assert panel.series(0).tolist() == [1, 2, 3, 4, 5, 6]
    assert panel.ids.tolist() == sorted(
        frame["unique_id"].unique(), key=frame["unique_id"].tolist().index
    )
    assert panel.ingest.was_sorted is False


@pytest.mark.parametrize(
    ("fill", "expected"),
    [
        ("interpolate", [1.0, 2.0, 3.0, 4.0, 5.0]),
        ("ffill", [1.0, 2.0, 2.0, 2.0, 5.0]),
        ("zero", [1.0, 2.0, 0.0, 0.0, 5.0]),
    ],
)
def test_gaps_and_nans_are_filled_by_policy(fill: str, expected: list[float]) -> None:
    frame = hourly("a", "2024-01-01", [1.0, 2.0, np.nan, 4.0, 5.0], drop=(3,))
    panel = Panel.from_frame(frame, DataConfig(fill=fill))
    assert panel.series(0).tolist() == expected
    assert panel.ingest.missing_timestamps == 1
    assert panel.ingest.missing_values == 1


def test_fill_error_names_the_series_and_first_missing_step() -> None:
    frame = hourly("meter", "2024-01-01", [1.0, 2.0, 3.0, 4.0], drop=(2,))
    with pytest.raises(
        DataError,
        match=r"series 'meter' is missing 1 step\(s\), the first at "
        r"2024-01-01 02:00:00",
    ):
        Panel.from_frame(frame, DataConfig(fill="error"))


def test_leading_and_trailing_missing_values_are_trimmed() -> None:
    frame = hourly("a", "2024-01-01", [np.nan, np.nan, 1.0, 2.0, np.nan])
    panel = Panel.from_frame(frame)
    assert panel.series(0).tolist() == [1.0, 2.0]
    assert panel.start_times[0] == pd.Timestamp("2024-01-01 02:00").value
    assert panel.ingest.trimmed_rows == 3


def test_a_series_without_values_is_skipped_with_a_warning() -> None:
    frame = pd.concat(
        [hourly("a", "2024-01-01", [1.0, 2.0]), hourly("b", "2024-01-01", [np.nan] * 2)]
    )
    panel = Panel.from_frame(frame)
    assert panel.ids.tolist() == ["a"]
    assert panel.ingest.warnings == ("series 'b' skipped: no values",)


@pytest.mark.parametrize(("policy", "expected"), [("mean", 2.0), ("sum", 4.0), ("last", 3.0)])
def test_duplicates_are_combined_by_policy(policy: str, expected: float) -> None:
    frame = hourly("a", "2024-01-01", [1.0, 5.0, 6.0])
    frame = pd.concat([frame.iloc[[0]], frame.iloc[[0]].assign(y=3.0), frame.iloc[1:]])
    panel = Panel.from_frame(frame, DataConfig(duplicates=policy))
    assert panel.series(0).tolist() == [expected, 5.0, 6.0]
    assert panel.ingest.duplicates_combined == 1


def test_duplicates_are_an_error_by_default_naming_both_rows() -> None:
    frame = pd.concat([hourly("a", "2024-01-01", [1.0, 2.0]), hourly("a", "2024-01-01", [3.0])])
    with pytest.raises(
        DataError,
        match=r"1 duplicated .* series 'a' at 2024-01-01 00:00:00 "
        r"\(row 1 and row 3\)",
    ):
        Panel.from_frame(frame)


def test_short_series_are_skipped_for_the_horizon_and_named() -> None:
    panel = Panel.from_frame(two_series(), DataConfig(horizon=4))
    assert panel.ids.tolist() == ["a"]
    assert panel.ingest.skipped == (("b", "4 steps; --horizon 4 needs at least 5"),)


def test_no_series_long_enough_is_an_error_naming_the_longest() -> None:
    with pytest.raises(DataError, match="longest has 6 steps and each needs at least 25"):
        Panel.from_frame(two_series(), DataConfig(horizon=24))


def test_infinite_values_are_refused_with_series_and_time() -> None:
    frame = hourly("a", "2024-01-01", [1.0, np.inf, 3.0])
    with pytest.raises(DataError, match=r"holds inf for series 'a' at 2024-01-01 01:00:00"):
        Panel.from_frame(frame)


def test_values_beyond_float32_are_refused() -> None:
    frame = hourly("a", "2024-01-01", [1.0, 1e300, 3.0])
    with pytest.raises(DataError, match="beyond"):
        Panel.from_frame(frame)


def test_a_stray_stamp_among_regular_ones_is_named() -> None:
    frame = hourly("a", "2024-01-01", [1.0] * 48)
    frame.loc[5, "ds"] += pd.Timedelta(seconds=1)
    stray = r"2024-01-01 05:00:01 \(row 6\), which is off its hourly \(h\) grid"
    with pytest.raises(DataError, match=stray):
        Panel.from_frame(frame)
    with pytest.raises(DataError, match=stray):
        Panel.from_frame(frame, DataConfig(freq="h"))


def test_irregular_timestamps_need_an_explicit_frequency() -> None:
    seconds = np.cumsum(np.random.default_rng(0).integers(3000, 4000, 40))
    frame = pd.DataFrame({"ds": pd.Timestamp("2024-01-01") + pd.to_timedelta(seconds, "s")})
    frame["y"] = 1.0
    with pytest.raises(DataError, match=r"not on a regular grid: the largest step .*Pass --freq"):
        Panel.from_frame(frame)


def test_a_frequency_far_finer_than_the_data_is_refused() -> None:
    frame = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=3, freq="D"), "y": 1.0})
    with pytest.raises(DataError, match=r"--freq 1min would make 2,881 steps out of 3 rows"):
        Panel.from_frame(frame, DataConfig(freq="1min"))


def test_time_zones_are_kept_and_times_are_utc_instants() -> None:
    frame = hourly("a", "2024-03-30 22:00", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    frame["ds"] = frame["ds"].dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin")
    panel = Panel.from_frame(frame)
    assert panel.tz == "Europe/Berlin"
    assert panel.freq == Frequency(step_ns=NS_PER_HOUR)  # across the DST switch
    assert panel.to_frame()["ds"].tolist() == frame["ds"].tolist()


def test_one_series_without_an_id_column_is_named_after_its_target() -> None:
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=5), "sales": range(5)})
    panel = Panel.from_frame(frame)
    assert panel.ids.tolist() == ["sales"]
    assert panel.freq.alias == "D"


def test_wide_layout_makes_one_series_per_column_and_trims_ragged_ends() -> None:
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=4, freq="MS"),
            "north": [1.0, 2.0, 3.0, 4.0],
            "south": [np.nan, 5.0, 6.0, np.nan],
        }
    )
    panel = Panel.from_frame(frame, DataConfig(layout="wide"))
    assert panel.ids.tolist() == ["north", "south"]
    assert panel.series(1).tolist() == [5.0, 6.0]
    assert panel.freq == Frequency(months=1)
    assert panel.start_times[1] == pd.Timestamp("2024-02-01").value


def test_covariates_are_aligned_and_filled_with_the_target() -> None:
    frame = hourly("a", "2024-01-01", [1.0, 2.0, 3.0, 4.0], drop=(1,))
    frame["temp"] = [10.0, np.nan, 40.0]
    panel = Panel.from_frame(frame, DataConfig(covariates=("temp",)))
    assert panel.covariate_names == ("temp",)
    assert panel.series_covariates(0)[:, 0].tolist() == [10.0, 20.0, 30.0, 40.0]


def test_split_tail_returns_views_that_share_the_buffer() -> None:
    panel = Panel.from_frame(two_series())
    head, tail = panel.split_tail(2)
    assert head.lengths.tolist() == [4, 2]
    assert tail.series(0).tolist() == [5.0, 6.0]
    assert tail.start_times[1] == pd.Timestamp("2024-01-02 02:00").value
    assert np.shares_memory(head.values, panel.values)
    assert np.shares_memory(tail.values, panel.values)
    with pytest.raises(ValueError, match="cannot hold out 4 steps"):
        panel.split_tail(4)


def test_take_selects_series_without_copying() -> None:
    panel = Panel.from_frame(two_series())
    picked = panel.take([1])
    assert picked.ids.tolist() == ["b"]
    assert picked.series(0).tolist() == [10.0, 20.0, 30.0, 40.0]
    assert picked.values is panel.values


def test_invariants_are_checked_when_a_panel_is_made() -> None:
    good = Panel.from_frame(two_series())
    with pytest.raises(ValueError, match="at least one step"):
        replace(good, ends=good.begins)
    with pytest.raises(ValueError, match="unique"):
        replace(good, ids=np.array(["a", "a"], dtype=object))


def test_read_panel_on_the_sample_file() -> None:
    panel = read_panel(SAMPLE_DATA / "load_hourly.csv", DataConfig(covariates=("temperature",)))
    assert panel.n_series == 5
    assert panel.lengths.tolist() == [2184] * 5
    assert panel.ingest.missing_timestamps == 8
    assert panel.ingest.missing_values == 4
    assert np.isfinite(panel.values).all()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    lengths=st.lists(st.integers(2, 40), min_size=1, max_size=5),
    drop_fraction=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**16),
)
def test_round_trip_keeps_every_observed_value(lengths, drop_fraction, seed) -> None:
    """Panel -> frame keeps observed values exactly and fills between their neighbours."""
    rng = np.random.default_rng(seed)
    frames = []
    for number, length in enumerate(lengths):
        values = rng.normal(100, 10, length).astype(np.float32).astype(float)
        inner = np.arange(1, length - 1)
        dropped = inner[rng.random(inner.shape[0]) < drop_fraction]
        frames.append(hourly(f"s{number}", "2024-01-01", list(values), drop=tuple(dropped)))
    frame = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=seed)
    panel = Panel.from_frame(frame)
    back = panel.to_frame()
    sizes = back.groupby("unique_id", observed=True).size()
    assert {str(k): v for k, v in sizes.items()} == {f"s{n}": k for n, k in enumerate(lengths)}
    merged = frame.merge(back, on=["unique_id", "ds"], suffixes=("", "_back"))
    assert len(merged) == len(frame)
    np.testing.assert_array_equal(merged["y"].to_numpy(np.float32), merged["y_back"].to_numpy())
    low = back.groupby("unique_id", observed=True)["y"].transform("min")
    assert (back["y"] >= low).all()


def test_m4_hourly_reads_as_published(shared_data) -> None:
    panel = read_panel(shared_data / "m4_hourly_train.parquet")
    assert panel.n_series == 414
    assert sorted(set(panel.lengths.tolist())) == [700, 960]
    assert int((panel.lengths == 700).sum()) == 169
    assert panel.freq.alias == "h"
    assert panel.ingest.missing_timestamps == 0
    h1 = panel.series(panel.index("H1"))
    raw = pd.read_parquet(
        shared_data / "m4_hourly_train.parquet", filters=[("unique_id", "==", "H1")]
    )
    np.testing.assert_array_equal(h1, raw["y"].to_numpy(np.float32))


def test_etth1_reads_as_one_hourly_series_with_covariates(shared_data) -> None:
    panel = read_panel(shared_data / "ETTh1.csv", DataConfig(target_col="OT", covariates="all"))
    assert (panel.n_series, panel.n_steps) == (1, 17_420)
    assert panel.ids.tolist() == ["OT"]
    assert panel.covariate_names == ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL")


def test_daily_stamps_at_local_midnight_stay_daily_across_daylight_saving() -> None:
    stamps = pd.date_range("2024-03-28", periods=6, freq="D", tz="Europe/Berlin")
    frame = pd.DataFrame({"ds": stamps, "y": np.arange(6.0)})
    panel = Panel.from_frame(frame)
    assert panel.freq.alias == "D"
    assert panel.to_frame()["ds"].tolist() == stamps.tolist()
    assert describe_panel(panel)["end"] == "2024-04-02 00:00:00+02:00"


def test_hourly_zoned_stamps_give_local_wall_times_for_calendar_features() -> None:
    stamps = pd.date_range("2024-03-31 00:00", periods=4, freq="h", tz="Europe/Berlin")
    panel = Panel.from_frame(pd.DataFrame({"ds": stamps, "y": 1.0}))
    hours = pd.DatetimeIndex(panel.wall_times()).hour.tolist()
    assert hours == [0, 1, 3, 4]  # 02:00 does not exist that night


def test_future_times_follow_each_series_end() -> None:
    panel = Panel.from_frame(two_series())
    future = panel.future_times(2)
    assert future.shape == (2, 2)
    assert future[0].tolist() == [
        pd.Timestamp("2024-01-01 06:00").value,
        pd.Timestamp("2024-01-01 07:00").value,
    ]


def late_series() -> pd.DataFrame:
    return pd.concat(
        [
            hourly("early", "2024-01-01", [1.0, 2.0, 3.0, 4.0]),
            hourly("late", "2262-04-11 20:00", [1.0, 2.0, 3.0, 4.0]),
        ]
    )


def test_steps_past_2262_are_refused_naming_the_series() -> None:
    # Before, the forecast stamps of "late" wrapped around to 1677-09-21.
    message = (
        "<DataFrame>: series 'late' ends at 2262-04-11 23:00:00, so its next 2 steps "
        r"\(h\) would fall past 2262-04-11 23:47:16, the last time rnncast can represent; "
        "only 0 steps fit. Leave the series out, or end it earlier"
    )
    with pytest.raises(DataError, match=message):
        Panel.from_frame(late_series(), DataConfig(horizon=2))
    panel = Panel.from_frame(late_series())
    with pytest.raises(DataError, match=message):
        panel.future_times(2)
    assert panel.take([0]).future_times(2).shape == (1, 2)


def test_a_series_mostly_filled_is_warned_about_and_a_few_gaps_are_not() -> None:
    sparse = hourly(
        "sparse", "2024-01-01", [float(v) for v in range(30)], drop=tuple(range(1, 30, 2))
    )
    gappy = hourly("gappy", "2024-01-01", [float(v) for v in range(30)], drop=(5, 6, 20))
    panel = Panel.from_frame(pd.concat([gappy, sparse]))
    assert panel.ingest.warnings == (
        "series 'sparse' is mostly filled, not observed: 14 of its 29 hourly steps have no "
        "value and were filled by --fill interpolate (its values are usually 2 steps "
        "apart); check that it belongs with the others, or pass --fill error to refuse gaps",
    )
    with pytest.raises(DataError, match="series 'gappy' is missing 3 step"):
        Panel.from_frame(pd.concat([gappy, sparse]), DataConfig(fill="error"))


def test_only_five_mostly_filled_series_are_named() -> None:
    frames = [hourly("dense", "2024-01-01", [1.0] * 10)] + [
        hourly(f"s{i}", "2024-01-01", [1.0] * 10, drop=(1, 2, 3, 4, 5, 6, 7, 8)) for i in range(7)
    ]
    warnings = Panel.from_frame(pd.concat(frames)).ingest.warnings
    assert len(warnings) == 6
    assert warnings[-1] == "2 more series are mostly filled, not observed"
