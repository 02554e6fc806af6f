"""End to end through the command line: train on the hourly sample, forecast to Parquet,
CSV and stdout, inspect, and the exit codes and files of the failure paths."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rnncast.cli import app
from rnncast.model_files import MANIFEST, MODEL_FILES, REPORT_FILES, SETTINGS_FILE, WARM_FILE
from tests.conftest import SAMPLE_DATA

runner = CliRunner()
LOAD = SAMPLE_DATA / "load_hourly.parquet"
COLUMNS = ["unique_id", "ds", "y_hat", "y_q10", "y_q50", "y_q90"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("cli") / "load_model"
    result = invoke(
        "train", LOAD, "--horizon", 24, "--covariates", "temperature",
        "--out", out, "--max-epochs", 2, "--hidden", 8,
    )  # fmt: skip
    return out, result


@pytest.fixture(scope="module")
def model_dir(trained) -> Path:
    out, result = trained
    assert result.exit_code == 0, result.stderr
    return out


def forecast(model: Path, out, data: Path = LOAD, *extra):
    return invoke("forecast", data, "--model", model, "--out", out, *extra)


def expected_ds() -> dict[str, list[pd.Timestamp]]:
    """The 24 hours after each meter's last timestamp in the sample."""
    sample = pd.read_parquet(LOAD)
    ends = pd.to_datetime(sample.groupby("unique_id")["ds"].max())
    return {
        str(name): list(pd.date_range(end + pd.Timedelta(hours=1), periods=24, freq="h"))
        for name, end in ends.items()
    }


def check_schema(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == COLUMNS
    assert frame.shape == (5 * 24, 6)
    assert frame.groupby("unique_id").size().to_dict() == {f"meter_0{i}": 24 for i in range(1, 6)}
    ds = pd.to_datetime(frame["ds"])
    for name, rows in ds.groupby(frame["unique_id"]):
        assert rows.tolist() == expected_ds()[name], name
    values = frame[COLUMNS[2:]].to_numpy()
    assert np.isfinite(values).all()
    assert (frame["y_q10"] <= frame["y_q50"]).all() and (frame["y_q50"] <= frame["y_q90"]).all()
    np.testing.assert_array_equal(frame["y_hat"], frame["y_q50"])


def test_train_on_the_sample_writes_a_model_directory(trained) -> None:
    out, result = trained
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # data goes to files; messages to stderr
    assert "epoch 1:" in result.stderr and "epoch 2:" in result.stderr
    assert re.search(r"best epoch [12] of 2 \(stopped: max_epochs\)", result.stderr)
    assert f"model written to {out}" in result.stderr
    expected = [
        *MODEL_FILES,
        WARM_FILE,
        MANIFEST,
        SETTINGS_FILE,
        *REPORT_FILES,
    ]  # + report, settings
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)


def test_forecast_to_parquet(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.parquet"
    result = forecast(model_dir, out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert f"wrote 24 steps of 5 series to {out}" in result.stderr
    frame = pd.read_parquet(out)
    check_schema(frame)
    assert pd.api.types.is_datetime64_any_dtype(frame["ds"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.parquet"]  # no temporary left


def test_forecast_to_csv_matches_parquet(model_dir: Path, tmp_path: Path) -> None:
    assert forecast(model_dir, tmp_path / "f.parquet").exit_code == 0
    result = forecast(model_dir, tmp_path / "f.csv")
    assert result.exit_code == 0, result.stderr
    csv = pd.read_csv(tmp_path / "f.csv")
    check_schema(csv)
    parquet = pd.read_parquet(tmp_path / "f.parquet")
    np.testing.assert_allclose(csv[COLUMNS[2:]], parquet[COLUMNS[2:]], rtol=1e-12)


def test_forecast_to_stdout_is_csv_and_nothing_else(model_dir: Path) -> None:
    result = forecast(model_dir, "-")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(",".join(COLUMNS) + "\n")
    check_schema(pd.read_csv(io.StringIO(result.stdout)))
    assert "wrote 24 steps of 5 series to stdout" in result.stderr
    assert "wrote" not in result.stdout


def test_quiet_forecast_to_stdout_prints_only_data(model_dir: Path) -> None:
    result = forecast(model_dir, "-", LOAD, "--quiet")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 1 + 5 * 24


def test_inspect_describes_the_model(model_dir: Path) -> None:
    result = invoke("inspect", model_dir)
    assert result.exit_code == 0, result.stderr
    assert f"rnncast model: {model_dir}" in result.stdout
    assert "lstm, 1 x 8" in result.stdout
    assert "24 steps, quantiles 0.1, 0.5, 0.9" in result.stdout
    assert "5 series, h, target y, covariates temperature" in result.stdout
    assert "(stopped: max_epochs)" in result.stdout
    assert "5 series: a forecast of their training history reads only the steps after it" in (
        result.stdout
    )


def test_inspect_json(model_dir: Path) -> None:
    result = invoke("inspect", model_dir, "--json")
    assert result.exit_code == 0, result.stderr
    description = json.loads(result.stdout)
    assert {"model", "training", "network", "data", "history"} <= description.keys()
    assert (description["model"]["cell"], description["model"]["hidden"]) == ("lstm", 8)
    assert description["model"]["horizon"] == 24
    assert description["training"]["max_epochs"] == 2
    assert description["network"]["parameters"] > 0
    assert description["data"]["covariates"] == ["temperature"]
    assert description["data"]["frequency"] == "h"
    assert description["series"] == 5
    assert [e["epoch"] for e in description["history"]["epochs"]] == [1, 2]
    assert description["history"]["stopped"] == "max_epochs"
    # An LSTM's h and c, float32, for every member, layer and series.
    model = description["model"]
    held = 2 * model["members"] * model["layers"] * 5 * model["hidden"] * 4
    assert description["warm_states"] == {"series": 5, "bytes": held}


def test_an_unsupported_out_suffix_is_a_usage_error(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.txt"
    result = forecast(model_dir, out)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: --out {out}: write to a .csv or .parquet file (or - for CSV on stdout)\n"
    )
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_a_bad_model_dir_creates_no_output_file(tmp_path: Path) -> None:
    model = tmp_path / "not_a_model"
    model.mkdir()
    out = tmp_path / "f.csv"
    result = forecast(model, out)
    assert result.exit_code == 4
    assert result.stderr == (
        f"error: {model} is not a complete model directory: manifest.json is missing\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_model"]


def test_a_failed_forecast_leaves_the_previous_output_untouched(
    model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "f.csv"
    out.write_text("previous forecasts\n")
    sample = pd.read_parquet(LOAD).drop(columns=["temperature"])
    data = tmp_path / "no_temperature.parquet"
    sample.to_parquet(data)
    result = forecast(model_dir, out, data)
    assert result.exit_code == 3
    assert result.stderr.startswith(
        f"error: {data} does not fit the model: it has no column 'temperature' (covariate)."
    )
    assert out.read_text() == "previous forecasts\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv", "no_temperature.parquet"]


def tiny_csv(path: Path, periods: int = 120) -> Path:
    rng = np.random.default_rng(0)
    frames = []
    for name in ("a", "b"):
        steps = np.arange(periods)
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": name,
                    "ds": pd.date_range("2000-01-01", periods=periods, freq="MS"),
                    "y": 10 + 3 * np.sin(2 * np.pi * steps / 12) + rng.normal(0, 0.3, periods),
                }
            )
        )
    pd.concat(frames).to_csv(path, index=False)
    return path


def test_quantiles_option_names_the_columns(tmp_path: Path) -> None:
    data = tiny_csv(tmp_path / "tiny.csv")
    model = tmp_path / "model"
    result = invoke(
        "train", data, "--horizon", 6, "--out", model, "--hidden", 8, "--max-epochs", 2,
        "--quantiles", "0.025,0.5,0.975", "--quiet",
    )  # fmt: skip
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    result = forecast(model, "-", data)
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(io.StringIO(result.stdout))
    assert list(frame.columns) == ["unique_id", "ds", "y_hat", "y_q2.5", "y_q50", "y_q97.5"]
    assert len(frame) == 2 * 6
    assert (frame["y_q2.5"] < frame["y_q50"]).all() and (frame["y_q50"] < frame["y_q97.5"]).all()


def test_divergence_exits_5_and_suggests_a_lower_lr(tmp_path: Path) -> None:
    data = tiny_csv(tmp_path / "tiny.csv")
    model = tmp_path / "model"
    result = invoke(
        "train", data, "--horizon", 12, "--out", model, "--hidden", 8, "--max-epochs", 3,
        "--cell", "indrnn", "--loss", "mse", "--lr", "1e6", "--clip", 0,
    )  # fmt: skip
    assert result.exit_code == 5, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the training loss became ")
    assert "try a lower --lr (now 1e+06)" in last
    assert "Traceback" not in result.stderr
    assert not (model / MANIFEST).exists()


def test_train_refuses_an_out_dir_holding_other_files(tmp_path: Path) -> None:
    data = tiny_csv(tmp_path / "tiny.csv")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    result = invoke("train", data, "--horizon", 6, "--out", tmp_path / "out", "--max-epochs", 1)
    assert result.exit_code == 2
    assert "already holds files that are not rnncast's (notes.txt)" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["notes.txt"]


def test_train_refuses_an_out_dir_holding_its_data(tmp_path: Path) -> None:
    # Issue 11: the model directory would replace the folder the data is read from.
    data = tiny_csv(tmp_path / "tiny.csv")
    result = invoke("train", data, "--horizon", 6, "--out", tmp_path, "--max-epochs", 1)
    assert result.exit_code == 2
    assert f"would replace the data it is computed from ({data})" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.csv"]


def signalling_train(*signals: int):
    """rnncast.training.train, sending ``signals`` to this process on its third poll of
    should_stop: real signals reach the CLI's handlers from inside training."""
    import os

    import rnncast.training

    real_train = rnncast.training.train

    def train(*args, should_stop, **kwargs):
        polls = 0

        def poll():
            nonlocal polls
            polls += 1
            if polls == 3:
                for number in signals:
                    os.kill(os.getpid(), number)
            return should_stop()

        return real_train(*args, should_stop=poll, **kwargs)

    return train


def test_sigint_during_training_saves_a_checkpoint_and_resume_finishes(
    tmp_path: Path, monkeypatch
) -> None:
    # A real SIGINT, sent to this process from inside training (on the third poll of
    # should_stop), must reach the CLI's handler: stop after the batch, checkpoint, 130.
    import signal

    import rnncast.training

    train_then_signal = signalling_train(signal.SIGINT)
    data = tiny_csv(tmp_path / "tiny.csv")
    model = tmp_path / "model"
    options = ["--horizon", 6, "--out", model, "--hidden", 8, "--max-epochs", 3]
    before = signal.getsignal(signal.SIGINT)
    with monkeypatch.context() as patch:
        patch.setattr(rnncast.training, "train", train_then_signal)
        result = invoke("train", data, *options)
    assert result.exit_code == 130, result.stderr
    assert (
        f"error: training stopped by SIGINT in epoch 1; checkpoint saved in {model}, "
        "continue with --resume" in result.stderr
    )
    assert sorted(p.name for p in model.iterdir()) == ["checkpoint.safetensors"]
    assert signal.getsignal(signal.SIGINT) is before  # the CLI put the old handler back

    result = invoke("train", data, *options, "--resume")
    assert result.exit_code == 0, result.stderr
    assert "resuming from epoch 0" in result.stderr
    assert sorted(p.name for p in model.iterdir()) == sorted(
        [*MODEL_FILES, WARM_FILE, MANIFEST, SETTINGS_FILE, *REPORT_FILES]
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.drop(columns=["temperature"]), "it has no column 'temperature' (covariate)"),
        (lambda d: d.rename(columns={"y": "load"}), "it has no column 'y' (target)"),
        (lambda d: d.rename(columns={"unique_id": "meter"}),
         "it has no column 'unique_id' (series id)"),
        (lambda d: d[d.ds.dt.hour % 2 == 0],
         "the model was trained on h data; this data is every 2h (2h)"),
    ],
)  # fmt: skip
def test_forecast_says_how_the_data_differs_from_the_model(
    model_dir: Path, tmp_path: Path, change, message: str
) -> None:
    # Issue 5: never forecast silently from the wrong columns or grid.
    data = tmp_path / "new.csv"
    change(pd.read_parquet(LOAD)).to_csv(data, index=False)
    result = forecast(model_dir, tmp_path / "f.csv", data)
    assert result.exit_code == 3
    assert message in result.stderr
    if "column" in message:
        assert (
            "The model was trained on unique_id (series id), ds (time), y (target), "
            "temperature (covariate)" in result.stderr
        )
    assert not (tmp_path / "f.csv").exists()


def test_forecast_horizon_guard(model_dir: Path, tmp_path: Path) -> None:
    result = forecast(model_dir, tmp_path / "f.csv", LOAD, "--horizon", 48)
    assert result.exit_code == 2
    assert f"--horizon 48, but the model in {model_dir} forecasts 24 steps" in result.stderr
    assert forecast(model_dir, tmp_path / "f.csv", LOAD, "--horizon", 24).exit_code == 0


def test_a_sigterm_after_training_lets_the_model_be_saved(tmp_path: Path, monkeypatch) -> None:
    # Issue 5: once training is over, a first SIGTERM waits for the model to be saved.
    import os
    import signal

    import rnncast.evaluation

    real_holdout = rnncast.evaluation.holdout

    def signalled_holdout(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real_holdout(*args, **kwargs)

    monkeypatch.setattr(rnncast.evaluation, "holdout", signalled_holdout)
    data = tiny_csv(tmp_path / "tiny.csv")
    model = tmp_path / "model"
    result = invoke("train", data, "--horizon", 6, "--out", model, "--hidden", 4,
                    "--max-epochs", 1)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "warning: SIGTERM arrived after training; the model was saved first" in result.stderr
    assert sorted(p.name for p in model.iterdir()) == sorted(
        [*MODEL_FILES, WARM_FILE, MANIFEST, SETTINGS_FILE, *REPORT_FILES]
    )


def test_a_second_sigterm_stops_training_at_once_with_143(tmp_path: Path, monkeypatch) -> None:
    import signal

    import rnncast.training

    twice = signalling_train(signal.SIGTERM, signal.SIGTERM)
    monkeypatch.setattr(rnncast.training, "train", twice)
    data = tiny_csv(tmp_path / "tiny.csv")
    model = tmp_path / "model"
    result = invoke("train", data, "--horizon", 6, "--out", model, "--hidden", 4,
                    "--max-epochs", 3)  # fmt: skip
    assert result.exit_code == 143, result.stderr
    assert result.stderr.splitlines()[-1] == "error: stopped by a second SIGTERM"
    assert sorted(p.name for p in model.iterdir()) == ["checkpoint.safetensors"]


def test_the_origin_stride_is_saved_shown_and_refused_with_windows(tmp_path: Path) -> None:
    data = tiny_csv(tmp_path / "tiny.csv")
    model = tmp_path / "model"
    result = invoke(
        "train", data, "--horizon", 6, "--out", model, "--hidden", 8, "--max-epochs", 2,
        "--origin-stride", 3, "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    config = json.loads((model / "config.json").read_text())
    assert config["training"]["origin_stride"] == 3
    assert "scoring one origin in 3" in invoke("inspect", model).stdout
    result = invoke(
        "train", data, "--horizon", 6, "--out", tmp_path / "windows", "--strategy", "window",
        "--origin-stride", 2,
    )  # fmt: skip
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --origin-stride applies to --strategy tbptt only"
    )


def train_one_epoch(data: Path, out: Path, horizon: int, *extra) -> tuple[str, dict]:
    """Train a small one-member model for one epoch: its log and ``inspect --json``."""
    result = invoke("train", data, "--horizon", horizon, "--out", out, "--hidden", 8,
                    "--max-epochs", 1, "--ensemble", 1, *extra)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return result.stderr, json.loads(invoke("inspect", out, "--json").stdout)


def test_monthly_data_above_zero_is_modelled_on_its_logarithms(tmp_path: Path) -> None:
    data = tiny_csv(tmp_path / "tiny.csv")  # monthly, every value above 0
    model = tmp_path / "model"
    logged, described = train_one_epoch(data, model, 6)
    assert "every value above 0: the model forecasts their logarithms" in logged
    assert described["model"]["transform"] == "log"
    assert described["model"]["scaler"] == "standard"  # monthly: a season, so its own
    assert "modelled on the logarithms" in invoke("inspect", model).stdout
    kept = tmp_path / "kept"
    assert train_one_epoch(data, kept, 6, "--transform", "none")[1]["model"]["transform"] == "none"
    # A value of 0 in new data: one line naming the file, series, column and time;
    # exit 3, and no forecast file.
    frame = pd.read_csv(data)
    frame.loc[frame.index[-1], "y"] = 0.0
    zero = tmp_path / "zero.csv"
    frame.to_csv(zero, index=False)
    out = tmp_path / "f.csv"
    result = forecast(model, out, zero)
    assert result.exit_code == 3
    assert "series 'b' has 0 in column 'y' at 2009-12-01" in result.stderr
    assert "--transform none" in result.stderr
    assert str(zero) in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
    assert forecast(kept, out, zero).exit_code == 0
    result = invoke("train", data, "--horizon", 6, "--out", tmp_path / "m", "--transform", "ln")
    assert result.exit_code == 2
    assert "transform must be one of auto, log, none; got 'ln'" in result.stderr


def test_yearly_data_above_zero_shares_one_scale_on_its_logarithms(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    years = pd.date_range("1970-01-01", periods=30, freq="YS")
    frame = pd.concat([pd.DataFrame({"unique_id": name, "ds": years,
                                     "y": level * np.exp(np.cumsum(rng.normal(0.05, 0.1, 30)))})
                       for name, level in (("a", 100.0), ("b", 5000.0), ("c", 2.0))])  # fmt: skip
    data = tmp_path / "yearly.csv"
    frame.to_csv(data, index=False)
    model = tmp_path / "model"
    logged, described = train_one_epoch(data, model, 3)
    assert "one scale for every series" in logged
    assert (described["model"]["transform"], described["model"]["scaler"]) == ("log", "shared")
    assert "one scale for every series" in invoke("inspect", model).stdout
    # A series the model never saw is forecast on the same scale, in its own units.
    stranger = frame[frame["unique_id"] == "a"].assign(unique_id="z", y=lambda f: 7 * f["y"])
    both = tmp_path / "both.csv"
    pd.concat([frame, stranger]).to_csv(both, index=False)
    out = tmp_path / "f.csv"
    assert forecast(model, out, both).exit_code == 0
    point = pd.read_csv(out).groupby("unique_id")["y_hat"].apply(np.array)
    np.testing.assert_allclose(point["z"], 7 * point["a"], rtol=1e-4)
    kept = tmp_path / "kept"
    assert train_one_epoch(data, kept, 3, "--scaler", "standard")[1]["model"]["scaler"] == (
        "standard"
    )
    result = invoke("train", data, "--horizon", 3, "--out", tmp_path / "m", "--scaler", "minmax")
    assert result.exit_code == 2
    assert "scaler must be one of auto, standard, meanabs, robust, shared; got 'minmax'" in (
        result.stderr
    )


def test_a_run_whose_options_leave_nothing_to_the_clock_repeats_on_a_slower_machine(
    tmp_path: Path,
) -> None:
    # The README's --seed row: with the members, their threads and a budget that no
    # member reaches all fixed, the clock decides nothing. The second run's clock runs
    # 50 times faster, as a far slower machine's would.
    import time

    pinned = ("--horizon", 24, "--seed", 3, "--ensemble", 2, "--threads", 1, "--max-time",
              100_000, "--max-epochs", 2, "--hidden", 8)  # fmt: skip
    first = invoke("train", LOAD, *pinned, "--out", tmp_path / "first")
    assert first.exit_code == 0, first.stderr
    real = time.perf_counter
    began = real()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "perf_counter", lambda: began + 50 * (real() - began))
        second = invoke("train", LOAD, *pinned, "--out", tmp_path / "second")
    assert second.exit_code == 0, second.stderr
    weights = [(tmp_path / run / "model.safetensors").read_bytes() for run in ("first", "second")]
    assert weights[0] == weights[1]
    history = json.loads((tmp_path / "second" / "history.json").read_text())
    assert len(history["members"]) == 2
