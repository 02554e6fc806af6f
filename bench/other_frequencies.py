"""The defaults on frequencies and lengths the benchmark sets lack: 15-minute, daily,
quarterly, and yearly series shorter than M3 Yearly's.

Derived from the data in ``../shared/data`` (never copied into the project):

* ``ettm1`` ETTm1's ``OT`` every 15 minutes (m 96), h 96: fitted on its first 46,080
  rows (16 months, ETTh1's split in 15-minute rows), forecast from 30 origins a day
  apart after them.
* ``etth1_daily`` ETTh1's ``OT`` as daily means (m 7), h 7: fitted on its first 480
  days, forecast from 30 origins a week apart after them.
* ``m3_quarterly`` M3 Monthly summed to whole quarters (m 4), h 6: the last 6
  quarters of each series held out, the rest fitted.
* ``m3_yearly_short`` M3 Monthly summed to whole years (m 1), h 2, the series of
  8 years or more (about 9 to 12 years): the last 2 years held out, the rest fitted.
  Shorter yearly histories than M3 Yearly's, and other series.
* ``m4h_daily`` M4 Hourly (its training and test hours) summed to whole days (m 7),
  h 7: the last 7 days of each series held out, the rest (about 35 days) fitted.

Each is trained with the defaults through the Python API (only the horizon and a
seed) and scored like ``bench/ablation.py``: mean sMAPE, MASE (seasonal scale of
the fitted part) and OWA against Naive2, beside naive and seasonal naive from the
same histories. Results: ``bench/results/other_frequencies.json``.

Usage: python bench/other_frequencies.py [--datasets etth1_daily,m3_quarterly,ettm1]
       [--transform log|none] [--scaler NAME] [--seed N] [--label NAME]

Without a label the run replaces ``runs``; with one, its data sets go under
``labels[NAME]`` and the rest of the file is kept. ``--transform`` and ``--scaler``
override the choices the defaults make from the data.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from ablation import DATA, SEED, naive2, score
from results_file import machine_info, write_json_atomically

RESULTS = Path(__file__).resolve().parent / "results" / "other_frequencies.json"


def ett_panels(frame: pd.DataFrame, fit_rows: int, horizon: int, origins: int):
    import rnncast

    frame = frame.rename(columns={"date": "ds", "OT": "y"})[["ds", "y"]]
    full = rnncast.Panel.from_frame(frame.iloc[: fit_rows + horizon * origins])
    cuts = (fit_rows + horizon * np.arange(origins))[None, :]
    return full.split_tail(full.lengths[0] - fit_rows)[0], full, cuts


def summed_m3(months: int, fewest: int = 1):
    """M3 Monthly (its training and test months) summed to whole periods of ``months``
    months, counted from each series' first month; series of fewer than ``fewest``
    periods left out."""
    import rnncast

    frame = pd.concat([pd.read_parquet(DATA / f"m3_monthly_{part}.parquet") for part in
                       ("train", "test")]).sort_values(["unique_id", "ds"])  # fmt: skip
    frame["period"] = frame.groupby("unique_id").cumcount() // months
    whole = frame.groupby(["unique_id", "period"]).filter(lambda g: len(g) == months)
    sums = whole.groupby(["unique_id", "period"], as_index=False).agg(y=("y", "sum"))
    sums = sums.groupby("unique_id").filter(lambda g: len(g) >= fewest)
    sums["ds"] = [pd.Timestamp("1990-01-01") + pd.DateOffset(months=months * int(period))
                  for period in sums["period"]]  # fmt: skip
    return rnncast.Panel.from_frame(sums[["unique_id", "ds", "y"]])


def daily_m4():
    import rnncast

    frame = pd.concat([pd.read_parquet(DATA / f"m4_hourly_{part}.parquet") for part in
                       ("train", "test")]).sort_values(["unique_id", "ds"])  # fmt: skip
    # Whole days counted back from each series' last hour.
    back = frame.groupby("unique_id").cumcount(ascending=False)
    frame["day"] = -(back // 24)
    whole = frame.groupby(["unique_id", "day"]).filter(lambda g: len(g) == 24)
    days = whole.groupby(["unique_id", "day"], as_index=False).agg(y=("y", "sum"))
    days["ds"] = pd.Timestamp("2000-06-30") + pd.to_timedelta(days["day"], unit="D")
    return rnncast.Panel.from_frame(days[["unique_id", "ds", "y"]])


def run(
    name: str,
    horizon: int,
    season: int,
    transform: str | None = None,
    scaler: str | None = None,
    seed: int = SEED,
) -> dict:
    import rnncast
    from rnncast.config import ModelConfig, TrainConfig
    from rnncast.forecasting import forecast_origins

    if name in ("m3_quarterly", "m4h_daily", "m3_yearly_short"):
        full = {"m3_quarterly": lambda: summed_m3(3), "m4h_daily": daily_m4,
                "m3_yearly_short": lambda: summed_m3(12, fewest=8)}[name]()  # fmt: skip
        train = full.split_tail(horizon)[0]
        cuts = train.lengths[:, None]
    elif name == "ettm1":
        train, full, cuts = ett_panels(pd.read_csv(DATA / "ETTm1.csv"), 46_080, horizon, 30)
    else:
        hourly = pd.read_csv(DATA / "ETTh1.csv", parse_dates=["date"])
        daily = hourly.set_index("date")["OT"].resample("D").mean().reset_index()
        train, full, cuts = ett_panels(daily, 480, horizon, 30)
    began = time.perf_counter()
    config = ModelConfig(horizon=horizon, transform=transform, scaler=scaler)
    model = rnncast.train(train, config, TrainConfig(seed=seed))
    seconds = round(time.perf_counter() - began, 1)
    median = model.config.output_quantiles.index(0.5)
    predicted = forecast_origins(model, full, cuts)[..., median]  # (S, K, H)
    histories, forecasts, actual, naive, seasonal = [], [], [], [], []
    for s in range(full.n_series):
        values = full.series(s).astype(np.float64)
        for k, cut in enumerate(cuts[s]):
            histories.append(values[:cut])
            forecasts.append(predicted[s, k])
            actual.append(values[cut : cut + horizon])
            naive.append(np.full(horizon, values[cut - 1]))
            seasonal.append(values[cut - season : cut][np.arange(horizon) % season])
    actual = np.stack(actual)
    rows = {method: score(histories, np.stack(values), actual, season)
            for method, values in (("rnncast", forecasts), ("naive", naive),
                                   ("seasonal_naive", seasonal))}  # fmt: skip
    rows["naive2"] = score(histories, np.stack([naive2(h, horizon, season) for h in histories]),
                           actual, season)  # fmt: skip
    combination = model.combination
    return {"horizon": horizon, "season": season, "series": int(full.n_series),
            "forecasts": len(histories), "train_seconds": seconds, "methods": rows,
            "base": combination.base if combination else None,
            "network_share": round(float(np.mean(combination.weights)), 3)
            if combination else None,
            "transform": model.config.transform, "scaler": model.config.scaler, "seed": seed,
            "members_kept": len(model.history.get("members") or [None]),
            "members_left_out": len(model.history.get("left_out") or [])}  # fmt: skip


DATASETS = {"etth1_daily": (7, 7), "m3_quarterly": (6, 4), "ettm1": (96, 96), "m4h_daily": (7, 7),
            "m3_yearly_short": (2, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--transform", choices=("log", "none"))
    parser.add_argument("--scaler", choices=("standard", "meanabs", "robust", "shared"))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--label")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = {}
    for name in args.datasets.split(","):
        horizon, season = DATASETS[name]
        results[name] = run(name, horizon, season, args.transform, args.scaler, args.seed)
        print(name, results[name], flush=True)
    machine = machine_info(("rnncast", "torch", "numpy"))
    if args.label is None:
        document = {"benchmark": "other_frequencies", "runs": results, "machine": machine}
    else:
        document = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        label = document.setdefault("labels", {}).setdefault(args.label, {})
        label.update({name: {**result, "machine": machine} for name, result in results.items()})
    write_json_atomically(RESULTS, document)


if __name__ == "__main__":
    main()
