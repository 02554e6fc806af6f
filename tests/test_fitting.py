"""The whole fit (issue 12): network, base forecast and blend. Whatever the network
learned, the forecasts are no worse than the simple forecast that suits the data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from rnncast import ModelConfig, Panel, TrainConfig, forecast, train
from rnncast.errors import DataError
from rnncast.fitting import choose_combination, time_budget
from rnncast.scaling import to_model_space

HORIZON = 6


def panel_of(series: dict[str, np.ndarray], freq: str = "D") -> Panel:
    frames = [
        pd.DataFrame({"unique_id": name, "ds": pd.date_range("2024-01-01", periods=len(values),
                      freq=freq), "y": values})
        for name, values in series.items()
    ]  # fmt: skip
    return Panel.from_frame(pd.concat(frames, ignore_index=True))


def fit(panel: Panel, epochs: int = 3, **training) -> object:
    return train(
        panel,
        ModelConfig(horizon=HORIZON, cell="gru", hidden=8, layers=1),
        # Three members whatever the budget: what these tests are about is the blend.
        TrainConfig(
            device="cpu", max_epochs=epochs, seed=0, test_size=0, **{"ensemble": 3, **training}
        ),
    )


def mean_abs_error(panel: Panel, actual: dict[str, np.ndarray], point: np.ndarray) -> float:
    return float(np.mean([np.abs(point[i] - actual[str(name)]).mean()
                          for i, name in enumerate(panel.ids)]))  # fmt: skip


def test_a_constant_series_is_forecast_as_that_constant() -> None:
    rng = np.random.default_rng(0)
    series = {f"w{i}": 50 + np.cumsum(rng.normal(0, 1, 120)) for i in range(3)}
    series["flat"] = np.full(120, 7.0)
    panel = panel_of(series)
    result = forecast(fit(panel), panel)
    flat = list(result.ids).index("flat")
    np.testing.assert_array_equal(result.values[flat], 7.0)  # every quantile, every step


def held_out(series: dict[str, np.ndarray]) -> tuple[Panel, dict[str, np.ndarray]]:
    history = {name: values[:-HORIZON] for name, values in series.items()}
    return panel_of(history), {name: values[-HORIZON:] for name, values in series.items()}


@pytest.mark.parametrize("seed", [0, 1])
def test_on_random_walks_the_forecasts_are_no_worse_than_naive(seed: int) -> None:
    rng = np.random.default_rng(seed)
    series = {f"walk{i}": 100 + np.cumsum(rng.normal(0, 1, 160)) for i in range(12)}
    panel, actual = held_out(series)
    point = forecast(fit(panel), panel).point
    naive = np.stack([panel.series(i)[-1].repeat(HORIZON) for i in range(panel.n_series)])
    model_error, naive_error = (mean_abs_error(panel, actual, p) for p in (point, naive))
    # Measured 0.97-1.00 over seeds 0-5: a random walk has nothing to learn beyond naive.
    assert model_error < 1.05 * naive_error, (model_error, naive_error)


@pytest.mark.parametrize("seed", [0, 1])
def test_on_pure_seasons_the_forecasts_are_no_worse_than_seasonal_naive(seed: int) -> None:
    rng = np.random.default_rng(seed)
    steps = np.arange(168)
    series = {
        f"s{i}": 20 + (3 + i) * np.sin(2 * np.pi * (steps + i) / 7) + rng.normal(0, 0.3, 168)
        for i in range(8)
    }
    panel, actual = held_out(series)
    point = forecast(fit(panel), panel).point
    seasonal = np.stack([panel.series(i)[-7:][np.arange(HORIZON) % 7]
                         for i in range(panel.n_series)])  # fmt: skip
    model_error, seasonal_error = (mean_abs_error(panel, actual, p) for p in (point, seasonal))
    # Measured 0.64-0.85 over seeds 0-5 (the bases smooth the noise seasonal naive copies).
    assert model_error <= 0.95 * seasonal_error, (model_error, seasonal_error)


def test_a_network_that_learned_nothing_gets_no_weight() -> None:
    rng = np.random.default_rng(3)
    series = {f"walk{i}": 100 + np.cumsum(rng.normal(0, 1, 160)) for i in range(12)}
    panel = panel_of(series)
    model = fit(panel, refit=False)
    # Scramble the network: its forecasts are then noise, and validation must see it.
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.network.parameters():
            parameter.add_(5.0 * torch.randn(parameter.shape, generator=generator))
    combination = choose_combination(replace(model, combination=None), panel)
    assert combination is not None
    assert max(combination.weights) <= 0.1, combination


def test_without_validation_there_is_no_blend() -> None:
    rng = np.random.default_rng(0)
    panel = panel_of({"a": 10 + rng.normal(0, 1, 80), "b": 10 + rng.normal(0, 1, 80)})
    model = fit(panel, epochs=1, val_size=0)
    assert model.combination is None
    assert "refit" not in model.history


def test_the_default_budget_grows_with_the_data_within_bounds() -> None:
    small = panel_of({"a": np.ones(50)})
    large = panel_of({f"s{i}": np.ones(960) for i in range(414)}, freq="h")  # M4 Hourly's size
    assert time_budget(small) == pytest.approx(30.0 + 50 / 700)
    assert 400.0 < time_budget(large) <= 540.0


def test_a_model_of_the_logarithms_is_one_trained_on_them() -> None:
    # Where every value is above 0 the model forecasts their logarithms: the network,
    # the bases, the blend and its calibration all work on them, and only the
    # forecasts come back to the data's units.
    rng = np.random.default_rng(3)
    series = {f"g{i}": 100 * np.exp(np.cumsum(rng.normal(0.01, 0.05, 90))) for i in range(4)}
    panel = panel_of(series, freq="MS")
    settings = TrainConfig(device="cpu", max_epochs=2, seed=0, test_size=0, ensemble=2)
    chosen = train(panel, ModelConfig(horizon=HORIZON, cell="gru", hidden=8, layers=1), settings)
    assert chosen.config.transform == "log"
    logged = to_model_space(panel, "log")
    on_logs = train(
        logged,
        ModelConfig(horizon=HORIZON, cell="gru", hidden=8, layers=1, transform="none"),
        settings,
    )
    assert on_logs.combination == chosen.combination
    expected = np.exp(forecast(on_logs, logged).values)
    np.testing.assert_allclose(forecast(chosen, panel).values, expected, rtol=1e-12)
    assert (forecast(chosen, panel).values > 0).all()

    with_zero = {**series, "g0": np.concatenate([series["g0"][:-1], [0.0]])}
    with pytest.raises(DataError, match="'g0' has 0 in column 'y'"):
        forecast(chosen, panel_of(with_zero, freq="MS"))
    untransformed = train(
        panel_of(with_zero, freq="MS"),
        ModelConfig(horizon=HORIZON, cell="gru", hidden=8, layers=1),
        replace(settings, ensemble=1, max_epochs=1),
    )
    assert untransformed.config.transform == "none"
