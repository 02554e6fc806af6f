"""The evaluation commands end to end (issue 4): the report train leaves in the model
directory, rnncast evaluate's backtest, and rnncast score with its history file."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rnncast.cli import app
from rnncast.report import REPORT_FILES
from tests.conftest import SAMPLE_DATA

runner = CliRunner()
LOAD = SAMPLE_DATA / "load_hourly.parquet"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def train(out: Path, *extra):
    return invoke(
        "train", LOAD, "--horizon", 24, "--covariates", "temperature", "--out", out,
        "--max-epochs", 2, "--hidden", 8, "--ensemble", 1, *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    # Not refit after its test: the saved model is then the one the holdout scored,
    # which the backtest and score tests below compare with.
    out = tmp_path_factory.mktemp("evaluate") / "load_model"
    result = train(out, "--no-refit")
    assert result.exit_code == 0, result.stderr
    return out


def test_train_scores_the_held_out_horizon_and_writes_the_report(model_dir: Path) -> None:
    for name in REPORT_FILES:
        assert (model_dir / name).is_file(), name
    document = json.loads((model_dir / "metrics.json").read_text())
    assert document["kind"] == "holdout"
    assert document["settings"]["test_size"] == 24
    assert document["data"]["horizon"] == 24
    assert document["data"]["season_length"] == 24
    series = document["data"]["series"]
    assert document["counts"]["points"] == series * 24
    assert document["methods"] == ["model", "naive", "seasonal_naive", "drift", "naive2"]
    # M4's Naive2 and OWA beside the seasonal-naive ratios (issue 12).
    assert set(document["relative_to_naive2"]) == {"smape", "mase", "owa"}
    assert document["relative_to_naive2"]["owa"] > 0
    assert document["counts"]["naive2_nonpositive_origins"] == 0
    config = json.loads((model_dir / "config.json").read_text())
    assert config["training"]["test_size"] == 24
    report = (model_dir / "report.md").read_text()
    assert "seasonal naive" in report
    assert "Relative to Naive2" in report
    inspected = invoke("inspect", model_dir)
    assert inspected.exit_code == 0, inspected.stderr
    shown = re.search(r"OWA vs Naive2 ([0-9.]+)", " ".join(inspected.stdout.split()))
    assert float(shown.group(1)) == pytest.approx(document["relative_to_naive2"]["owa"], abs=1e-3)


def test_retraining_into_a_directory_with_a_report_replaces_it(tmp_path: Path) -> None:
    out = tmp_path / "model"
    assert train(out).exit_code == 0
    result = train(out, "--test-size", 0)
    assert result.exit_code == 0, result.stderr
    assert "no test part (--test-size 0)" in result.stderr
    # The old report went with the old model: a report never describes another model.
    assert not any((out / name).exists() for name in REPORT_FILES)


def test_a_test_part_shorter_than_the_horizon_is_a_usage_error(tmp_path: Path) -> None:
    result = train(tmp_path / "model", "--test-size", 12)
    assert result.exit_code == 2
    assert "--test-size 12 is shorter than --horizon 24" in result.stderr
    assert not (tmp_path / "model").exists()


def test_evaluate_backtests_from_every_origin_and_reports(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "backtest"
    result = invoke(
        "evaluate", LOAD, "--model", model_dir, "--folds", 3, "--step", 12, "--out", out
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads((out / "metrics.json").read_text())
    assert document["kind"] == "backtest"
    assert document["settings"]["folds"] == 3
    assert document["settings"]["step"] == 12
    assert document["settings"]["refit"] is False
    assert document["data"]["origins_per_series"] == 3
    assert document["counts"]["points"] == document["data"]["series"] * 3 * 24
    assert "metrics and report written to" in result.stderr
    # The model trained on all but the last 24 steps: origins 48 and 36 steps before
    # the end forecast steps it has seen, and the user is told.
    series = document["data"]["series"]
    assert document["settings"]["in_sample_origins"] == 2 * series
    assert f"{2 * series} of {3 * series} origins forecast steps up to" in result.stderr
    assert result.stdout == ""
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html


def test_a_refit_model_has_seen_every_origin_and_the_backtest_says_so(tmp_path: Path) -> None:
    # Issue 12: by default the saved model is refit on every step, the test part too.
    model = tmp_path / "refit_model"
    assert train(model).exit_code == 0
    document = json.loads((model / "metrics.json").read_text())
    assert document["settings"]["saved_model"].startswith("refit on every step")
    assert json.loads((model / "history.json").read_text())["refit"]["epochs"] >= 1
    result = invoke("evaluate", LOAD, "--model", model, "--folds", 3, "--step", 12, "--out",
                    tmp_path / "backtest")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    series = json.loads((tmp_path / "backtest" / "metrics.json").read_text())["data"]["series"]
    assert f"{3 * series} of {3 * series} origins forecast steps up to" in result.stderr


def test_evaluate_refuses_a_file_as_its_report_folder(model_dir: Path, tmp_path: Path) -> None:
    taken = tmp_path / "taken.txt"
    taken.write_text("x")
    result = invoke("evaluate", LOAD, "--model", model_dir, "--out", taken)
    assert result.exit_code == 2
    assert f"--out {taken} is a file" in result.stderr


def test_evaluate_with_refit_retrains_per_origin(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "refit"
    result = invoke("evaluate", LOAD, "--model", model_dir, "--folds", 2, "--refit", "--out", out)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("refitting for origin") == 2
    document = json.loads((out / "metrics.json").read_text())
    assert document["settings"]["refit"] is True


@pytest.fixture(scope="module")
def forecasts_and_actuals(model_dir: Path, tmp_path_factory) -> tuple[Path, Path]:
    """Forecasts made a day ago, from the data without its last 24 hours, and the
    actuals file of today that holds the whole history."""
    folder = tmp_path_factory.mktemp("score")
    frame = pd.read_parquet(LOAD)
    yesterday = frame[frame["ds"] <= frame["ds"].max() - pd.Timedelta(hours=24)]
    history = folder / "yesterday.parquet"
    yesterday.to_parquet(history)
    forecasts = folder / "forecasts.csv"
    result = invoke("forecast", history, "--model", model_dir, "--out", forecasts)
    assert result.exit_code == 0, result.stderr
    return forecasts, LOAD


def test_score_prints_json_that_agrees_with_the_holdout(
    model_dir: Path, forecasts_and_actuals
) -> None:
    forecasts, actuals = forecasts_and_actuals
    result = invoke("score", forecasts, actuals, "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["kind"] == "score"
    holdout = json.loads((model_dir / "metrics.json").read_text())
    for method in ("model", "seasonal_naive"):
        for metric in ("mae", "smape", "mase"):
            assert document["summary"][method][metric]["mean"] == pytest.approx(
                holdout["summary"][method][metric]["mean"], rel=1e-4
            ), (method, metric)


def test_score_prints_a_table_and_appends_to_a_history_file(
    forecasts_and_actuals, tmp_path: Path
) -> None:
    forecasts, actuals = forecasts_and_actuals
    history = tmp_path / "scores.csv"
    for _ in range(2):
        result = invoke("score", forecasts, actuals, "--history", history)
        assert result.exit_code == 0, result.stderr
        assert "seasonal naive" in result.stdout
        assert "naive2" in result.stdout
        assert "relative to Naive2: smape" in result.stdout
    with history.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    assert rows[0]["forecasts"] == str(forecasts)
    assert float(rows[0]["mase"]) == float(rows[1]["mase"]) > 0
    assert float(rows[0]["owa_vs_naive2"]) > 0 and float(rows[0]["naive2_mase"]) > 0
    lines = tmp_path / "scores.jsonl"
    assert invoke("score", forecasts, actuals, "--history", lines).exit_code == 0
    assert json.loads(lines.read_text().splitlines()[0])["kind"] == "score"


def test_a_history_file_from_before_naive2_gains_its_columns(
    forecasts_and_actuals, tmp_path: Path
) -> None:
    """Issue 12 added three columns; a history CSV written without them keeps its rows,
    the new columns empty there, rather than being refused."""
    from rnncast.scorebook import COLUMNS

    forecasts, actuals = forecasts_and_actuals
    old_columns = COLUMNS[:-3]
    history = tmp_path / "old.csv"
    old_row = ",".join("2025-01-01T00:00:00+00:00" if c == "scored_at" else "" for c in old_columns)
    history.write_text(",".join(old_columns) + "\n" + old_row + "\n")
    result = invoke("score", forecasts, actuals, "--history", history)
    assert result.exit_code == 0, result.stderr
    with history.open() as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == COLUMNS
    assert rows[0]["scored_at"] == "2025-01-01T00:00:00+00:00"
    assert rows[0]["owa_vs_naive2"] == ""
    assert float(rows[1]["owa_vs_naive2"]) > 0


def test_score_names_the_problem_when_nothing_matches(
    forecasts_and_actuals, tmp_path: Path
) -> None:
    forecasts, _ = forecasts_and_actuals
    other = tmp_path / "other.csv"
    other.write_text("unique_id,ds,y\nzz,2024-01-01 00:00,1\nzz,2024-01-01 01:00,2\n")
    result = invoke("score", forecasts, other)
    assert result.exit_code == 3
    assert "forecast series is in the actuals" in result.stderr
    result = invoke("score", forecasts, actuals_missing := tmp_path / "nope.csv")
    assert result.exit_code == 3
    assert str(actuals_missing) in result.stderr
    bad = tmp_path / "bad.history"
    result = invoke("score", forecasts, LOAD, "--history", bad)
    assert result.exit_code == 2
    assert "--history" in result.stderr


@pytest.mark.slow
def test_score_reproduces_the_published_m4_hourly_benchmarks(
    shared_data: Path, tmp_path: Path
) -> None:
    """Seasonal naive, Naive1 and Naive2 forecasts of M4 Hourly, scored by rnncast score
    against the test part, give the sMAPE and MASE published for M4 (Makridakis et al.
    2020); rnncast's own baselines agree, and Naive2 against itself has OWA 1 (issue 12)."""
    from tests.test_baselines import reference_naive2

    train_part = pd.read_parquet(shared_data / "m4_hourly_train.parquet")
    test_part = pd.read_parquet(shared_data / "m4_hourly_test.parquet")
    actuals = tmp_path / "actuals.parquet"
    pd.concat([train_part, test_part]).to_parquet(actuals)
    histories = {name: group["y"].to_numpy() for name, group in train_part.groupby("unique_id")}
    step = test_part.groupby("unique_id").cumcount().to_numpy()  # 0..47 within each series
    ids = test_part["unique_id"].to_numpy()
    frames = {
        "seasonal_naive": test_part.assign(
            y_hat=[histories[i][-24 + h % 24] for i, h in zip(ids, step, strict=True)]
        ),
        "naive": test_part.assign(y_hat=[histories[i][-1] for i in ids]),
        "naive2": test_part.assign(
            y_hat=np.concatenate(
                [reference_naive2(histories[i], 48, 24)[0] for i in dict.fromkeys(ids)]
            )
        ),
    }
    published = {
        "seasonal_naive": (13.912, 1.193),
        "naive": (43.003, 11.608),
        "naive2": (18.383, 2.395),
    }
    for name, frame in frames.items():
        path = tmp_path / f"{name}.csv"
        frame.drop(columns="y").to_csv(path, index=False)
        result = invoke("score", path, actuals, "--json")
        assert result.exit_code == 0, result.stderr
        document = json.loads(result.stdout)
        summary = document["summary"]
        smape, mase = summary["model"]["smape"]["mean"], summary["model"]["mase"]["mean"]
        assert (round(smape, 3), round(mase, 3)) == published[name]
        # rnncast's own baselines, from the actuals' history, agree.
        assert summary[name]["smape"]["mean"] == pytest.approx(smape, rel=1e-9)
        assert summary[name]["mase"]["mean"] == pytest.approx(mase, rel=1e-9)
    assert document["relative_to_naive2"] == {"smape": 1.0, "mase": 1.0, "owa": 1.0}
    assert document["counts"]["naive2_seasonal_origins"] == 413
