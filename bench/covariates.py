"""Benchmark covariate roles: what past, known-future, static and holiday inputs buy.

Each variant trains with ``rnncast train`` and is scored with ``rnncast evaluate``
(rolling origins over data the model never saw); a future covariate's values at each
origin are then the ones in the file, as a user's forecast file would give them.

* ``etth1``: ETTh1's ``OT`` (h 24), trained on rows 0-11,519 (``--max-time``, 300 s by
  default), evaluated from 120 origins 24 rows apart over rows 11,520-14,399 (the
  protocol of ``../shared/data/README.md``): OT alone; the six load columns as past
  covariates (known up to each origin); the same columns as future covariates, an
  oracle (their real values over the horizon), to show the upper bound. MSE and MAE
  z-normalised with the mean and spread of OT over rows 0-8,639.
* ``sample``: ``sample_data/load_hourly.parquet`` (h 24), trained on all but its last
  7 days, evaluated from 7 origins a day apart over those days: no covariate; the
  measured temperature (past); that plus the day-ahead ``temperature_forecast``
  (future) and US holidays, what a user has; and the measured temperature as a
  future covariate, an oracle.
* ``holidays``: 24 invented daily series (seeded, written by this script: a weekly
  cycle, noise, and German public holidays and bridge days run at 35 % and 80 % of a
  normal day), trained on 2021-01-01 to 2023-03-31 and evaluated from 13 origins a
  week apart over April to June 2023 (Good Friday, Easter Monday, 1 May, Ascension,
  Whit Monday), h 7: without and with ``--holidays DE``.

Results go to ``bench/results/covariates.json`` (written atomically) and a Markdown
table to stdout. The parent imports neither numpy nor pandas.

Usage: python bench/covariates.py [--datasets etth1,sample,holidays] [--max-time S]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results_file import machine_info, write_json_atomically

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DATA_DIR = REPO_ROOT.parent / "shared" / "data"
RESULTS_PATH = BENCH_DIR / "results" / "covariates.json"
RNNCAST = Path(sys.executable).parent / "rnncast"
SEED = 1
ETT_TRAIN_ROWS, ETT_FIT_ROWS, ETT_END_ROWS, ETT_ORIGINS = 8_640, 11_520, 14_400, 120
ETT_LOADS = "HUFL,HULL,MUFL,MULL,LUFL,LULL"
SAMPLE_DAYS_HELD = 7

VARIANTS: dict[str, list[tuple[str, list[str]]]] = {
    "etth1": [
        ("OT alone", []),
        ("loads as past covariates", ["--covariates", ETT_LOADS]),
        ("loads as future covariates (oracle)", ["--future-covariates", ETT_LOADS]),
    ],
    "holidays": [
        ("no holidays", []),
        ("--holidays DE", ["--holidays", "DE"]),
    ],
    "sample": [
        ("no covariate", []),
        ("temperature (past)", ["--covariates", "temperature"]),
        (
            "temperature (past) + forecast (future) + holidays",
            [
                "--covariates",
                "temperature",
                "--future-covariates",
                "temperature_forecast",
                "--holidays",
                "US",
            ],
        ),
        ("temperature as future (oracle)", ["--future-covariates", "temperature"]),
    ],
}


def run(command: list[str], log: Path) -> tuple[int, float]:
    began = time.perf_counter()
    with log.open("w") as errors:
        code = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=errors, cwd=REPO_ROOT)
    return code.returncode, round(time.perf_counter() - began, 3)


def ett_files(work: Path) -> tuple[Path, Path, float]:
    """The training rows, the rows the evaluation reads, and OT's spread on rows 0-8,639."""
    lines = (DATA_DIR / "ETTh1.csv").read_text().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    fit, whole = work / "fit.csv", work / "whole.csv"
    fit.write_text(header + "".join(rows[:ETT_FIT_ROWS]))
    whole.write_text(header + "".join(rows[:ETT_END_ROWS]))
    position = header.strip().split(",").index("OT")
    values = [float(row.split(",")[position]) for row in rows[:ETT_TRAIN_ROWS]]
    return fit, whole, statistics.pstdev(values)


def sample_files(work: Path) -> tuple[Path, Path]:
    """All but the last days of the sample load, and the whole of it, as CSV."""
    source = REPO_ROOT / "sample_data" / "load_hourly.csv"
    with source.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    stamps = sorted({row[1] for row in body})
    cut = stamps[-24 * SAMPLE_DAYS_HELD]
    fit = work / "fit.csv"
    with fit.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(row for row in body if row[1] < cut)
    return fit, source


def holiday_files(work: Path) -> tuple[Path, Path]:
    """The invented holiday data (see the module docstring), in a child process so
    this one imports neither numpy nor pandas: the training part and the whole."""
    fit, whole = work / "fit.csv", work / "whole.csv"
    subprocess.run([sys.executable, __file__, "--write-holiday-data", str(work)], check=True)
    return fit, whole


def write_holiday_data(folder: Path) -> None:
    import numpy as np
    import pandas as pd

    from rnncast.holiday_features import holiday_features

    days = pd.date_range("2021-01-01", "2023-06-30", freq="D")
    stamps = days.values.astype("datetime64[ns]").astype(np.int64)
    flags = holiday_features(stamps, stamps + 86_400 * 10**9, "DE")  # (D, 4)
    factor = 1.0 - 0.65 * flags[:, 0] - 0.2 * flags[:, 1]
    weekly = np.array([1.0, 0.95, 0.97, 1.0, 1.1, 0.6, 0.3])[days.dayofweek]
    rng = np.random.default_rng(SEED)
    frames = []
    for index in range(24):
        level = 50 + 10 * index
        y = level * weekly * factor * np.exp(rng.normal(0, 0.05, days.size))
        frames.append(pd.DataFrame({"unique_id": f"store_{index:02d}", "ds": days,
                                    "y": y.round(2)}))  # fmt: skip
    whole = pd.concat(frames, ignore_index=True)
    whole.to_csv(folder / "whole.csv", index=False)
    whole[whole["ds"] <= "2023-03-31"].to_csv(folder / "fit.csv", index=False)


def variant(name: str, label: str, extra: list[str], work: Path, args) -> dict[str, Any]:
    model = work / "model"
    report = work / "report"
    if name == "etth1":
        fit, whole, deviation = ett_files(work)
        data = ["--target-col", "OT"]
        folds = ETT_ORIGINS
        budget = ["--max-time", f"{args.max_time:g}"]
    elif name == "holidays":
        fit, whole = holiday_files(work)
        deviation = None
        data = []
        folds = 13
        budget = []
    else:
        fit, whole = sample_files(work)
        deviation = None
        data = []
        folds = SAMPLE_DAYS_HELD
        budget = []
    horizon = "7" if name == "holidays" else "24"
    train = [str(RNNCAST), "train", str(fit), "--horizon", horizon, "--seed", str(SEED),
             "--out", str(model), *data, *extra, *budget, "--quiet"]  # fmt: skip
    print(f"  {label}: train ...", flush=True)
    code, train_s = run(train, work / "train.log")
    result: dict[str, Any] = {"variant": label, "args": extra, "train_s": train_s}
    if code:
        result["failed"] = (work / "train.log").read_text().strip().splitlines()[-1:]
        return result
    evaluate = [str(RNNCAST), "evaluate", str(whole), "--model", str(model), "--folds",
                str(folds), "--step", horizon, "--out", str(report), "--quiet"]  # fmt: skip
    code, evaluate_s = run(evaluate, work / "evaluate.log")
    result["evaluate_s"] = evaluate_s
    if code:
        result["failed"] = (work / "evaluate.log").read_text().strip().splitlines()[-1:]
        return result
    document = json.loads((report / "metrics.json").read_text())
    summary = document["summary"]
    model_scores = summary["model"]
    result.update(
        points=document["counts"]["points"],
        mase=model_scores["mase"]["mean"],
        smape=model_scores["smape"]["mean"],
        mae=model_scores["mae"]["mean"],
        coverage_80=model_scores.get("coverage_80", {}).get("mean"),
        seasonal_naive={
            "mase": summary["seasonal_naive"]["mase"]["mean"],
            "smape": summary["seasonal_naive"]["smape"]["mean"],
        },
    )
    if deviation is not None:
        series = document["series"]["model"]
        result["mae_z"] = series["mae"][0] / deviation
        result["mse_z"] = (series["rmse"][0] / deviation) ** 2
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="etth1,sample,holidays")
    parser.add_argument("--max-time", type=float, default=300.0, help="ETTh1's training budget")
    parser.add_argument("--write-holiday-data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_holiday_data is not None:
        write_holiday_data(args.write_holiday_data)
        return
    names = [name.strip() for name in args.datasets.split(",")]
    if "etth1" in names and not (DATA_DIR / "ETTh1.csv").exists():
        print(f"skipping etth1: {DATA_DIR / 'ETTh1.csv'} is absent", flush=True)
        names.remove("etth1")
    results: dict[str, Any] = {}
    for name in names:
        print(f"{name}:", flush=True)
        results[name] = []
        for label, extra in VARIANTS[name]:
            with tempfile.TemporaryDirectory(prefix="rnncast-covariates-") as folder:
                results[name].append(variant(name, label, extra, Path(folder), args))
    previous = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
    document = {
        "benchmark": "covariates",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(("torch", "numpy", "pandas", "pyarrow", "holidays")),
        "settings": {
            "seed": SEED,
            "etth1_max_time": args.max_time,
            "sample_days_held": SAMPLE_DAYS_HELD,
        },
        "results": {**previous.get("results", {}), **results},
    }
    write_json_atomically(RESULTS_PATH, document)
    print("\n| data | inputs | MASE | sMAPE | MSE_z | MAE_z | coverage 80 | train s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, rows in results.items():
        for row in rows:
            if "failed" in row:
                print(f"| {name} | {row['variant']} | failed: {row['failed']} | | | | | |")
                continue
            z = f"{row['mse_z']:.4f} | {row['mae_z']:.4f}" if "mse_z" in row else "– | –"
            print(f"| {name} | {row['variant']} | {row['mase']:.3f} | {row['smape']:.2f} | {z} | "
                  f"{(row['coverage_80'] or 0):.3f} | {row['train_s']:.0f} |")  # fmt: skip
    print(f"\nwrote {RESULTS_PATH}")


if __name__ == "__main__":
    main()
