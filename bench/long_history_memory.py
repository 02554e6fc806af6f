"""Benchmark the peak memory of training and forecasting on long histories.

torch's recurrences project every step's inputs at once, so encoding a whole history
in one call holds (series x steps x 4 hidden) floats for an LSTM. Forecasting and
validation read histories in pieces instead (``batches.summaries_at``). This script
measures what that saves, as a user meets it: a synthetic hourly panel (a daily and
a weekly cycle, a level per series, noise) of ``--series`` series of ``--steps``
hours, then, each in a fresh process whose peak RSS is read as it exits:

* ``train``: ``rnncast train`` with fixed sizes (LSTM 2 x 64, chunk 96, batch 64,
  one member, one epoch, no refit, one thread): training, validation, the holdout;
* ``forecast``: ``rnncast forecast`` of the same panel with the model it wrote.

Results merge into ``bench/results/long_history_memory.json`` under ``--label``. The
figure before a change is this script run with ``PYTHONPATH`` naming a checkout of
the code before it (the CLI is started as ``python -m rnncast``, so it imports the
rnncast that ``PYTHONPATH`` names first).

Usage: python bench/long_history_memory.py --label NAME [--series 512] [--steps 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results_file import machine_info, write_json_atomically

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "results" / "long_history_memory.json"
HORIZON = 48
SIZES = ["--hidden", "64", "--layers", "2", "--chunk-len", "96", "--batch-size", "64",
         "--ensemble", "1", "--no-refit", "--max-epochs", "1", "--patience", "1",
         "--threads", "1", "--seed", "1", "--quiet"]  # fmt: skip


def make_panel(path: Path, series: int, steps: int) -> None:
    """The panel, written by a child process: the parent imports no numpy."""
    code = f"""
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
hours = np.arange({steps})
level = rng.uniform(10, 100, ({series}, 1))
shape = (1 + 0.3 * np.sin(2 * np.pi * hours / 24 + rng.uniform(0, 6, ({series}, 1)))
         + 0.1 * np.sin(2 * np.pi * hours / 168 + rng.uniform(0, 6, ({series}, 1))))
values = level * shape + rng.normal(0, 0.05, ({series}, {steps})) * level
ids = np.repeat([f"s{{i:05d}}" for i in range({series})], {steps})
times = np.tile(pd.date_range("2024-01-01", periods={steps}, freq="h").values, {series})
pd.DataFrame({{"unique_id": ids, "ds": times, "y": values.ravel()}}).to_parquet(
    {str(path)!r}, index=False)
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def run_measured(arguments: list[str], log: Path) -> dict[str, Any]:
    """``python -m rnncast ARGUMENTS`` in a child; its wall time and peak RSS."""
    began = time.perf_counter()
    with log.open("w") as errors:
        # From the log's folder: ``-m`` puts the working directory first on the path,
        # and a checkout there would shadow the rnncast that PYTHONPATH names.
        child = subprocess.Popen([sys.executable, "-m", "rnncast", *arguments], cwd=log.parent,
                                 stdout=subprocess.DEVNULL, stderr=errors)  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"rnncast {arguments[0]} failed: {log.read_text()[-2000:]}")
    return {"wall_s": round(wall, 2), "peak_rss_bytes": usage.ru_maxrss * 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True)
    parser.add_argument("--series", type=int, default=512)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rnncast-long-history-") as folder:
        work = Path(folder)
        data = work / "panel.parquet"
        make_panel(data, args.series, args.steps)
        model = work / "model"
        train = run_measured(["train", str(data), "--horizon", str(HORIZON), "--out", str(model),
                              *SIZES], work / "train.log")  # fmt: skip
        forecast = run_measured(["forecast", str(data), "--model", str(model), "--out",
                                 str(work / "forecasts.parquet"), "--quiet"],
                                work / "forecast.log")  # fmt: skip
        history = json.loads((model / "history.json").read_text())
    document = json.loads(args.output.read_text()) if args.output.exists() else {"runs": {}}
    document["runs"][args.label] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(("torch", "numpy")),
        "data": {"series": args.series, "steps": args.steps, "horizon": HORIZON},
        "train_args": SIZES,
        "train": train,
        "forecast": forecast,
        "validation_loss": history["best_loss"],
    }
    write_json_atomically(args.output, document)
    print(json.dumps(document["runs"][args.label], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
