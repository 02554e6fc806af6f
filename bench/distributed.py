"""Benchmark training under torchrun: throughput, memory per rank and accuracy, at 1
and 2 processes on this machine (gloo on the CPU).

Each case runs ``rnncast train`` as a user would, on a synthetic hourly panel (a daily
and a weekly cycle, a level per series, noise) of ``--series`` series of ``--steps``
hours, with every size fixed (``--hidden 64 --layers 2 --chunk-len 96 --batch-size
64``, global: each of N processes takes 64 / N series a batch), one member, no
refit, ``--max-epochs E``. The cases:

* ``1x2``: one process, torch's default threads (2 here): rnncast as it runs today;
* ``1x1``: one process, one thread;
* ``2x1``: ``torchrun --standalone --nproc-per-node 2``, one thread each.

Throughput is training steps walked per second: the series' steps (less validation and
the test part) over the median epoch time of the model's history.json, epochs 2 to E
(the first warms caches up). Each process's peak RSS is read from inside it at exit
(``bench/rank_peak.py`` wraps the CLI), so memory per rank shows as the series grow.
Accuracy: the validation loss of the best epoch and the holdout's MASE of the model,
from metrics.json (the last 48 steps of every series), against seasonal naive's.

Results are merged into ``bench/results/distributed.json`` under ``--label``; a table
goes to stdout. No GPU figures are made here: on a machine with CUDA, ``--cases``
takes ``gpu1`` and ``gpuN`` (N GPUs, one process each).

``--extra-args`` adds options to every ``rnncast train`` (after the fixed sizes, so
that it may override them): ``--extra-args "--ensemble 4 --quantiles 0.1,...,0.9"`` on
many short series makes the validation and test forecasts, which rank 0 alone
gathers, weigh in each rank's memory.

Usage: python bench/distributed.py [--series 64,256,1024] [--steps 2000] [--epochs 4]
       [--cases 1x2,1x1,2x1] [--extra-args "..."] [--label NAME]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results_file import machine_info, write_json_atomically

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "results" / "distributed.json"
HORIZON = 48
SIZES = ["--hidden", "64", "--layers", "2", "--chunk-len", "96", "--batch-size", "64",
         "--ensemble", "1", "--no-refit", "--seed", "1"]  # fmt: skip


def make_panel(path: Path, series: int, steps: int) -> None:
    """A synthetic hourly panel in a child process (the parent imports no numpy)."""
    code = f"""
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
hours = np.arange({steps})
frames = []
for index in range({series}):
    level = rng.uniform(10, 100)
    shape = (1 + 0.3 * np.sin(2 * np.pi * hours / 24 + rng.uniform(0, 6))
             + 0.1 * np.sin(2 * np.pi * hours / 168 + rng.uniform(0, 6)))
    values = level * shape + rng.normal(0, 0.05 * level, {steps})
    frames.append(pd.DataFrame({{"unique_id": f"s{{index:05d}}",
        "ds": pd.date_range("2024-01-01", periods={steps}, freq="h"), "y": values}}))
pd.concat(frames, ignore_index=True).to_parquet({str(path)!r}, index=False)
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def command_for(
    case: str, data: Path, out: Path, peaks: Path, epochs: int, extra: list[str]
) -> list[str]:
    wrapper = [str(BENCH_DIR / "rank_peak.py"), str(peaks)]
    train = ["train", str(data), "--horizon", str(HORIZON), "--out", str(out), *SIZES,
             "--max-epochs", str(epochs), "--patience", str(epochs), *extra]  # fmt: skip
    if case == "1x2":
        return [sys.executable, *wrapper, *train]
    if case == "1x1":
        return [sys.executable, *wrapper, *train, "--threads", "1"]
    processes = int(case.split("x")[0]) if case[0].isdigit() else int(case.removeprefix("gpu"))
    threads = ["--threads", "1"] if case.endswith("x1") else ["--device", "cuda"]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            str(processes), *wrapper, *train, *threads]  # fmt: skip


def run_case(
    case: str, data: Path, work: Path, epochs: int, series: int, extra: list[str]
) -> dict[str, Any]:
    out = work / f"model-{case}"
    peaks = work / f"peaks-{case}"
    peaks.mkdir()
    environment = {"OMP_NUM_THREADS": "1"} if case.endswith("x1") else {}
    began = time.perf_counter()
    done = subprocess.run(command_for(case, data, out, peaks, epochs, extra), capture_output=True,
                          text=True, env={**_environment(), **environment})  # fmt: skip
    wall = time.perf_counter() - began
    if done.returncode != 0:
        return {"case": case, "failed": done.stderr[-2000:]}
    history = json.loads((out / "history.json").read_text())
    epochs_run = history["epochs"]
    seconds = [b["seconds"] - a["seconds"] for a, b in itertools.pairwise(epochs_run)]
    metrics = json.loads((out / "metrics.json").read_text())
    summary = metrics["summary"]
    config = json.loads((out / "config.json").read_text())
    val_size = config["training"]["val_size"]
    trained_steps = series * (int(config["data"]["steps"]) // series - val_size)
    median = statistics.median(seconds) if seconds else epochs_run[0]["seconds"]
    rss = sorted((json.loads(p.read_text()) for p in peaks.glob("*.json")), key=lambda e: e["rank"])
    return {
        "case": case,
        "series": series,
        "epochs": len(epochs_run),
        "epoch_seconds_median": round(median, 3),
        "steps_per_second": round(trained_steps / median, 1),
        "wall_s": round(wall, 2),
        "best_val_loss": history["best_loss"],
        "mase": summary["model"]["mase"]["mean"],
        "mase_seasonal_naive": summary["seasonal_naive"]["mase"]["mean"],
        "peak_rss_bytes_per_rank": [entry["peak_rss_bytes"] for entry in rss],
    }


def _environment() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", default="64,256,1024")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--cases", default="1x2,1x1,2x1")
    parser.add_argument("--extra-args", default="", help="more options for rnncast train")
    parser.add_argument("--label", default="cpu")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    cases = [c for c in args.cases.split(",") if c]
    extra = shlex.split(args.extra_args)
    rows = []
    work = Path(tempfile.mkdtemp(prefix="rnncast-distributed-"))
    try:
        for series in (int(s) for s in args.series.split(",")):
            data = work / f"panel-{series}.parquet"
            make_panel(data, series, args.steps)
            for case in cases:
                print(f"{series} series, {case} ...", flush=True)
                folder = work / f"{series}"
                folder.mkdir(exist_ok=True)
                row = run_case(case, data, folder, args.epochs, series, extra)
                rows.append(row)
                print("  " + json.dumps(row), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    document = json.loads(args.output.read_text()) if args.output.exists() else {"runs": {}}
    document["runs"][args.label] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(("torch", "numpy", "pyarrow")),
        "settings": {
            "steps": args.steps,
            "epochs": args.epochs,
            "horizon": HORIZON,
            "train_args": [*SIZES, *extra],
        },
        "rows": rows,
    }
    write_json_atomically(args.output, document)
    print(
        "\n| series | case | s/epoch | steps/s | MASE (seasonal naive) | val loss "
        "| peak RSS/rank MB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        if "failed" in row:
            print(f"| | {row['case']} | failed | | | | |")
            continue
        rss = ", ".join(f"{b / 2**20:.0f}" for b in row["peak_rss_bytes_per_rank"])
        print(
            f"| {row['series']} | {row['case']} | {row['epoch_seconds_median']} | "
            f"{row['steps_per_second']:,.0f} | {row['mase']:.3f} "
            f"({row['mase_seasonal_naive']:.3f}) | {row['best_val_loss']:.4f} | {rss} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
