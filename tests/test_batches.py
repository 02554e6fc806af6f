"""Batches: rows laid out per step, forking targets and future inputs as views, chunks, windows.

Every expectation is computed independently of ``rnncast.batches``: from the scaled
values of ``scale_values`` and the calendar features of the right timestamps.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncast.batches import (
    SeriesTensors,
    gather_block,
    gather_windows,
    iter_chunks,
    lay_out,
    n_future_features,
    season_pattern,
)
from rnncast.config import DataConfig
from rnncast.panel import Panel
from rnncast.scaling import fit_scaler, scale_values
from rnncast.time_axis import calendar_features, shift_times

PROPERTY_SETTINGS = settings(max_examples=50, deadline=None, derandomize=True, database=None)
HORIZON = 5
SEASON = 3  # shorter than the horizon, so future steps wrap around the season
CPU = torch.device("cpu")
# (id, first timestamp, length): different lengths, starts across a day, month and year end.
SERIES = (("a", "2024-01-01 21:00", 9), ("b", "2024-02-28 20:00", 6), ("c", "2024-12-31 23:00", 7))


def make_panel() -> Panel:
    rng = np.random.default_rng(7)
    parts = [
        pd.DataFrame(
            {
                "unique_id": name,
                "ds": pd.date_range(start, periods=length, freq="h"),
                "y": rng.normal(10.0 * (index + 1), 3.0, length),
                "temp": rng.normal(0.0, 5.0, length),
            }
        )
        for index, (name, start, length) in enumerate(SERIES)
    ]
    return Panel.from_frame(pd.concat(parts, ignore_index=True), DataConfig(covariates=("temp",)))


@pytest.fixture
def panel() -> Panel:
    return make_panel()


@pytest.fixture
def tensors(panel: Panel) -> SeriesTensors:
    return lay_out(panel, fit_scaler(panel, "standard"), HORIZON, SEASON, CPU)


def scaled_parts(panel: Panel) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each series' scaled target (T,) and scaled covariates (T, C)."""
    target, covariates = scale_values(panel, fit_scaler(panel, "standard"))
    cuts = np.cumsum(panel.lengths)[:-1]
    return np.split(target, cuts), np.split(covariates, cuts)


def calendar_at(panel: Panel, index: int, steps: np.ndarray) -> np.ndarray:
    """Calendar features (len(steps), Fc) of the given steps of one series."""
    origins = np.full(len(steps), panel.start_times[index], dtype=np.int64)
    times = shift_times(origins, np.asarray(steps, dtype=np.int64), panel.freq)
    return calendar_features(times, panel.freq)


def expected_season_step(step: int, h: int) -> int:
    """The last observed step at the phase of step + h: step + h - m * ceil(h / m), >= 0."""
    return max(step + h - SEASON * math.ceil(h / SEASON), 0)


# ---------------------------------------------------------------------------------------
# lay_out
# ---------------------------------------------------------------------------------------


def test_lay_out_puts_target_covariates_then_known_on_each_row(panel, tensors) -> None:
    targets, covariates = scaled_parts(panel)
    rows = tensors.rows.numpy()
    assert tensors.n_covariates == 1
    assert tensors.n_known == 6  # hourly: time of day, day of week, day of year
    assert tensors.n_features == 1 + 1 + 6
    np.testing.assert_array_equal(tensors.lengths, [9, 6, 7])
    np.testing.assert_array_equal(tensors.starts, [0, 9 + HORIZON, 9 + 6 + 2 * HORIZON])
    assert rows.shape[0] == int(panel.lengths.sum()) + 3 * HORIZON
    for index, length in enumerate(panel.lengths):
        own = rows[tensors.starts[index] : tensors.starts[index] + length + HORIZON]
        np.testing.assert_array_equal(own[:length, 0], targets[index])
        np.testing.assert_array_equal(own[:length, 1:2], covariates[index])
        steps = np.arange(length + HORIZON)
        np.testing.assert_allclose(own[:, 2:], calendar_at(panel, index, steps), atol=1e-6)
        # Future rows: no target, the covariates of the last step carried forward.
        np.testing.assert_array_equal(own[length:, 0], 0.0)
        np.testing.assert_array_equal(own[length:, 1], covariates[index][-1, 0])
    np.testing.assert_array_equal(tensors.codes.numpy(), [0, 1, 2])


def test_lay_out_keeps_given_embedding_codes(panel) -> None:
    tensors = lay_out(panel, fit_scaler(panel, "meanabs"), 2, 0, CPU, np.array([4, 0, 2]))
    block = gather_block(tensors, np.array([2, 0]))
    np.testing.assert_array_equal(block.codes.numpy(), [2, 4])
    assert n_future_features(tensors.n_known, tensors.season) == tensors.n_known
    assert n_future_features(6, SEASON) == 7


# ---------------------------------------------------------------------------------------
# iter_chunks
# ---------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(data=st.data(), steps=st.integers(0, 300), chunk_len=st.integers(2, 64))
def test_chunks_cover_every_step_once_in_order(data, steps: int, chunk_len: int) -> None:
    phase = data.draw(st.integers(0, chunk_len), label="phase")
    chunks = iter_chunks(steps, chunk_len, phase)
    covered = [step for start, stop in chunks for step in range(start, stop)]
    assert covered == list(range(steps))
    assert all(stop > start for start, stop in chunks)
    assert all(stop - start <= chunk_len for start, stop in chunks)
    if steps:
        assert chunks[0][1] == min(phase or chunk_len, steps)
        # Between the first and the last chunk every chunk is full length.
        assert all(stop - start == chunk_len for start, stop in chunks[1:-1])
    else:
        assert chunks == []


# ---------------------------------------------------------------------------------------
# gather_block: targets, inputs, future inputs, mask
# ---------------------------------------------------------------------------------------

FIRSTS = [None, np.array([3, 0, 2])]


@pytest.mark.parametrize("first", FIRSTS, ids=["from_start", "offset"])
def test_block_targets_are_the_next_h_scaled_values(panel, tensors, first) -> None:
    targets, _ = scaled_parts(panel)
    block = gather_block(tensors, np.arange(3), first)
    offsets = np.zeros(3, dtype=int) if first is None else first
    assert block.steps == int((panel.lengths - offsets).max())
    forking = block.targets(0, block.steps).numpy()  # (B, T, H)
    assert forking.shape == (3, block.steps, HORIZON)
    for b in range(3):
        for k in range(block.steps):
            for h in range(HORIZON):
                step = offsets[b] + k + h + 1
                expected = targets[b][step] if step < panel.lengths[b] else 0.0
                assert forking[b, k, h] == expected, (b, k, h)
    # A chunk's targets are the same as the whole block's, sliced.
    np.testing.assert_array_equal(block.targets(2, 5).numpy(), forking[:, 2:5])


@pytest.mark.parametrize("first", FIRSTS, ids=["from_start", "offset"])
def test_block_inputs_start_at_each_series_first_step(panel, tensors, first) -> None:
    block = gather_block(tensors, np.array([2, 0, 1]), None if first is None else first)
    offsets = np.zeros(3, dtype=int) if first is None else first
    inputs = block.inputs(0, block.steps).numpy()  # (B, T, F)
    rows = tensors.rows.numpy()
    for b, series in enumerate([2, 0, 1]):
        for position in range(int(panel.lengths[series] - offsets[b])):
            expected = rows[tensors.starts[series] + offsets[b] + position]
            np.testing.assert_array_equal(inputs[b, position], expected)
    np.testing.assert_array_equal(block.first, offsets)
    np.testing.assert_array_equal(block.inputs(1, 4).numpy(), inputs[:, 1:4])


def test_block_targets_and_inputs_are_views_of_the_block(tensors) -> None:
    block = gather_block(tensors, np.arange(3))
    storage = block.data.untyped_storage().data_ptr()
    for view in (block.inputs(0, 4), block.targets(0, 4), block.targets(3, block.steps)):
        assert view.untyped_storage().data_ptr() == storage
    # A write through the block shows in the targets: they are not copies.
    targets = block.targets(0, block.steps)
    block.data[0, block.lead + 1, 0] = 123.0
    assert targets[0, 0, 0].item() == 123.0


@pytest.mark.parametrize("first", FIRSTS, ids=["from_start", "offset"])
def test_future_holds_calendar_of_next_steps_and_last_value_at_same_phase(
    panel, tensors, first
) -> None:
    targets, _ = scaled_parts(panel)
    block = gather_block(tensors, np.arange(3), first)
    offsets = np.zeros(3, dtype=int) if first is None else first
    future = block.future(0, block.steps).numpy()  # (B, T, H, Fc + 1)
    assert future.shape == (3, block.steps, HORIZON, tensors.n_known + 1)
    for b in range(3):
        for k in range(int(panel.lengths[b] - offsets[b])):
            origin = offsets[b] + k
            ahead = origin + np.arange(1, HORIZON + 1)
            np.testing.assert_allclose(
                future[b, k, :, :-1], calendar_at(panel, b, ahead), atol=1e-6
            )
            season = [targets[b][expected_season_step(origin, h)] for h in range(1, HORIZON + 1)]
            np.testing.assert_array_equal(future[b, k, :, -1], season, err_msg=f"{b}, {k}")
    np.testing.assert_array_equal(block.future(1, 3).numpy(), future[:, 1:3])


def test_future_has_calendar_only_without_season(panel) -> None:
    tensors = lay_out(panel, fit_scaler(panel, "standard"), HORIZON, 0, CPU)
    block = gather_block(tensors, np.arange(3))
    assert block.lead == 0
    future = block.future(0, block.steps).numpy()
    assert future.shape == (3, block.steps, HORIZON, tensors.n_known)
    np.testing.assert_allclose(future[1, 0], calendar_at(panel, 1, np.arange(1, 6)), atol=1e-6)


def test_season_pattern_counts_phases_oldest_first() -> None:
    assert season_pattern(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert season_pattern(2, 24).tolist() == [0, 1]


def test_future_at_and_targets_at_pick_the_same_origins(tensors) -> None:
    block = gather_block(tensors, np.arange(3), np.array([1, 0, 2]))
    rows = torch.tensor([0, 2, 1, 0])
    steps = torch.tensor([4, 0, 3, 1])
    future = block.future(0, block.steps)
    np.testing.assert_array_equal(
        block.future_at(rows, steps).numpy(), future[rows, steps].unsqueeze(1).numpy()
    )
    assert block.future_at(rows, steps).shape == (4, 1, HORIZON, tensors.n_known + 1)
    np.testing.assert_array_equal(
        block.targets_at(rows, steps).numpy(), block.targets(0, block.steps)[rows, steps].numpy()
    )


@pytest.mark.parametrize("seed", range(4))
def test_mask_marks_exactly_the_steps_in_range(tensors, seed: int) -> None:
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 4, 3)
    block = gather_block(tensors, np.arange(3), first)
    low = rng.integers(-2, 8, 3)
    high = low + rng.integers(-2, 6, 3)  # sometimes empty (high < low)
    start, stop = sorted(rng.choice(block.steps + 1, 2, replace=False).tolist())
    mask = block.mask(start, stop, low, high)
    assert mask.dtype == torch.bool and mask.shape == (3, stop - start)
    for b in range(3):
        marked = [
            first[b] + position for position in range(start, stop) if mask[b, position - start]
        ]
        wanted = [s for s in range(first[b] + start, first[b] + stop) if low[b] <= s <= high[b]]
        assert marked == wanted, (b, low[b], high[b])


@pytest.mark.parametrize(("start", "stride"), [(0, 2), (1, 3), (2, 4), (3, 1)])
def test_a_stride_picks_every_kth_origin_of_targets_future_inputs_and_mask(
    tensors, start: int, stride: int
) -> None:
    block = gather_block(tensors, np.arange(3), np.array([1, 0, 2]))
    stop = block.steps
    picked = slice(start, stop, stride)
    low, high = np.array([0, 2, 1]), np.array([5, 9, 4])
    np.testing.assert_array_equal(
        block.targets(start, stop, stride).numpy(), block.targets(0, stop).numpy()[:, picked]
    )
    np.testing.assert_array_equal(
        block.future(start, stop, stride).numpy(), block.future(0, stop).numpy()[:, picked]
    )
    np.testing.assert_array_equal(
        block.mask(start, stop, low, high, stride).numpy(),
        block.mask(0, stop, low, high).numpy()[:, picked],
    )
    assert block.targets(start, stop, stride).shape[1] == len(range(start, stop, stride))


def test_future_rows_are_never_targets_of_valid_origins(panel, tensors) -> None:
    # Poison the target of every future row: a valid origin must never see it.
    rows = tensors.rows.clone()
    for start, length in zip(tensors.starts, tensors.lengths, strict=True):
        rows[start + length : start + length + HORIZON, 0] = float("nan")
    poisoned = replace(tensors, rows=rows)
    lengths = panel.lengths
    low, high = np.zeros(3, dtype=np.int64), lengths - 1 - HORIZON  # training's valid origins
    block = gather_block(poisoned, np.arange(3))
    mask = block.mask(0, block.steps, low, high)
    targets = block.targets(0, block.steps)
    assert mask.sum() == int((high - low + 1).sum())
    assert torch.isfinite(targets[mask]).all()
    # One origin later the first target is a future row: the range above is tight.
    after = torch.from_numpy(high + 1)
    assert torch.isnan(targets[torch.arange(3), after, -1]).all()
    windows = gather_windows(poisoned, np.arange(3), high, lookback=4)
    assert torch.isfinite(windows.targets).all()


# ---------------------------------------------------------------------------------------
# gather_windows
# ---------------------------------------------------------------------------------------


def all_origins(panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    series = np.repeat(np.arange(panel.n_series), panel.lengths)
    origins = np.concatenate([np.arange(length) for length in panel.lengths])
    return series, origins


@pytest.mark.parametrize("lookback", [1, 4, 12])
def test_windows_read_the_lookback_ending_at_the_origin(panel, tensors, lookback: int) -> None:
    targets, _ = scaled_parts(panel)
    series, origins = all_origins(panel)
    windows = gather_windows(tensors, series, origins, lookback)
    n = len(series)
    assert windows.inputs.shape == (n, lookback, tensors.n_features)
    assert windows.targets.shape == (n, 1, HORIZON)
    assert windows.future.shape == (n, 1, HORIZON, tensors.n_known + 1)
    rows = tensors.rows.numpy()
    for index, (b, origin) in enumerate(zip(series, origins, strict=True)):
        # Steps before the series' start repeat its first step.
        steps = np.maximum(np.arange(origin - lookback + 1, origin + 1), 0)
        np.testing.assert_array_equal(
            windows.inputs[index].numpy(), rows[tensors.starts[b] + steps]
        )
        ahead = origin + np.arange(1, HORIZON + 1)
        expected = np.where(
            ahead < panel.lengths[b], targets[b][np.minimum(ahead, panel.lengths[b] - 1)], 0
        )
        np.testing.assert_array_equal(windows.targets[index, 0].numpy(), expected)
        np.testing.assert_allclose(
            windows.future[index, 0, :, :-1].numpy(), calendar_at(panel, b, ahead), atol=1e-6
        )
        season = [targets[b][expected_season_step(origin, h)] for h in range(1, HORIZON + 1)]
        np.testing.assert_array_equal(windows.future[index, 0, :, -1].numpy(), season)
    np.testing.assert_array_equal(windows.codes.numpy(), series)


@pytest.mark.parametrize("lookback", [2, 7])
def test_windows_never_read_past_the_origin(panel, tensors, lookback: int) -> None:
    width = 1 + tensors.n_covariates  # the observed columns; calendar is known ahead
    clean = gather_windows(tensors, *all_origins(panel), lookback)
    for index, (b, origin) in enumerate(zip(*all_origins(panel), strict=True)):
        rows = tensors.rows.clone()
        cutoff = tensors.starts[b] + origin + 1
        rows[cutoff : tensors.starts[b] + tensors.lengths[b] + HORIZON, :width] = float("nan")
        windows = gather_windows(
            replace(tensors, rows=rows), np.array([b]), np.array([origin]), lookback
        )
        assert torch.isfinite(windows.inputs).all(), (b, origin)
        assert torch.isfinite(windows.future).all(), (b, origin)
        assert torch.isnan(windows.targets).all(), (b, origin)
        assert torch.equal(windows.inputs[0], clean.inputs[index])
        assert torch.equal(windows.future[0], clean.future[index])


def test_windows_and_block_give_the_same_future_inputs(panel, tensors) -> None:
    series, origins = all_origins(panel)
    windows = gather_windows(tensors, series, origins, lookback=3)
    block = gather_block(tensors, np.arange(3))
    from_block = block.future_at(torch.from_numpy(series), torch.from_numpy(origins))
    assert torch.equal(windows.future, from_block)
    targets = block.targets_at(torch.from_numpy(series), torch.from_numpy(origins))
    assert torch.equal(windows.targets[:, 0], targets)


# ---------------------------------------------------------------------------------------
# A long season besides the season
# ---------------------------------------------------------------------------------------
LONG = 4  # longer than SEASON and than some series' first origins: the lag reaches back


def expected_long_step(step: int, h: int) -> int:
    return max(step + h - LONG * math.ceil(h / LONG), 0)


@pytest.mark.parametrize("first", FIRSTS, ids=["from_start", "offset"])
def test_a_long_season_adds_its_value_before_the_season_input_which_stays_last(
    panel, first
) -> None:
    targets, _ = scaled_parts(panel)
    tensors = lay_out(panel, fit_scaler(panel, "standard"), HORIZON, SEASON, CPU, long_season=LONG)
    assert n_future_features(tensors.n_known, SEASON, LONG) == tensors.n_known + 2
    block = gather_block(tensors, np.arange(3), first)
    offsets = np.zeros(3, dtype=int) if first is None else first
    future = block.future(0, block.steps).numpy()  # (B, T, H, Fc + 2)
    assert future.shape[-1] == tensors.n_known + 2
    for b in range(3):
        for k in range(int(panel.lengths[b] - offsets[b])):
            origin = offsets[b] + k
            steps = range(1, HORIZON + 1)
            long = [targets[b][expected_long_step(origin, h)] for h in steps]
            season = [targets[b][expected_season_step(origin, h)] for h in steps]
            np.testing.assert_array_equal(future[b, k, :, -2], long, err_msg=f"{b}, {k}")
            np.testing.assert_array_equal(future[b, k, :, -1], season, err_msg=f"{b}, {k}")
    series, origins = all_origins(panel)
    windows = gather_windows(tensors, series, origins, lookback=3)
    whole = gather_block(tensors, np.arange(3))
    from_block = whole.future_at(torch.from_numpy(series), torch.from_numpy(origins))
    assert torch.equal(windows.future, from_block)


def test_relative_inputs_read_the_change_from_one_long_season_before(panel) -> None:
    targets, _ = scaled_parts(panel)
    scaler = fit_scaler(panel, "standard")
    tensors = lay_out(panel, scaler, HORIZON, SEASON, CPU, relative=True, long_season=LONG)
    plain = lay_out(panel, scaler, HORIZON, SEASON, CPU, relative=True)
    assert tensors.n_features == plain.n_features + 1
    assert tensors.n_covariates == plain.n_covariates == 1
    rows = tensors.rows.numpy()
    for b, length in enumerate(panel.lengths):
        series = targets[b]
        start = int(tensors.starts[b])
        for t in range(int(length)):
            changes = [series[t] - series[max(t - lag, 0)] for lag in (1, SEASON, LONG)]
            np.testing.assert_allclose(rows[start + t, 1:4], changes, rtol=1e-6, atol=1e-6)
