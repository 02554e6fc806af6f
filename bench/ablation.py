"""Ablation of issue 12's changes: each one off in turn, on M3 Monthly and Yearly, ETTh1, M4 Hourly.

One process per data set, through the Python API (in process, so ETTh1's 120 origins
cost one pass of ``forecast_origins``, not 120 CLI processes). Each data set is
trained three times, at the same seed and budget:

* ``defaults``: every change on. From the same run come two more rows: ``no blend``
  (the refit network alone, ``combination=None``) and ``no refit`` (the model before
  the refit, as ``before_refit`` saw it).
* ``one validation horizon``: ``val_size`` = the horizon (the old default).
* ``level inputs``: the encoder reads levels, not changes (``relative_inputs`` off).

Scored as ``bench/accuracy.py`` scores (M4's sMAPE, MASE with the training part's
seasonal scale, OWA against Naive2; ETTh1's MSE and MAE z-normalised with rows
0-8,639), from numpy here. Results: ``bench/results/ablation.json``.

Usage: python bench/ablation.py [--datasets m3m,etth1,m4h,m3y] [--max-time m4h=300,...]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from results_file import machine_info, write_json_atomically

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results" / "ablation.json"
SEED = 1
ETT_FIT_ROWS, ETT_TRAIN_ROWS, ETT_ORIGINS = 11_520, 8_640, 120
DATASETS = {
    "m3m": {"name": "m3_monthly", "horizon": 18, "season": 12, "max_time": 120.0},
    "etth1": {"horizon": 24, "season": 24, "max_time": 60.0},
    "m4h": {"name": "m4_hourly", "horizon": 48, "season": 24, "max_time": 300.0},
    "m3y": {"name": "m3_yearly", "horizon": 6, "season": 1, "max_time": 60.0},
}
VARIANTS = {
    "defaults": {},
    "one validation horizon": {"val_size": "horizon"},
    "level inputs": {"relative_inputs": False},
}


def load(key: str):
    """(training panel, actuals per series (S, H) or ETTh1's full panel, info)."""
    import rnncast
    from rnncast.config import DataConfig

    info = DATASETS[key]
    if key == "etth1":
        frame = pd.read_csv(DATA / "ETTh1.csv")[["date", "OT"]].iloc[: ETT_FIT_ROWS + 24 * 120]
        full = rnncast.Panel.from_frame(
            frame.rename(columns={"date": "ds", "OT": "y"}), DataConfig()
        )
        return full.split_tail(len(frame) - ETT_FIT_ROWS)[0], full, info
    train = rnncast.read_panel(DATA / f"{info['name']}_train.parquet")
    test = pd.read_parquet(DATA / f"{info['name']}_test.parquet").sort_values(["unique_id", "ds"])
    actual = {str(k): g["y"].to_numpy() for k, g in test.groupby("unique_id")}
    return train, np.stack([actual[str(i)] for i in train.ids]), info


def naive2(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    from rnncast.baselines import naive2 as forecast_naive2

    cuts, begins = np.array([[history.shape[0]]]), np.zeros(1, dtype=np.int64)
    return forecast_naive2(history, begins, cuts, horizon, season)[0, 0]


def score(histories: list[np.ndarray], forecasts: np.ndarray, actual: np.ndarray, season: int):
    """Mean sMAPE and MASE over (S, H) forecasts, and OWA against Naive2."""
    horizon = actual.shape[1]

    def means(predicted: np.ndarray) -> tuple[float, float]:
        total = np.abs(actual) + np.abs(predicted)
        # M4's convention: a step where the actual and the forecast are both 0 counts 0.
        smape = 200 * np.abs(actual - predicted) / np.where(total > 0, total, 1.0)
        scale = np.array([np.abs(h[season:] - h[:-season]).mean() for h in histories])
        return float(smape.mean()), float((np.abs(actual - predicted).mean(axis=1) / scale).mean())

    smape, mase = means(forecasts)
    smape2, mase2 = means(np.stack([naive2(h, horizon, season) for h in histories]))
    return {"smape": round(smape, 3), "mase": round(mase, 4),
            "owa": round(0.5 * (smape / smape2 + mase / mase2), 4)}  # fmt: skip


def evaluate(key: str, model, train, target) -> dict:
    from rnncast.forecasting import forecast, forecast_origins

    info = DATASETS[key]
    median = model.config.output_quantiles.index(0.5)
    if key == "etth1":
        cuts = (ETT_FIT_ROWS + info["horizon"] * np.arange(ETT_ORIGINS))[None, :]
        values = target.series(0).astype(np.float64)
        predicted = forecast_origins(model, target, cuts)[0, :, :, median]
        actual = np.stack([values[c : c + info["horizon"]] for c in cuts[0]])
        spread = values[:ETT_TRAIN_ROWS].std()
        histories = [values[:c] for c in cuts[0]]
        return {
            "mse_z": round(float((((predicted - actual) / spread) ** 2).mean()), 4),
            "mae_z": round(float((np.abs(predicted - actual) / spread).mean()), 4),
            **score(histories, predicted, actual, info["season"]),
        }
    histories = [train.series(i).astype(np.float64) for i in range(train.n_series)]
    return score(histories, forecast(model, train).point, target, info["season"])


def run(key: str, max_time: float) -> dict:
    import rnncast
    from rnncast.config import ModelConfig, TrainConfig

    train, target, info = load(key)
    rows = {}
    for name, change in VARIANTS.items():
        change = {k: info["horizon"] if v == "horizon" else v for k, v in change.items()}
        model_settings = {k: v for k, v in change.items() if k == "relative_inputs"}
        train_settings = {k: v for k, v in change.items() if k != "relative_inputs"}
        before_refit = []
        began = time.perf_counter()
        model = rnncast.train(
            train, ModelConfig(horizon=info["horizon"], **model_settings),
            TrainConfig(seed=SEED, max_time=max_time, **train_settings),
            before_refit=before_refit.append,
        )  # fmt: skip
        seconds = round(time.perf_counter() - began, 1)
        rows[name] = {"train_seconds": seconds, **evaluate(key, model, train, target)}
        print(key, name, rows[name], flush=True)
        if name == "defaults":
            rows["no blend (network alone)"] = {
                "train_seconds": seconds,
                **evaluate(key, replace(model, combination=None), train, target),
            }
            rows["no refit"] = {"train_seconds": seconds,
                                **evaluate(key, before_refit[0], train, target)}  # fmt: skip
            rows["defaults"]["combination"] = {
                "base": model.combination.base,
                "mean_network_share": round(float(np.mean(model.combination.weights)), 3),
            } if model.combination else None  # fmt: skip
    return {"max_time": max_time, "seed": SEED, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="m3m,etth1,m4h")
    parser.add_argument("--max-time", default="", help="NAME=S,... (seconds of training)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    budgets = {k: v["max_time"] for k, v in DATASETS.items()}
    for part in filter(None, args.max_time.split(",")):
        name, _, value = part.partition("=")
        budgets[name] = float(value)
    results = {}
    for key in args.datasets.split(","):
        results[key] = run(key, budgets[key])
        document = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        document = {"benchmark": "ablation", **document,
                    "runs": {**document.get("runs", {}), key: results[key]}}  # fmt: skip
        document["machine"] = machine_info(("rnncast", "torch", "numpy"))
        write_json_atomically(RESULTS, document)


if __name__ == "__main__":
    main()
