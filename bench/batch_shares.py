"""Benchmark training batches in shares (rnncast/batch_shares.py): the seconds of an
epoch, and of its validation, with each batch taken whole on one thread against the
batch in shares, one a core.

Each round starts one fresh process per setting, in alternating order: it reads the
data, chooses the sizes and the transform as ``rnncast train`` does (with the CLI's
passive waiting, so the network trains on one thread), and trains ``--epochs``
epochs of one network (``training.train(..., cores=1)`` against ``cores=N``, N the
usable cores). The figure is the median over rounds of each process's median epoch
after the first; the ratio is shares / whole within a round, then the median.
Results go to ``bench/results/batch_shares.json``.

Usage: python bench/batch_shares.py [--rounds N] [--epochs N] [--datasets m4h,m3m]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from results_file import machine_info, write_json_atomically

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DATA_DIR = REPO_ROOT.parent / "shared" / "data"
RESULTS_PATH = BENCH_DIR / "results" / "batch_shares.json"
DATASETS = {
    "m4h": ("m4_hourly_train.parquet", 48),
    "m3m": ("m3_monthly_train.parquet", 18),
}


def child(name: str, cores: int, epochs: int) -> dict[str, Any]:
    """One training in this process: its epochs' and validations' seconds."""
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # as the CLI sets it, before torch starts
    import time

    from rnncast import losses
    from rnncast import training as network_training
    from rnncast.config import DataConfig, ModelConfig, TrainConfig
    from rnncast.panel import read_panel
    from rnncast.scaling import choose_transform, to_model_space

    file, horizon = DATASETS[name]
    panel = read_panel(str(DATA_DIR / file), DataConfig(horizon=horizon))
    transform = choose_transform(panel)
    panel = to_model_space(panel, transform)
    validations: list[float] = []
    validate = losses.Losses.validation

    def timed(self):
        began = time.perf_counter()
        result = validate(self)
        validations.append(time.perf_counter() - began)
        return result

    losses.Losses.validation = timed
    model = ModelConfig(horizon=horizon, transform=transform)
    training = TrainConfig(max_epochs=epochs, patience=epochs, refit=False, seed=1)
    trained = network_training.train(panel, model, training, save=False, cores=cores)
    ends = [epoch["seconds"] for epoch in trained.history["epochs"]]
    seconds = [round(b - a, 3) for a, b in zip([0.0, *ends], ends, strict=False)]
    return {"cores": cores, "shares": trained.history["shares"], "epoch_s": seconds,
            "validation_s": [round(v, 3) for v in validations[:epochs]],
            "chosen": trained.history["chosen"]}  # fmt: skip


def measure(name: str, cores: int, epochs: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", name, str(cores), str(epochs)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--datasets", default="m4h,m3m")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, cores, epochs = args.child
        print(json.dumps(child(name, int(cores), int(epochs))), flush=True)
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    results: dict[str, Any] = {}
    for name in args.datasets.split(","):
        if not (DATA_DIR / DATASETS[name][0]).exists():
            print(f"skipped {name}: data not found in {DATA_DIR}")
            continue
        rounds = []
        for number in range(args.rounds):
            order = [1, cores] if number % 2 == 0 else [cores, 1]
            runs = {count: measure(name, count, args.epochs) for count in order}
            whole, shared = runs[1], runs[cores]
            rounds.append({
                "whole_epoch_s": statistics.median(whole["epoch_s"][1:]),
                "shares_epoch_s": statistics.median(shared["epoch_s"][1:]),
                "whole_validation_s": statistics.median(whole["validation_s"][1:]),
                "shares_validation_s": statistics.median(shared["validation_s"][1:]),
                "shares": shared["shares"], "chosen": shared["chosen"],
            })  # fmt: skip
            print(name, rounds[-1], flush=True)
        ratios = [r["shares_epoch_s"] / r["whole_epoch_s"] for r in rounds]
        results[name] = {
            "rounds": rounds,
            "median_whole_epoch_s": statistics.median(r["whole_epoch_s"] for r in rounds),
            "median_shares_epoch_s": statistics.median(r["shares_epoch_s"] for r in rounds),
            "median_ratio": round(statistics.median(ratios), 4),
            "median_validation_ratio": round(statistics.median(
                r["shares_validation_s"] / r["whole_validation_s"] for r in rounds), 4),
        }  # fmt: skip
        print(name, "median ratio", results[name]["median_ratio"], flush=True)
    document = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": ["batch_shares.py", *sys.argv[1:]],
        "epochs": args.epochs, "rounds": args.rounds, "usable_cores": cores,
        "machine": machine_info(("torch", "numpy")),
        "load_average_end": os.getloadavg(),
        "results": results,
    }  # fmt: skip
    write_json_atomically(RESULTS_PATH, document)


if __name__ == "__main__":
    main()
