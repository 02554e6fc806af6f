"""Benchmark evaluation: backtest origins in one pass, and the cost of a report.

* ``backtest``: on M4 Hourly (414 series, H = 48) with a small LSTM (hidden 64, one
  layer, one epoch: speed, not accuracy), ``forecast_origins`` from K origins in one
  pass against K separate ``forecast`` calls on the history cut at each origin (what a
  backtest costs without the forking-sequence pass), for K = 1, 5 and 10. The two
  give the same numbers (tests/test_evaluation.py); here only time counts.
* ``score``: ``metrics.score`` plus the three baselines for S generated series
  (K = 1, H = 24, Q = 3), S = 1 000, 10 000 and 100 000.
* ``report``: ``write_report`` (figures, metrics.json, report.md, report.html) for the
  same evaluations: the report draws a handful of series whatever S is.

Each figure is the median of ``--repeats`` runs in this one process, one torch thread.
Results go to ``bench/results/evaluation.json``.

Usage: python bench/evaluation.py [--repeats N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from results_file import machine_info, write_json_atomically

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "results" / "evaluation.json"
DATA_PATH = REPO_ROOT.parent / "shared" / "data" / "m4_hourly_train.parquet"
HORIZON = 48
ORIGINS = (1, 5, 10)
SERIES = (1_000, 10_000, 100_000)


def _median_seconds(run, repeats: int) -> dict[str, Any]:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        run()
        times.append(time.perf_counter() - began)
    return {"median_s": round(statistics.median(times), 4), "runs_s": [round(t, 4) for t in times]}


def bench_backtest(repeats: int) -> list[dict[str, Any]]:
    import rnncast
    from rnncast.evaluation import backtest_cuts
    from rnncast.forecasting import forecast_origins

    panel = rnncast.read_panel(DATA_PATH)
    model = rnncast.train(
        panel,
        rnncast.ModelConfig(horizon=HORIZON, cell="lstm", hidden=64, layers=1),
        rnncast.TrainConfig(max_epochs=1, device="cpu", seed=0, test_size=0),
    )
    cases = []
    for origins in ORIGINS:
        cuts = backtest_cuts(panel.lengths, HORIZON, origins, HORIZON)

        def one_pass(cuts=cuts) -> None:
            forecast_origins(model, panel, cuts)

        def separate(cuts=cuts) -> None:
            for fold in range(cuts.shape[1]):
                rnncast.forecast(model, replace(panel, ends=panel.begins + cuts[:, fold]))

        together, apart = _median_seconds(one_pass, repeats), _median_seconds(separate, repeats)
        cases.append(
            {
                "origins": origins,
                "series": panel.n_series,
                "one_pass": together,
                "separate_calls": apart,
                "speedup": round(apart["median_s"] / together["median_s"], 2),
            }
        )
        print(cases[-1], file=sys.stderr)
    return cases


def synthetic_evaluation(n_series: int):
    """An Evaluation of S generated hourly series, scored like a holdout of H = 24."""
    import numpy as np

    from rnncast.baselines import baseline_forecasts
    from rnncast.evaluation import Evaluation
    from rnncast.frequency import parse_frequency
    from rnncast.metrics import score, seasonal_scales
    from rnncast.panel import Panel

    rng = np.random.default_rng(0)
    length, horizon, freq = 240, 24, parse_frequency("h")
    steps = np.arange(length)
    level = rng.uniform(10, 100, (n_series, 1))
    values = level * (1 + 0.3 * np.sin(2 * np.pi * steps / 24)) + rng.normal(
        0, 2, (n_series, length)
    )
    begins = np.arange(n_series, dtype=np.int64) * length
    panel = Panel(
        ids=np.array([f"s{i}" for i in range(n_series)]),
        values=values.reshape(-1).astype(np.float32),
        begins=begins,
        ends=begins + length,
        start_times=np.zeros(n_series, dtype=np.int64),
        freq=freq,
        covariates=np.zeros((n_series * length, 0), dtype=np.float32),
    )
    cuts = np.full((n_series, 1), length - horizon, dtype=np.int64)
    actual = values[:, None, length - horizon :]
    point = baseline_forecasts(panel.values, begins, cuts, horizon, 24)["seasonal_naive"]
    point = point * rng.normal(1, 0.02, point.shape)
    quantiles = (0.1, 0.5, 0.9)
    spread = np.abs(point) * 0.1
    bands = np.stack([point - spread, point, point + spread], axis=-1)

    def assemble() -> Evaluation:
        scale = seasonal_scales(panel.values, begins, cuts, 24)
        baselines = baseline_forecasts(panel.values, begins, cuts, horizon, 24)
        scores = {"model": score(actual, point, scale, quantiles=quantiles, values=bands)}
        scores.update((name, score(actual, f, scale)) for name, f in baselines.items())
        times = (cuts[..., None] + np.arange(horizon)) * freq.step_ns
        return Evaluation(
            kind="holdout", ids=panel.ids, freq=freq, tz=None, season=24, horizon=horizon,
            quantiles=quantiles, cuts=cuts, times=times, actual=actual, point=point,
            values=bands, baselines=baselines, scores=scores, history=panel,
        )  # fmt: skip

    return assemble


def bench_scores_and_reports(repeats: int) -> list[dict[str, Any]]:
    from rnncast.report import write_report

    cases = []
    for n_series in SERIES:
        assemble = synthetic_evaluation(n_series)
        evaluation = assemble()
        with tempfile.TemporaryDirectory() as folder:
            scored = _median_seconds(assemble, repeats)
            reported = _median_seconds(
                lambda folder=folder, evaluation=evaluation: write_report(folder, evaluation),
                repeats,
            )
            sizes = {p.name: p.stat().st_size for p in Path(folder).iterdir()}
        cases.append({"series": n_series, "score": scored, "report": reported, "file_bytes": sizes})
        print(cases[-1], file=sys.stderr)
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    results: dict[str, Any] = {
        "benchmark": "evaluation",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "repeats": options.repeats,
        "torch_threads": 1,
        "machine": machine_info(("torch", "numpy", "matplotlib", "pyarrow")),
    }
    if DATA_PATH.exists():
        results["backtest"] = bench_backtest(options.repeats)
    else:
        results["backtest"] = f"skipped: {DATA_PATH} not found"
    results["score_and_report"] = bench_scores_and_reports(options.repeats)
    write_json_atomically(RESULTS_PATH, results)
    print(f"wrote {RESULTS_PATH}", file=sys.stderr)


if __name__ == "__main__":
    main()
