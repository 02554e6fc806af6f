"""End to end through the command line: future, static and holiday covariates.

Two meters, 72 hourly steps each; a forecast file adds H = 6 future rows per series
(target empty, ``promo`` filled) on Good Friday 2024, a public holiday in DE and not
in FR. Every refusal is checked for its exit code and its one-line message, which
names the file, the column (where one applies), the series and the first bad
timestamp or row.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rnncast.cli import app
from tests.conftest import SAMPLE_DATA

runner = CliRunner()
H = 6
LENGTH = 72  # history steps per series
START = pd.Timestamp("2024-03-26 00:00")
LAST = "2024-03-28 23:00:00"  # each series' last value
FIRST = "2024-03-29 00:00:00"  # the first forecast step: Good Friday
COLUMNS = ["unique_id", "ds", "y_hat", "y_q10", "y_q50", "y_q90"]
FAST = ["--horizon", H, "--hidden", 8, "--max-epochs", 2, "--seed", 1, "--ensemble", 1]
ROLES = [
    "--covariates", "temp", "--future-covariates", "promo",
    "--static-covariates", "region,area", "--holidays", "DE", "--holidays-column", "country",
]  # fmt: skip
# Series id, region (text static), area (numeric static), country (holidays column).
METERS = (("a", "north", 100.0, "DE"), ("b", "south", 150.0, "FR"))


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def frame(meters=METERS, future: int = H) -> pd.DataFrame:
    """LENGTH steps of history per series, then ``future`` rows with the target empty."""
    rng = np.random.default_rng(0)
    parts = []
    for number, (name, region, area, country) in enumerate(meters):
        steps = np.arange(LENGTH + future)
        promo = (steps % 24 >= 18).astype(float)
        y = 10 + number + 3 * np.sin(2 * np.pi * steps / 24) + 2 * promo
        y = y + rng.normal(0, 0.2, steps.size)
        y[LENGTH:] = np.nan
        parts.append(
            pd.DataFrame(
                {
                    "unique_id": name,
                    "ds": pd.date_range(START, periods=steps.size, freq="h"),
                    "y": y,
                    "temp": rng.normal(15, 2, steps.size),
                    "promo": promo,
                    "region": region,
                    "area": area,
                    "country": country,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def ahead(data: pd.DataFrame, series: str | None = None) -> pd.Series:
    """Which rows are future rows (of ``series``, or of any)."""
    rows = data["y"].isna()
    return rows if series is None else rows & (data["unique_id"] == series)


def at(data: pd.DataFrame, when: str) -> pd.Series:
    return data["ds"] == pd.Timestamp(when)


def write(data: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        data.to_parquet(path, index=False)
    else:
        data.to_csv(path, index=False)
    return path


def train(data: Path, out: Path, *extra):
    return invoke("train", data, "--out", out, *FAST, *extra)


def forecast(model: Path, data: Path, out, *extra):
    return invoke("forecast", data, "--model", model, "--out", out, *extra)


def assert_refused(result, code: int, message: str) -> None:
    """Exit ``code`` with exactly one line on stderr, ``error: message``, and no data."""
    assert result.exit_code == code, result.stderr
    assert result.stderr == f"error: {message}\n"
    assert result.stdout == ""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("covariates")


@pytest.fixture(scope="module")
def history_file(folder: Path) -> Path:
    """The training file: history only."""
    data = frame()
    return write(data[~ahead(data)], folder / "history.csv")


@pytest.fixture(scope="module")
def forecast_file(folder: Path) -> Path:
    """History and H future rows per series."""
    return write(frame(), folder / "forecast.csv")


@pytest.fixture(scope="module")
def model(folder: Path, history_file: Path) -> Path:
    """A model trained with all four roles: past, future, static and holidays."""
    out = folder / "model"
    result = train(history_file, out, *ROLES)
    assert result.exit_code == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def static_model(folder: Path) -> Path:
    """A model whose static covariates come from ``--static FILE``."""
    data = frame().drop(columns=["region", "area"])
    history = write(data[~ahead(data)], folder / "no_statics.csv")
    statics = write(
        pd.DataFrame({"unique_id": ["a", "b"], "region": ["north", "south"]}),
        folder / "statics.csv",
    )
    out = folder / "static_model"
    result = train(history, out, "--static-covariates", "region", "--static", statics)
    assert result.exit_code == 0, result.stderr
    return out


def read_forecasts(result) -> pd.DataFrame:
    assert result.exit_code == 0, result.stderr
    return pd.read_csv(io.StringIO(result.stdout), parse_dates=["ds"])


def assert_forecasts(frame: pd.DataFrame, names: list[str]) -> None:
    """H rows per series from the step after its last value, finite and ordered."""
    assert list(frame.columns) == COLUMNS
    assert len(frame) == len(names) * H
    steps = list(pd.date_range(FIRST, periods=H, freq="h"))
    for name in names:
        assert frame.loc[frame["unique_id"] == name, "ds"].tolist() == steps, name
    assert np.isfinite(frame[COLUMNS[2:]].to_numpy()).all()
    assert (frame["y_q10"] <= frame["y_q50"]).all() and (frame["y_q50"] <= frame["y_q90"]).all()


# --- Happy paths ------------------------------------------------------------------


def test_forecast_with_all_four_roles(model: Path, forecast_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    result = forecast(model, forecast_file, out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"wrote {H} steps of 2 series to {out}\n"
    assert_forecasts(pd.read_csv(out, parse_dates=["ds"]), ["a", "b"])


def test_a_static_level_never_seen_in_training_is_forecast_as_unknown(
    model: Path, forecast_file: Path, tmp_path: Path
) -> None:
    known = read_forecasts(forecast(model, forecast_file, "-"))
    data = frame((*METERS[:1], ("b", "west", 150.0, "FR"), ("c", "east", 120.0, "DE")))
    result = forecast(model, write(data, tmp_path / "new_levels.csv"), "-")
    unknown = read_forecasts(result)
    assert result.stderr == f"wrote {H} steps of 3 series to stdout\n"
    assert_forecasts(unknown, ["a", "b", "c"])

    def quantiles(forecasts: pd.DataFrame, name: str) -> np.ndarray:
        return forecasts.loc[forecasts["unique_id"] == name, ["y_q10", "y_q90"]].to_numpy()

    np.testing.assert_allclose(quantiles(unknown, "a"), quantiles(known, "a"), rtol=1e-5)
    # b reads the embedding of "unknown" now, not that of "south".
    assert not np.allclose(quantiles(unknown, "b"), quantiles(known, "b"))


def test_config_json_records_the_roles(model: Path) -> None:
    data = json.loads((model / "config.json").read_text())["data"]
    assert data["covariates"] == ["temp"]
    assert data["future_covariates"] == ["promo"]
    assert data["inputs"]["static_covariates"] == {
        "numbers": [{"name": "area", "loc": 125.0, "scale": 25.0}],
        "categories": [{"name": "region", "levels": ["north", "south"]}],
    }
    assert data["inputs"]["holidays"] == {"countries": ["DE"], "column": "country"}
    settings = data["settings"]
    assert settings["static_covariates"] == ["region", "area"]
    assert (settings["holidays"], settings["holidays_column"]) == (["DE"], "country")


def test_a_training_file_may_carry_future_rows(
    model: Path, forecast_file: Path, tmp_path: Path
) -> None:
    # The future rows are left out of training: same losses as without them.
    out = tmp_path / "model"
    result = train(forecast_file, out, *ROLES)
    assert result.exit_code == 0, result.stderr
    assert f"refit on all {2 * LENGTH} steps of 2 series" in result.stderr
    assert f"{2 * H} future rows after the series' last values left out of training" in (
        result.stderr
    )

    def losses(directory: Path) -> list[tuple[float, float]]:
        epochs = json.loads((directory / "history.json").read_text())["epochs"]
        return [(epoch["train_loss"], epoch["val_loss"]) for epoch in epochs]

    assert losses(out) == losses(model)

    # ... and forecast reads them.
    forecasts = read_forecasts(forecast(out, forecast_file, "-"))
    assert_forecasts(forecasts, ["a", "b"])
    data = frame()
    data.loc[ahead(data), "promo"] = 1 - data.loc[ahead(data), "promo"]
    other = read_forecasts(forecast(out, write(data, tmp_path / "other_promo.csv"), "-"))
    assert not np.allclose(forecasts[["y_q10", "y_q90"]], other[["y_q10", "y_q90"]])

    result = invoke("inspect", out, "--json")
    assert result.exit_code == 0, result.stderr
    description = json.loads(result.stdout)["data"]
    assert description["steps"] == 2 * LENGTH
    assert description["trained_until"] == LAST
    assert description["covariates"] == ["temp"]
    assert description["future_covariates"] == ["promo"]
    assert description["columns"]["static_covariates"] == ["region", "area"]
    assert description["inputs"]["holidays"] == {"countries": ["DE"], "column": "country"}

    result = invoke("inspect", out)
    assert result.exit_code == 0, result.stderr
    assert (
        "known ahead  future covariates promo; static covariates area, region (2 levels); "
        "holidays DE, by column country" in result.stdout
    )


def test_check_counts_the_future_rows(forecast_file: Path) -> None:
    result = invoke(
        "check", forecast_file, "--future-covariates", "promo", "--horizon", H, "--json"
    )
    assert result.exit_code == 0, result.stderr
    description = json.loads(result.stdout)
    assert description["future_covariates"] == ["promo"]
    assert description["future_rows"] == {"series": 2, "steps": H}
    assert description["steps"] == 2 * LENGTH  # the future rows are no history
    assert description["end"] == LAST
    assert description["ingest"]["future_rows"] == 2 * H
    assert description["ingest"]["trimmed_rows"] == 0


def test_check_of_a_training_file_finds_no_future_rows(history_file: Path) -> None:
    result = invoke("check", history_file, "--future-covariates", "promo", "--horizon", H, "--json")
    assert result.exit_code == 0, result.stderr
    description = json.loads(result.stdout)
    assert description["future_covariates"] == ["promo"]
    assert description["future_rows"] == {"series": 0, "steps": H}
    assert description["ingest"]["future_rows"] == 0


# --- Future rows that do not fit ----------------------------------------------------


def test_a_file_without_future_rows(model: Path, history_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    assert_refused(
        forecast(model, history_file, out),
        3,
        f"{history_file}: series 'a' has no future rows (2 series in all): the model needs "
        f"'promo' on each forecast step after its last value, from {FIRST}; add those rows "
        "with the target empty",
    )
    assert not out.exists()


def test_one_series_without_future_rows(model: Path, tmp_path: Path) -> None:
    data = frame()
    path = write(data[~ahead(data, "b")], tmp_path / "b_without.csv")
    assert_refused(
        forecast(model, path, tmp_path / "f.csv"),
        3,
        f"{path}: series 'b' has no future rows: the model needs 'promo' on each forecast "
        f"step after its last value, from {FIRST}; add those rows with the target empty",
    )


def test_future_rows_that_start_late(model: Path, tmp_path: Path) -> None:
    data = frame()
    path = write(data[~(ahead(data, "b") & at(data, FIRST))], tmp_path / "late.csv")
    assert_refused(
        forecast(model, path, tmp_path / "f.csv"),
        3,
        f"{path}: series 'b': its future rows start at 2024-03-29 01:00:00, not at {FIRST}, "
        "the step after its last value",
    )


def test_a_gap_inside_the_future_rows(model: Path, tmp_path: Path) -> None:
    data = frame()
    path = write(data[~(ahead(data, "b") & at(data, "2024-03-29 02:00"))], tmp_path / "gap.csv")
    assert_refused(
        forecast(model, path, tmp_path / "f.csv"),
        3,
        f"{path}: series 'b' has 5 of the 6 future rows the forecast needs; the first missing "
        "is at 2024-03-29 02:00:00. Give 'promo' on each of the 6 steps after the last value, "
        "with the target empty",
    )


def test_fewer_future_rows_than_the_horizon(model: Path, tmp_path: Path) -> None:
    data = frame(future=4)
    path = write(data, tmp_path / "short.csv")
    assert_refused(
        forecast(model, path, tmp_path / "f.csv"),
        3,
        f"{path}: series 'a' has 4 of the 6 future rows the forecast needs; the first missing "
        "is at 2024-03-29 04:00:00. Give 'promo' on each of the 6 steps after the last value, "
        "with the target empty",
    )


def test_one_series_with_fewer_future_rows_than_the_horizon(model: Path, tmp_path: Path) -> None:
    data = frame()
    late = pd.Timestamp("2024-03-29 04:00")
    path = write(data[~(ahead(data, "b") & (data["ds"] >= late))], tmp_path / "b_short.csv")
    result = forecast(model, path, tmp_path / "f.csv")
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {path}: series 'b' has 4 of the 6 future rows")
    assert "the first missing is at 2024-03-29 04:00:00" in result.stderr


def test_a_future_row_without_its_future_covariate(model: Path, tmp_path: Path) -> None:
    data = frame()
    data.loc[ahead(data, "a") & at(data, "2024-03-29 03:00"), "promo"] = np.nan
    path = write(data, tmp_path / "blank.csv")
    assert_refused(
        forecast(model, path, tmp_path / "f.csv"),
        3,
        f"{path}: column 'promo', series 'a': no value at 2024-03-29 03:00:00, a future row; "
        "a future covariate needs a value on each of the forecast steps",
    )


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("promo", "future covariate"),
        ("region", "static covariate"),
        ("country", "holidays country"),
    ],
)
def test_forecast_data_lacking_a_column_of_a_role(
    model: Path, tmp_path: Path, name: str, role: str
) -> None:
    path = write(frame().drop(columns=[name]), tmp_path / f"no_{name}.csv")
    present = ", ".join(sorted(c for c in frame().columns if c != name))
    assert_refused(
        forecast(model, path, tmp_path / "f.csv"),
        3,
        f"{path} does not fit the model: it has no column {name!r} ({role}). The model was "
        "trained on unique_id (series id), ds (time), y (target), temp (covariate), "
        "promo (future covariate), region (static covariate), area (static covariate), "
        f"country (holidays country); this data has {present}",
    )
    assert not (tmp_path / "f.csv").exists()


def test_check_reads_future_rows_like_forecast(tmp_path: Path) -> None:
    data = frame()
    path = write(data[~(ahead(data, "b") & at(data, FIRST))], tmp_path / "late.csv")
    assert_refused(
        invoke("check", path, "--future-covariates", "promo", "--horizon", H),
        3,
        f"{path}: series 'b': its future rows start at 2024-03-29 01:00:00, not at {FIRST}, "
        "the step after its last value",
    )


# --- Static covariates --------------------------------------------------------------


@pytest.mark.parametrize("name", ["region", "area"])
def test_a_static_column_that_changes_within_a_series(
    model: Path, tmp_path: Path, name: str
) -> None:
    data = frame()
    row = int(np.flatnonzero(data["unique_id"] == "b")[5])
    data.loc[row, name] = "east" if name == "region" else 7.0
    path = write(data, tmp_path / "changes.csv")
    message = (
        f"{path}: static covariate {name!r} changes within series 'b' (row {row + 1}); a static "
        "covariate holds one value per series. Pass it with --future-covariates or "
        "--covariates if it varies in time"
    )
    assert_refused(forecast(model, path, tmp_path / "f.csv"), 3, message)
    assert_refused(invoke("check", path, "--static-covariates", name), 3, message)


@pytest.mark.parametrize(
    ("name", "suffix"),
    [
        ("area", ".csv"),
        ("area", ".parquet"),
        ("region", ".parquet"),
        ("region", ".csv"),
    ],
)  # fmt: skip
def test_a_static_column_with_an_empty_value(tmp_path: Path, name: str, suffix: str) -> None:
    data = frame()
    data.loc[int(np.flatnonzero(data["unique_id"] == "b")[5]), name] = None
    path = write(data[~ahead(data)], tmp_path / f"empty{suffix}")
    assert_refused(
        invoke("check", path, "--static-covariates", name),
        3,
        f"{path}: static covariate {name!r} has no value on some rows of series 'b'; a static "
        "covariate needs its one value on every row",
    )


def test_a_static_text_column_empty_for_a_whole_series(tmp_path: Path) -> None:
    data = frame()
    data.loc[data["unique_id"] == "b", "region"] = None
    path = write(data[~ahead(data)], tmp_path / "empty.csv")
    result = invoke("check", path, "--static-covariates", "region")
    assert result.exit_code == 3
    assert "static covariate 'region' has no value on some rows of series 'b'" in result.stderr


STATIC_FILES = {
    "lacks_b": (
        pd.DataFrame({"unique_id": ["a"], "region": ["north"]}),
        "no row for series 'b' (1 series in all); every series of the data needs its static "
        "covariates",
    ),
    "twice_b": (
        pd.DataFrame({"unique_id": ["a", "b", "b"], "region": ["north", "south", "south"]}),
        "series 'b' has two rows (2 and 3); give each series one",
    ),
    "no_id": (
        pd.DataFrame({"meter": ["a", "b"], "region": ["north", "south"]}),
        "no column 'unique_id'; it needs the series id column of the data and one row per series",
    ),
    "blank_b": (
        pd.DataFrame({"unique_id": ["a", "b"], "region": ["north", None]}),
        "column 'region' has no value for series 'b'",
    ),
}


@pytest.mark.parametrize("case", sorted(STATIC_FILES))
def test_a_bad_static_file(static_model: Path, tmp_path: Path, case: str) -> None:
    table, message = STATIC_FILES[case]
    statics = write(table, tmp_path / f"{case}.csv")
    data = frame().drop(columns=["region", "area"])
    path = write(data, tmp_path / "data.csv")
    assert_refused(
        invoke("check", path, "--static-covariates", "region", "--static", statics),
        3,
        f"--static {statics}: {message}",
    )
    assert_refused(
        forecast(static_model, path, tmp_path / "f.csv", "--static", statics),
        3,
        f"--static {statics}: {message}",
    )
    assert not (tmp_path / "f.csv").exists()


def test_a_model_trained_with_a_static_file_reads_it_again(
    static_model: Path, tmp_path: Path
) -> None:
    data = frame().drop(columns=["region", "area"])
    result = forecast(static_model, write(data, tmp_path / "data.csv"), "-")
    assert_forecasts(read_forecasts(result), ["a", "b"])


# --- Roles and holidays -------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--covariates", "temp", "--future-covariates", "temp"],
         "column 'temp' is named in --covariates and --future-covariates; give each column "
         "one role"),
        (["--future-covariates", "region", "--static-covariates", "region"],
         "column 'region' is named in --future-covariates and --static-covariates; give each "
         "column one role"),
        (["--future-covariates", "promo", "--holidays-column", "promo"],
         "--holidays-column 'promo' is named in --future-covariates too; it holds one country "
         "per series"),
    ],
)  # fmt: skip
def test_a_column_given_two_roles(
    history_file: Path, tmp_path: Path, options: list, message: str
) -> None:
    assert_refused(invoke("check", history_file, *options), 2, message)
    out = tmp_path / "model"
    assert_refused(train(history_file, out, *options), 2, message)
    assert not out.exists()


def test_an_unknown_holidays_country(history_file: Path, tmp_path: Path) -> None:
    for result in (
        invoke("check", history_file, "--holidays", "XX"),
        train(history_file, tmp_path / "model", "--holidays", "DE,XX"),
    ):
        assert result.exit_code == 2, result.stderr
        # The suggestions come from the holidays package's list of countries.
        assert result.stderr.startswith("error: --holidays: unknown country 'XX'; did you mean ")
        assert result.stderr.count("\n") == 1
    assert not (tmp_path / "model").exists()


def test_an_unknown_country_in_the_holidays_column(model: Path, tmp_path: Path) -> None:
    data = frame()
    data.loc[data["unique_id"] == "b", "country"] = "ZZ"
    path = write(data, tmp_path / "zz.csv")
    prefix = f"error: {path}: column 'country', series 'b': unknown country 'ZZ'; "
    result = forecast(model, path, tmp_path / "f.csv")
    assert result.exit_code == 3, result.stderr
    assert result.stderr.startswith(prefix) and result.stderr.count("\n") == 1
    assert not (tmp_path / "f.csv").exists()
    history = write(data[~ahead(data)], tmp_path / "zz_history.csv")
    result = train(history, tmp_path / "zz_model", "--holidays-column", "country")
    assert result.exit_code == 3, result.stderr
    # Found while reading, before any training.
    assert result.stderr.startswith(prefix.replace(str(path), str(history)))
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "zz_model").exists()


def test_check_refuses_an_unknown_country_in_the_holidays_column(tmp_path: Path) -> None:
    data = frame()
    data.loc[data["unique_id"] == "b", "country"] = "ZZ"
    path = write(data[~ahead(data)], tmp_path / "zz.csv")
    result = invoke("check", path, "--holidays-column", "country")
    assert result.exit_code == 3
    assert f"{path}: column 'country', series 'b': unknown country 'ZZ'" in result.stderr


def test_a_missing_holidays_column_is_named_as_such(history_file: Path) -> None:
    result = invoke("check", history_file, "--holidays-column", "land")
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: {history_file}: holidays column 'land' not found")


def test_evaluate_backtests_a_future_covariate_model_on_its_history(
    model: Path, history_file: Path, tmp_path: Path
) -> None:
    """Backtest origins inside the history read the future covariates from the rows
    after them: a file without future rows is fine for evaluate (not for forecast)."""
    out = tmp_path / "report"
    result = invoke(
        "evaluate", history_file, "--model", model, "--folds", "2", "--step", "6", "--out", out,
        "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    document = json.loads((out / "metrics.json").read_text())
    assert document["counts"]["points"] == 2 * 2 * 6
    assert np.isfinite(document["summary"]["model"]["mase"]["mean"])


def test_a_target_value_among_the_future_rows(model: Path, tmp_path: Path) -> None:
    """A value in b's third future row makes that row b's last value and the two
    before it a gap: the message names that value and where the empty targets begin,
    not the rows that then seem to be missing (issue 14)."""
    data = frame()
    third = pd.Timestamp(START) + pd.Timedelta(hours=LENGTH + 2)
    data.loc[ahead(data, "b") & (data["ds"] == third), "y"] = 12.5
    path = write(data, tmp_path / "stray.csv")
    first = (pd.Timestamp(START) + pd.Timedelta(hours=LENGTH)).strftime("%Y-%m-%d %H:%M:%S")
    assert_refused(
        forecast(model, path, tmp_path / "f.csv"),
        3,
        f"{path}: column 'y', series 'b': a target value at {third:%Y-%m-%d %H:%M:%S} follows "
        f"empty targets from {first}, and {H - 3} of the {H} future rows come after it. If the "
        f"rows from {first} on are its future rows, leave the target empty on all of them",
    )
    # A file without future rows, whose last values follow a missing one, is no
    # forecast file but a fine history: evaluate and check read it.
    history = data[~ahead(data) | ((data["unique_id"] == "b") & (data["ds"] <= third))]
    path = write(history, tmp_path / "history.csv")
    result = invoke("check", path, "--future-covariates", "promo", "--horizon", H)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(
    "roles",
    [
        ["--holidays-column", "country"],
        ["--holidays", "FR"],
        ["--static-covariates", "area"],
        ["--future-covariates", "promo"],
    ],
    ids=["holidays column alone", "one country", "static number alone", "future alone"],
)
def test_each_role_alone_trains_loads_and_forecasts(
    roles: list[str], history_file: Path, forecast_file: Path, tmp_path: Path
) -> None:
    """Each role without the others: the widths config.json records match the network
    (a holidays column alone was once counted twice, and its model refused to load)."""
    out = tmp_path / "model"
    assert train(history_file, out, *roles).exit_code == 0
    result = invoke("inspect", out)
    assert result.exit_code == 0, result.stderr
    forecasts = read_forecasts(forecast(out, forecast_file, "-"))
    assert_forecasts(forecasts, ["a", "b"])


def test_a_future_row_off_the_grid(model: Path, tmp_path: Path) -> None:
    """A future row between two steps is refused, not silently skipped."""
    data = frame()
    stray = data[ahead(data, "a")].iloc[[2]].assign(ds=lambda rows: rows["ds"] + pd.Timedelta(
        minutes=30))  # fmt: skip
    path = write(pd.concat([data, stray]).sort_values(["unique_id", "ds"]), tmp_path / "odd.csv")
    when = (START + pd.Timedelta(hours=LENGTH + 2, minutes=30)).strftime("%Y-%m-%d %H:%M:%S")
    assert_refused(
        forecast(model, path, tmp_path / "f.csv"),
        3,
        f"{path}: series 'a': the future row at {when} is off the series' grid (h steps from "
        "its last value)",
    )


def test_evaluate_with_refit_retrains_with_every_role(
    model: Path, history_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--refit retrains at each origin on the history before it, reading the statics
    and holidays as the model does (they were once dropped from the retrained models)."""
    import rnncast

    retrained = []
    train_as_before = rnncast.train

    def recording_train(*args, **kwargs):
        result = train_as_before(*args, **kwargs)
        retrained.append(result.schema["inputs"])
        return result

    monkeypatch.setattr(rnncast, "train", recording_train)
    out = tmp_path / "report"
    result = invoke("evaluate", history_file, "--model", model, "--folds", "1", "--step", "6",
                    "--refit", "--out", out, "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    document = json.loads((out / "metrics.json").read_text())
    assert document["settings"]["refit"] is True
    assert np.isfinite(document["summary"]["model"]["mase"]["mean"])
    original = json.loads((model / "config.json").read_text())["data"]["inputs"]
    assert retrained and all(inputs["holidays"] == original["holidays"] for inputs in retrained)
    assert all(
        [c["name"] for c in inputs["static_covariates"]["categories"]] == ["region"]
        for inputs in retrained
    )


def test_check_counts_the_holidays_of_each_country(forecast_file: Path) -> None:
    """check says how many public holidays fall in the data's time range, for each
    country named and each country of the holidays column (Good Friday 2024 is in
    the future rows: a holiday in Germany, not in France)."""
    result = invoke("check", forecast_file, "--holidays", "US", "--holidays-column", "country",
                    "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)["holidays"]
    assert found == {"countries": ["US"], "column": "country",
                     "holidays_in_range": {"US": 0, "DE": 0, "FR": 0}}  # fmt: skip
    # The sample load runs from 6 January to 6 April 2025: Martin Luther King Jr. Day and
    # Presidents' Day in the US, no German public holiday.
    sample = SAMPLE_DATA / "load_hourly.parquet"
    result = invoke("check", sample, "--holidays", "US,DE", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["holidays"]["holidays_in_range"] == {"US": 2, "DE": 0}


def test_future_rows_from_a_file_of_their_own(
    model: Path, history_file: Path, forecast_file: Path, tmp_path: Path
) -> None:
    """``--future FILE``: the same forecasts as future rows in DATA; the file needs the
    id, time and future covariate columns, and no target value."""
    data = frame()
    rows = data[ahead(data)][["unique_id", "ds", "promo"]]
    future = write(rows, tmp_path / "future.csv")
    one_file = read_forecasts(forecast(model, forecast_file, "-"))
    two_files = read_forecasts(forecast(model, history_file, "-", "--future", future))
    pd.testing.assert_frame_equal(two_files, one_file)
    parquet = write(rows, tmp_path / "future.parquet")
    pd.testing.assert_frame_equal(
        read_forecasts(forecast(model, history_file, "-", "--future", parquet)), one_file
    )
    with_target = write(data[ahead(data)].assign(y=lambda f: f["y"].where(
        f["ds"] != f["ds"].max(), 1.5)), tmp_path / "with_target.csv")  # fmt: skip
    last = data["ds"].max().strftime("%Y-%m-%d %H:%M:%S")
    assert_refused(
        forecast(model, history_file, tmp_path / "f.csv", "--future", with_target),
        3,
        f"--future {with_target}: column 'y', series 'a': a target value at {last} (row "
        f"{H}); future rows leave the target empty",
    )
    no_promo = write(rows.drop(columns="promo"), tmp_path / "no_promo.csv")
    assert_refused(
        forecast(model, history_file, tmp_path / "f.csv", "--future", no_promo),
        3,
        f"--future {no_promo}: no column 'promo' (future covariate); it holds ['unique_id', 'ds']",
    )
    only_a = write(rows[rows["unique_id"] == "a"], tmp_path / "only_a.csv")
    result = forecast(model, history_file, tmp_path / "f.csv", "--future", only_a)
    assert result.exit_code == 3
    assert "series 'b' has no future rows" in result.stderr


def test_an_infinite_static_number(tmp_path: Path) -> None:
    data = frame()
    data.loc[data["unique_id"] == "b", "area"] = np.inf
    path = write(data[~ahead(data)], tmp_path / "inf.csv")
    assert_refused(
        invoke("check", path, "--static-covariates", "area"),
        3,
        f"{path}: static covariate 'area' is infinite for series 'b'; give it a finite value",
    )
