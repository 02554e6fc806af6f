"""The evaluation report: metrics.json, the Markdown and HTML reports, and their figures."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from rnncast.config import DataConfig
from rnncast.evaluation import Evaluation
from rnncast.frequency import NS_PER_HOUR
from rnncast.metrics import Scores
from rnncast.panel import Panel
from rnncast.plots import choose_series, coverage_figure, loss_figure
from rnncast.report import REPORT_FILES, summary_rows, write_report
from rnncast.report_document import metrics_document
from tests.conftest import REPO_ROOT

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URL = "data:image/png;base64,"
QUANTILES = (0.1, 0.5, 0.9)
HOSTILE_ID = "<script>alert(1)</script>"
MODEL_METRICS = ("pinball_q10", "pinball_q50", "pinball_q90", "pinball", "scaled_pinball")


def make_scores(per_series: dict[str, list[float]], horizon: int, counts=None) -> Scores:
    """Scores whose summary is the nan-mean and nan-median of the per-series values."""
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in per_series.items()}
    summary = {}
    for name, values in arrays.items():
        finite = values[np.isfinite(values)]
        summary[name] = {
            "mean": float(finite.mean()) if finite.size else None,
            "median": float(np.median(finite)) if finite.size else None,
        }
    steps = np.linspace(1.0, 2.0, horizon)
    per_step = {name: steps * (1 + index / 10) for index, name in enumerate(arrays)}
    if "coverage_80" in per_step:
        per_step["coverage_80"] = np.linspace(0.9, 0.6, horizon)
    counts = counts or {
        "series": arrays["mae"].shape[0],
        "points": 0,
        "missing": 0,
        "mape_skipped_zero": 0,
        "mase_undefined_series": 0,
    }
    return Scores(per_series=arrays, per_step=per_step, summary=summary, counts=counts)


def build_evaluation(
    ids: list[str],
    scores: dict[str, Scores],
    *,
    horizon: int = 4,
    folds: int = 2,
    length: int = 40,
    constant: tuple[int, ...] = (),
    quantiles: tuple[float, ...] = QUANTILES,
) -> Evaluation:
    """An hourly Evaluation whose origins cut the last ``folds * horizon`` steps."""
    n_series = len(ids)
    rng = np.random.default_rng(1)
    steps = np.arange(length)
    values = 10 + 3 * np.sin(2 * np.pi * steps / 24)[None, :] + rng.normal(size=(n_series, length))
    values[list(constant)] = 5.0
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(ids, length),
            "ds": np.tile(pd.date_range("2024-01-01", periods=length, freq="h"), n_series),
            "y": values.reshape(-1),
        }
    )
    history = Panel.from_frame(frame)
    cuts = np.tile(length - horizon * (folds - np.arange(folds)), (n_series, 1)).astype(np.int64)
    forecast_steps = cuts[:, :, None] + np.arange(horizon)  # (S, K, H)
    start = history.start_times[:, None, None]
    times = (start + forecast_steps * NS_PER_HOUR).astype(np.int64)
    actual = np.take_along_axis(values, forecast_steps.reshape(n_series, -1), axis=1).reshape(
        forecast_steps.shape
    )
    point = actual + 0.5
    spread = np.array([(q - 0.5) * 4 for q in quantiles])
    forecast_values = point[..., None] + spread  # (S, K, H, Q)
    snaive = np.take_along_axis(values, (forecast_steps - 24).reshape(n_series, -1), axis=1)
    return Evaluation(
        kind="backtest",
        ids=np.asarray(ids),
        freq=history.freq,
        tz=None,
        season=24,
        horizon=horizon,
        quantiles=quantiles,
        cuts=cuts,
        times=times,
        actual=actual,
        point=point,
        values=forecast_values,
        baselines={
            "naive": np.repeat(actual[..., :1], horizon, axis=2),
            "seasonal_naive": snaive.reshape(forecast_steps.shape),
            "drift": actual - 1.0,
            "naive2": actual * 1.1,
        },
        scores=scores,
        history=history,
        settings={"test_size": folds * horizon, "folds": folds, "step": horizon, "refit": False},
    )


def small_evaluation() -> Evaluation:
    """Three series, the last constant (MASE undefined), one actual missing."""
    nan = float("nan")
    model = {
        "mae": [1.25, 2.5, 0.0],
        "rmse": [1.5, 3.0, 0.0],
        "mape": [12.0, 8.0, 0.0],
        "smape": [10.0, 20.0, 0.0],
        "mase": [0.5, 1.1, nan],
        **{name: [0.2, 0.4, 0.0] for name in MODEL_METRICS},
        "coverage_80": [1.0, 0.5, 1.0],
        "width_80": [3.2, 3.2, 3.2],
        "msis_80": [4.0, 6.0, nan],
    }
    counts = {
        "series": 3,
        "points": 23,
        "missing": 1,
        "mape_skipped_zero": 0,
        "mase_undefined_series": 1,
    }
    scores = {
        "model": make_scores(model, 4, counts),
        "naive": make_scores(
            {
                "mae": [2.5, 4.0, 1.0],
                "rmse": [3, 4, 1],
                "mape": [1, 2, 3],
                "smape": [1, 2, 3],
                "mase": [1, 2, nan],
            },
            4,
        ),
        "seasonal_naive": make_scores(
            {
                "mae": [2.0, 3.0, 0.0],
                "rmse": [3, 4, 1],
                "mape": [1, 2, 3],
                "smape": [20.0, 30.0, 10.0],
                "mase": [0.9, 1.1, nan],
            },
            4,
        ),
        "drift": make_scores(
            {
                "mae": [0, 0, 0],
                "rmse": [1, 2, 3],
                "mape": [1, 2, 3],
                "smape": [1, 2, 3],
                "mase": [nan] * 3,
            },
            4,
        ),
        "naive2": make_scores(
            {
                "mae": [2.0, 3.0, 1.0],
                "rmse": [3, 4, 1],
                "mape": [1, 2, 3],
                "smape": [20.0, 20.0, 20.0],
                "mase": [1.6, 1.6, nan],
            },
            4,
        ),
    }
    evaluation = build_evaluation(["a", "b", HOSTILE_ID], scores, constant=(2,))
    evaluation.actual[0, 1, 3] = np.nan
    counts = {"naive2_seasonal_origins": 3, "naive2_nonpositive_origins": 2}
    return replace(evaluation, baseline_counts=counts)


def model_description(epochs: int = 3) -> dict:
    return {
        "model": {
            "cell": "lstm",
            "hidden": 8,
            "layers": 1,
            "horizon": 4,
            "quantiles": list(QUANTILES),
            "loss": "quantile",
        },
        "training": {"strategy": "tbptt", "chunk_len": 16, "seed": 0},
        "network": {"parameters": 1234},
        "series": 3,
        "history": {
            "epochs": [
                {"epoch": e + 1, "train_loss": 1.0 / (e + 1), "val_loss": None, "lr": 3e-3}
                for e in range(epochs)
            ],
            "best_epoch": epochs,
            "stopped": None,
            "seconds": 1.5,
            "device": "cpu",
        },
    }


def test_metrics_document_has_the_stable_layout_and_is_strict_json() -> None:
    document = metrics_document(small_evaluation(), model_description())
    assert list(document) == [
        "format_version",
        "rnncast_version",
        "kind",
        "settings",
        "data",
        "model",
        "counts",
        "methods",
        "summary",
        "skill",
        "relative_to_seasonal_naive",
        "relative_to_naive2",
        "by_step",
        "series",
        "plotted_series",
        "calibration",
    ]
    assert document["calibration"] is None  # a backtest of intervals never calibrated
    assert document["format_version"] == 1
    assert document["methods"] == ["model", "naive", "seasonal_naive", "drift", "naive2"]
    assert document["data"]["series"] == 3
    assert document["data"]["origins_per_series"] == 2
    # Origins cut at steps 32 and 36 of hourly series starting 2024-01-01 00:00.
    assert document["data"]["first_origin"] == "2024-01-02 07:00:00"
    assert document["data"]["last_origin"] == "2024-01-02 11:00:00"
    assert document["model"]["parameters"] == 1234
    assert document["model"]["epochs"] == 3
    assert document["counts"]["mase_undefined_series"] == 1
    assert document["counts"]["naive2_seasonal_origins"] == 3
    assert document["counts"]["naive2_nonpositive_origins"] == 2
    assert document["series"]["unique_id"] == ["a", "b", HOSTILE_ID]
    assert document["series"]["model"]["mase"] == [0.5, 1.1, None]
    assert document["summary"]["drift"]["mase"] == {"mean": None, "median": None}
    assert document["by_step"]["step"] == [1, 2, 3, 4]
    assert len(document["by_step"]["seasonal_naive"]["mae"]) == 4
    text = json.dumps(document, allow_nan=False)
    assert json.loads(text) == document


def test_skill_and_ratios_follow_the_means() -> None:
    document = metrics_document(small_evaluation())
    assert document["model"] is None
    # model MAE mean 1.25 against naive 2.5 and seasonal naive 5/3.
    assert document["skill"]["naive"]["mae"] == pytest.approx(0.5)
    assert document["skill"]["seasonal_naive"]["mae"] == pytest.approx(0.25)
    assert document["skill"]["seasonal_naive"]["smape"] == pytest.approx(0.5)
    assert document["skill"]["seasonal_naive"]["mase"] == pytest.approx(0.2)
    # Drift's MAE mean is 0 and its MASE undefined: no skill either way.
    assert document["skill"]["drift"]["mae"] is None
    assert document["skill"]["drift"]["mase"] is None
    relative = document["relative_to_seasonal_naive"]
    assert relative == {"smape": 0.5, "mase": 0.8, "owa": 0.65}
    # M4's OWA (issue 12): model sMAPE 10 / Naive2's 20, MASE 0.8 / 1.6.
    assert document["relative_to_naive2"] == {"smape": 0.5, "mase": 0.5, "owa": 0.5}
    assert document["skill"]["naive2"]["smape"] == pytest.approx(0.5)


def test_without_naive2_its_ratios_are_null() -> None:
    evaluation = small_evaluation()
    scores = {name: s for name, s in evaluation.scores.items() if name != "naive2"}
    document = metrics_document(replace(evaluation, scores=scores))
    assert document["relative_to_naive2"] == {"smape": None, "mase": None, "owa": None}
    assert document["relative_to_seasonal_naive"]["owa"] == 0.65


def test_floats_are_rounded_to_six_significant_digits() -> None:
    evaluation = small_evaluation()
    evaluation.scores["model"].per_series["rmse"][0] = 1.23456789
    document = metrics_document(evaluation)
    assert document["series"]["model"]["rmse"][0] == 1.23457


def test_summary_rows_are_formatted_strings() -> None:
    rows = summary_rows(metrics_document(small_evaluation()))
    assert [row[0] for row in rows] == ["model", "naive", "seasonal naive", "drift", "naive2"]
    assert rows[0] == ("model", "1.25", "1.50", "10.0", "0.800", "83.3% of 80%")
    assert rows[3][4] == "–"
    assert rows[1][5] == ""


def test_write_report_writes_three_self_contained_files(tmp_path) -> None:
    target = tmp_path / "new" / "report"
    document = write_report(target, small_evaluation(), model=model_description(), title="Load")
    assert sorted(p.name for p in target.iterdir()) == sorted(REPORT_FILES)
    assert json.loads((target / "metrics.json").read_text()) == document
    markdown = (target / "report.md").read_text()
    page = (target / "report.html").read_text()
    for text in (markdown, page):
        for name in ("model", "naive", "seasonal naive", "drift", "naive2"):
            assert name in text
        assert "Relative to seasonal naive (below 1 is better): sMAPE 0.500, MASE 0.800" in text
        assert "Relative to Naive2 (below 1 is better): sMAPE 0.500, MASE 0.500, OWA 0.500." in text
        assert "2 origins have a seasonal history with values &lt;= 0" in text
        assert "1.25" in text  # the model's mean MAE
        assert "+50.0%" in text  # its skill against naive
        assert "1 series has a constant history: MASE is undefined for it" in text
        assert "1 point has no actual yet" in text
        # forecasts, horizon, loss and coverage figures, all embedded
        assert text.count(DATA_URL) == 4
        encoded = re.search(re.escape(DATA_URL) + r"([A-Za-z0-9+/=]+)", text).group(1)
        assert base64.b64decode(encoded).startswith(PNG_SIGNATURE)
        for forbidden in ("http://", "https://", 'src="//', "<script"):
            assert forbidden not in text.lower()
        assert "&lt;script&gt;" in text
    assert page.startswith("<!DOCTYPE html>")
    assert "<style>" in page
    assert "![" in markdown


def test_report_renders_headless_without_pyplot(tmp_path) -> None:
    code = (
        "import sys\n"
        "from tests.test_report import small_evaluation\n"
        "from rnncast.report import write_report\n"
        f"write_report({str(tmp_path)!r}, small_evaluation())\n"
        "print('matplotlib' in sys.modules, 'matplotlib.pyplot' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"MPLBACKEND", "DISPLAY"}}
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO_ROOT
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["True", "False"]
    assert (tmp_path / "report.html").stat().st_size > 0


def ranked_evaluation(mase: list[float], smape: list[float] | None = None) -> Evaluation:
    n_series = len(mase)
    smape = smape or [1.0] * n_series
    metrics = {"mae": [1.0] * n_series, "rmse": [1.0] * n_series, "mape": [1.0] * n_series}
    scores = {"model": make_scores({**metrics, "smape": smape, "mase": mase}, 2)}
    ids = [f"s{i}" for i in range(n_series)]
    return build_evaluation(ids, scores, horizon=2, folds=1, length=30, quantiles=())


def test_choose_series_picks_best_and_worst_by_mase_without_duplicates() -> None:
    evaluation = ranked_evaluation([1.0, 0.2, 3.0, float("nan"), 0.5, 2.0])
    chosen = choose_series(evaluation, count_random=4)
    positions = [position for position, _ in chosen]
    assert positions[:4] == [1, 4, 2, 5]
    assert [label for _, label in chosen[:4]] == [
        "best MASE 0.2",
        "best MASE 0.5",
        "worst MASE 3",
        "worst MASE 2",
    ]
    assert sorted(positions[4:]) == [0, 3]  # only two others are left
    assert len(set(positions)) == len(positions) == 6
    assert choose_series(evaluation, count_random=4, seed=5) == chosen  # none left to vary


def test_choose_series_never_repeats_a_series_of_a_tiny_panel() -> None:
    chosen = choose_series(ranked_evaluation([0.7, 0.3]), count_random=4)
    assert chosen == [(1, "best MASE 0.3"), (0, "best MASE 0.7")]


def test_choose_series_falls_back_to_smape_when_mase_is_undefined() -> None:
    evaluation = ranked_evaluation([float("nan")] * 3, smape=[30.0, 10.0, 20.0])
    chosen = choose_series(evaluation, count_random=0)
    assert chosen[0] == (1, "best sMAPE 10")
    assert [position for position, _ in chosen] == [1, 2, 0]


def test_loss_figure_needs_epochs_and_coverage_needs_intervals() -> None:
    assert loss_figure({"epochs": [], "best_epoch": 0}) is None
    assert loss_figure({}) is None
    assert loss_figure(model_description()["history"]).startswith(PNG_SIGNATURE)
    assert coverage_figure(ranked_evaluation([1.0, 2.0])) is None
    assert coverage_figure(small_evaluation()).startswith(PNG_SIGNATURE)


def test_report_on_ten_thousand_series_plots_a_handful(tmp_path) -> None:
    n_series = 10_000
    rng = np.random.default_rng(0)
    mase = rng.uniform(0.5, 2.0, n_series)
    metrics = {name: rng.uniform(1, 2, n_series) for name in ("mae", "rmse", "mape", "smape")}
    per_series = {**metrics, "mase": mase}
    scores = {
        "model": make_scores(per_series, 24),
        "seasonal_naive": make_scores({**per_series, "mase": np.ones(n_series)}, 24),
    }
    ids = [f"series-{i:05d}" for i in range(n_series)]
    evaluation = build_evaluation(ids, scores, horizon=24, folds=1, length=48, quantiles=())
    document = write_report(tmp_path, evaluation)
    plotted = [item["unique_id"] for item in document["plotted_series"]]
    assert len(plotted) <= 8
    assert plotted[0] == ids[int(np.argmin(mase))]
    assert plotted[2] == ids[int(np.argmax(mase))]
    assert len(document["series"]["model"]["mase"]) == n_series
    assert (tmp_path / "report.html").read_text().count(DATA_URL) == 2  # forecasts, horizon


def test_report_on_scores_from_the_evaluation_stage(tmp_path) -> None:
    """Real Scores (score_forecasts) in a zone with a daylight-saving switch."""
    from rnncast.config import DataConfig
    from rnncast.evaluation import score_forecasts

    stamps = pd.date_range("2024-03-30", periods=72, freq="h", tz="Europe/Berlin")
    level = 10 + np.sin(np.arange(72) / 4)
    actuals = Panel.from_frame(
        pd.concat(
            pd.DataFrame({"unique_id": name, "ds": stamps, "y": level + shift})
            for shift, name in enumerate(["north", "south"])
        )
    )
    quantile_columns = {"y_hat": 10.5, "y_q10": 9.5, "y_q50": 10.5, "y_q90": 11.5}
    frame = pd.concat(
        pd.DataFrame({"unique_id": name, "ds": stamps[60:66], **quantile_columns})
        for name in ["north", "south"]
    )
    config = DataConfig(id_col="unique_id", time_col="ds", target_col="y_hat", covariates="all")
    evaluation = score_forecasts(Panel.from_frame(frame, config), QUANTILES, actuals)
    document = write_report(tmp_path, evaluation)
    assert document["data"]["first_origin"] == "2024-04-01 12:00:00+02:00"
    assert document["data"]["time_zone"] == "Europe/Berlin"
    assert set(document["summary"]["model"]) >= {"coverage_80", "pinball_q10", "msis_80"}
    page = (tmp_path / "report.html").read_text()
    assert "<td>80%</td>" in page  # the interval table
    assert "<td>0.1</td>" in page  # a pinball row
    assert page.count(DATA_URL) == 3  # forecasts, horizon, coverage: no model, no loss


def _close(actual, expected, path: str = "") -> None:
    """The same JSON structure, numbers equal to float tolerance."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected), path
        for key in expected:
            _close(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _close(a, e, f"{path}[{index}]")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert actual == pytest.approx(expected, rel=1e-4, abs=1e-6), path
    else:
        assert actual == expected, path


def test_the_metrics_document_of_the_golden_model_keeps_its_layout_and_values(
    update_golden: bool,
) -> None:
    """The report JSON is an interface: its keys and, for the fixture model, its
    numbers stay as recorded. Regenerate with ``pytest --update-golden`` on purpose."""
    import importlib.util

    from rnncast import evaluate, load_model

    spec = importlib.util.spec_from_file_location(
        "make_golden_model", REPO_ROOT / "scripts" / "make_golden_model.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    golden = REPO_ROOT / "tests" / "golden"
    model = load_model(golden / script.model_dir(1))
    panel = Panel.from_frame(script.golden_frame(), DataConfig(covariates=("temperature",)))
    evaluation = evaluate(model, panel, folds=2, step=7)
    document = json.loads(json.dumps(metrics_document(evaluation, model.describe())))
    expected_path = golden / "model_v1_metrics.json"
    if update_golden:
        expected_path.write_text(json.dumps(document, indent=2) + "\n")
    expected = json.loads(expected_path.read_text())
    expected["rnncast_version"] = document["rnncast_version"]  # the only field meant to move
    assert list(document) == list(expected)
    assert document["counts"]["points"] == 2 * 2 * 7  # 2 series x 2 folds x H 7
    _close(document, expected)


@pytest.mark.parametrize(
    "ids", [["a", "b"], ["a]b", "c,\nd", "{x}"], ['quote"d', "back\\slash", "[", "]"]]
)
def test_metrics_json_puts_lists_on_one_line_and_reads_back_the_same(ids: list[str]) -> None:
    from rnncast.report_document import document_text

    document = {"series": {"unique_id": ids, "model": {"mase": [0.5, None][: len(ids)]}}}
    text = document_text(document)
    assert json.loads(text) == document
    assert '"mase": [0.5, null]' in text or len(ids) < 2


def test_a_holdout_of_calibrated_intervals_reports_coverage_before_and_after() -> None:
    from rnncast import ModelConfig, TrainConfig, train
    from rnncast.evaluation import holdout
    from rnncast.report import render_report
    from tests.test_training import seasonal_panel

    panel = seasonal_panel(0, n_series=4, length=150)
    model = train(
        panel,
        ModelConfig(horizon=6, cell="gru", hidden=8, layers=1),
        TrainConfig(device="cpu", max_epochs=3, test_size=12, refit=False, ensemble=1),
    )
    assert model.combination is not None and model.combination.offsets
    evaluation = holdout(model, panel)
    document, files = render_report(evaluation, model=model.describe())
    calibration = document["calibration"]
    before, after = calibration["before"], calibration["after"]
    assert set(before["summary"]) == {"coverage_80", "scaled_pinball"} == set(after["summary"])
    assert after["summary"]["coverage_80"] == document["summary"]["model"]["coverage_80"]["mean"]
    assert len(before["by_step"]["coverage_80"]) == len(after["by_step"]["coverage_80"]) == 6
    # The offsets moved the intervals, so at least one step's coverage moved with them.
    assert before["by_step"]["coverage_80"] != after["by_step"]["coverage_80"]
    uncalibrated = holdout(
        replace(model, combination=replace(model.combination, offsets=())), panel
    )
    assert uncalibrated.uncalibrated is None
    expected = uncalibrated.scores["model"].summary["coverage_80"]["mean"]
    assert before["summary"]["coverage_80"] == pytest.approx(expected)
    assert "coverage before calibration" in files["report.md"].decode()
