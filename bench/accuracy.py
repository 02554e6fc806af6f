"""Benchmark accuracy: rnncast's defaults against simple and statistical baselines.

For each data set (protocols in ``../shared/data/README.md``) the script runs the CLI as
a user would and scores what it wrote with a scorer of its own (numpy, not
``rnncast.metrics``, so the benchmark checks the product):

* ``m4h`` M4 Hourly (h 48, m 24), ``m3m`` M3 Monthly (h 18, m 12), ``m3y`` M3 Yearly
  (h 6, m 1), ``sample`` (``sample_data/load_hourly.parquet``, its last 24 steps held
  out, m 24): ``rnncast train TRAIN --horizon H --seed 1 --out DIR`` (the defaults:
  its own holdout, time budget and refit; ``--max-time T`` only when given), then
  ``rnncast forecast TRAIN --model DIR --out f.parquet``; mean sMAPE
  and MASE over series and OWA against M4's Naive2.
* ``etth1`` ETTh1's ``OT`` alone (h 24, m 24): trained once on rows 0-11,519, then one
  ``rnncast forecast`` per origin (rows 11,520 + 24 k, k < 120) from the true history
  up to it, no refitting; MSE and MAE z-normalised with the mean and standard deviation
  of rows 0-8,639, MASE (scale from rows 0-11,519), sMAPE, OWA. ``rnncast evaluate
  --folds 120 --step 24`` on rows 0-14,399 runs too, and its MAE and RMSE (from its
  metrics.json) are kept beside, as a check of the backtest path.

Naive, seasonal naive and Naive2 are scored from the same histories in every run, and
statsforecast's SeasonalNaive, AutoETS and AutoTheta unless ``--skip-stats`` (fit on the
same training part; for ETTh1 fitted once and applied from each origin with
``forward``). Fit and predict are timed apart (wall clock of each CLI process; for
statsforecast, of its fit and predict calls), and each process's own peak RSS is read
with ``os.wait4``. As in the other scripts here the parent imports neither numpy nor
pandas: reading, scoring and statsforecast run in child processes (``--child``).

Results are merged into ``bench/results/accuracy.json`` under ``--label`` and data set
(an existing entry for both is replaced), written atomically; a Markdown table of the
run goes to stdout. See ``bench/README.md``.

Usage: python bench/accuracy.py [--datasets m4h,m3m,m3y,etth1,sample] [--max-time S |
       NAME=S,...] [--series N] [--extra-args "..."] [--label NAME] [--skip-stats]
       [--skip-rnncast] [--processes N] [--keep-logs DIR]

``--processes N`` runs train and forecast under ``torchrun --standalone
--nproc-per-node N`` (bench/distributed.py compares 1 and 2 processes this way).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results_file import machine_info, package_version, write_json_atomically

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DATA_DIR = REPO_ROOT.parent / "shared" / "data"
RESULTS_PATH = BENCH_DIR / "results" / "accuracy.json"
RNNCAST = Path(sys.executable).parent / "rnncast"
RESULT_PREFIX = "RNNCAST_BENCH_RESULT "
SEED = 1

# name: what is read, the horizon H, the season m, and the protocol's --max-time (the
# settings of the "before" figures in ../shared/ACCURACY-NOTES.md).
DATASETS: dict[str, dict[str, Any]] = {
    "m4h": {"title": "M4 Hourly", "train": "m4_hourly_train.parquet",
            "test": "m4_hourly_test.parquet", "horizon": 48, "season": 24, "max_time": 600},
    "m3m": {"title": "M3 Monthly", "train": "m3_monthly_train.parquet",
            "test": "m3_monthly_test.parquet", "horizon": 18, "season": 12, "max_time": 300},
    "m3y": {"title": "M3 Yearly", "train": "m3_yearly_train.parquet",
            "test": "m3_yearly_test.parquet", "horizon": 6, "season": 1, "max_time": 180},
    "etth1": {"title": "ETTh1 OT", "file": "ETTh1.csv", "horizon": 24, "season": 24,
              "max_time": 300},
    "sample": {"title": "sample load_hourly", "file": "load_hourly.parquet", "horizon": 24,
               "season": 24, "max_time": 60},
}  # fmt: skip
# ETTh1 rows (Informer's split): train 0-8,639, validation to 11,519, test to 14,399.
ETT_TRAIN_ROWS, ETT_FIT_ROWS, ETT_END_ROWS, ETT_ORIGINS = 8_640, 11_520, 14_400, 120
# Published for M4 Hourly (Makridakis, Spiliotis & Assimakopoulos 2020): sMAPE, MASE.
PUBLISHED_M4H = {"naive": (43.003, 11.608), "seasonal_naive": (13.912, 1.193),
                 "naive2": (18.383, 2.395)}  # fmt: skip
# AutoETS (statsforecast 2.1.1) in ACCURACY-NOTES.md's "before" table: sMAPE / MASE /
# OWA, or MSE_z / MAE_z for ETTh1.
BEFORE_AUTOETS = {"m4h": (17.19, 1.606, 0.803), "m3m": (14.16, 0.863, 0.838),
                  "m3y": (16.19, 2.695, 0.878), "etth1": (0.032, 0.133)}  # fmt: skip
STATS_MODELS = ("SeasonalNaive", "AutoETS", "AutoTheta")


# --------------------------------------------------------------------------- children
# Each child reads a JSON spec, does one job and prints RESULT_PREFIX + JSON last.


def _read_long(path: Path, ids: list[str] | None = None):
    """(ids, per-series float64 arrays, per-series int64 ns times) of a long file,
    sorted by unique_id then ds; only ``ids`` if given."""
    import numpy as np
    import pandas as pd

    frame = pd.read_parquet(path, columns=["unique_id", "ds", "y"])
    frame["unique_id"] = frame["unique_id"].astype(str)
    if ids is not None:
        frame = frame[frame["unique_id"].isin(ids)]
    frame = frame.sort_values(["unique_id", "ds"], kind="stable")
    names, starts = np.unique(frame["unique_id"].to_numpy(), return_index=True)
    values = np.split(frame["y"].to_numpy(np.float64), starts[1:])
    times = np.split(frame["ds"].to_numpy("datetime64[ns]").astype(np.int64), starts[1:])
    return [str(n) for n in names], values, times


def _pick(ids: list[str], count: int | None) -> list[str]:
    """``count`` ids evenly spaced over the sorted ids (all without a count)."""
    if not count or count >= len(ids):
        return ids
    step = (len(ids) - 1) / max(count - 1, 1)
    return [ids[round(i * step)] for i in range(count)]


def _save_truth(path: Path, ids, histories, actuals, actual_times) -> None:
    import numpy as np

    np.savez(
        path,
        ids=np.array(ids, dtype=str),
        offsets=np.concatenate([[0], np.cumsum([len(h) for h in histories])]),
        history=np.concatenate(histories),
        actual=np.stack(actuals),
        actual_times=np.stack(actual_times),
    )


def child_prepare(spec: dict[str, Any]) -> dict[str, Any]:
    """Write what the rnncast processes read and what the scorer compares with."""
    import numpy as np
    import pandas as pd

    name, work = spec["dataset"], Path(spec["work"])
    info = DATASETS[name]
    horizon = info["horizon"]
    if name == "etth1":
        frame = pd.read_csv(DATA_DIR / info["file"])
        target = frame["OT"].to_numpy(np.float64)[:ETT_END_ROWS]
        origins = ETT_FIT_ROWS + horizon * np.arange(ETT_ORIGINS)
        origins = origins[: spec["series"]] if spec["series"] else origins
        times = pd.to_datetime(frame["date"]).to_numpy("datetime64[ns]").astype(np.int64)
        np.savez(work / "truth.npz", target=target, origins=origins, times=times[:ETT_END_ROWS])
        return {"series": int(origins.shape[0]), "rows": int(target.shape[0])}
    if name == "sample":
        return _prepare_sample(spec, work, horizon)
    else:
        train_path, test_path = DATA_DIR / info["train"], DATA_DIR / info["test"]
        if spec["series"]:
            all_ids = sorted(pd.read_parquet(train_path, columns=["unique_id"])["unique_id"]
                             .astype(str).unique())  # fmt: skip
            chosen = _pick(all_ids, spec["series"])
            frame = pd.read_parquet(train_path)
            subset = frame[frame["unique_id"].astype(str).isin(chosen)]
            train_path = work / "train.parquet"
            subset.to_parquet(train_path, index=False)
    ids, histories, _ = _read_long(train_path)
    test_ids, actuals, actual_times = _read_long(test_path, ids)
    if test_ids != ids or any(len(a) != horizon for a in actuals):
        raise SystemExit(f"{name}: the test part does not give {horizon} steps for every series")
    _save_truth(work / "truth.npz", ids, histories, actuals, actual_times)
    return {"series": len(ids), "train": str(train_path), "rows": int(sum(map(len, histories)))}


def _prepare_sample(spec: dict[str, Any], work: Path, horizon: int) -> dict[str, Any]:
    """The sample data has gaps (missing hours, missing values) on purpose. rnncast is
    given the rows as they are, less the last H hours of each series; the baselines
    and statsforecast get each series on its hourly grid, filled linearly as rnncast's
    default --fill interpolate does; actuals stay missing where they are missing."""
    import numpy as np
    import pandas as pd

    frame = pd.read_parquet(REPO_ROOT / "sample_data" / DATASETS["sample"]["file"])
    frame["unique_id"] = frame["unique_id"].astype(str)
    chosen = _pick(sorted(frame["unique_id"].unique()), spec["series"])
    frame = frame[frame["unique_id"].isin(chosen)].sort_values(["unique_id", "ds"])
    histories, actuals, actual_times, train_rows = [], [], [], []
    for name in chosen:
        rows = frame[frame["unique_id"] == name]
        grid = pd.date_range(rows["ds"].min(), rows["ds"].max(), freq="h")
        values = rows.set_index("ds")["y"].reindex(grid)
        filled = values.interpolate(limit_direction="both").to_numpy(np.float64)
        histories.append(filled[:-horizon])
        actuals.append(values.to_numpy(np.float64)[-horizon:])
        actual_times.append(grid[-horizon:].to_numpy("datetime64[ns]").astype(np.int64))
        train_rows.append(rows[rows["ds"] < grid[-horizon]])
    train_path = work / "train.parquet"
    pd.concat(train_rows).to_parquet(train_path, index=False)
    _save_truth(work / "truth.npz", chosen, histories, actuals, actual_times)
    return {"series": len(chosen), "train": str(train_path), "rows": int(sum(map(len, histories)))}


def child_stats(spec: dict[str, Any]) -> dict[str, Any]:
    """statsforecast's models on the same training parts: forecasts saved, fit and
    predict seconds returned."""
    import numpy as np

    try:
        from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive
    except ImportError as error:
        return {"status": "skipped", "note": f"statsforecast not installed ({error}); "
                "see bench/README.md"}  # fmt: skip
    name, work = spec["dataset"], Path(spec["work"])
    info = DATASETS[name]
    horizon, season = info["horizon"], info["season"]
    makers = {
        "SeasonalNaive": lambda: SeasonalNaive(season_length=season),
        "AutoETS": lambda: AutoETS(season_length=season),
        "AutoTheta": lambda: AutoTheta(season_length=season),
    }
    truth = np.load(work / "truth.npz")
    forecasts, timing = {}, {}
    for model_name in STATS_MODELS:
        fit_s = predict_s = 0.0
        try:
            if name == "etth1":
                # Fitted once on rows 0-11,519, then applied from each origin with the
                # fitted parameters (no refitting), as the protocol asks.
                model = makers[model_name]()
                began = time.perf_counter()
                model.fit(truth["target"][:ETT_FIT_ROWS])
                fit_s = time.perf_counter() - began
                rows = []
                began = time.perf_counter()
                for origin in truth["origins"]:
                    rows.append(model.forward(y=truth["target"][:origin], h=horizon)["mean"])
                predict_s = time.perf_counter() - began
            else:
                offsets, history = truth["offsets"], truth["history"]
                rows = []
                for index in range(offsets.shape[0] - 1):
                    model = makers[model_name]()
                    began = time.perf_counter()
                    model.fit(history[offsets[index] : offsets[index + 1]])
                    middle = time.perf_counter()
                    rows.append(model.predict(h=horizon)["mean"])
                    fit_s += middle - began
                    predict_s += time.perf_counter() - middle
            forecasts[model_name] = np.stack(rows).astype(np.float64)
            timing[model_name] = {"fit_s": round(fit_s, 3), "predict_s": round(predict_s, 3)}
        except Exception as error:  # one model failing must not lose the others
            timing[model_name] = {"status": "failed", "note": f"{type(error).__name__}: {error}"}
        print(f"    {model_name}: {timing[model_name]}", file=sys.stderr, flush=True)
    np.savez(work / "stats.npz", **forecasts)
    return {"status": "ok", "version": package_version("statsforecast"), "models": timing}


# ------------------------------------------------------------------ independent scorer


def _seasonal(history, season: int) -> bool:
    """M4's seasonality test: lag-m autocorrelation outside the 90% limit."""
    import numpy as np

    n = history.shape[0]
    if season <= 1 or n < 3 * season:
        return False
    centred = history - history.mean()
    lag_zero = float(centred @ centred)
    if lag_zero <= 0:
        return False
    acf = np.array([centred[k:] @ centred[:-k] for k in range(1, season + 1)]) / lag_zero
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(acf[:-1] ** 2)) / n)
    return bool(abs(acf[-1]) > limit)


def naive2_forecast(history, horizon: int, season: int):
    """M4's Naive2 of one history: (forecast (H,), adjusted, left naive for values <= 0).

    Seasonal histories are divided by the indices of a classical multiplicative
    decomposition (centred moving average of order m, ratios averaged per phase from
    the first value, normalised to mean 1), forecast naive and multiplied back."""
    import numpy as np

    n = history.shape[0]
    if not _seasonal(history, season):
        return np.full(horizon, history[-1]), False, False
    if (history <= 0).any():
        return np.full(horizon, history[-1]), False, True
    if season % 2 == 0:
        kernel = np.r_[0.5, np.ones(season - 1), 0.5] / season
    else:
        kernel = np.ones(season) / season
    trend = np.convolve(history, kernel, mode="valid")
    positions = season // 2 + np.arange(trend.shape[0])
    ratio = history[positions] / trend
    sums = np.bincount(positions % season, weights=ratio, minlength=season)
    indices = sums / np.bincount(positions % season, minlength=season)
    indices /= indices.mean()
    steps = (n + np.arange(horizon)) % season
    return history[-1] / indices[(n - 1) % season] * indices[steps], True, False


def _errors(actual, forecast, scale) -> dict[str, Any]:
    """Per-row metrics of forecasts (R, H) against actuals (R, H); ``scale`` (R,) the
    MASE denominators. Means over rows; sMAPE as M4 (a 0/0 point counts 0)."""
    import warnings

    import numpy as np

    # Points without an actual or a forecast (NaN) are left out, rows without any
    # point too; rows_scored counts the rest.
    scored = np.isfinite(actual) & np.isfinite(forecast)
    error = np.where(scored, actual - forecast, np.nan)
    absolute = np.abs(error)
    denominator = np.abs(actual) + np.abs(forecast)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # means of empty rows
        smape = np.where(denominator > 0, 200 * absolute / denominator, 0.0)
        smape[~scored] = np.nan
        mase = np.nanmean(absolute, axis=1) / scale
        return {
            "smape": float(np.nanmean(np.nanmean(smape, axis=1))),
            "mase": float(np.nanmean(np.where(np.isfinite(mase), mase, np.nan))),
            "mae": float(np.nanmean(np.nanmean(absolute, axis=1))),
            "rmse": float(np.nanmean(np.sqrt(np.nanmean(error**2, axis=1)))),
            "rows_scored": int(scored.any(axis=1).sum()),
        }


def _read_forecasts(paths: list[Path], ids: list[str] | None, horizon: int, expected_times):
    """Point and 10%/90% quantile forecasts (R, H) from rnncast's files: one file of
    every series (rows in ``ids`` order, NaN for a series it lacks), or one file per
    row (``ids`` None). Also how many rows' times match the actuals', and how many
    rows are missing."""
    import numpy as np
    import pandas as pd

    frames = [pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p) for p in paths]
    if ids is None:
        blocks = [frame.iloc[:horizon] for frame in frames]
    else:
        frame = frames[0]
        frame["unique_id"] = frame["unique_id"].astype(str)
        groups = dict(tuple(frame.sort_values(["unique_id", "ds"]).groupby("unique_id")))
        blocks = [groups.get(name) for name in ids]
    columns = {"point": "y_hat", "q10": "y_q10", "q90": "y_q90"}
    out = {key: np.full(expected_times.shape, np.nan) for key in columns}
    times = np.zeros(expected_times.shape, dtype=np.int64)
    missing = 0
    for row, block in enumerate(blocks):
        if block is None or len(block) < horizon:
            missing += 1
            continue
        block = block.iloc[:horizon]
        for key, column in columns.items():
            if column in block:
                out[key][row] = block[column].to_numpy(np.float64)
        times[row] = pd.to_datetime(block["ds"]).to_numpy("datetime64[ns]").astype(np.int64)
    matched = int((times == expected_times).all(axis=1).sum())
    return out, matched, missing


def child_score(spec: dict[str, Any]) -> dict[str, Any]:
    """Score every method of one data set with the numpy scorer above."""
    import numpy as np

    name, work = spec["dataset"], Path(spec["work"])
    info = DATASETS[name]
    horizon, season = info["horizon"], info["season"]
    truth = np.load(work / "truth.npz")
    if name == "etth1":
        target, origins = truth["target"], truth["origins"]
        histories = [target[:origin] for origin in origins]
        actual = np.stack([target[o : o + horizon] for o in origins])
        expected_times = np.stack([truth["times"][o : o + horizon] for o in origins])
        fit = target[:ETT_FIT_ROWS]
        scale = np.full(origins.shape[0], np.abs(fit[season:] - fit[:-season]).mean())
        train = target[:ETT_TRAIN_ROWS]
        mean, deviation = train.mean(), train.std()  # population σ, as Informer's scaler
    else:
        offsets, history = truth["offsets"], truth["history"]
        histories = [history[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
        actual, expected_times = truth["actual"], truth["actual_times"]
        lag = max(season, 1)
        scale = np.array([np.abs(h[lag:] - h[:-lag]).mean() if h.shape[0] > lag else np.nan
                          for h in histories])  # fmt: skip

    forecasts: dict[str, Any] = {}
    forecasts["naive"] = np.stack([np.full(horizon, h[-1]) for h in histories])
    forecasts["seasonal_naive"] = np.stack(
        [np.resize(h[-season:], horizon) if h.shape[0] >= season else np.full(horizon, h[-1])
         for h in histories]
    )  # fmt: skip
    naive2 = [naive2_forecast(h, horizon, season) for h in histories]
    forecasts["naive2"] = np.stack([row[0] for row in naive2])
    notes: dict[str, Any] = {
        "naive2_adjusted": sum(row[1] for row in naive2),
        "naive2_left_naive_nonpositive": sum(row[2] for row in naive2),
    }
    quantiles = None
    if spec.get("forecasts"):
        paths = [Path(p) for p in spec["forecasts"]]
        ids = None if name == "etth1" else [str(i) for i in truth["ids"]]
        read, matched, missing = _read_forecasts(paths, ids, horizon, expected_times)
        forecasts["rnncast"] = read["point"]
        quantiles = (read["q10"], read["q90"])
        notes["rnncast_rows_with_matching_times"] = matched
        notes["rnncast_rows_missing"] = missing
    stats = work / "stats.npz"
    if stats.exists():
        with np.load(stats) as saved:
            forecasts.update({f"statsforecast_{key}": saved[key] for key in saved.files})

    results: dict[str, dict[str, Any]] = {}
    for method, forecast in forecasts.items():
        if forecast.shape != actual.shape:
            results[method] = {"status": "failed", "note": f"shape {forecast.shape}"}
            continue
        scores = _errors(actual, forecast, scale)
        if name == "etth1":
            scores["mse_z"] = float((((actual - forecast) / deviation) ** 2).mean())
            scores["mae_z"] = float((np.abs(actual - forecast) / deviation).mean())
            scores["rmse"] = float(np.sqrt(((actual - forecast) ** 2).mean()))
        results[method] = scores
    reference = results["naive2"]
    for scores in results.values():
        if "smape" in scores:
            scores["owa"] = 0.5 * (scores["smape"] / reference["smape"]
                                   + scores["mase"] / reference["mase"])  # fmt: skip
    if quantiles is not None and quantiles[0] is not None and quantiles[1] is not None:
        low, high = quantiles
        results["rnncast"]["coverage_80"] = float(((low <= actual) & (actual <= high)).mean())
        pinball = (np.maximum(0.1 * (actual - low), -0.9 * (actual - low))
                   + np.maximum(0.9 * (actual - high), -0.1 * (actual - high))) / 2  # fmt: skip
        results["rnncast"]["scaled_pinball_q10_q90"] = float(
            np.nanmean(pinball.mean(axis=1) / scale)
        )
    if spec.get("evaluate_metrics") and name == "etth1":
        document = json.loads(Path(spec["evaluate_metrics"]).read_text())
        mae, rmse = document["series"]["model"]["mae"][0], document["series"]["model"]["rmse"][0]
        results["rnncast"]["evaluate"] = {
            "mae": mae, "rmse": rmse, "mae_z": mae / deviation, "mse_z": (rmse / deviation) ** 2,
            "relative_to_naive2": document.get("relative_to_naive2"),
        }  # fmt: skip
    return {"series": int(actual.shape[0]), "methods": _rounded(results), "notes": notes,
            "scale": {"z_mean": float(mean), "z_std": float(deviation)}
            if name == "etth1" else None}  # fmt: skip


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return _rounded(value.item())
    return value


def run_child_job(kind: str, spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    jobs = {"prepare": child_prepare, "stats": child_stats, "score": child_score}
    result = jobs[kind](spec)
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------- parent


def run_process(command: list[str], timeout_s: float, log: Path | None = None) -> dict[str, Any]:
    """Run ``command``: wall seconds, the child's own peak RSS and CPU (os.wait4), exit
    code, stdout, and the end of stderr (all of it into ``log`` if given)."""
    began = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=out, stderr=errors, cwd=REPO_ROOT)
        pause = 0.002
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - began > timeout_s:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(pause)
            pause = min(pause * 1.5, 0.25)
        wall = time.perf_counter() - began
        out.seek(0)
        errors.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), errors.read().decode(errors="replace")
    if log is not None:
        log.write_text(stderr)
    return {
        "wall_s": round(wall, 3),
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # KiB on Linux
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "returncode": os.waitstatus_to_exitcode(status),
        "timed_out": wall > timeout_s,
        "stdout": stdout,
        "stderr_tail": stderr.strip().splitlines()[-4:],
    }


def run_job(kind: str, spec: dict[str, Any], work: Path, timeout_s: float) -> dict[str, Any]:
    spec_path = work / f"{kind}.json"
    spec_path.write_text(json.dumps(spec))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, str(spec_path)]
    run = run_process(command, timeout_s)
    lines = [ln for ln in run["stdout"].splitlines() if ln.startswith(RESULT_PREFIX)]
    if run["returncode"] != 0 or not lines:
        raise RuntimeError(f"{kind} child exited {run['returncode']}: "
                           + " | ".join(run["stderr_tail"]))  # fmt: skip
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    result["wall_s"] = run["wall_s"]
    return result


def _timing(run: dict[str, Any]) -> dict[str, Any]:
    return {key: run[key] for key in ("wall_s", "peak_rss_bytes", "cpu_s", "returncode")}


def _failed(step: str, run: dict[str, Any]) -> dict[str, Any]:
    why = "timed out" if run["timed_out"] else f"exited {run['returncode']}"
    return {"status": "failed", "note": f"{step} {why}: " + " | ".join(run["stderr_tail"])}


def run_rnncast(name: str, work: Path, prepared: dict[str, Any], args) -> dict[str, Any]:
    """Train with the defaults, then forecast (or, for ETTh1, forecast from each origin
    and run evaluate): timings, peak memory, what the model chose, forecast files."""
    info = DATASETS[name]
    horizon, max_time = info["horizon"], args.max_time[name]
    model_dir = work / "model"
    data_args: list[str] = []
    if name == "etth1":
        lines = (DATA_DIR / info["file"]).read_text().splitlines(keepends=True)
        header, rows = lines[0], lines[1:]
        train_path = work / "fit.csv"
        train_path.write_text(header + "".join(rows[:ETT_FIT_ROWS]))
        data_args = ["--target-col", "OT"]
    else:
        train_path = Path(prepared["train"])
    # The defaults as a user gets them: only the horizon and a seed, and a --max-time
    # only when asked for (rnncast's own budget follows from the data's size).
    budget = ["--max-time", f"{max_time:g}"] if args.max_time_given else []
    command = [*_launch(args), "train", str(train_path), "--horizon", str(horizon), "--seed",
               str(SEED), *budget, "--out", str(model_dir), *data_args,
               *shlex.split(args.extra_args)]  # fmt: skip
    print(f"  rnncast train ({max_time:g} s at most) ...", flush=True)
    trained = run_process(command, max_time + 1200, work / "train.log")
    if args.keep_logs is not None:
        args.keep_logs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / "train.log", args.keep_logs / f"{args.label}-{name}-train.log")
    result: dict[str, Any] = {"train_command": _display(command), "fit": _timing(trained)}
    if trained["returncode"] != 0:
        return {**result, **_failed("train", trained)}
    inspected = run_process([str(RNNCAST), "inspect", str(model_dir), "--json"], 120)
    if inspected["returncode"] == 0:
        result["model"] = _model_summary(json.loads(inspected["stdout"]))
    forecasts = []
    if name == "etth1":
        runs = []
        origins = [ETT_FIT_ROWS + horizon * k for k in range(prepared["series"])]
        print(f"  rnncast forecast from {len(origins)} origins ...", flush=True)
        for number, origin in enumerate(origins):
            history = work / "history.csv"
            history.write_text(header + "".join(rows[:origin]))
            out = work / f"forecast_{number:03d}.csv"
            run = run_process([str(RNNCAST), "forecast", str(history), "--model",
                               str(model_dir), "--out", str(out), "--quiet"], 600)  # fmt: skip
            if run["returncode"] != 0:
                return {**result, **_failed(f"forecast from row {origin}", run)}
            runs.append(run)
            forecasts.append(str(out))
        history.unlink()
        result["predict"] = {
            "wall_s": round(sum(run["wall_s"] for run in runs), 3),
            "per_origin_median_s": round(statistics.median(run["wall_s"] for run in runs), 3),
            "peak_rss_bytes": max(run["peak_rss_bytes"] for run in runs),
            "processes": len(runs),
        }
        # evaluate's last origin is H before the end: with fewer than 120 origins
        # (--series) the file ends so that its origins are those forecast above.
        whole = work / "all.csv"
        whole.write_text(header + "".join(rows[: origins[-1] + horizon]))
        report = work / "evaluate"
        command = [
            str(RNNCAST),
            "evaluate",
            str(whole),
            "--model",
            str(model_dir),
            "--folds",
            str(prepared["series"]),
            "--step",
            str(horizon),
            "--out",
            str(report),
        ]
        print("  rnncast evaluate ...", flush=True)
        evaluated = run_process(command, 1200)
        result["evaluate"] = _timing(evaluated)
        if evaluated["returncode"] == 0:
            result["evaluate_metrics"] = str(report / "metrics.json")
    else:
        out = work / "forecast.parquet"
        command = [*_launch(args), "forecast", str(train_path), "--model", str(model_dir), "--out",
                   str(out)]  # fmt: skip
        print("  rnncast forecast ...", flush=True)
        run = run_process(command, 1200)
        result["predict"] = _timing(run)
        if run["returncode"] != 0:
            return {**result, **_failed("forecast", run)}
        forecasts.append(str(out))
    result["forecasts"] = forecasts
    return result


def _launch(args) -> list[str]:
    """The start of an rnncast command line: the CLI, or torchrun starting
    ``--processes`` of it (training and forecasting, which run under torchrun)."""
    if args.processes == 1:
        return [str(RNNCAST)]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            str(args.processes), "-m", "rnncast"]  # fmt: skip


def _model_summary(description: dict[str, Any]) -> dict[str, Any]:
    model, training = description.get("model", {}), description.get("training", {})
    history = description.get("history", {})
    return {
        **{key: model.get(key) for key in ("cell", "hidden", "layers", "loss", "scaler")},
        **{key: training.get(key) for key in ("strategy", "chunk_len", "batch_size", "lr")},
        "epochs": len(history.get("epochs") or []),
        **{key: history.get(key) for key in ("best_epoch", "stopped", "seconds", "device")},
        "chosen": history.get("chosen"),
        "long_season": model.get("long_season"),
        # Per member: seed, chunk, epochs, best epoch, seconds (an ensemble's members).
        "members": history.get("members"),
        # Members trained and left out by validation (selection.choose_members), if any.
        "left_out": history.get("left_out"),
        # Which weight averages were tried and whether one was kept (loop.py).
        "averaged": history.get("averaged"),
    }


def _display(command: list[str]) -> str:
    text = " ".join(shlex.quote(part) for part in command)
    for root, short in ((str(DATA_DIR) + "/", ""), (str(REPO_ROOT) + "/", "")):
        text = text.replace(root, short)
    return text


def run_dataset(name: str, args, work: Path) -> dict[str, Any]:
    info = DATASETS[name]
    work.mkdir(parents=True)
    spec = {"dataset": name, "work": str(work), "series": args.series}
    print(f"{name}: {info['title']}, h {info['horizon']}, m {info['season']}", flush=True)
    prepared = run_job("prepare", spec, work, 600)
    entry: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "settings": {
            "horizon": info["horizon"], "season": info["season"], "seed": SEED,
            "max_time": args.max_time[name], "series": prepared["series"],
            "subsample": args.series, "extra_args": args.extra_args,
        },
        "load_average_start": os.getloadavg(),
    }  # fmt: skip
    score_spec = dict(spec)
    if not args.skip_rnncast:
        rnncast = run_rnncast(name, work, prepared, args)
        score_spec["forecasts"] = rnncast.pop("forecasts", None)
        score_spec["evaluate_metrics"] = rnncast.pop("evaluate_metrics", None)
        entry["rnncast"] = rnncast
    if not args.skip_stats:
        print("  statsforecast ...", flush=True)
        try:
            entry["statsforecast"] = run_job("stats", spec, work, 7200)
        except RuntimeError as error:
            entry["statsforecast"] = {"status": "failed", "note": str(error)}
    print("  scoring ...", flush=True)
    scored = run_job("score", score_spec, work, 1800)
    entry["methods"] = scored["methods"]
    entry["notes"] = scored["notes"]
    if scored.get("scale"):
        entry["z_normalisation"] = scored["scale"]
    entry["checks"] = _checks(name, entry["methods"], args.series)
    entry["load_average_end"] = os.getloadavg()
    return entry


def _checks(name: str, methods: dict[str, Any], subsample: int | None) -> dict[str, Any]:
    """The baselines against the published M4 Hourly values, and AutoETS against the
    "before" table (the full data sets only)."""
    if subsample:
        return {}
    checks = {}
    if name == "m4h":
        for method, (smape, mase) in PUBLISHED_M4H.items():
            got = (methods[method]["smape"], methods[method]["mase"])
            checks[method] = {
                "published": [smape, mase],
                "measured": list(got),
                "ok": (round(got[0], 3), round(got[1], 3)) == (smape, mase),
            }
    ets = methods.get("statsforecast_AutoETS")
    if name in BEFORE_AUTOETS and ets and "mase" in ets:
        keys = ("mse_z", "mae_z") if name == "etth1" else ("smape", "mase", "owa")
        got = [ets[key] for key in keys]
        before = BEFORE_AUTOETS[name]
        pairs = zip(got, before, strict=True)
        checks["AutoETS_before"] = {
            "before": list(before), "measured": got, "keys": list(keys),
            "ok": all(abs(g - b) <= 0.01 * abs(b) + 0.0015 for g, b in pairs),
        }  # fmt: skip
    return checks


def print_table(entries: dict[str, dict[str, Any]]) -> None:
    print()
    print("| data | method | sMAPE | MASE | OWA | MSE_z | MAE_z | fit s | predict s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, entry in entries.items():
        stats = (entry.get("statsforecast") or {}).get("models", {})
        for method, scores in entry["methods"].items():
            if "smape" not in scores:
                continue
            fit = predict = "–"
            if method == "rnncast":
                fit = f"{entry['rnncast']['fit']['wall_s']:.1f}"
                predict = f"{entry['rnncast']['predict']['wall_s']:.1f}"
            elif method.startswith("statsforecast_"):
                timing = stats.get(method.removeprefix("statsforecast_"), {})
                fit, predict = f"{timing.get('fit_s', 0):.1f}", f"{timing.get('predict_s', 0):.1f}"
            cells = [f"{scores[key]:.3f}" if key in scores else "–"
                     for key in ("smape", "mase", "owa", "mse_z", "mae_z")]  # fmt: skip
            print(f"| {DATASETS[name]['title']} | {method} | " + " | ".join(cells)
                  + f" | {fit} | {predict} |")  # fmt: skip
        for check, result in entry.get("checks", {}).items():
            print(
                f"<!-- {name} check {check}: {'ok' if result['ok'] else 'DIFFERS'} "
                f"{result['measured']} vs {result.get('published') or result.get('before')} -->"
            )


def merge_results(path: Path, label: str, entries: dict[str, Any]) -> dict[str, Any]:
    """The results file with this run's entries put under ``label`` (replacing the same
    label and data set), everything else kept."""
    document: dict[str, Any] = {}
    if path.exists():
        document = json.loads(path.read_text())
    document.setdefault("benchmark", "accuracy of rnncast's defaults against baselines")
    document["protocol"] = "../shared/data/README.md; bench/accuracy.py; bench/README.md"
    document["updated"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    runs = document.setdefault("runs", {})
    runs.setdefault(label, {}).update(entries)
    return document


def parse_max_time(text: str | None, names: list[str]) -> dict[str, float]:
    times = {name: float(DATASETS[name]["max_time"]) for name in DATASETS}
    if not text:
        return times
    for part in text.split(","):
        key, _, value = part.rpartition("=")
        for name in [key] if key else names:
            if name not in DATASETS:
                raise ValueError(f"--max-time: unknown data set {name!r}")
            times[name] = float(value)
    return times


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="m4h,m3m,m3y,etth1,sample",
                        help="comma-separated: " + ", ".join(DATASETS))  # fmt: skip
    parser.add_argument("--max-time", help="seconds of training: one number for all, or "
                        "NAME=S,... (defaults: " + ", ".join(
                            f"{k} {v['max_time']}" for k, v in DATASETS.items()) + ")")  # fmt: skip
    parser.add_argument("--series", type=int, help="only N series, evenly spaced by id "
                        "(ETTh1: the first N origins), for a quick check")  # fmt: skip
    parser.add_argument("--extra-args", default="", help="more options for rnncast train")
    parser.add_argument("--processes", type=int, default=1,
                        help="train and forecast under torchrun, N processes")  # fmt: skip
    parser.add_argument(
        "--label",
        help="name of this run in the results (default: defaults, "
        "or baselines with --skip-rnncast; -seriesN appended with --series)",
    )
    parser.add_argument("--skip-stats", action="store_true", help="no statsforecast models")
    parser.add_argument("--skip-rnncast", action="store_true", help="baselines only")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="JSON file to merge into")
    parser.add_argument(
        "--keep-logs",
        type=Path,
        metavar="DIR",
        help="copy each training log to DIR/LABEL-DATA-train.log",
    )
    parser.add_argument("--child", nargs=2, metavar=("JOB", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return args
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown or not names:
        parser.error(f"--datasets: unknown {', '.join(unknown) or 'empty'}; "
                     f"choose from {', '.join(DATASETS)}")  # fmt: skip
    args.datasets = names
    try:
        args.max_time_given = bool(args.max_time)
        args.max_time = parse_max_time(args.max_time, names)
    except ValueError as error:
        parser.error(str(error))
    if args.series is not None and args.series < 1:
        parser.error("--series must be at least 1")
    if (args.extra_args or args.processes != 1) and not args.label:
        parser.error("--extra-args and --processes need a --label, so an ablation never "
                     "replaces the defaults")  # fmt: skip
    if not args.label:
        args.label = "baselines" if args.skip_rnncast else "defaults"
        if args.series:
            args.label += f"-series{args.series}"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return run_child_job(*args.child)
    missing = [n for n in args.datasets if n != "sample" and not
               (DATA_DIR / (DATASETS[n].get("file") or DATASETS[n]["train"])).exists()]  # fmt: skip
    if missing:
        print(f"skipped {', '.join(missing)}: data not found in {DATA_DIR}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="rnncast-accuracy-"))
    entries: dict[str, Any] = {}
    try:
        for name in args.datasets:
            if name in missing:
                continue
            entry = run_dataset(name, args, work / name)
            entry["machine"] = machine_info(("rnncast", "torch", "numpy", "pandas",
                                             "statsforecast"))  # fmt: skip
            entry["parent_maxrss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            entries[name] = entry
            # Written after each data set, so a long run interrupted keeps what it measured.
            write_json_atomically(
                args.output, merge_results(args.output, args.label, {name: entry})
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(entries)
    print(f"\nwrote {args.output} (label {args.label!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
