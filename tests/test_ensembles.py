"""Ensembles: the median of the members, members trained in turn equal to members
trained alone, how many the budget holds, and the round trip through a model directory."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from rnncast import ModelConfig, TrainConfig, forecast, train
from rnncast import training as network_training
from rnncast.artifact import load_model, save_model
from rnncast.cli import app
from rnncast.config import DEFAULT_MEMBERS
from rnncast.ensembles import CHUNK_FACTORS, another_fits, member_training
from rnncast.errors import ArtifactError, ConfigError
from rnncast.model_files import MANIFEST
from rnncast.model_records import check_history
from rnncast.nn.ensemble import Ensemble, median_of_members
from rnncast.nn.forecaster import Forecaster
from rnncast.scaling import to_model_space
from rnncast.selection import choose_members
from tests.test_training import HORIZON, seasonal_panel

runner = CliRunner()


def tiny() -> ModelConfig:
    return ModelConfig(horizon=HORIZON, cell="gru", hidden=8, layers=1)


def settings(**overrides) -> TrainConfig:
    return TrainConfig(**{"device": "cpu", "max_epochs": 2, "patience": 100, "test_size": 0,
                          "refit": False, "seed": 3, **overrides})  # fmt: skip


def forecaster(seed: int) -> Forecaster:
    torch.manual_seed(seed)
    return Forecaster(tiny(), n_inputs=5, n_future=4, n_series=3, recurrent_steps=12)


def test_the_median_of_identical_members_is_that_member() -> None:
    member = forecaster(0).eval()
    ensemble = Ensemble([member, copy.deepcopy(member), copy.deepcopy(member)]).eval()
    inputs, future = torch.randn(3, 10, 5), torch.randn(3, 10, HORIZON, 4)
    codes = torch.arange(3)
    with torch.no_grad():
        alone, _ = member(inputs, future, codes)
        together, _ = ensemble(inputs, future, codes)
    assert torch.equal(alone, together)


def test_the_median_takes_the_middle_member_or_the_mean_of_the_middle_two() -> None:
    values = torch.tensor([[5.0, 1.0], [1.0, 2.0], [3.0, 9.0], [100.0, 4.0]])  # (M=4, 2)
    assert median_of_members(values).tolist() == [4.0, 3.0]  # (3 + 5) / 2, (2 + 4) / 2
    assert median_of_members(values[:3]).tolist() == [3.0, 2.0]
    # One member far off moves the median of three not at all.
    assert median_of_members(torch.tensor([[1.0], [2.0], [1e9]])).tolist() == [2.0]


def test_an_ensemble_keeps_every_members_quantiles_in_order() -> None:
    members = [forecaster(seed).eval() for seed in range(4)]
    ensemble = Ensemble(members).eval()
    with torch.no_grad():
        out, _ = ensemble(torch.randn(3, 10, 5), torch.randn(3, 10, HORIZON, 4), torch.arange(3))
    assert out.shape == (3, 10, HORIZON, 3)
    assert (out.diff(dim=-1) >= 0).all()


def test_members_trained_in_turn_equal_members_trained_alone() -> None:
    panel = seasonal_panel(0, n_series=3, length=120)
    model = train(panel, tiny(), settings(ensemble=3))
    assert isinstance(model.network, Ensemble)
    assert model.config.members == 3
    assert [m["seed"] for m in model.history["members"]] == [3, 4, 5]
    chosen = model.training.chunk_len
    expected_chunks = [max(2, round(chosen * CHUNK_FACTORS[k])) for k in range(3)]
    assert [m["chunk_len"] for m in model.history["members"]] == expected_chunks
    # The members were trained on the model's space (monthly values above 0: logarithms).
    assert model.config.transform == "log"
    space = to_model_space(panel, "log")
    for index, member in enumerate(model.network.members):
        alone = network_training.train(
            space, tiny(), replace(member_training(model.training, index), max_time=None)
        )
        assert isinstance(alone.network, Forecaster)
        theirs, ours = alone.network.state_dict(), member.state_dict()
        assert theirs.keys() == ours.keys()
        assert all(torch.equal(theirs[name], ours[name]) for name in theirs), index


@pytest.mark.parametrize("strategy", ["tbptt", "window"])
def test_members_differ_and_their_median_is_the_forecast(strategy: str) -> None:
    panel = seasonal_panel(1, n_series=3, length=120)
    model = train(panel, tiny(), settings(ensemble=3, val_size=0, strategy=strategy))
    assert model.combination is None  # no validation: the networks' median alone
    median = forecast(model, panel).values
    alone = [forecast(replace(model, network=member, config=replace(model.config, members=1)),
                      panel).values for member in model.network.members]  # fmt: skip
    assert not np.allclose(alone[0], alone[1])
    np.testing.assert_allclose(median, np.median(np.stack(alone), axis=0), rtol=1e-5, atol=1e-5)


def test_another_member_is_trained_only_while_one_more_fits_the_budget() -> None:
    assert another_fits([], budget=1.0, refit_share=0.5)
    assert another_fits([10.0], budget=100.0, refit_share=0.2)  # (10 + 10) * 1.2 <= 100
    assert not another_fits([40.0], budget=100.0, refit_share=0.3)  # (40 + 40) * 1.3 > 100
    assert another_fits([20.0, 30.0], budget=100.0, refit_share=0.0)  # 50 + 25 <= 100
    assert not another_fits([20.0, 30.0], budget=100.0, refit_share=0.4)  # 75 * 1.4 > 100


@pytest.mark.all_default_members
def test_by_default_small_data_gets_the_default_members_and_a_full_budget_one() -> None:
    panel = seasonal_panel(2, n_series=3, length=120)
    # Two epochs of eight weights take well under a second: a budget of ten minutes
    # holds every default member.
    roomy = train(panel, tiny(), settings(max_time=600.0))
    # Validation then keeps those whose median forecasts best; the others are listed.
    kept, left_out = roomy.history["members"], roomy.history.get("left_out", [])
    assert roomy.config.members == len(kept) >= 1
    assert len(kept) + len(left_out) == DEFAULT_MEMBERS
    seeds = sorted(member["seed"] for member in kept + left_out)
    assert seeds == list(range(3, 3 + DEFAULT_MEMBERS))
    assert all(member["validation_mase"] > 0 for member in left_out)
    # A budget the first network fills leaves none for a second.
    full = train(panel, tiny(), settings(max_time=0.01, max_epochs=50))
    assert full.config.members == 1
    assert isinstance(full.network, Forecaster)
    assert len(full.history["members"]) == 1


def test_a_stop_after_the_first_member_keeps_it() -> None:
    panel = seasonal_panel(3, n_series=3, length=120)
    reasons: list[str] = []

    def on_epoch(report) -> None:
        if report.epoch == 2:  # the first member's last epoch: a SIGTERM arrives
            reasons.append("SIGTERM")

    model = train(panel, tiny(), settings(ensemble=4), on_epoch=on_epoch,
                  should_stop=lambda: reasons[0] if reasons else None)  # fmt: skip
    assert model.config.members == 1
    assert len(model.history["members"]) == 1


def test_an_ensemble_round_trips_through_its_model_directory(tmp_path: Path) -> None:
    panel = seasonal_panel(4, n_series=3, length=120)
    model = train(panel, tiny(), settings(ensemble=2, refit=True))
    assert model.history["refit"]["epochs"] >= 2  # each member refit, summed
    saved = save_model(model, tmp_path / "model")
    config = json.loads((saved / "config.json").read_text())
    assert config["model"]["members"] == 2 and config["training"]["ensemble"] == 2
    manifest = json.loads((saved / MANIFEST).read_text())
    assert {"model.safetensors", "config.json", "history.json"} <= set(manifest["files"])
    loaded = load_model(saved)
    assert isinstance(loaded.network, Ensemble) and len(loaded.network.members) == 2
    np.testing.assert_array_equal(forecast(loaded, panel).values, forecast(model, panel).values)


def test_the_cli_trains_forecasts_and_inspects_an_ensemble(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    panel = seasonal_panel(5, n_series=3, length=120)
    pd.concat([pd.DataFrame({"unique_id": str(name), "y": panel.series(i),
                             "ds": pd.date_range("2020-01-01", periods=panel.lengths[i])})
               for i, name in enumerate(panel.ids)]).to_csv(data, index=False)  # fmt: skip
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", str(data), "--horizon", str(HORIZON), "--out",
                                 str(out), "--ensemble", "3", "--max-epochs", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    forecasts = tmp_path / "f.csv"
    result = runner.invoke(app, ["forecast", str(data), "--model", str(out), "--out",
                                 str(forecasts)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(forecasts.read_text().splitlines()) == 1 + 3 * HORIZON
    result = runner.invoke(app, ["inspect", str(out), "--json"])
    assert result.exit_code == 0, result.output
    described = json.loads(result.stdout)
    assert described["model"]["members"] == 3
    assert len(described["history"]["members"]) == 3


@pytest.mark.parametrize("count", [0, 65])
def test_an_ensemble_outside_1_to_64_is_refused(count: int) -> None:
    with pytest.raises(ConfigError, match="ensemble must be between 1 and 64"):
        TrainConfig(ensemble=count)


def _validation(members: np.ndarray, actual: np.ndarray) -> dict[str, np.ndarray]:
    """Arrays as fitting.Validation holds them: each member's medians (M, S, K, H)."""
    return {
        "medians": members,
        "actual": actual,
        "scale": np.ones((*actual.shape[:2], 1)),
    }


def test_only_members_clearly_worse_on_validation_are_left_out() -> None:
    rng = np.random.default_rng(0)
    actual = rng.normal(size=(40, 2, 6))  # (S, K, H)
    good = [actual + rng.normal(0, 0.5, actual.shape) for _ in range(3)]
    stuck = actual + 3.0  # a member training left far off, as on a plateau
    members = np.stack([stuck, good[0], good[1], good[2]])
    # The good members differ by noise alone: all kept; the stuck one is left out.
    assert choose_members(_validation(members, actual)) == [1, 2, 3]
    # Identical members are all kept.
    same = np.stack([good[0], good[0]])
    assert choose_members(_validation(same, actual)) == [0, 1]
    # A little different, within the noise of 80 forecasts, is kept too.
    slightly = good[1] + rng.normal(0, 0.05, actual.shape)
    kept = choose_members(_validation(np.stack([good[0], slightly]), actual))
    assert kept == [0, 1]
    assert choose_members(_validation(np.stack([stuck, good[1]]), actual)) == [1]
    # One validation forecast tells nothing of noise: every member is kept.
    single = np.stack([stuck, good[1]])[:, :1, :1]
    assert choose_members(_validation(single, actual[:1, :1])) == [0, 1]


def test_an_ensemble_asked_for_keeps_every_member_and_left_out_ones_are_saved(tmp_path) -> None:
    panel = seasonal_panel(2, n_series=3, length=120)
    asked = train(panel, tiny(), settings(ensemble=4))
    assert asked.config.members == 4 and "left_out" not in asked.history
    entry = {**asked.history["members"][3], "validation_mase": 1.25}
    with_left_out = replace(asked, history={**asked.history, "left_out": [entry]})
    save_model(with_left_out, tmp_path / "model")
    assert load_model(tmp_path / "model").history["left_out"] == [entry]
    shown = runner.invoke(app, ["inspect", str(tmp_path / "model")], env={"COLUMNS": "200"})
    assert "in 4 members (forecasts: their median); 1 more trained and left out" in shown.stdout
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    history["left_out"][0]["why"] = "unknown"
    with pytest.raises(ArtifactError, match=r"left_out\[0\] has the unknown key"):
        check_history(history, "history.json")


def test_members_left_out_are_not_refitted_and_stay_listed_after_the_refit(monkeypatch) -> None:
    import rnncast.ensembles
    import rnncast.selection

    panel = seasonal_panel(2, n_series=3, length=120)
    # Whatever validation says, keep the second member alone.
    monkeypatch.setattr(rnncast.selection, "choose_members", lambda arrays: [1])
    model = train(panel, tiny(), settings(max_time=600.0, refit=True))
    assert model.config.members == 1 and isinstance(model.network, Forecaster)
    assert [member["seed"] for member in model.history["members"]] == [4]
    assert "refit" in model.history
    seeds_left_out = [member["seed"] for member in model.history["left_out"]]
    # As many members as the budget held: the default number (three in tests, conftest.py).
    assert seeds_left_out == [3, *range(5, 3 + rnncast.ensembles.DEFAULT_MEMBERS)]


def test_a_member_worse_alone_is_kept_while_the_median_gains_from_it() -> None:
    # Four members with independent errors and a fifth a little biased: on 2,400
    # validation forecasts it is clearly worse alone, yet the median of five is no
    # worse with it than the median of the four without it, so it stays.
    rng = np.random.default_rng(1)
    actual = rng.normal(size=(400, 2, 6))
    members = np.stack([actual + rng.normal(0, 0.5, actual.shape) for _ in range(4)]
                       + [actual + 0.15 + rng.normal(0, 0.5, actual.shape)])  # fmt: skip
    arrays = _validation(members, actual)
    alone = np.abs(members - actual).mean(axis=(1, 2, 3))
    assert alone[4] > alone[:4].max()  # the worst one alone
    assert choose_members(arrays) == [0, 1, 2, 3, 4]
