"""Benchmark ``rnncast forecast`` of a CSV under torchrun: one read, which rank 0
reads, forecast by rank 0 alone (before) or in consecutive shares by every process
(now, parts.py).

A model of the network bench/distributed.py trains (LSTM, hidden 64, two layers, H 48)
is trained once, one epoch, on a synthetic hourly panel of ``--series`` series of
``--steps`` hours (bench/distributed.py's ``make_panel``). The CSV forecast holds the
same series with every value 1% higher: histories the model's warm states (warm.py)
do not hold, so the network reads each whole, as it reads series it never trained
on. Then the whole command, as a user runs it, in three cases alternated round by
round:

* ``1``: ``rnncast forecast data.csv``, one process of one thread;
* ``2-rank0``: ``torchrun --nproc-per-node 2 -m rnncast forecast data.csv`` with the
  rnncast of ``--before`` (a checkout from before the shares) on ``PYTHONPATH``;
* ``2-shared``: the same with this checkout's rnncast.

Each records the command's wall seconds, start-up and the CSV's read included; the
outputs of both torchrun cases are checked against the one-process output (1e-6).
Results, with medians over the rounds, go to ``bench/results/csv_forecast_share.json``.

Usage: python bench/csv_forecast_share.py --before PATH [--series 2048] [--steps 1000]
[--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from distributed import SIZES, make_panel
from results_file import machine_info, write_json_atomically

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "results" / "csv_forecast_share.json"
CASES = ("1", "2-rank0", "2-shared")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            "2"]  # fmt: skip


def run(case: str, before: Path, model_dir: Path, data: Path, out: Path) -> float:
    forecast = ["-m", "rnncast", "forecast", str(data), "--model", str(model_dir), "--out",
                str(out), "--quiet"]  # fmt: skip
    command = [sys.executable, *forecast] if case == "1" else [*TORCHRUN, *forecast]
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}  # fmt: skip
    environment["OMP_NUM_THREADS"] = "1"
    environment["PYTHONPATH"] = str(before if case == "2-rank0" else REPO_ROOT)
    began = time.perf_counter()
    # Run from the work folder: ``python -m`` puts the current folder first on the
    # path, which from a checkout would take its rnncast over PYTHONPATH's.
    subprocess.run(command, check=True, env=environment, capture_output=True, cwd=out.parent)
    return time.perf_counter() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--before", type=Path, required=True,
                        help="a checkout of rnncast from before the shares")  # fmt: skip
    parser.add_argument("--series", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    import numpy as np
    import pandas as pd

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rnncast-csv-share-") as folder:
        work = Path(folder)
        parquet, data = work / "data.parquet", work / "data.csv"
        make_panel(parquet, args.series, args.steps)
        frame = pd.read_parquet(parquet)
        frame["y"] *= 1.01
        frame.to_csv(data, index=False)
        model_dir = work / "model"
        subprocess.run([sys.executable, "-m", "rnncast", "train", str(parquet), "--horizon",
                        "48", "--out", str(model_dir), *SIZES, "--max-epochs", "1",
                        "--threads", "1"], check=True, capture_output=True)  # fmt: skip
        seconds: dict[str, list[float]] = {case: [] for case in CASES}
        same = True
        for round_number in range(args.rounds):
            order = CASES[round_number % len(CASES) :] + CASES[: round_number % len(CASES)]
            for case in order:
                out = work / f"{case}-{round_number}.csv"
                seconds[case].append(round(run(case, args.before, model_dir, data, out), 3))
            reference = pd.read_csv(work / f"1-{round_number}.csv")
            for case in CASES[1:]:
                found = pd.read_csv(work / f"{case}-{round_number}.csv")
                same &= found["unique_id"].equals(reference["unique_id"]) and all(
                    np.allclose(found[name], reference[name], rtol=1e-6, atol=0)
                    for name in reference.columns if name.startswith("y")
                )  # fmt: skip
    medians = {case: statistics.median(values) for case, values in seconds.items()}
    document: dict[str, Any] = {
        "benchmark": "rnncast forecast of a CSV under torchrun: rank 0 alone, or shares",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - began, 1),
        "series": args.series, "steps": args.steps, "rounds": args.rounds,
        "network": "lstm, hidden 64, 2 layers, H 48, one thread per process",
        "command_wall_s": {"median": medians, "raw": seconds},
        "shared_over_rank0": round(medians["2-shared"] / medians["2-rank0"], 3),
        "forecasts_equal_one_process": bool(same),
        "machine": machine_info(("torch", "numpy")),
    }  # fmt: skip
    write_json_atomically(RESULTS_PATH, document)
    for case in CASES:
        print(f"{case:>9}: {medians[case]:.2f} s  (raw {seconds[case]})")
    print(f"forecasts equal one process's: {same}; written to {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
