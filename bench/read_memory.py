"""Benchmark what reading the data costs a training's peak memory, before and after
two changes: Arrow's pool hands back what the read freed (panel.read_panel), and under
torchrun rank 0 alone reads the data and sends the others its Panel (shared_read.py).

``rnncast train`` runs as a user runs it, on a synthetic hourly panel of ``--series``
series of ``--steps`` hours (bench/distributed.py's, its fixed sizes, one member, no
refit, ``--max-epochs 1``), in two cases:

* ``1``: one process;
* ``2``: ``torchrun --standalone --nproc-per-node 2``, one thread each.

and two variants of the same code, alternated round by round, since this machine is
shared and its memory and timings drift:

* ``now``: the code as it is;
* ``before``: the same code with both changes undone inside the process (the pool
  keeps what it freed; every process reads the data itself), as rnncast was before.

Each process's peak RSS is read from inside it at exit. Results, with the median of
the rounds' differences, go to ``bench/results/read_memory.json``; a table to stdout.

Usage: python bench/read_memory.py [--series 2048] [--steps 1000] [--rounds 3]
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
VARIANTS = ("before", "now")


def child(peaks: Path, variant: str, arguments: list[str]) -> None:
    """Run ``rnncast ARGUMENTS`` in this process as ``variant``; record its peak RSS."""
    import atexit

    def record() -> None:
        rank = int(os.environ.get("RANK", "0"))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        (peaks / f"rank-{rank}.json").write_text(json.dumps({"rank": rank, "peak": peak}))

    atexit.register(record)
    if variant == "before":
        import rnncast.panel
        import rnncast.shared_read

        rnncast.panel.hand_back_read_memory = lambda: None
        rnncast.shared_read.read_once = lambda read: read()
    sys.argv = ["rnncast", *arguments]
    from rnncast.cli import main

    main()


def run(case: str, variant: str, data: Path, work: Path) -> dict[str, Any]:
    from distributed import HORIZON, SIZES

    folder = Path(tempfile.mkdtemp(prefix=f"{case}-{variant}-", dir=work))
    train = ["train", str(data), "--horizon", str(HORIZON), "--out", str(folder / "model"),
             *SIZES, "--max-epochs", "1", "--quiet"]  # fmt: skip
    wrapper = [str(Path(__file__).resolve()), "--child", str(folder), variant, "--"]
    if case == "1":
        command = [sys.executable, *wrapper, *train]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   "--nproc-per-node", case, *wrapper, *train, "--threads", "1"]  # fmt: skip
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
            "peak_rss_bytes_per_rank": [entry["peak"] for entry in peaks]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), sys.argv[3], sys.argv[5:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", default="1,2")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    from distributed import make_panel

    work = Path(tempfile.mkdtemp(prefix="rnncast-read-memory-"))
    runs = []
    try:
        data = work / "panel.parquet"
        make_panel(data, args.series, args.steps)
        for round_ in range(args.rounds):
            for case in args.cases.split(","):
                # Alternated, and the first variant changes from round to round.
                order = VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]
                for variant in order:
                    row = {"round": round_, **run(case, variant, data, work)}
                    print(json.dumps(row), flush=True)
                    runs.append(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = _summary(runs, args.cases.split(","))
    document = {
        "benchmark": "read_memory",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(("rnncast", "torch", "numpy", "pyarrow")),
        "settings": {"series": args.series, "steps": args.steps, "rounds": args.rounds},
        "runs": runs,
        "summary": summary,
    }
    write_json_atomically(args.output, document)
    print(
        "\n| processes | peak RSS per rank, before (MB) | now (MB) | saved, median of rounds "
        "(MB) | rounds lower |"
    )
    print("| --- | --- | --- | --- | --- |")
    for case, row in summary.items():
        print(
            f"| {case} | {row['median_peak_mb']['before']} | {row['median_peak_mb']['now']} | "
            f"{row['median_saved_mb']} | {row['rounds_lower']} of {row['rounds']} |"
        )
    return 0


def _summary(runs: list[dict[str, Any]], cases: list[str]) -> dict[str, Any]:
    """Per case: the median peak of each variant and rank, and the median of the
    rounds' differences (before less now), from the rounds where both ran."""
    summary = {}
    for case in cases:
        by_round: dict[int, dict[str, list[int]]] = {}
        for row in runs:
            if row["case"] == case and "failed" not in row:
                variants = by_round.setdefault(row["round"], {})
                variants[row["variant"]] = row["peak_rss_bytes_per_rank"]
        paired = [both for both in by_round.values() if len(both) == 2]
        if not paired:
            continue
        ranks = range(len(paired[0]["now"]))
        summary[case] = {
            "rounds": len(paired),
            "median_peak_mb": {
                variant: [
                    _median_mb(paired, lambda both, r, v=variant: both[v][r], rank)
                    for rank in ranks
                ]
                for variant in VARIANTS
            },
            "median_saved_mb": [
                _median_mb(paired, lambda both, r: both["before"][r] - both["now"][r], rank)
                for rank in ranks
            ],
            "rounds_lower": [
                sum(both["now"][rank] < both["before"][rank] for both in paired) for rank in ranks
            ],
        }
    return summary


def _median_mb(paired: list[dict[str, list[int]]], value: Any, rank: int) -> int:
    return round(statistics.median(value(both, rank) for both in paired) / 2**20)


if __name__ == "__main__":
    sys.exit(main())
