"""Benchmark forecast latency: how long ``rnncast forecast`` takes on M4 Hourly, and where.

The network the defaults give M4 Hourly (lstm, hidden 64, two layers, one member; one
epoch, H = 48) is trained once with the CLI into a temporary directory. Then, each a
median of ``--repeats`` runs:

* ``cold``: the whole ``rnncast forecast m4_hourly_train.parquet --model DIR --out
  f.parquet`` process, wall time and peak RSS (os.wait4 rusage of that child alone); the
  case with the target (under 3 s on the 2-core machine);
* ``floor``: ``rnncast --version``, the start-up every command pays;
* ``exit``: the cold forecast through the command, which skips the interpreter's teardown,
  and through ``cli.main`` in a plain interpreter, which does not, alternated run by run;
* ``warm``: three cold forecasts alternated run by run: of the training file, whose
  histories begin with what the model's warm states read (rnncast/warm.py); of the
  training file with the test file's 48 hours after it (a later run from cron); and of
  the training file by the same model without its states, as a model saved before them;
* ``imports``: fresh ``python -c "import X"`` processes for the heavy modules forecast loads
  (torch, pyarrow.parquet, pandas) and for an empty interpreter, to show where start-up goes;
* ``in_process``: one child process times each stage of forecast separately: load_model,
  read_panel, forecast, to_frame and write_table. Its first pass (lazy imports included) is
  reported apart from the repeats that follow it.

Before measuring, the parent waits for the 1-minute load average to fall below
``--quiet-load`` (up to ``--max-wait`` seconds) and records what it saw. Results go to
``bench/results/forecast_latency.json``; see ``bench/README.md``.

Usage: python bench/forecast_latency.py [--repeats N] [--model DIR]
"""

from __future__ import annotations

# As in bench/ingest.py, the parent imports neither numpy nor torch: a child's ru_maxrss
# on Linux is at least its parent's peak, which would otherwise leak into every figure.
import argparse
import datetime as dt
import itertools
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
REPO_ROOT = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "results" / "forecast_latency.json"
DATA_PATH = REPO_ROOT.parent / "shared" / "data" / "m4_hourly_train.parquet"
TEST_PATH = DATA_PATH.with_name("m4_hourly_test.parquet")
RNNCAST = Path(sys.executable).parent / "rnncast"

HORIZON = 48
# The network the defaults give M4 Hourly (LSTM 2 x 64, one member: its first network
# fills the time budget); one epoch, no refit, so that the budget holds no more members.
TRAIN_OPTIONS = ["--horizon", str(HORIZON), "--cell", "lstm", "--hidden", "64", "--layers", "2",
                 "--max-epochs", "1", "--ensemble", "1", "--no-refit", "--seed", "0",
                 "--device", "cpu"]  # fmt: skip
TARGET_COLD_S = 3.0
IMPORTS = {
    "python": "pass",
    "torch": "import torch",
    "pyarrow.parquet": "import pyarrow.parquet",
    "pandas": "import pandas",
    "rnncast.cli": "import rnncast.cli",
}
COLD_VARIANTS = {
    "cold_one_thread": {"OMP_NUM_THREADS": "1"},
    "cold_passive_wait": {"OMP_WAIT_POLICY": "PASSIVE"},
}
STAGES = ("load_model", "read_panel", "forecast", "to_frame", "write_table")
RESULT_PREFIX = "RNNCAST_BENCH_RESULT "


# --------------------------------------------------------------------------- child


def child_stages(model_dir: str, repeats: int) -> None:
    """Time each stage of ``rnncast forecast`` in this one process; print one JSON line."""
    from dataclasses import replace

    began = time.perf_counter()
    import torch

    from rnncast.artifact import load_model
    from rnncast.forecasting import forecast
    from rnncast.model_data import data_config
    from rnncast.panel import read_panel
    from rnncast.sinks import write_table

    import_s = time.perf_counter() - began
    imported_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = Path(model_dir).parent / "stages.parquet"
    passes = []
    for _ in range(repeats + 1):
        marks = [time.perf_counter()]
        model = load_model(model_dir)
        marks.append(time.perf_counter())
        panel = read_panel(str(DATA_PATH), replace(data_config(model), horizon=None))
        marks.append(time.perf_counter())
        result = forecast(model, panel, device=torch.device("cpu"))
        marks.append(time.perf_counter())
        frame = result.to_frame()
        marks.append(time.perf_counter())
        write_table(frame, str(out))
        marks.append(time.perf_counter())
        times = {
            stage: b - a for stage, (a, b) in zip(STAGES, itertools.pairwise(marks), strict=True)
        }
        times["total"] = marks[-1] - marks[0]
        passes.append(times)
    threads = torch.get_num_threads()  # torch's default, as the CLI runs
    torch.set_num_threads(1)
    one_thread = []
    for _ in range(repeats):
        began = time.perf_counter()
        forecast(model, panel, device=torch.device("cpu"))
        one_thread.append(time.perf_counter() - began)
    summary = {
        "forecast_one_thread_s": one_thread,
        "import_s": import_s,
        "torch_threads": threads,
        # ru_maxrss after the imports and at the end: what the stages add to the process.
        "peak_rss_after_imports_bytes": imported_kib * 1024,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "series": int(panel.n_series),
        "rows_written": len(frame),
        "first_pass": passes[0],
        "repeats": passes[1:],
    }
    print(RESULT_PREFIX + json.dumps(summary), flush=True)


# --------------------------------------------------------------------------- parent


def run_timed(command: list[str]) -> dict[str, Any]:
    """Run ``command`` once: wall seconds, exit code and its output."""
    began = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    return {
        "wall_s": time.perf_counter() - began,
        "returncode": completed.returncode,
        "stderr": completed.stderr,
    }


def run_wait4(
    command: list[str], env: dict[str, str] | None = None, timeout_s: float = 300
) -> dict[str, Any]:
    """Run ``command`` once: wall seconds and the child's own rusage (os.wait4; RUSAGE_CHILDREN
    would be the maximum over every child so far). stdout is discarded."""
    began = time.perf_counter()
    with open(os.devnull, "wb") as devnull, tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command, stdout=devnull, stderr=errors, cwd=REPO_ROOT, env={**os.environ, **(env or {})}
        )
        deadline = began + timeout_s
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                os.wait4(process.pid, 0)
                raise subprocess.TimeoutExpired(command, timeout_s)
            time.sleep(0.002)
        wall = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        tail = errors.read().decode(errors="replace").strip().splitlines()[-3:]
    return {
        "wall_s": wall,
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # KiB on Linux
        "user_s": usage.ru_utime,
        "system_s": usage.ru_stime,
        "returncode": process.returncode,
        "stderr_tail": tail,
    }


def repeat(
    command: list[str], repeats: int, label: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    runs = []
    for number in range(repeats):
        run = run_wait4(command, env)
        if run["returncode"] != 0:
            raise RuntimeError(
                f"{label} exited {run['returncode']}: {' | '.join(run['stderr_tail'])}"
            )
        runs.append(run)
        print(f"  {label} {number + 1}/{repeats}: {run['wall_s']:.2f} s, "
              f"peak {run['peak_rss_bytes'] / 1e6:.0f} MB", flush=True)  # fmt: skip
    keys = ("wall_s", "peak_rss_bytes", "user_s", "system_s")
    return {
        "command": " ".join(_display(part) for part in command),
        "environment": env or {},
        **{key: summarise([run[key] for run in runs]) for key in keys},
        "stderr_tail": runs[-1]["stderr_tail"],
    }


def summarise(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "raw": values}


def wait_for_quiet(threshold: float, max_wait_s: float, poll_s: float = 15.0) -> dict[str, Any]:
    began = time.monotonic()
    seen = [os.getloadavg()[0]]
    while seen[-1] >= threshold and time.monotonic() - began < max_wait_s:
        time.sleep(poll_s)
        seen.append(os.getloadavg()[0])
    return {
        "threshold": threshold,
        "waited_s": round(time.monotonic() - began, 1),
        "quiet": seen[-1] < threshold,
        "first": seen[0],
        "last": seen[-1],
    }


def _display(part: str) -> str:
    for root, name in ((str(REPO_ROOT) + "/", ""), (str(DATA_PATH.parent) + "/", "")):
        part = part.replace(root, name)
    return part


def measure_stages(model_dir: Path, repeats: int) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(model_dir),
         "--repeats", str(repeats)],
        capture_output=True, text=True, check=False, cwd=REPO_ROOT,
    )  # fmt: skip
    lines = [ln for ln in completed.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"stage child exited {completed.returncode}: " + " | ".join(tail))
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    runs = result.pop("repeats")
    result["stages_s"] = {
        stage: summarise([run[stage] for run in runs]) for stage in (*STAGES, "total")
    }
    result["forecast_one_thread_s"] = summarise(result["forecast_one_thread_s"])
    return result


def measure(model_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = model_dir.parent / "f.parquet"
    forecast_command = [str(RNNCAST), "forecast", str(DATA_PATH), "--model", str(model_dir),
                        "--out", str(out)]  # fmt: skip
    results: dict[str, Any] = {}
    print("start-up floor: rnncast --version", flush=True)
    results["floor"] = repeat([str(RNNCAST), "--version"], args.repeats, "--version")
    print("cold: rnncast forecast", flush=True)
    results["cold"] = repeat(forecast_command, args.repeats, "forecast")
    results["cold"]["output_bytes"] = out.stat().st_size
    median = results["cold"]["wall_s"]["median"]
    results["cold"]["target"] = {"limit_s": TARGET_COLD_S, "median_s": median,
                                 "met": median < TARGET_COLD_S}  # fmt: skip
    # torch's OpenMP threads spin at every barrier; when another process holds a core, each
    # of the LSTM's per-step barriers waits for a time slice. These two variants show it.
    for name, env in COLD_VARIANTS.items():
        print(f"cold, {' '.join(f'{k}={v}' for k, v in env.items())}", flush=True)
        results[name] = repeat(forecast_command, args.repeats, "forecast", env)
    print("the command's exit against Python's ordinary one, alternated", flush=True)
    results["exit"] = measure_exit(forecast_command, args.repeats)
    print("warm states: the training file, newer data, and no states, alternated", flush=True)
    results["warm"] = measure_warm(model_dir, args.repeats)
    print("imports, each in a fresh interpreter", flush=True)
    results["imports"] = {
        name: repeat([sys.executable, "-c", code], args.repeats, name)
        for name, code in IMPORTS.items()
    }
    print("in-process stages", flush=True)
    results["in_process"] = measure_stages(model_dir, args.repeats)
    return results


def measure_exit(forecast_command: list[str], repeats: int) -> dict[str, Any]:
    """The same forecast through the ``rnncast`` command, which ends with os._exit after
    its exit handlers (rnncast/process_exit.py), and through ``cli.main`` in a plain
    interpreter, which tears itself down as Python does: alternated run by run, so that
    the machine's load of the moment falls on both alike."""
    ordinary = [sys.executable, "-c", "import sys; from rnncast.cli import main; "
                f"sys.argv = ['rnncast', *{forecast_command[1:]!r}]; main()"]  # fmt: skip
    walls: dict[str, list[float]] = {"command": [], "ordinary_exit": []}
    for number in range(repeats):
        for name, command in (("command", forecast_command), ("ordinary_exit", ordinary)):
            run = run_wait4(command, None)
            if run["returncode"] != 0:
                raise RuntimeError(f"{name} exited {run['returncode']}")
            walls[name].append(run["wall_s"])
            print(f"  {name} {number + 1}/{repeats}: {run['wall_s']:.2f} s", flush=True)
    ratios = [a / b for a, b in zip(walls["command"], walls["ordinary_exit"], strict=True)]
    return {
        "ordinary_exit_command": " ".join(_display(part) for part in ordinary),
        **{name: summarise(values) for name, values in walls.items()},
        "ratio_command_to_ordinary": summarise(ratios),
    }


def measure_warm(model_dir: Path, repeats: int) -> dict[str, Any]:
    """Three cold forecasts alternated run by run: of the training file, whose histories
    begin with what the model's warm states read (rnncast/warm.py); of the training file
    with the test file's 48 hours after it, as a later run from cron would read it; and of
    the training file by the same model without its states (warm.safetensors removed
    and dropped from the manifest: what a model saved before them holds)."""
    work = model_dir.parent
    newer = work / "newer.parquet"
    subprocess.run([sys.executable, "-c", "import pyarrow as pa, pyarrow.parquet as pq, sys; "
                    "pq.write_table(pa.concat_tables([pq.read_table(p) for p in sys.argv[1:3]])"
                    ".sort_by([('unique_id', 'ascending'), ('ds', 'ascending')]), sys.argv[3])",
                    str(DATA_PATH), str(TEST_PATH), str(newer)], check=True)  # fmt: skip
    stateless = work / "model-without-states"
    shutil.copytree(model_dir, stateless)
    (stateless / "warm.safetensors").unlink()
    manifest = json.loads((stateless / "manifest.json").read_text())
    del manifest["files"]["warm.safetensors"]
    (stateless / "manifest.json").write_text(json.dumps(manifest))
    cases = {
        "training_file": (DATA_PATH, model_dir),
        "newer_data": (newer, model_dir),
        "without_states": (DATA_PATH, stateless),
    }
    walls: dict[str, list[float]] = {name: [] for name in cases}
    peaks: dict[str, list[float]] = {name: [] for name in cases}
    for number in range(repeats):
        for name, (data, model) in cases.items():
            command = [str(RNNCAST), "forecast", str(data), "--model", str(model),
                       "--out", str(work / f"{name}.parquet")]  # fmt: skip
            run = run_wait4(command, None)
            if run["returncode"] != 0:
                raise RuntimeError(f"{name} exited {run['returncode']}: {run['stderr_tail']}")
            walls[name].append(run["wall_s"])
            peaks[name].append(run["peak_rss_bytes"])
            print(f"  {name} {number + 1}/{repeats}: {run['wall_s']:.2f} s", flush=True)
    compare = (
        "import pyarrow.parquet as pq, sys; "
        "print(pq.read_table(sys.argv[1]).equals(pq.read_table(sys.argv[2])))"
    )
    outputs = [str(work / f"{name}.parquet") for name in ("training_file", "without_states")]
    same = subprocess.run([sys.executable, "-c", compare, *outputs], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    return {
        **{
            name: {"wall_s": summarise(walls[name]), "peak_rss_bytes": summarise(peaks[name])}
            for name in cases
        },
        "ratio_training_file_to_without_states": summarise(
            [a / b for a, b in zip(walls["training_file"], walls["without_states"], strict=True)]
        ),
        "same_output_with_and_without_states": same == "True",
    }


def print_report(results: dict[str, Any]) -> None:
    cold, floor = results["cold"], results["floor"]
    verdict = "met" if cold["target"]["met"] else "MISSED"
    print()
    peak = cold["peak_rss_bytes"]["median"] / 1e6
    print(f"cold rnncast forecast: {cold['wall_s']['median']:.2f} s (target < "
          f"{TARGET_COLD_S:g} s: {verdict}), peak {peak:.0f} MB")  # fmt: skip
    for name, env in COLD_VARIANTS.items():
        setting = " ".join(f"{k}={v}" for k, v in env.items())
        print(f"  with {setting}: {results[name]['wall_s']['median']:.2f} s")
    ending = results["exit"]
    print(f"  the command against Python's ordinary exit, alternated: "
          f"{ending['command']['median']:.2f} s against {ending['ordinary_exit']['median']:.2f} s "
          f"(median ratio {ending['ratio_command_to_ordinary']['median']:.2f})")  # fmt: skip
    warm = results["warm"]
    print(
        "  warm states, alternated: "
        + ", ".join(
            f"{name.replace('_', ' ')} {warm[name]['wall_s']['median']:.2f} s"
            for name in ("training_file", "newer_data", "without_states")
        )
        + f" (same output with and without: {warm['same_output_with_and_without_states']})"
    )
    print(f"rnncast --version:     {floor['wall_s']['median']:.2f} s, "
          f"peak {floor['peak_rss_bytes']['median'] / 1e6:.0f} MB")  # fmt: skip
    for name, entry in results["imports"].items():
        print(f"python -c '{IMPORTS[name]}': {entry['wall_s']['median']:.2f} s")
    stages = results["in_process"]
    print(f"in-process imports: {stages['import_s']:.2f} s, peak RSS "
          f"{stages['peak_rss_after_imports_bytes'] / 1e6:.0f} MB after them, "
          f"{stages['peak_rss_bytes'] / 1e6:.0f} MB at the end")  # fmt: skip
    for stage in (*STAGES, "total"):
        first = stages["first_pass"][stage]
        print(
            f"  {stage:<12} {stages['stages_s'][stage]['median']:.3f} s (first pass {first:.3f} s)"
        )
    one = stages["forecast_one_thread_s"]["median"]
    print(f"  forecast with torch.set_num_threads(1): {one:.3f} s")
    print("medians of the runs; raw values in the JSON. MB = 10**6 bytes.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per measure (default 5)")
    parser.add_argument("--model", type=Path, help="use this model directory; don't train one")
    parser.add_argument("--quiet-load", type=float, default=1.5, help="1-min load to wait for")
    parser.add_argument("--max-wait", type=float, default=600, help="seconds to wait (600)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="JSON file to write")
    parser.add_argument("--child", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child_stages(args.child, args.repeats)
        return 0
    if not DATA_PATH.exists():
        print(f"skipped: {DATA_PATH} not found (the M4 Hourly training file)")
        return 0
    started_at = dt.datetime.now(dt.UTC)
    work = Path(tempfile.mkdtemp(prefix="rnncast-forecast-bench-"))
    try:
        model_dir = work / "model"
        training: dict[str, Any] = {"options": TRAIN_OPTIONS}
        if args.model is not None:
            shutil.copytree(args.model, model_dir)
            training = {"model": str(args.model)}
        else:
            print("training the model once (1 epoch) ...", flush=True)
            trained = run_timed([str(RNNCAST), "train", str(DATA_PATH), *TRAIN_OPTIONS,
                                 "--out", str(model_dir), "--quiet"])  # fmt: skip
            if trained["returncode"] != 0:
                print(trained["stderr"], file=sys.stderr)
                return 1
            training["wall_s"] = trained["wall_s"]
        print(f"waiting for 1-minute load < {args.quiet_load} (up to {args.max_wait:g} s) ...")
        quiet = wait_for_quiet(args.quiet_load, args.max_wait)
        print(f"  load {quiet['last']:.2f} after {quiet['waited_s']:.0f} s", flush=True)
        load_start = os.getloadavg()
        results = measure(model_dir, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    document = {
        "benchmark": "rnncast forecast latency on M4 Hourly (414 series, H = 48)",
        "date": started_at.isoformat(timespec="seconds"),
        "duration_s": round((dt.datetime.now(dt.UTC) - started_at).total_seconds(), 1),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "repeats": args.repeats,
        "statistic": "median of repeats; raw values alongside",
        "units": {
            "wall_s": "seconds, time.perf_counter around the whole child process",
            "peak_rss_bytes": "the child's own ru_maxrss from os.wait4 (KiB * 1024)",
            "user_s / system_s": "the child's CPU seconds (2 cores: can exceed wall_s)",
            "stages_s": "seconds per stage inside one process, after a first pass",
        },
        "data": DATA_PATH.name,
        "model": training,
        "machine": machine_info(("rnncast", "torch", "numpy", "pyarrow", "pandas")),
        "environment": {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "MKL_"))},
        "load_average": {"wait": quiet, "start": load_start, "end": os.getloadavg()},
        "parent_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "target": {"cold_forecast_wall_s": f"< {TARGET_COLD_S:g}"},
        **results,
    }
    write_json_atomically(args.output, document)
    print_report(results)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
