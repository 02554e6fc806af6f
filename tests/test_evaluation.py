"""Backtests, the holdout test and scores of saved forecasts (issue 4): the origins,
that no step after an origin reaches its forecast, and that the three ways of
scoring agree with each other."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rnncast import ModelConfig, Panel, TrainConfig, evaluate, forecast, train
from rnncast.errors import ConfigError, DataError
from rnncast.evaluation import (
    backtest_cuts,
    holdout,
    read_forecasts,
    score_forecasts,
)
from rnncast.forecasting import forecast_origins
from rnncast.sinks import write_table

HORIZON = 6
LENGTHS = {"a": 96, "b": 80, "c": 70}


def monthly_frame(lengths: dict[str, int], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for index, (name, length) in enumerate(lengths.items()):
        steps = np.arange(length)
        y = 50 + 10 * index + 4 * np.sin(2 * np.pi * steps / 12 + index) + 0.1 * steps
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": name,
                    "ds": pd.date_range("2001-01-01", periods=length, freq="MS"),
                    "y": y + rng.normal(0, 0.3, length),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def settings(**overrides) -> TrainConfig:
    return TrainConfig(**{"max_epochs": 3, "device": "cpu", "seed": 0, **overrides})


@pytest.fixture(scope="module")
def panel() -> Panel:
    return Panel.from_frame(monthly_frame(LENGTHS))


@pytest.fixture(scope="module")
def model(panel: Panel):
    return train(panel, ModelConfig(horizon=HORIZON, hidden=8, layers=1), settings())


def truncated(panel: Panel, cuts: np.ndarray) -> Panel:
    return replace(panel, ends=panel.begins + cuts)


def test_backtest_origins_are_step_apart_and_the_last_leaves_one_horizon() -> None:
    cuts = backtest_cuts(np.array([96, 70]), horizon=6, folds=3, step=4)
    np.testing.assert_array_equal(cuts, [[82, 86, 90], [56, 60, 64]])


@pytest.mark.parametrize("strategy", ["tbptt", "window"])
def test_forecasts_from_inner_origins_equal_forecasts_from_the_truncated_history(
    panel: Panel, strategy: str
) -> None:
    """The property a backtest rests on: nothing after an origin reaches its forecast."""
    model = train(
        panel,
        ModelConfig(horizon=HORIZON, cell="gru", hidden=8, layers=1),
        settings(strategy=strategy, lookback=20 if strategy == "window" else None),
    )
    cuts = backtest_cuts(panel.lengths, HORIZON, folds=3, step=5)
    together = forecast_origins(model, panel, cuts)  # (S, K, H, Q)
    assert together.shape == (3, 3, HORIZON, 3)
    for fold in range(3):
        alone = forecast(model, truncated(panel, cuts[:, fold])).values
        np.testing.assert_allclose(together[:, fold], alone, rtol=1e-4, atol=1e-4)


def test_unseen_series_are_scaled_from_history_before_their_first_origin(model) -> None:
    """A series the model never saw must not be scaled with its future: replacing
    everything after the first origin with huge values leaves that origin's forecast."""
    frame = monthly_frame({"new": 80}, seed=3)
    calm = Panel.from_frame(frame)
    wild_frame = frame.copy()
    wild_frame.loc[70:, "y"] = 1e4
    wild = Panel.from_frame(wild_frame)
    cuts = np.array([[70]])
    np.testing.assert_allclose(
        forecast_origins(model, wild, cuts), forecast_origins(model, calm, cuts), rtol=1e-5
    )


def test_a_backtest_of_n_folds_scores_n_times_h_points_per_series(model, panel: Panel) -> None:
    evaluation = evaluate(model, panel, folds=4, step=3)
    assert evaluation.kind == "backtest"
    assert evaluation.cuts.shape == (3, 4)
    assert evaluation.scores["model"].counts["points"] == 3 * 4 * HORIZON
    assert evaluation.scores["model"].counts["missing"] == 0
    for name in ("naive", "seasonal_naive", "drift", "naive2"):
        assert evaluation.scores[name].counts["points"] == 3 * 4 * HORIZON
    # The actuals are the steps right after each origin, and their times match.
    series = panel.series(1).astype(np.float64)
    cut = int(evaluation.cuts[1, 2])
    np.testing.assert_array_equal(evaluation.actual[1, 2], series[cut : cut + HORIZON])
    first = pd.Timestamp(evaluation.times[1, 2, 0])
    assert first == pd.Timestamp("2001-01-01") + pd.DateOffset(months=cut)


def test_the_seasonal_naive_baseline_repeats_the_last_season(model, panel: Panel) -> None:
    evaluation = evaluate(model, panel, folds=2)
    series = panel.series(0).astype(np.float64)
    cut = int(evaluation.cuts[0, 0])
    expected = series[cut - 12 : cut - 12 + HORIZON]
    np.testing.assert_allclose(evaluation.baselines["seasonal_naive"][0, 0], expected)
    assert evaluation.season == 12


def test_naive2_is_scored_on_the_same_origins_and_counted(model, panel: Panel) -> None:
    """Issue 12: M4's Naive2 beside the other baselines. The monthly series are
    seasonal and positive, so every origin is adjusted, none left naive."""
    from rnncast.baselines import naive2

    evaluation = evaluate(model, panel, folds=2, step=4)
    expected = naive2(panel.values, panel.begins, evaluation.cuts, HORIZON, 12)
    np.testing.assert_array_equal(evaluation.baselines["naive2"], expected)
    assert not np.allclose(expected, evaluation.baselines["naive"])
    assert evaluation.baseline_counts == {
        "naive2_seasonal_origins": 3 * 2,
        "naive2_nonpositive_origins": 0,
    }


def test_season_overrides_the_frequency_for_mase_and_seasonal_naive(model, panel) -> None:
    default = evaluate(model, panel)
    other = evaluate(model, panel, season=3)
    assert other.season == 3
    naive_mase = default.scores["naive"].summary["mase"]["mean"]
    assert other.scores["naive"].summary["mase"]["mean"] != naive_mase
    series = panel.series(0).astype(np.float64)
    cut = int(other.cuts[0, 0])
    np.testing.assert_allclose(
        other.baselines["seasonal_naive"][0, 0], np.resize(series[cut - 3 : cut], HORIZON)
    )


def test_refit_trains_once_per_origin_on_the_history_before_it(model, panel: Panel) -> None:
    histories: list[np.ndarray] = []

    def refit(history: Panel):
        histories.append(history.lengths.copy())
        return model

    evaluation = evaluate(model, panel, folds=3, step=4, refit=refit)
    assert len(histories) == 3
    for fold, lengths in enumerate(histories):
        np.testing.assert_array_equal(lengths, evaluation.cuts[:, fold])
    without = evaluate(model, panel, folds=3, step=4)
    np.testing.assert_allclose(evaluation.values, without.values, rtol=1e-4, atol=1e-4)
    assert evaluation.settings["refit"] is True


def test_series_too_short_for_the_folds_are_skipped_and_none_left_is_an_error(
    model, panel: Panel
) -> None:
    evaluation = evaluate(model, panel, folds=11, step=HORIZON)  # needs 6·10 + 6 + 1 = 67
    assert list(evaluation.ids) == ["a", "b", "c"]
    evaluation = evaluate(model, panel, folds=13, step=HORIZON)  # needs 79: "c" is too short
    assert list(evaluation.ids) == ["a", "b"]
    with pytest.raises(DataError, match="no series is long enough for 20 folds"):
        evaluate(model, panel, folds=20, step=HORIZON)
    with pytest.raises(ConfigError, match="at least 1"):
        evaluate(model, panel, folds=0)


def test_the_test_part_never_reaches_the_model(panel: Panel) -> None:
    """Training with --test-size must not depend on the test steps in any way."""
    frame = monthly_frame(LENGTHS)
    wild = frame.copy()
    last = frame.groupby("unique_id").cumcount(ascending=False) < 12
    wild.loc[last, "y"] = 1e5
    config = ModelConfig(horizon=HORIZON, hidden=8, layers=1)

    def scored(frame: pd.DataFrame):
        # The model the holdout scores: the one before the refit on every step, which
        # learns from the test part on purpose once it has been scored (issue 12).
        before_refit = []
        train(Panel.from_frame(frame), config, settings(test_size=12),
              before_refit=before_refit.append)  # fmt: skip
        return before_refit[0]

    calm_model, wild_model = scored(frame), scored(wild)
    assert calm_model.training.test_size == 12
    for name, tensor in calm_model.network.state_dict().items():
        assert torch.equal(tensor, wild_model.network.state_dict()[name]), name
    np.testing.assert_array_equal(calm_model.scaler.loc, wild_model.scaler.loc)
    assert calm_model.combination == wild_model.combination  # chosen before the test part


def test_the_holdout_scores_every_whole_horizon_of_the_test_part(panel: Panel) -> None:
    model = train(panel, ModelConfig(horizon=HORIZON, hidden=8, layers=1), settings(test_size=14))
    evaluation = holdout(model, panel)
    assert evaluation.kind == "holdout"
    assert evaluation.settings["test_size"] == 14
    # 14 steps hold two whole horizons; the last origin leaves exactly one horizon.
    np.testing.assert_array_equal(evaluation.cuts[:, -1], panel.lengths - HORIZON)
    assert evaluation.cuts.shape[1] == 2
    with pytest.raises(ConfigError, match="--test-size 4 is shorter than --horizon 6"):
        train(panel, ModelConfig(horizon=HORIZON, hidden=8, layers=1), settings(test_size=4))
    everything = train(
        panel, ModelConfig(horizon=HORIZON, hidden=8, layers=1), settings(test_size=0)
    )
    with pytest.raises(ConfigError, match="trained on every step"):
        holdout(everything, panel)


def test_scoring_saved_forecasts_agrees_with_the_holdout(panel: Panel, tmp_path: Path) -> None:
    """Forecasts written by forecast and scored later with the actuals that followed
    give the numbers the holdout gave for the same origins."""
    model = train(panel, ModelConfig(horizon=HORIZON, hidden=8, layers=1), settings())
    tested = holdout(model, panel)
    head = panel.split_tail(HORIZON)[0]
    path = tmp_path / "forecasts.parquet"
    write_table(forecast(model, head).to_frame(), path)
    forecasts, quantiles = read_forecasts(path)
    assert quantiles == (0.1, 0.5, 0.9)
    scored = score_forecasts(forecasts, quantiles, panel)
    np.testing.assert_array_equal(scored.cuts, tested.cuts)
    for method in ("model", "naive", "seasonal_naive", "drift", "naive2"):
        for metric in ("mae", "smape", "mase"):
            np.testing.assert_allclose(
                scored.scores[method].per_series[metric],
                tested.scores[method].per_series[metric],
                rtol=1e-5,
            )
    np.testing.assert_allclose(
        scored.scores["model"].per_series["coverage_80"],
        tested.scores["model"].per_series["coverage_80"],
    )


def test_forecast_steps_without_actuals_yet_are_counted_not_scored(
    model, panel: Panel, tmp_path: Path
) -> None:
    head = panel.split_tail(HORIZON)[0]
    path = tmp_path / "forecasts.csv"
    write_table(forecast(model, head).to_frame(), path)
    arrived = panel.split_tail(HORIZON - 2)[0]  # two of the six steps have arrived
    forecasts, quantiles = read_forecasts(path)
    scored = score_forecasts(forecasts, quantiles, arrived)
    counts = scored.scores["model"].counts
    assert (counts["points"], counts["missing"]) == (3 * 2, 3 * 4)


def test_forecasts_of_series_without_actuals(model, panel: Panel, tmp_path: Path) -> None:
    path = tmp_path / "forecasts.csv"
    write_table(forecast(model, panel.split_tail(HORIZON)[0]).to_frame(), path)
    forecasts, quantiles = read_forecasts(path)
    scored = score_forecasts(forecasts, quantiles, panel.take([0, 2]))
    assert list(scored.ids) == ["a", "c"]
    with pytest.raises(DataError, match="none of the 3 forecast series is in the actuals"):
        score_forecasts(forecasts, quantiles, Panel.from_frame(monthly_frame({"zz": 40})))


def test_scoring_across_shares_keeps_recent_history_and_scores_as_the_whole() -> None:
    from rnncast.assessment import RECENT_HISTORY, assemble, assemble_across_shares
    from rnncast.report import render_report

    rng = np.random.default_rng(4)
    hours = pd.date_range("2024-01-01", periods=900, freq="h")
    frame = pd.concat([
        pd.DataFrame({"unique_id": name, "ds": hours[:length],
                      "y": 20 + 5 * np.sin(np.arange(length) * 2 * np.pi / 24)
                      + rng.normal(0, 1, length)})
        for name, length in (("long", 900), ("short", 300))
    ])  # fmt: skip
    panel = Panel.from_frame(frame)
    settings = TrainConfig(max_epochs=1, ensemble=1, seed=1, test_size=0)
    model = train(panel, ModelConfig(horizon=12, hidden=8, layers=1), settings, save=False)
    cuts = backtest_cuts(panel.lengths, 12, 2, 12)
    values = forecast_origins(model, panel, cuts)
    protocol = {"folds": 2, "step": 12}
    whole = assemble("backtest", panel, cuts, model, values, 24, protocol)
    shares = assemble_across_shares("backtest", panel, cuts, model, values, 24, protocol)
    assert shares is not None
    # The long series keeps RECENT_HISTORY steps before its first origin, the short one
    # all of its history; the origins count from there.
    assert list(shares.history.lengths) == [RECENT_HISTORY + 24, 300]
    np.testing.assert_array_equal(shares.cuts, cuts - np.array([[900 - 24 - RECENT_HISTORY], [0]]))
    np.testing.assert_array_equal(shares.times, whole.times)
    # The report, figures and all, is the one of the whole Panel.
    assert render_report(shares, title="t") == render_report(whole, title="t")
