"""Benchmark ingest: read a long-layout file, validate it and build the Panel.

Each measurement is ``rnncast.panel.read_panel`` run once in a fresh Python process, so
the peak resident set size it reports belongs to that read alone and nothing is warm in
the interpreter. Cases:

* ``m4_hourly``: the M4 Hourly training file from ``../shared/data`` (skipped if absent);
* ``parquet_1m``: generated, 1,000 series x 1,000 hourly steps = 1 M rows;
* ``parquet_10m``: generated, 10,000 series x 1,000 hourly steps = 10 M rows (has targets);
* ``csv_10m``: the same 10 M rows as CSV (optional; dropped if a run exceeds --csv-timeout).

Generated files are cached in ``bench/data/`` and rebuilt only if missing or with
``--regenerate``. Results go to ``bench/results/ingest.json``; see ``bench/README.md``.

Usage: python bench/ingest.py [--repeats N] [--cases a,b] [--regenerate] [--no-csv]
"""

from __future__ import annotations

# This module is also the orchestrating parent process, which must stay small: a child
# started by vfork/posix_spawn inherits the parent's peak RSS into its own ru_maxrss
# (Linux keeps max(old mm, new mm) across exec). So numpy and pyarrow are imported only
# inside the functions that children run, never at module level.
import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from results_file import machine_info, write_json_atomically

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_PATH = BENCH_DIR / "results" / "ingest.json"
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"

# Bump when the generator changes, so stale cached files are not benchmarked by mistake.
GENERATOR_VERSION = 1
SEED = 20250601
STEPS_PER_SERIES = 1_000
ROW_GROUP_ROWS = 1_000_000
NS_PER_HOUR = 3_600 * 1_000_000_000

# Targets for the 10 M-row Parquet case on the 2-core reference machine. GB here is
# 10**9 bytes, the stricter reading of "1.5 GB".
TARGET_WALL_S = 15.0
TARGET_PEAK_RSS_BYTES = 1_500_000_000

# Child processes print exactly one line starting with this, so stray library output on
# stdout cannot be mistaken for the result.
RESULT_PREFIX = "RNNCAST_BENCH_RESULT "


@dataclass(frozen=True)
class Case:
    """One file to ingest, and how it is obtained."""

    name: str
    description: str
    path: Path
    file_format: str
    series: int = 0  # generated cases only; 0 for external files
    source: str | None = None  # generated from this case's file (CSV copy of the Parquet)
    optional: bool = False
    targets: dict[str, float] = field(default_factory=dict)


def generated_path(series: int, suffix: str) -> Path:
    # The shape and generator version are in the name, so a cache never answers for
    # a different data set.
    return DATA_DIR / f"long_{series}x{STEPS_PER_SERIES}_v{GENERATOR_VERSION}.{suffix}"


CASES: tuple[Case, ...] = (
    Case(
        name="m4_hourly",
        description="M4 Hourly training part, 414 series, 353,500 rows (real data, Parquet)",
        path=SHARED_DATA_DIR / "m4_hourly_train.parquet",
        file_format="parquet",
    ),
    Case(
        name="parquet_1m",
        description="generated, 1,000 series x 1,000 hourly steps = 1 M rows (Parquet)",
        path=generated_path(1_000, "parquet"),
        file_format="parquet",
        series=1_000,
    ),
    Case(
        name="parquet_10m",
        description="generated, 10,000 series x 1,000 hourly steps = 10 M rows (Parquet)",
        path=generated_path(10_000, "parquet"),
        file_format="parquet",
        series=10_000,
        targets={"wall_s": TARGET_WALL_S, "peak_rss_bytes": TARGET_PEAK_RSS_BYTES},
    ),
    Case(
        name="csv_10m",
        description="OPTIONAL: the same 10 M rows as CSV (text parsing instead of Parquet)",
        path=generated_path(10_000, "csv"),
        file_format="csv",
        series=10_000,
        source="parquet_10m",
        optional=True,
    ),
)
CASES_BY_NAME = {case.name: case for case in CASES}


# --------------------------------------------------------------------------- data generation


def generate_parquet(path: Path, n_series: int) -> None:
    """Write ``n_series`` x STEPS_PER_SERIES rows of hourly series, sorted by (id, time).

    Each series has its own level, daily and weekly cycle, slow trend, noise and start
    time (staggered over 30 days), so the data resembles metered load rather than a
    constant. Values are rounded to 4 decimals as measured data usually is, which also
    keeps the CSV copy a realistic size.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng([SEED, n_series])
    steps = np.arange(STEPS_PER_SERIES, dtype=np.int64)
    level = np.exp(rng.normal(4.0, 1.0, n_series))
    daily_amplitude = level * rng.uniform(0.1, 0.4, n_series)
    weekly_amplitude = level * rng.uniform(0.0, 0.15, n_series)
    phase = rng.uniform(0.0, 2 * np.pi, n_series)
    trend = level * rng.normal(0.0, 2e-4, n_series)
    noise_scale = level * rng.uniform(0.02, 0.08, n_series)
    first_hour = rng.integers(0, 30 * 24, n_series)
    base_ns = np.datetime64("2021-01-04T00:00", "ns").astype(np.int64)  # a Monday
    start_ns = base_ns + first_hour * NS_PER_HOUR

    width = max(5, len(str(n_series)))  # s00001, s00002, ...
    ids = pa.array(np.char.add("s", np.char.zfill(np.arange(1, n_series + 1).astype(str), width)))
    schema = pa.schema(
        [("unique_id", pa.string()), ("ds", pa.timestamp("ns")), ("y", pa.float64())]
    )
    series_per_group = max(1, ROW_GROUP_ROWS // STEPS_PER_SERIES)
    # Written to a temporary name and renamed, so an interrupted run leaves no truncated
    # file that a later run would take for a valid cache.
    tmp = path.with_name(path.name + ".partial")
    with pq.ParquetWriter(tmp, schema) as writer:
        for first in range(0, n_series, series_per_group):
            chunk = slice(first, min(first + series_per_group, n_series))
            count = chunk.stop - chunk.start
            hour_of_series = (first_hour[chunk, None] + steps[None, :]).astype(np.float64)
            y = (
                level[chunk, None]
                + daily_amplitude[chunk, None]
                * np.sin(2 * np.pi * hour_of_series / 24 + phase[chunk, None])
                + weekly_amplitude[chunk, None] * np.sin(2 * np.pi * hour_of_series / 168)
                + trend[chunk, None] * steps[None, :]
                + noise_scale[chunk, None] * rng.standard_normal((count, STEPS_PER_SERIES))
            )
            ds = start_ns[chunk, None] + steps[None, :] * NS_PER_HOUR
            codes = np.repeat(np.arange(chunk.start, chunk.stop), STEPS_PER_SERIES)
            table = pa.table(
                {
                    "unique_id": ids.take(pa.array(codes)),
                    "ds": pa.array(ds.ravel().astype("datetime64[ns]")),
                    "y": np.round(y.ravel(), 4),
                },
                schema=schema,
            )
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
    os.replace(tmp, path)


def generate_csv(path: Path, parquet_path: Path) -> None:
    """Copy a generated Parquet file to CSV, batch by batch to bound memory."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    source = pq.ParquetFile(parquet_path)
    # Whole seconds print as "2021-01-04 00:00:00", the way timestamps look in real CSVs,
    # instead of nanosecond fractions.
    schema = pa.schema([("unique_id", pa.string()), ("ds", pa.timestamp("s")), ("y", pa.float64())])
    options = pa_csv.WriteOptions(quoting_style="needed")
    tmp = path.with_name(path.name + ".partial")
    with pa_csv.CSVWriter(tmp, schema, write_options=options) as writer:
        for batch in source.iter_batches(batch_size=ROW_GROUP_ROWS):
            writer.write_batch(pa.Table.from_batches([batch]).cast(schema).to_batches()[0])
    os.replace(tmp, path)


def child_generate(name: str) -> None:
    case = CASES_BY_NAME[name]
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    if case.source is not None:
        generate_csv(case.path, CASES_BY_NAME[case.source].path)
    else:
        generate_parquet(case.path, case.series)


def ensure_data(case: Case, regenerate: bool, done: set[str]) -> None:
    """Build a generated case's file in a child process if it is missing or stale."""
    if case.series == 0 or case.name in done:
        return
    if case.source is not None:
        ensure_data(CASES_BY_NAME[case.source], regenerate, done)
    if regenerate or not case.path.exists():
        print(f"generating {case.path.relative_to(REPO_ROOT)} ...", flush=True)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--generate", case.name], check=True
        )
        print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
    done.add(case.name)


# --------------------------------------------------------------------------- measurement


def _proc_status_kib(key: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status, in KiB (0 where unavailable)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def child_measure(path: str) -> None:
    """Run read_panel once and print the measurements as one JSON line."""
    import_started = time.perf_counter()
    # Import everything read_panel will load (rnncast.io pulls in pyarrow and its
    # dataset/CSV modules), so the baseline shows the full import overhead and the timed
    # region holds only the read.
    import rnncast.io  # noqa: F401
    from rnncast.config import DataConfig
    from rnncast.panel import read_panel

    import_s = time.perf_counter() - import_started
    baseline_maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    baseline_rss_kib = _proc_status_kib("VmRSS")

    started = time.perf_counter()
    panel = read_panel(path, DataConfig())
    wall_s = time.perf_counter() - started

    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result = {
        "wall_s": wall_s,
        "import_s": import_s,
        "peak_rss_bytes": peak_kib * 1024,
        # VmHWM is the high-water mark of this process image alone; it cross-checks
        # ru_maxrss, which on Linux can also carry the parent's peak over exec.
        "peak_hwm_bytes": _proc_status_kib("VmHWM") * 1024,
        "baseline_rss_bytes": baseline_rss_kib * 1024,
        "baseline_maxrss_bytes": baseline_maxrss_kib * 1024,
        "rows": int(panel.ingest.rows_read) if panel.ingest else None,
        "series": panel.n_series,
        "steps": panel.n_steps,
        "frequency": panel.freq.alias,
        "values_bytes": int(panel.values.nbytes),
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_child(case: Case, timeout_s: float | None) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(case.path)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    lines = [ln for ln in completed.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"child exited {completed.returncode}: " + " | ".join(tail))
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


def summarise(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "raw": values}


def measure_case(case: Case, repeats: int, csv_timeout_s: float) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": case.name,
        "description": case.description,
        "optional": case.optional,
        "format": case.file_format,
        "path": _display_path(case.path),
    }
    if not case.path.exists():
        entry.update(status="skipped", note=f"input file not found: {case.path}")
        return entry
    entry["file_bytes"] = case.path.stat().st_size
    timeout = csv_timeout_s if case.optional else None
    runs: list[dict[str, Any]] = []
    for repeat in range(repeats):
        print(f"  {case.name}: run {repeat + 1}/{repeats}", end="", flush=True)
        try:
            runs.append(run_child(case, timeout))
        except subprocess.TimeoutExpired:
            print(" timed out", flush=True)
            entry.update(
                status="timeout",
                note=f"a run took longer than {timeout:g} s (--csv-timeout); case dropped",
            )
            return entry
        except RuntimeError as exc:
            print(" failed", flush=True)
            entry.update(status="failed", note=str(exc))
            return entry
        print(
            f"  {runs[-1]['wall_s']:.2f} s, peak {runs[-1]['peak_rss_bytes'] / 1e6:.0f} MB",
            flush=True,
        )

    walls = [run["wall_s"] for run in runs]
    peaks = [run["peak_rss_bytes"] for run in runs]
    first = runs[0]
    median_wall = statistics.median(walls)
    entry.update(
        status="ok",
        rows=first["rows"],
        series=first["series"],
        steps=first["steps"],
        frequency=first["frequency"],
        panel_values_bytes=first["values_bytes"],
        wall_s=summarise(walls),
        rows_per_s=first["rows"] / median_wall if first["rows"] else None,
        peak_rss_bytes=summarise(peaks),
        peak_hwm_bytes=summarise([run["peak_hwm_bytes"] for run in runs]),
        baseline_rss_bytes=summarise([run["baseline_rss_bytes"] for run in runs]),
        import_s=summarise([run["import_s"] for run in runs]),
    )
    entry["targets"] = {}
    if "wall_s" in case.targets:
        limit = case.targets["wall_s"]
        entry["targets"]["wall_s"] = {
            "limit": limit,
            "median": median_wall,
            "met": median_wall < limit,
        }
    if "peak_rss_bytes" in case.targets:
        limit = case.targets["peak_rss_bytes"]
        median_peak = statistics.median(peaks)
        entry["targets"]["peak_rss_bytes"] = {
            "limit": limit,
            "median": median_peak,
            "met": median_peak < limit,
        }
    entry["targets_met"] = (
        all(target["met"] for target in entry["targets"].values()) if entry["targets"] else None
    )
    return entry


# --------------------------------------------------------------------------- reporting


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return os.path.relpath(path, REPO_ROOT)


def print_table(cases: list[dict[str, Any]]) -> None:
    header = (
        f"{'case':<12} {'rows':>11} {'series':>7} {'steps':>11} {'wall s':>7} "
        f"{'rows/s':>11} {'peak MB':>8} {'base MB':>8}  targets"
    )
    print()
    print(header)
    print("-" * len(header))
    for case in cases:
        if case["status"] != "ok":
            print(f"{case['name']:<12} {case['status']}: {case.get('note', '')}")
            continue
        if case["targets_met"] is None:
            verdict = "-"
        else:
            verdict = "MET" if case["targets_met"] else "MISSED"
            verdict += (
                " ("
                + ", ".join(
                    f"{key} {'ok' if target['met'] else 'over'}"
                    for key, target in case["targets"].items()
                )
                + ")"
            )
        print(
            f"{case['name']:<12} {case['rows']:>11,} {case['series']:>7,} {case['steps']:>11,} "
            f"{case['wall_s']['median']:>7.2f} {case['rows_per_s']:>11,.0f} "
            f"{case['peak_rss_bytes']['median'] / 1e6:>8.0f} "
            f"{case['baseline_rss_bytes']['median'] / 1e6:>8.0f}  {verdict}"
        )
    print("medians of the runs; raw values in the JSON. MB = 10**6 bytes.")


# --------------------------------------------------------------------------- entry point


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (default 3)")
    parser.add_argument(
        "--cases",
        default=",".join(CASES_BY_NAME),
        help=f"comma-separated subset of {', '.join(CASES_BY_NAME)}",
    )
    parser.add_argument("--regenerate", action="store_true", help="rebuild generated files")
    parser.add_argument("--no-csv", action="store_true", help="leave out the optional CSV case")
    parser.add_argument(
        "--csv-timeout",
        type=float,
        default=120.0,
        help="seconds a CSV run may take before the case is dropped (default 120)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help=argparse.SUPPRESS)
    # Internal: what the parent asks of a child process.
    parser.add_argument("--child", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--generate", metavar="CASE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    args.case_names = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = [name for name in args.case_names if name not in CASES_BY_NAME]
    if unknown:
        parser.error(
            f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES_BY_NAME)}"
        )
    if args.no_csv:
        args.case_names = [name for name in args.case_names if name != "csv_10m"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child_measure(args.child)
        return 0
    if args.generate:
        child_generate(args.generate)
        return 0

    selected = [CASES_BY_NAME[name] for name in args.case_names]
    generated: set[str] = set()
    for case in selected:
        ensure_data(case, args.regenerate, generated)

    started_at = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()
    results = []
    for case in selected:
        print(f"{case.name}: {case.description}", flush=True)
        results.append(measure_case(case, args.repeats, args.csv_timeout))
    document = {
        "benchmark": "rnncast ingest: read_panel (read + validate + build Panel)",
        "date": started_at.isoformat(timespec="seconds"),
        "duration_s": round((dt.datetime.now(dt.UTC) - started_at).total_seconds(), 1),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "repeats": args.repeats,
        "statistic": "median of repeats, each in a fresh process; raw values alongside",
        "units": {
            "wall_s": "seconds of read_panel wall time (time.perf_counter)",
            "peak_rss_bytes": "child's ru_maxrss at exit (KiB * 1024)",
            "peak_hwm_bytes": "child's VmHWM from /proc/self/status, a cross-check",
            "baseline_rss_bytes": "child's VmRSS after imports, before reading",
        },
        "machine": machine_info(("rnncast", "numpy", "pyarrow", "pandas")),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        # Children's ru_maxrss is at least this (see the note at the imports); it should
        # sit well below every baseline_rss_bytes for the peaks to be the children's own.
        "parent_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "targets": {
            "parquet_10m": {"wall_s": TARGET_WALL_S, "peak_rss_bytes": TARGET_PEAK_RSS_BYTES}
        },
        "cases": results,
    }
    write_json_atomically(args.output, document)
    print_table(results)
    print(f"wrote {_display_path(args.output)}")
    missed = [c["name"] for c in results if c["status"] == "ok" and c["targets_met"] is False]
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
