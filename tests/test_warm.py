"""Warm states: a forecast of a history the model was trained on starts from the
encoder's state at its end (warm.py) and forecasts what reading it whole forecasts;
any other history is read whole."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import save as save_arrays

from rnncast import DataConfig, ModelConfig, Panel, TrainConfig, forecast, train
from rnncast.artifact import load_model, save_model
from rnncast.errors import ArtifactError
from rnncast.forecasting import _positions, warm_states
from rnncast.model_files import MANIFEST, WARM_FILE
from tests.test_forecasting import monthly_frame

HORIZON = 6
LENGTHS = {"a": 96, "b": 80, "c": 70, "d": 70}


def fit(panel: Panel, **settings) -> object:
    training = {"max_epochs": 2, "device": "cpu", "seed": 0, "ensemble": 1}
    training.update(settings.pop("training", {}))
    model = {"horizon": HORIZON, "cell": "lstm", "hidden": 8, "layers": 2, **settings}
    return train(panel, ModelConfig(**model), TrainConfig(**training), data=DataConfig())


def network_alone(model):
    """The model's network without the blend, so that its outputs show."""
    return replace(model, combination=None)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return monthly_frame({**LENGTHS})


@pytest.fixture(scope="module")
def trained(frame):
    """A model of two LSTM members trained on every series but its last 5 months."""
    shorter = frame[frame.groupby("unique_id").cumcount(ascending=False) >= 5]
    return fit(Panel.from_frame(shorter), training={"ensemble": 2})


@pytest.fixture(scope="module")
def later(frame) -> Panel:
    """The same series, 5 months on."""
    return Panel.from_frame(frame)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_the_forecast_from_warm_states_is_the_forecast_from_the_whole_history(frame, cell):
    shorter = frame[frame.groupby("unique_id").cumcount(ascending=False) >= 5]
    model = network_alone(fit(Panel.from_frame(shorter), cell=cell, training={"ensemble": 2}))
    later = Panel.from_frame(frame)
    assert model.warm is not None
    assert sorted(model.warm.tensors) == (["c", "h"] if cell == "lstm" else ["h"])
    assert model.warm.tensors["h"].shape == (2, 2, len(LENGTHS), 8)
    # Each state read all but the last of its series' training steps.
    expected_steps = [LENGTHS[str(name)] - 6 for name in model.scaler.ids]
    assert model.warm.steps.tolist() == expected_steps
    skip = model.warm.usable(later, _positions(model, later))
    assert (skip == model.warm.steps[_positions(model, later)]).all()
    warm = forecast(model, later).values
    whole = forecast(replace(model, warm=None), later).values
    np.testing.assert_allclose(warm, whole, rtol=1e-5, atol=1e-5)
    # The states are used: other states give other forecasts.
    scrambled = {name: np.random.default_rng(1).normal(size=array.shape).astype(np.float32)
                 for name, array in model.warm.tensors.items()}  # fmt: skip
    other = replace(model, warm=replace(model.warm, tensors=scrambled))
    assert np.abs(forecast(other, later).values - whole).max() > 1e-3


def test_a_history_that_differs_from_what_the_states_read_is_read_whole(trained, frame):
    model = network_alone(trained)
    edited = frame.copy()
    first_of_b = edited.index[edited["unique_id"] == "b"][3]
    edited.loc[first_of_b, "y"] += 1.0  # a revised value, early in series b
    panel = Panel.from_frame(edited)
    positions = _positions(model, panel)
    skip = model.warm.usable(panel, positions)
    names = [str(name) for name in panel.ids]
    assert skip[names.index("b")] == 0
    assert all(skip[i] > 0 for i, name in enumerate(names) if name != "b")
    # With states that would change any forecast that used them, b's is unchanged.
    scrambled = {name: np.full(array.shape, 3.0, dtype=np.float32)
                 for name, array in model.warm.tensors.items()}  # fmt: skip
    other = replace(model, warm=replace(model.warm, tensors=scrambled))
    whole = forecast(replace(model, warm=None), panel).values
    got = forecast(other, panel).values
    b = names.index("b")
    np.testing.assert_allclose(got[b], whole[b], rtol=1e-5, atol=1e-5)
    assert np.abs(np.delete(got, b, axis=0) - np.delete(whole, b, axis=0)).max() > 1e-3


def test_unseen_series_and_cut_histories_are_read_whole(trained, later):
    model = network_alone(trained)
    renamed = replace(later, ids=np.array([f"new {name}" for name in later.ids]))
    assert not model.warm.usable(renamed, _positions(model, renamed)).any()
    # --context: the history no longer starts where the states' did.
    keep = np.minimum(later.lengths, 40)
    cut = replace(later, begins=later.ends - keep)
    cut = replace(cut, start_times=later.start_times + (later.lengths - keep))
    assert not model.warm.usable(cut, _positions(model, cut)).any()
    np.testing.assert_allclose(
        forecast(model, later, context=40).values,
        forecast(replace(model, warm=None), later, context=40).values,
        rtol=1e-6,
        atol=1e-6,
    )


def test_warm_states_round_trip_through_the_model_directory(trained, later, tmp_path):
    save_model(trained, tmp_path / "model")
    manifest = json.loads((tmp_path / "model" / MANIFEST).read_text())
    assert WARM_FILE in manifest["files"]
    loaded = load_model(tmp_path / "model")
    np.testing.assert_array_equal(loaded.warm.steps, trained.warm.steps)
    np.testing.assert_array_equal(loaded.warm.fingerprints, trained.warm.fingerprints)
    for name, array in trained.warm.tensors.items():
        np.testing.assert_array_equal(loaded.warm.tensors[name], array)
    np.testing.assert_array_equal(forecast(loaded, later).values, forecast(trained, later).values)


def test_a_model_directory_without_warm_states_loads_and_forecasts(trained, later, tmp_path):
    """Models saved before warm states have no warm.safetensors."""
    save_model(replace(trained, warm=None), tmp_path / "model")
    assert not (tmp_path / "model" / WARM_FILE).exists()
    loaded = load_model(tmp_path / "model")
    assert loaded.warm is None
    np.testing.assert_allclose(
        forecast(loaded, later).values, forecast(trained, later).values, rtol=1e-5, atol=1e-5
    )


def _rewrite(directory: Path, name: str, data: bytes) -> None:
    """Replace one file and its digest, as someone editing the directory would."""
    (directory / name).write_bytes(data)
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["files"][name] = hashlib.sha256(data).hexdigest()
    (directory / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage", ["shape", "dtype", "missing", "not finite"])
def test_warm_states_that_do_not_fit_the_model_are_refused(trained, tmp_path, damage):
    directory = save_model(trained, tmp_path / "model")
    arrays = dict(trained.warm.arrays())
    if damage == "shape":
        arrays["h"] = arrays["h"][:, :, :2]
    elif damage == "dtype":
        arrays["steps"] = arrays["steps"].astype(np.int32)
    elif damage == "missing":
        del arrays["c"]
    else:
        arrays["h"] = arrays["h"].copy()
        arrays["h"][0, 0, 0, 0] = np.nan
    _rewrite(directory, WARM_FILE, save_arrays(arrays))
    with pytest.raises(ArtifactError, match=r"warm\.safetensors does not fit config\.json"):
        load_model(directory)


@pytest.mark.parametrize(
    "settings", [{"cell": "indrnn"}, {"training": {"strategy": "window", "lookback": 12}}]
)
def test_encoders_read_whole_keep_no_states(frame, settings):  # fmt: skip
    model = fit(Panel.from_frame(frame), **settings)
    assert model.warm is None
    assert model.describe()["warm_states"] is None


def test_states_that_other_weights_read_are_not_used(trained, later):
    """One member of an ensemble taken alone keeps the ensemble's states, which its
    network did not read: it reads its histories whole."""
    model = network_alone(trained)
    assert model.warm.read_by(model.network)
    member = model.network.members[1]
    alone = replace(model, network=member, config=replace(model.config, members=1))
    assert not alone.warm.read_by(alone.network)
    np.testing.assert_allclose(
        forecast(alone, later).values,
        forecast(replace(alone, warm=None), later).values,
        rtol=1e-6,
        atol=1e-6,
    )


def test_states_read_in_parts_and_small_batches_are_the_states_read_at_once(trained, frame):
    """Large panels are laid out a part at a time (as a forecast's reads are)."""
    shorter = frame[frame.groupby("unique_id").cumcount(ascending=False) >= 5]
    panel = Panel.from_frame(shorter)
    parts = warm_states(trained, panel, batch_size=1, series_per_lay_out=3)
    np.testing.assert_array_equal(parts.steps, trained.warm.steps)
    np.testing.assert_array_equal(parts.fingerprints, trained.warm.fingerprints)
    np.testing.assert_array_equal(parts.network, trained.warm.network)
    for name, array in trained.warm.tensors.items():
        np.testing.assert_allclose(parts.tensors[name], array, rtol=1e-5, atol=1e-6)


def test_shares_of_the_states_join_into_the_states_of_every_series(trained):
    """Under torchrun each process reads a consecutive share; rank 0 joins them."""
    whole = trained.warm
    cut = 1

    def share(rows: slice):
        tensors = {name: array[:, :, rows] for name, array in whole.tensors.items()}
        return replace(whole, steps=whole.steps[rows], fingerprints=whole.fingerprints[rows],
                       tensors=tensors)  # fmt: skip

    joined = type(whole).joined([share(slice(None, cut)), share(slice(cut, None))])
    assert joined.arrays().keys() == whole.arrays().keys()
    for name, array in whole.arrays().items():
        np.testing.assert_array_equal(joined.arrays()[name], array)
    other = replace(share(slice(cut, None)), network=np.zeros_like(whole.network))
    with pytest.raises(ValueError, match="different weights"):
        type(whole).joined([share(slice(None, cut)), other])
