"""Forecasting with a trained model: the output frame, future timestamps, quantile
columns, unseen series, data that does not fit the model, and the context limit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from rnncast import DataConfig, ModelConfig, Panel, TrainConfig, forecast, train
from rnncast.errors import DataError
from rnncast.forecasting import quantile_column
from rnncast.model_data import data_config

HORIZON = 6


def monthly_frame(
    lengths: dict[str, int], start: str = "2001-01-01", seed: int = 0, covariate: bool = False
) -> pd.DataFrame:
    """Monthly series of period 12, each of its own length, all starting at ``start``."""
    rng = np.random.default_rng(seed)
    frames = []
    for index, (name, length) in enumerate(lengths.items()):
        steps = np.arange(length)
        frame = pd.DataFrame(
            {
                "unique_id": name,
                "ds": pd.date_range(start, periods=length, freq="MS"),
                "y": 50
                + 10 * index
                + (3 + index) * np.sin(2 * np.pi * steps / 12 + index)
                + 0.1 * steps
                + rng.normal(0, 0.3, length),
            }
        )
        if covariate:
            frame["temp"] = np.cos(2 * np.pi * steps / 12) + rng.normal(0, 0.1, length)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


LENGTHS = {"a": 96, "b": 80, "c": 70}


def fit(panel: Panel, data: DataConfig | None = None, **model) -> object:
    settings = {"horizon": HORIZON, "cell": "lstm", "hidden": 8, "layers": 1, **model}
    return train(
        panel,
        ModelConfig(**settings),
        TrainConfig(max_epochs=3, device="cpu", seed=0),
        data=data,
    )


@pytest.fixture(scope="module")
def panel() -> Panel:
    return Panel.from_frame(monthly_frame(LENGTHS))


@pytest.fixture(scope="module")
def model(panel: Panel):
    return fit(panel)


def test_the_frame_has_one_row_per_series_and_step_with_the_default_columns(
    model, panel: Panel
) -> None:
    frame = forecast(model, panel).to_frame()
    assert list(frame.columns) == ["unique_id", "ds", "y_hat", "y_q10", "y_q50", "y_q90"]
    assert len(frame) == panel.n_series * HORIZON
    assert frame["unique_id"].tolist() == [name for name in LENGTHS for _ in range(HORIZON)]
    assert pd.api.types.is_datetime64_any_dtype(frame["ds"])
    assert np.isfinite(frame[["y_hat", "y_q10", "y_q50", "y_q90"]].to_numpy()).all()
    np.testing.assert_array_equal(frame["y_hat"], frame["y_q50"])


def test_ds_are_the_next_steps_after_each_series_own_end(model, panel: Panel) -> None:
    frame = forecast(model, panel).to_frame()
    history = monthly_frame(LENGTHS)
    for name, rows in frame.groupby("unique_id"):
        last = history.loc[history["unique_id"] == name, "ds"].max()
        expected = pd.date_range(last + pd.offsets.MonthBegin(1), periods=HORIZON, freq="MS")
        assert rows["ds"].tolist() == expected.tolist(), name
    # The three series end in different months, so the check above is not vacuous.
    assert frame.groupby("unique_id")["ds"].min().nunique() == 3


def test_forecasts_continue_the_level_of_each_series(model, panel: Panel) -> None:
    result = forecast(model, panel)
    for index in range(panel.n_series):
        recent = panel.series(index)[-12:]
        assert recent.min() - 5 < result.point[index].mean() < recent.max() + 5


def test_quantile_columns_are_ordered(model, panel: Panel) -> None:
    frame = forecast(model, panel).to_frame()
    assert (frame["y_q10"] < frame["y_q50"]).all()
    assert (frame["y_q50"] < frame["y_q90"]).all()


@pytest.mark.parametrize(
    ("quantile", "column"),
    [
        (0.1, "y_q10"),
        (0.5, "y_q50"),
        (0.9, "y_q90"),
        (0.025, "y_q2.5"),
        (0.975, "y_q97.5"),
        (0.05, "y_q5"),
        (0.99, "y_q99"),
        (0.001, "y_q0.1"),
    ],
)
def test_quantile_column_names(quantile: float, column: str) -> None:
    assert quantile_column(quantile) == column


def test_other_quantiles_give_their_own_ordered_columns(panel: Panel) -> None:
    wide = fit(panel, quantiles=(0.025, 0.5, 0.975))
    frame = forecast(wide, panel).to_frame()
    assert list(frame.columns) == ["unique_id", "ds", "y_hat", "y_q2.5", "y_q50", "y_q97.5"]
    assert (frame["y_q2.5"] < frame["y_q50"]).all()
    assert (frame["y_q50"] < frame["y_q97.5"]).all()


def test_quantiles_without_the_median_still_give_a_median_point_forecast(panel: Panel) -> None:
    model = fit(panel, quantiles=(0.9, 0.2))
    result = forecast(model, panel)
    assert result.quantiles == (0.2, 0.5, 0.9)
    frame = result.to_frame()
    assert list(frame.columns) == ["unique_id", "ds", "y_hat", "y_q90", "y_q20"]
    assert (frame["y_q20"] < frame["y_hat"]).all()
    assert (frame["y_hat"] < frame["y_q90"]).all()


def test_a_point_loss_gives_the_point_forecast_alone(panel: Panel) -> None:
    model = fit(panel, loss="mae")
    frame = forecast(model, panel).to_frame()
    assert list(frame.columns) == ["unique_id", "ds", "y_hat"]


@pytest.mark.parametrize(
    ("transform", "scaler"), [("none", "standard"), ("log", "standard"), ("log", "shared")]
)
def test_unseen_series_are_forecast_from_their_own_history(
    panel: Panel, transform: str, scaler: str
) -> None:
    # "copy" repeats series a; "big" is 10 a + 1000 (10 a for a model of the
    # logarithms, where a factor is what shifts them). Neither id was trained on, so
    # each is scaled from its own history (a shared scale stays the one the network
    # learned on): the scaled inputs are the same, and the forecasts must differ by
    # the same map.
    model = fit(panel, transform=transform, scaler=scaler)
    if scaler == "shared":
        assert len(set(model.scaler.scale.tolist())) == 1
    known = monthly_frame(LENGTHS)
    a = known[known["unique_id"] == "a"]
    shift = 1000 if transform == "none" else 0
    frame = pd.concat(
        [
            known,
            a.assign(unique_id="copy"),
            a.assign(unique_id="big", y=10 * a["y"] + shift),
        ],
        ignore_index=True,
    )
    mixed = Panel.from_frame(frame)
    # The network alone: the base forecasts' multiplicative seasonal adjustment is
    # scale-equivariant but not shift-equivariant (test_bases.py covers them).
    result = forecast(replace(model, combination=None), mixed)
    point = dict(zip(result.ids.tolist(), result.point, strict=True))
    np.testing.assert_allclose(point["big"], 10 * point["copy"] + shift, rtol=1e-4)
    if scaler == "shared":
        # The inputs read changes, and the scale is a's own: the copy is forecast as a.
        np.testing.assert_allclose(point["copy"], point["a"], rtol=1e-4)
    recent = 10 * a["y"].to_numpy()[-12:] + shift  # series a is near 60
    assert recent.min() - 100 < point["big"].min() and point["big"].max() < recent.max() + 100
    # Known series keep their training scale, whatever else is in the data.
    alone = forecast(replace(model, combination=None), Panel.from_frame(known)).point
    np.testing.assert_allclose(result.point[:3], alone, rtol=1e-6)


def test_unseen_series_with_an_id_embedding_are_a_data_error(panel: Panel) -> None:
    embedded = fit(panel, id_embedding=2)
    known = monthly_frame(LENGTHS)
    ok = forecast(embedded, Panel.from_frame(known[known["unique_id"] != "b"]))
    assert ok.ids.tolist() == ["a", "c"]
    strangers = pd.concat(
        [known, known[known["unique_id"] == "a"].assign(unique_id="zeta")], ignore_index=True
    )
    with pytest.raises(DataError) as raised:
        forecast(embedded, Panel.from_frame(strangers))
    assert raised.value.exit_code == 3
    assert str(raised.value) == (
        "1 series were not in the training data ('zeta') and this model learned an "
        "embedding per series id (--id-embedding); forecast only known series or retrain "
        "without --id-embedding"
    )


def test_data_of_another_frequency_is_a_data_error(model) -> None:
    daily = monthly_frame(LENGTHS)
    daily["ds"] = daily.groupby("unique_id")["ds"].transform(
        lambda s: pd.date_range("2001-01-01", periods=len(s), freq="D")
    )
    with pytest.raises(DataError) as raised:
        forecast(model, Panel.from_frame(daily))
    assert raised.value.exit_code == 3
    assert str(raised.value).startswith("the model was trained on MS data; this data is ")
    assert str(raised.value).endswith("(D); resample it or train a model on it")


def test_data_without_the_covariate_is_a_data_error_naming_it() -> None:
    data = DataConfig(covariates=("temp",))
    with_temp = Panel.from_frame(monthly_frame(LENGTHS, covariate=True), data)
    model = fit(with_temp, data)
    assert data_config(model).covariates == ("temp",)
    without = Panel.from_frame(monthly_frame(LENGTHS))
    with pytest.raises(
        DataError, match=r"the model needs covariates \['temp'\]; this data has \[\]"
    ):
        forecast(model, without)
    assert forecast(model, with_temp).values.shape == (3, HORIZON, 3)


def test_data_config_reads_new_data_the_way_training_data_was_read() -> None:
    frame = monthly_frame(LENGTHS, covariate=True).rename(
        columns={"unique_id": "meter", "ds": "when", "y": "kw"}
    )
    data = DataConfig(
        id_col="meter", time_col="when", target_col="kw", covariates=("temp",), fill="zero"
    )
    model = fit(Panel.from_frame(frame, data), data)
    again = data_config(model)
    assert (again.id_col, again.time_col, again.target_col) == ("meter", "when", "kw")
    assert (again.covariates, again.fill, again.freq) == (("temp",), "zero", None)


@pytest.mark.parametrize("context", [12, 30])
def test_context_limits_the_history_read(model, panel: Panel, context: int) -> None:
    limited = forecast(model, panel, context=context)
    cut = panel.split_tail(context)[1]  # the last `context` steps of every series
    np.testing.assert_allclose(limited.values, forecast(model, cut).values, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(limited.times, forecast(model, panel).times)
    # Rewrite everything before the context: a forecast limited to it must not move at
    # all, while one over the whole history does.
    frame = monthly_frame(LENGTHS)
    position = frame.groupby("unique_id", sort=False).cumcount(ascending=False)
    frame.loc[position >= context, "y"] *= 3  # still above 0, as a model of logarithms needs
    changed = Panel.from_frame(frame)
    np.testing.assert_array_equal(forecast(model, changed, context=context).values, limited.values)
    assert not np.array_equal(forecast(model, changed).values, forecast(model, panel).values)


def test_a_context_longer_than_the_history_reads_it_all(model, panel: Panel) -> None:
    np.testing.assert_array_equal(
        forecast(model, panel, context=1000).values, forecast(model, panel).values
    )


@pytest.mark.parametrize("batch_size", [1, 2])
def test_batching_series_of_different_lengths_changes_nothing(
    model, panel: Panel, batch_size: int
) -> None:
    np.testing.assert_allclose(
        forecast(model, panel, batch_size=batch_size).values,
        forecast(model, panel).values,
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("cell", ["lstm", "indrnn"])
def test_reading_histories_in_pieces_gives_the_forecasts_of_one_read(
    panel: Panel, cell: str, monkeypatch
) -> None:
    import rnncast.batches
    import rnncast.forecasting

    # A model's own validation origins are inner origins: several per series.
    cell_model = fit(panel, cell=cell)
    cuts = np.stack([panel.lengths - 13, panel.lengths - 6, panel.lengths], axis=1)
    whole = rnncast.forecasting.forecast_origins(cell_model, panel, cuts)
    for values in (1, 3 * 8 * 7):  # a step a piece; 7 steps (3 series, summaries of 8)
        monkeypatch.setattr(rnncast.batches, "ENCODE_VALUES", values)
        pieces = rnncast.forecasting.forecast_origins(cell_model, panel, cuts)
        np.testing.assert_allclose(pieces, whole, rtol=1e-5, atol=1e-5)
    assert np.isfinite(whole).all() and whole.shape[:2] == cuts.shape


def test_window_models_forecast_from_their_lookback(panel: Panel) -> None:
    model = train(
        panel,
        ModelConfig(horizon=HORIZON, cell="gru", hidden=8, layers=1),
        TrainConfig(strategy="window", lookback=24, max_epochs=2, device="cpu"),
    )
    # The network alone reads its lookback, and with relative inputs the season before
    # it (its first changes); the base forecast reads all the history.
    model = replace(model, combination=None)
    full = forecast(model, panel)
    cut = forecast(model, panel.split_tail(24 + 12)[1])
    np.testing.assert_allclose(full.values, cut.values, rtol=1e-5, atol=1e-5)
    assert full.to_frame().shape == (3 * HORIZON, 6)


def test_series_that_never_moved_are_found_in_one_pass() -> None:
    from rnncast.forecasting import _never_moved

    values = np.array([4, 4, 4, 2, 3, 3, np.nan, 5, 6, 6], dtype=np.float32)
    begins = np.array([0, 3, 4, 6, 8, 7, 9])
    ends = np.array([3, 4, 6, 8, 10, 9, 10])  # the last ones reach the buffer's end
    expected = [np.ptp(values[b:e]) == 0 for b, e in zip(begins, ends, strict=True)]
    assert expected == [True, True, True, False, True, False, True]
    np.testing.assert_array_equal(_never_moved(values, begins, ends), expected)
