"""Few series read as streams side by side (data_choices.choose_streams, stream_bounds;
losses.TrainingLosses.tbptt): every training origin is still scored once an epoch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnncast import ModelConfig, Panel, TrainConfig, train
from rnncast.config import ConfigError
from rnncast.data_choices import (
    BATCH_ROWS,
    STREAM_CHUNKS,
    choose_sizes,
    choose_streams,
    stream_bounds,
)
from rnncast.loss_function import LossFunction


def hourly_panel(n_series: int, length: int, seed: int = 0) -> Panel:
    rng = np.random.default_rng(seed)
    frames = [
        pd.DataFrame(
            {
                "unique_id": f"s{index}",
                "ds": pd.date_range("2024-01-01", periods=length, freq="h"),
                "y": 10 + np.sin(np.arange(length) * 2 * np.pi / 24) + rng.normal(0, 0.3, length),
            }
        )
        for index in range(n_series)
    ]
    return Panel.from_frame(pd.concat(frames, ignore_index=True))


@pytest.mark.parametrize(
    ("low", "high", "streams", "chunk_len", "shift"),
    [(0, 9_999, 8, 48, 0.0), (0, 9_999, 8, 48, 0.37), (0, 2_000, 13, 48, 0.99),
     (5, 700, 64, 16, 0.5), (0, 95, 4, 24, 0.2)],
)  # fmt: skip
def test_streams_score_every_origin_once_each_read_from_a_chunk_before(
    low: int, high: int, streams: int, chunk_len: int, shift: float
) -> None:
    bounds = stream_bounds(low, high, streams, chunk_len, shift)
    scored = np.concatenate([np.arange(first, last + 1) for _, first, last in bounds])
    assert np.array_equal(scored, np.arange(low, high + 1))  # in order, none twice
    assert len(bounds) <= streams + 1  # the moved borders add one partial stretch
    assert all(read == max(first - chunk_len, 0) for read, first, _ in bounds)
    whole = [last + 1 - first for _, first, last in bounds[1:-1]]
    assert all(steps >= STREAM_CHUNKS * chunk_len for steps in whole)


def test_a_series_too_short_for_two_streams_is_read_whole() -> None:
    assert stream_bounds(0, STREAM_CHUNKS * 48 * 2 - 2, 64, 48, 0.5) == [
        (0, 0, STREAM_CHUNKS * 48 * 2 - 2)
    ]


def test_streams_fill_a_batch_where_series_are_few_and_long() -> None:
    chunk = TrainConfig(chunk_len=48)
    one_long = hourly_panel(1, 20_000)
    assert choose_streams(one_long, chunk) == min(BATCH_ROWS, 20_000 // (STREAM_CHUNKS * 48))
    five = hourly_panel(5, 2_000)
    assert choose_streams(five, chunk) == min(BATCH_ROWS // 5, 2_000 // (STREAM_CHUNKS * 48))
    assert choose_streams(hourly_panel(1, 300), chunk) == 1  # too short to cut
    assert choose_streams(hourly_panel(BATCH_ROWS, 400), TrainConfig(chunk_len=4)) == 1


def test_streams_are_chosen_for_tbptt_only_and_said_when_more_than_one() -> None:
    panel = hourly_panel(1, 3_000)
    _, training, notes = choose_sizes(panel, ModelConfig(horizon=24), TrainConfig())
    assert (
        training.streams == 3_000 // (STREAM_CHUNKS * 48) and f"streams {training.streams}" in notes
    )
    _, chosen, _ = choose_sizes(panel, ModelConfig(horizon=24), TrainConfig(streams=2))
    assert chosen.streams == 2
    _, windows, _ = choose_sizes(panel, ModelConfig(horizon=24), TrainConfig(strategy="window"))
    assert windows.streams is None
    with pytest.raises(ConfigError, match="streams"):
        TrainConfig(streams=0)


def test_an_epoch_in_streams_scores_the_same_origins_as_one_stream() -> None:
    panel = hourly_panel(1, 5 * STREAM_CHUNKS * 48)
    counted: dict[int, list[tuple[int, int]]] = {}
    original = LossFunction.score
    for streams in (1, 4):
        calls = counted[streams] = []

        def counting(self, forecasts, targets, mask, weights, calls=calls):
            if forecasts.requires_grad:  # a training batch; validation runs without a graph
                calls.append((int(mask.shape[0]), int(mask.sum())))
            return original(self, forecasts, targets, mask, weights)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(LossFunction, "score", counting)
            settings = TrainConfig(device="cpu", max_epochs=1, chunk_len=48, streams=streams,
                                   val_size=24, test_size=0, refit=False, ensemble=1)  # fmt: skip
            train(panel, ModelConfig(horizon=24, hidden=8, layers=1), settings)
    scored = {streams: sum(count for _, count in calls) for streams, calls in counted.items()}
    assert scored[4] == scored[1] > 0
    assert max(rows for rows, _ in counted[1]) == 1
    assert max(rows for rows, _ in counted[4]) >= 4  # the streams read side by side
    assert len(counted[4]) < len(counted[1]) / 2  # in fewer, wider steps


def test_a_checkpoint_written_before_streams_resumes_reading_each_series_whole(
    tmp_path,
) -> None:
    from dataclasses import asdict

    from rnncast.training import _resumed_settings

    saved = asdict(TrainConfig(chunk_len=48, streams=4))
    del saved["streams"]  # as a checkpoint written before the key existed
    state = {"model": asdict(ModelConfig(horizon=24)), "training": saved, "epoch": 3}
    _, resumed, epoch = _resumed_settings(state, TrainConfig(streams=4), tmp_path)
    assert (resumed.streams, epoch) == (1, 3)
