"""Benchmark forecast memory: streaming (``forecast_dataset``) against the whole dataset.

For 1 000, 10 000 and 100 000 generated hourly series of 200 steps each, stored as a
directory of 50 Parquet files in two layouts, ``by_series`` (each file holds a block
of whole series) and ``by_time`` (each file holds a window of time, so every series is
split across several files), one small model (lstm, hidden 16, H = 24, one epoch on 40
series) forecasts every series to a Parquet file:

* ``stream``: ``rnncast.streaming.forecast_dataset`` with ``series_per_read`` 10 000
  (the default) and 1 000, on both layouts (``by_time`` reads select series by id);
* ``whole``: the path ``rnncast forecast`` took before streaming, on ``by_series``:
  ``read_panel``, then ``forecast``, ``Forecasts.to_frame`` and ``write_table``. Skipped
  at a size where its peak at the largest size done, scaled by the ratio of sizes,
  exceeds ``--whole-limit-gb`` (8).

Each run is a fresh ``python bench/forecast_memory.py --child ...`` process that loads
the model, then times the forecast and reports its own peak resident set (VmHWM of
/proc/self/status, cross-checked by ru_maxrss). Results go to
``bench/results/forecast_memory.json``; see ``bench/README.md``.

Usage: python bench/forecast_memory.py [--repeats N] [--sizes 1000,10000,100000]
"""

from __future__ import annotations

# As in bench/ingest.py, the parent imports neither numpy nor pyarrow nor torch: on
# Linux a child's ru_maxrss can carry its parent's peak over exec.
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
REPO_ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_PATH = BENCH_DIR / "results" / "forecast_memory.json"

GENERATOR_VERSION = 1  # bump when the generator changes, so caches are rebuilt
SEED = 20251122
SIZES = (1_000, 10_000, 100_000)
FILES = 50
STEPS = 200
HORIZON = 24
TRAIN_FILES = 2  # of the smallest data set: 40 series
SERIES_PER_READ = (10_000, 1_000)
LAYOUTS = ("by_series", "by_time")
NS_PER_HOUR = 3_600 * 1_000_000_000
RESULT_PREFIX = "RNNCAST_BENCH_RESULT "
CHILD_TIMEOUT_S = 900


def data_path(series: int, layout: str = "by_series") -> Path:
    # Shape, layout and generator version are in the name: a cache never answers for
    # another data set.
    name = f"forecast_memory_{series}x{STEPS}_{FILES}files_{layout}_v{GENERATOR_VERSION}"
    return DATA_DIR / name


# --------------------------------------------------------------------------- children


def child_generate(series: int) -> None:
    """Write ``series`` hourly series of STEPS steps as FILES Parquet files, each holding
    a block of whole series, sorted by (id, time); level, daily cycle, noise and start
    hour differ by series."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng([SEED, series])
    target = data_path(series)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    per_file = series // FILES
    start = np.datetime64("2024-01-01T00:00", "ns").astype(np.int64)
    steps = np.arange(STEPS)
    for number in range(FILES):
        first = number * per_file
        names = np.array([f"s{first + i:06d}" for i in range(per_file)], dtype=object)
        level = rng.uniform(10, 100, per_file)[:, None]
        offset = rng.integers(0, 24 * 30, per_file)[:, None]
        hours = offset + steps[None, :]  # (S, T)
        values = level * (1 + 0.2 * np.sin(2 * np.pi * hours / 24)) + rng.normal(0, 1, hours.shape)
        table = pa.table(
            {
                "unique_id": pa.DictionaryArray.from_arrays(
                    pa.array(np.repeat(np.arange(per_file, dtype=np.int32), STEPS)),
                    pa.array(names, pa.string()),
                ),
                "ds": pa.array((start + hours.reshape(-1) * NS_PER_HOUR).astype("datetime64[ns]")),
                "y": np.round(values.reshape(-1), 4),
            }
        )
        pq.write_table(table, partial / f"part-{number:03d}.parquet")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)


def child_split_by_time(series: int) -> None:
    """Rewrite the by_series data set as FILES windows of equal time span; rows keep
    their (id, time) order inside each file."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    source = sorted(data_path(series).glob("*.parquet"))
    bounds = [pq.read_table(path, columns=["ds"]).column("ds") for path in source]
    low = min(pc.min(b).value for b in bounds)
    high = max(pc.max(b).value for b in bounds)
    target = data_path(series, "by_time")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    writers: dict[int, pq.ParquetWriter] = {}
    for path in source:
        table = pq.read_table(path)
        stamps = table.column("ds").cast("int64").to_numpy()
        window = (stamps - low) * FILES // (high - low + 1)
        for number in np.unique(window):
            part = table.filter(window == number)
            if number not in writers:
                name = partial / f"part-{number:03d}.parquet"
                writers[number] = pq.ParquetWriter(name, part.schema)
            writers[number].write_table(part)
    for writer in writers.values():
        writer.close()
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)


def child_train(model_dir: str) -> None:
    from rnncast import ModelConfig, TrainConfig, read_panel, train

    panel = read_panel(f"{data_path(SIZES[0])}/part-00[0-{TRAIN_FILES - 1}].parquet")
    train(panel, ModelConfig(horizon=HORIZON, cell="lstm", hidden=16, layers=1),
          TrainConfig(max_epochs=1, device="cpu", seed=0), out=model_dir)  # fmt: skip


def _status_kib(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def child_measure(
    path: str, layout: str, model_dir: str, series: int, series_per_read: int, out: str
) -> None:
    """Forecast every series one way; print one JSON line of figures."""
    from dataclasses import replace

    import torch

    from rnncast.artifact import load_model
    from rnncast.forecasting import forecast
    from rnncast.model_data import data_config
    from rnncast.panel import read_panel
    from rnncast.sinks import write_table
    from rnncast.streaming import forecast_dataset

    # One thread: the machine is shared, and torch's spinning threads make wall time
    # swing several-fold; memory, the point here, does not depend on it.
    torch.set_num_threads(1)
    model = load_model(model_dir)
    baseline_kib = _status_kib("VmRSS")
    began = time.perf_counter()
    location = str(data_path(series, layout))
    if path == "stream":
        summary = forecast_dataset(model, location, out, series_per_read=series_per_read)
        counts = {"series": summary.series, "rows": summary.rows, "reads": summary.reads}
    else:
        panel = read_panel(location, replace(data_config(model), horizon=None))
        frame = forecast(model, panel).to_frame()
        write_table(frame, out)
        counts = {"series": panel.n_series, "rows": len(frame), "reads": 1}
    seconds = time.perf_counter() - began
    result = {
        "forecast_s": seconds,
        "peak_hwm_bytes": _status_kib("VmHWM") * 1024,
        "peak_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "baseline_rss_bytes": baseline_kib * 1024,
        "output_bytes": Path(out).stat().st_size,
        **counts,
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- parent


def run_child(arguments: list[str]) -> dict[str, Any]:
    began = time.perf_counter()
    command = [sys.executable, str(Path(__file__).resolve()), "--child", *arguments]
    completed = subprocess.run(
        command, capture_output=True, text=True, check=False, cwd=REPO_ROOT,
        timeout=CHILD_TIMEOUT_S,
    )  # fmt: skip
    wall = time.perf_counter() - began
    lines = [ln for ln in completed.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        raise RuntimeError(
            f"child {arguments[0]} exited {completed.returncode}: " + " | ".join(tail)
        )
    result = json.loads(lines[-1][len(RESULT_PREFIX) :]) if lines else {}
    return {"wall_s": wall, **result}


def ensure_data(series: int, regenerate: bool) -> None:
    if regenerate or not data_path(series).is_dir():
        print(f"generating {series:,} series x {STEPS} steps in {FILES} files ...", flush=True)
        run_child(["generate", str(series)])
    if regenerate or not data_path(series, "by_time").is_dir():
        print(f"splitting {series:,} series into {FILES} windows of time ...", flush=True)
        run_child(["split", str(series)])


def measure_case(
    path: str, layout: str, series: int, series_per_read: int | None, model_dir: Path,
    repeats: int,
) -> dict[str, Any]:  # fmt: skip
    out = model_dir.parent / f"{path}_{layout}_{series}.parquet"
    arguments = [path, layout, str(model_dir), str(series), str(series_per_read or 0), str(out)]
    runs = []
    for number in range(repeats):
        run = run_child(["measure", *arguments])
        runs.append(run)
        print(f"  {path} {layout} {series:,} series, series_per_read {series_per_read} "
              f"{number + 1}/{repeats}: {run['forecast_s']:.1f} s, "
              f"peak {run['peak_hwm_bytes'] / 1e6:.0f} MB", flush=True)  # fmt: skip
    out.unlink(missing_ok=True)
    keys = ("forecast_s", "wall_s", "peak_hwm_bytes", "peak_maxrss_bytes", "baseline_rss_bytes")
    last = runs[-1]
    return {
        "path": path,
        "layout": layout,
        "size": series,
        "series_per_read": series_per_read,
        "status": "ok",
        **{key: summarise([run[key] for run in runs]) for key in keys},
        **{key: last[key] for key in ("series", "rows", "reads", "output_bytes")},
    }


def summarise(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "raw": values}


def whole_estimate(cases: list[dict[str, Any]], series: int) -> float | None:
    """The whole path's peak at ``series``, scaled linearly from the largest size done."""
    done = [c for c in cases if c["path"] == "whole" and c["status"] == "ok"]
    if not done:
        return None
    largest = max(done, key=lambda c: c["size"])
    return largest["peak_hwm_bytes"]["median"] * series / largest["size"]


def ratios(cases: list[dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    def peak(path: str, layout: str, size: int, spr: int | None) -> float | None:
        for case in cases:
            if case["status"] == "ok" and (
                case["path"],
                case["layout"],
                case["size"],
                case["series_per_read"],
            ) == (path, layout, size, spr):
                return case["peak_hwm_bytes"]["median"]
        return None

    small, large = min(sizes), max(sizes)
    result: dict[str, Any] = {}
    for layout in LAYOUTS:
        for spr in SERIES_PER_READ:
            low, high = peak("stream", layout, small, spr), peak("stream", layout, large, spr)
            if low and high:
                result[f"stream_{layout}_{spr}_peak_{large}_over_{small}"] = high / low
    low, high = peak("whole", "by_series", small, None), peak("whole", "by_series", large, None)
    if low and high:
        result[f"whole_peak_{large}_over_{small}"] = high / low
    for size in sizes:
        whole = peak("whole", "by_series", size, None)
        stream = peak("stream", "by_series", size, SERIES_PER_READ[0])
        if whole and stream:
            result[f"whole_over_stream_peak_at_{size}"] = whole / stream
    return result


def print_report(cases: list[dict[str, Any]], found: dict[str, Any]) -> None:
    print()
    print(f"{'path':<8}{'layout':<11}{'series/read':>12}{'series':>9}{'reads':>7}{'peak MB':>9}"
          f"{'baseline MB':>13}{'seconds':>9}")  # fmt: skip
    for case in cases:
        spr = case["series_per_read"] or "-"
        if case["status"] != "ok":
            print(f"{case['path']:<8}{case['layout']:<11}{spr:>12}{case['size']:>9,}  "
                  f"{case['status']}: {case['note']}")  # fmt: skip
            continue
        print(f"{case['path']:<8}{case['layout']:<11}{spr:>12}{case['size']:>9,}{case['reads']:>7}"
              f"{case['peak_hwm_bytes']['median'] / 1e6:>9.0f}"
              f"{case['baseline_rss_bytes']['median'] / 1e6:>13.0f}"
              f"{case['forecast_s']['median']:>9.1f}")  # fmt: skip
    for name, value in found.items():
        print(f"{name}: {value:.2f}")
    print("medians of the runs; MB = 10**6 bytes; peak = VmHWM of the child process.")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs per case (default 1)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="series counts")
    parser.add_argument("--whole-limit-gb", type=float, default=8.0,
                        help="skip the whole path above this estimated peak")  # fmt: skip
    parser.add_argument("--regenerate", action="store_true", help="rebuild the data sets")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="JSON file to write")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def run_child_mode(arguments: list[str]) -> None:
    mode, rest = arguments[0], arguments[1:]
    if mode == "generate":
        child_generate(int(rest[0]))
    elif mode == "split":
        child_split_by_time(int(rest[0]))
    elif mode == "train":
        child_train(rest[0])
    else:
        path, layout, model_dir, series, series_per_read, out = rest
        child_measure(path, layout, model_dir, int(series), int(series_per_read), out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        run_child_mode(args.child)
        return 0
    sizes = sorted(int(size) for size in args.sizes.split(","))
    if SIZES[0] not in sizes:
        sizes = [SIZES[0], *sizes]  # the model is trained on the 1 000-series data set
    started_at = dt.datetime.now(dt.UTC)
    for series in sizes:
        ensure_data(series, args.regenerate)
    work = Path(tempfile.mkdtemp(prefix="rnncast-memory-bench-"))
    cases: list[dict[str, Any]] = []
    try:
        model_dir = work / "model"
        print("training the model once ...", flush=True)
        training = run_child(["train", str(model_dir)])
        load_start = os.getloadavg()
        for series in sizes:
            for layout in LAYOUTS:
                for spr in SERIES_PER_READ:
                    case = measure_case("stream", layout, series, spr, model_dir, args.repeats)
                    cases.append(case)
            estimate = whole_estimate(cases, series)
            if estimate is not None and estimate > args.whole_limit_gb * 1e9:
                note = f"estimated peak {estimate / 1e9:.1f} GB > --whole-limit-gb"
                print(f"  whole {series:,} series: skipped, {note}", flush=True)
                skipped = {"path": "whole", "layout": "by_series", "size": series,
                           "series_per_read": None, "status": "skipped", "note": note}  # fmt: skip
                cases.append(skipped)
                continue
            cases.append(measure_case("whole", "by_series", series, None, model_dir, args.repeats))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    found = ratios(cases, sizes)
    document = {
        "benchmark": "peak memory of forecasting a directory of Parquet files: streaming "
        "(forecast_dataset) against the whole data set at once",
        "date": started_at.isoformat(timespec="seconds"),
        "duration_s": round((dt.datetime.now(dt.UTC) - started_at).total_seconds(), 1),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "repeats": args.repeats,
        "statistic": "median of repeats; raw values alongside",
        "units": {
            "peak_hwm_bytes": "VmHWM of the child at the end: its own peak resident set",
            "peak_maxrss_bytes": "ru_maxrss of the child (KiB * 1024), a cross-check",
            "baseline_rss_bytes": "VmRSS after imports and load_model, before forecasting",
            "forecast_s": "seconds of the forecast alone, inside the child (one torch thread)",
            "wall_s": "seconds of the whole child process, imports included",
        },
        "data": {
            "sizes": sizes,
            "files": FILES,
            "steps": STEPS,
            "frequency": "h",
            "layouts": {
                "by_series": "each file holds a block of whole series, sorted by (id, time)",
                "by_time": "each file holds one of 50 equal windows of time of every series",
            },
            "cache": str(DATA_DIR.relative_to(REPO_ROOT)),
        },
        "model": {
            "cell": "lstm",
            "hidden": 16,
            "layers": 1,
            "horizon": HORIZON,
            "max_epochs": 1,
            "trained_on_series": TRAIN_FILES * SIZES[0] // FILES,
            "train_wall_s": training["wall_s"],
        },
        "machine": machine_info(("rnncast", "torch", "numpy", "pyarrow", "pandas")),
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "parent_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "cases": cases,
        "ratios": found,
    }
    write_json_atomically(args.output, document)
    print_report(cases, found)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
