"""Benchmark the last step of ``rnncast train`` under torchrun: reading the encoder's
states at the end of every training series (warm.py), which a forecast of the same
histories then starts from.

A model of the network bench/distributed.py trains (LSTM, hidden 64, two layers, H 48)
is trained once, one epoch, on a synthetic hourly panel of ``--series`` series of
``--steps`` hours (bench/distributed.py's ``make_panel``). Then a child reads the states
of every series with ``forecasting.warm_states``, as fitting.train does after training,
in three cases alternated round by round (the first changes from round to round):

* ``1``: one process, one thread;
* ``2-rank0``: torchrun, 2 processes of one thread each; rank 0 reads every series
  while the other waits, as rnncast did before;
* ``2-shared``: the same 2 processes, each reading a consecutive half and rank 0 joining
  them (now).

Each case records the seconds until rank 0 holds every state (after a barrier, so that
start-up is not counted) and checks that the states equal the one-process reading.
Results, with medians over the rounds, go to ``bench/results/warm_share.json``.

Usage: python bench/warm_share.py [--series 4096] [--steps 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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
RESULTS_PATH = BENCH_DIR / "results" / "warm_share.json"
CASES = ("1", "2-rank0", "2-shared")


def child(model_dir: str, data: str, case: str, out: str) -> None:
    """Read the states as ``case`` says; rank 0 writes the seconds and the states."""
    import numpy as np

    import rnncast
    from rnncast import distributed
    from rnncast.forecasting import warm_states

    current = distributed.start(distributed.launched_world(), "cpu")
    model = rnncast.load_model(model_dir)
    panel = rnncast.read_panel(data)
    distributed.barrier()
    began = time.perf_counter()
    states = None
    if case == "2-rank0":
        # As before: rank 0 reads every series as one process would, while the other
        # waits for it (at the barrier below, as it did for the model's writing).
        whole = distributed.world
        distributed.world = lambda: distributed.SINGLE
        if current.is_main:
            states = warm_states(model, panel)
        distributed.world = whole
        distributed.barrier()
    else:
        states = warm_states(model, panel)
    seconds = time.perf_counter() - began
    if current.is_main:
        np.savez(out + ".npz", **states.arrays())
        Path(out + ".json").write_text(json.dumps({"seconds": seconds}))
    if current.is_distributed:
        distributed.finish()


def run(case: str, model_dir: Path, data: Path, out: Path) -> float:
    arguments = [str(Path(__file__).resolve()), "--child", str(model_dir), str(data), case,
                 str(out)]  # fmt: skip
    launcher = (
        [sys.executable]
        if case == "1"
        else [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
        ]
    )
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}  # fmt: skip
    environment["OMP_NUM_THREADS"] = "1"
    subprocess.run([*launcher, *arguments], check=True, env=environment, capture_output=True)
    return json.loads(Path(str(out) + ".json").read_text())["seconds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--series", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    import numpy as np

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rnncast-warm-share-") as folder:
        work = Path(folder)
        data = work / "data.parquet"
        make_panel(data, args.series, args.steps)
        model_dir = work / "model"
        subprocess.run([sys.executable, "-m", "rnncast", "train", str(data), "--horizon", "48",
                        "--out", str(model_dir), *SIZES, "--max-epochs", "1", "--threads",
                        "1"], check=True, capture_output=True)  # fmt: skip
        seconds: dict[str, list[float]] = {case: [] for case in CASES}
        same = True
        for round_number in range(args.rounds):
            order = CASES[round_number % len(CASES) :] + CASES[: round_number % len(CASES)]
            for case in order:
                out = work / f"{case}-{round_number}"
                seconds[case].append(round(run(case, model_dir, data, out), 3))
            reference = np.load(str(work / f"1-{round_number}.npz"))
            for case in CASES[1:]:
                found = np.load(str(work / f"{case}-{round_number}.npz"))
                same &= all(np.allclose(found[name], reference[name], rtol=0, atol=1e-5)
                            for name in reference.files)  # fmt: skip
    medians = {case: statistics.median(values) for case, values in seconds.items()}
    document: dict[str, Any] = {
        "benchmark": "reading the warm states after training, one process against two",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - began, 1),
        "series": args.series, "steps": args.steps, "rounds": args.rounds,
        "network": "lstm, hidden 64, 2 layers, H 48, one thread per process",
        "seconds_until_rank0_holds_every_state": {"median": medians, "raw": seconds},
        "shared_over_rank0": round(medians["2-shared"] / medians["2-rank0"], 3),
        "states_equal_one_process": bool(same),
        "machine": machine_info(("torch", "numpy")),
    }  # fmt: skip
    write_json_atomically(RESULTS_PATH, document)
    for case in CASES:
        print(f"{case:>9}: {medians[case]:.2f} s  (raw {seconds[case]})")
    print(f"states equal one process's: {same}; written to {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
