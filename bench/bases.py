"""Benchmark the base forecasts under the network: seconds to forecast every history of
a panel with SES, Theta and drift (``bases.base_forecasts``), as training does on its
validation origins and ``rnncast forecast`` does at the end of every history.

Cases: M4 Hourly (414 series of up to 960 hours, H 48) and M3 Monthly (1,428 series,
H 18) from ``../shared/data`` (skipped when absent), at 1 and 10 origins per series,
and a synthetic panel of 10,000 random walks of 960 steps (H 24). Every timing is the
median of ``--repeats`` calls in this one process, the seasonal adjustment included.

``--label`` names the run; results merge into ``bench/results/bases.json`` under it,
so the same script run with ``PYTHONPATH`` pointing at an older tree records a
"before" beside the "after".

Usage: python bench/bases.py --label NAME [--repeats N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
from results_file import machine_info, write_json_atomically

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "results" / "bases.json"
DATA_DIR = BENCH_DIR.parent.parent / "shared" / "data"
METHODS = ("ses", "theta", "drift")


def panels() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, int, int]]:
    """name -> (values, begins, lengths, season, horizon)."""
    from rnncast.panel import read_panel

    found = {}
    for name, horizon in (("m4_hourly", 48), ("m3_monthly", 18)):
        path = DATA_DIR / f"{name}_train.parquet"
        if path.exists():
            panel = read_panel(path)
            found[name] = (panel.values, panel.begins, panel.lengths,
                           panel.freq.season_length, horizon)  # fmt: skip
    rng = np.random.default_rng(0)
    lengths = np.full(10_000, 960)
    walks = 1_000 + np.cumsum(rng.normal(0, 5, (10_000, 960)), axis=1)
    begins = np.arange(10_000) * 960
    found["random_walks_10000x960"] = (walks.reshape(-1), begins, lengths, 24, 24)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from rnncast.bases import base_forecasts

    cases = {}
    for name, (values, begins, lengths, season, horizon) in panels().items():
        for origins in (1, 10) if lengths.shape[0] < 5_000 else (1,):
            # Origins one horizon apart, the last at the end of each history.
            back = np.arange(origins)[::-1] * horizon
            cuts = np.maximum(lengths[:, None] - back[None, :], 1)
            for method in METHODS:
                times = []
                for _ in range(args.repeats):
                    began = time.perf_counter()
                    base_forecasts(values, begins, cuts, horizon, season, method)
                    times.append(time.perf_counter() - began)
                key = f"{name} x{origins} {method}"
                cases[key] = {"median_s": round(statistics.median(times), 4),
                              "raw_s": [round(t, 4) for t in times],
                              "histories": int(cuts.size)}  # fmt: skip
                print(f"{key}: {cases[key]['median_s']} s", flush=True)
    document = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
    document.setdefault("benchmark", "base forecasts (bases.base_forecasts), seconds")
    document.setdefault("runs", {})[args.label] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg(),
        "cases": cases,
        "machine": machine_info(("numpy",)),
    }
    write_json_atomically(RESULTS_PATH, document)


if __name__ == "__main__":
    main()
