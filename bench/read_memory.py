"""Benchmark what reading the data costs a training's peak memory and time: Arrow's
pool hands back what a read freed (panel.read_panel), and under torchrun the processes
read shares of the data (shared_read.py) instead of each reading all of it.

``rnncast train`` runs as a user runs it, on a synthetic hourly panel of ``--series``
series of ``--steps`` hours (bench/distributed.py's, its fixed sizes, one member, no
refit, ``--max-epochs 1``), in three cases:

* ``1``: one process;
* ``2``: ``torchrun --standalone --nproc-per-node 2``, one thread each, the same file;
* ``2-files``: the same, the data as 8 files of whole series (a dataset partitioned
  by series, which the processes read in shares).

and variants of the same code, alternated round by round (the first changes from
round to round), since this machine is shared and its memory and timings drift:

* ``now``: the code as it is;
* ``rank0`` (``2-files`` only): rank 0 reads all the data and deals it out
  (``shared_read.read_dealt``, which ``now`` takes for one file; until stop 38 it
  sent every process the whole Panel);
* ``before``: every process reads all the data itself and the pool keeps what the
  read freed, as rnncast did before.

The variants are the same code with the newer ways undone inside the process. Each
process's peak RSS is read from inside it at exit, and the seconds its read took
(until it held the whole Panel). Results, with medians over the rounds, go to
``bench/results/read_memory.json``; a table to stdout.

``--read-only`` runs the read alone (``shared_read.read_for_training`` as ``rnncast
train`` calls it, then exit), where ``4-files`` (4 processes) is worth its time: what
reading costs each process, apart from training's memory, which in these runs is
the larger and sets the peak. Results merge into the file under ``--label``.

Usage: python bench/read_memory.py [--series 2048] [--steps 1000] [--rounds 3]
       [--cases 1,2,2-files,4-files] [--read-only] [--label NAME]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
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
RESULTS_PATH = BENCH_DIR / "results" / "read_memory.json"
# Processes, and the data as one file or as FILES files of whole series.
VARIANTS = {"1": ("before", "now"), "2": ("before", "now"), "2-files": ("before", "rank0", "now"),
            "4-files": ("before", "rank0", "now")}  # fmt: skip
FILES = 8


def child(peaks: Path, variant: str, arguments: list[str]) -> None:
    """Run ``rnncast ARGUMENTS`` in this process as ``variant``; record its peak RSS
    and how long reading took it."""
    import atexit

    import rnncast.panel
    import rnncast.shared_read as shared_read

    spent = []

    def record() -> None:
        rank = int(os.environ.get("RANK", "0"))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        (peaks / f"rank-{rank}.json").write_text(
            json.dumps({"rank": rank, "peak": peak, "read_s": spent[0] if spent else None})
        )

    atexit.register(record)
    read = shared_read.read_for_training
    if variant == "before":
        rnncast.panel.hand_back_read_memory = lambda: None
        read = rnncast.panel.read_panel
    elif variant == "rank0":
        whole = rnncast.panel.read_panel
        read = lambda location, config: shared_read.read_dealt(lambda: whole(location, config))  # noqa: E731

    def timed(location: Any, config: Any) -> Any:
        began = time.perf_counter()
        panel = read(location, config)
        spent.append(round(time.perf_counter() - began, 3))
        return panel

    shared_read.read_for_training = timed
    if arguments[0] == "read":
        # The read alone, as rnncast train makes it: its cost without training's.
        from rnncast import distributed
        from rnncast.config import DataConfig

        distributed.start(distributed.launched_world(), "cpu")
        shared_read.read_for_training(arguments[1], DataConfig(horizon=int(arguments[2])))
        distributed.finish()
        return
    sys.argv = ["rnncast", *arguments]
    from rnncast.cli import main

    main()


def split_by_series(data: Path, folder: Path) -> Path:
    """``data`` as FILES Parquet files of whole series (in a child process: the parent
    imports no pandas)."""
    code = f"""
import pandas as pd
frame = pd.read_parquet({str(data)!r})
names = sorted(frame["unique_id"].unique())
size = -(-len(names) // {FILES})
for number in range({FILES}):
    part = frame[frame["unique_id"].isin(names[number * size:(number + 1) * size])]
    part.to_parquet({str(folder)!r} + f"/part-{{number}}.parquet", index=False)
"""
    folder.mkdir()
    subprocess.run([sys.executable, "-c", code], check=True)
    return folder


def run(case: str, variant: str, data: Path, work: Path, read_only: bool) -> dict[str, Any]:
    from distributed import HORIZON, SIZES

    folder = Path(tempfile.mkdtemp(prefix=f"{case}-{variant}-", dir=work))
    train = ["train", str(data), "--horizon", str(HORIZON), "--out", str(folder / "model"),
             *SIZES, "--max-epochs", "1", "--quiet"]  # fmt: skip
    if read_only:
        train = ["read", str(data), str(HORIZON)]
    wrapper = [str(Path(__file__).resolve()), "--child", str(folder), variant, "--"]
    if case == "1":
        command = [sys.executable, *wrapper, *train]
    else:
        threads = [] if read_only else ["--threads", "1"]
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc-per-node", case[0], *wrapper, *train, *threads]  # fmt: skip
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}  # fmt: skip
    if case != "1":
        environment["OMP_NUM_THREADS"] = "1"
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        return {"case": case, "variant": variant, "failed": done.stderr[-2000:]}
    peaks = sorted((json.loads(p.read_text()) for p in folder.glob("rank-*.json")),
                   key=lambda entry: entry["rank"])  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)
    return {"case": case, "variant": variant, "wall_s": round(wall, 2),
            "peak_rss_bytes_per_rank": [entry["peak"] for entry in peaks],
            "read_s_per_rank": [entry["read_s"] for entry in peaks]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), sys.argv[3], sys.argv[5:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default="1,2,2-files")
    parser.add_argument("--read-only", action="store_true", help="read the data, no training")
    parser.add_argument("--label", default="train")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    from distributed import make_panel

    work = Path(tempfile.mkdtemp(prefix="rnncast-read-memory-"))
    runs = []
    try:
        data = work / "panel.parquet"
        make_panel(data, args.series, args.steps)
        folder = split_by_series(data, work / "files")
        for round_ in range(args.rounds):
            for case in args.cases.split(","):
                # Alternated, and the first variant changes from round to round.
                order = VARIANTS[case] if round_ % 2 == 0 else VARIANTS[case][::-1]
                for variant in order:
                    where = folder if case.endswith("files") else data
                    row = {"round": round_, **run(case, variant, where, work, args.read_only)}
                    print(json.dumps(row), flush=True)
                    runs.append(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = _summary(runs, args.cases.split(","))
    document = json.loads(args.output.read_text()) if args.output.exists() else {}
    document.setdefault("benchmark", "read_memory")
    document.setdefault("labels", {})[args.label] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(("rnncast", "torch", "numpy", "pyarrow")),
        "settings": {
            "series": args.series,
            "steps": args.steps,
            "rounds": args.rounds,
            "read_only": args.read_only,
            "files": FILES,
        },
        "note": "medians over the rounds; peaks in MiB",
        "runs": runs,
        "summary": summary,
    }
    write_json_atomically(args.output, document)
    print("\n| processes | variant | peak RSS per rank (MB) | less than before (MB) "
          "| reading (s) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- |")
    for case, rows in summary.items():
        for variant in VARIANTS[case]:
            row = rows[variant]
            print(f"| {case} | {variant} | {row['median_peak_mb']} | {row['median_saved_mb']} "
                  f"| {row['median_read_s']} |")  # fmt: skip
    return 0


def _summary(runs: list[dict[str, Any]], cases: list[str]) -> dict[str, Any]:
    """Per case and variant: the median peak and read seconds of each rank, and the
    median of the rounds' differences in peak from ``before`` (before less it), over
    the rounds where every variant of the case ran."""
    summary = {}
    for case in cases:
        variants = VARIANTS[case]
        by_round: dict[int, dict[str, dict[str, Any]]] = {}
        for row in runs:
            if row["case"] == case and "failed" not in row:
                by_round.setdefault(row["round"], {})[row["variant"]] = row
        rounds = [both for both in by_round.values() if len(both) == len(variants)]
        if not rounds:
            continue
        summary[case] = {"rounds": len(rounds)}
        for variant in variants:
            peaks = _per_rank(rounds, variant, "peak_rss_bytes_per_rank")
            before = _per_rank(rounds, "before", "peak_rss_bytes_per_rank")
            summary[case][variant] = {
                "median_peak_mb": [round(statistics.median(p) / 2**20) for p in peaks],
                "median_saved_mb": [
                    round(statistics.median(_less(b, p)) / 2**20)
                    for b, p in zip(before, peaks, strict=True)
                ],
                "median_read_s": [
                    round(statistics.median(r), 2)
                    for r in _per_rank(rounds, variant, "read_s_per_rank")
                ],
            }
    return summary


def _per_rank(rounds: list[dict[str, dict[str, Any]]], variant: str, key: str) -> list[list[Any]]:
    """Each rank's ``key`` of ``variant``, round after round."""
    ranks = len(rounds[0][variant][key])
    return [[each[variant][key][rank] for each in rounds] for rank in range(ranks)]


def _less(first: list[float], second: list[float]) -> list[float]:
    """Round by round, ``first`` less ``second``."""
    return [a - b for a, b in zip(first, second, strict=True)]


if __name__ == "__main__":
    sys.exit(main())
