"""The metrics history: one row per ``rnncast score`` run, appended to a CSV or
JSON Lines file that a pipeline keeps, so forecast quality can be watched over
time. Rows have fixed columns; the file is rewritten atomically with the new row
at its end, so a killed run leaves the old file whole.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rnncast.errors import ConfigError, DataError
from rnncast.plots import interval_levels
from rnncast.writing import write_bytes

COLUMNS = (
    "scored_at", "kind", "forecasts", "actuals", "forecast_start", "series", "points",
    "missing", "mae", "rmse", "mape", "smape", "mase", "pinball", "coverage_level",
    "coverage", "seasonal_naive_smape", "seasonal_naive_mase", "owa_vs_seasonal_naive",
    "naive2_smape", "naive2_mase", "owa_vs_naive2",
)  # fmt: skip
# The columns before Naive2 was scored (issue 12): such a file gains the new columns,
# empty in its old rows, when the next row is appended.
_COLUMNS_BEFORE_NAIVE2 = COLUMNS[:-3]
_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}


def history_format(path: str | Path) -> str:
    """``csv`` or ``jsonl`` from the suffix; ConfigError for anything else, checked
    before any work is done."""
    file_format = _FORMATS.get(Path(path).suffix.lower())
    if file_format is None:
        raise ConfigError(f"--history {path}: name a .csv or .jsonl file")
    if not Path(path).parent.is_dir():
        raise ConfigError(f"--history {path}: the folder {Path(path).parent} does not exist")
    return file_format


def history_row(document: dict[str, Any], scored_at: datetime | None = None) -> dict[str, Any]:
    """The row of one scoring run: its provenance and the model's mean metrics."""
    model = document["summary"]["model"]
    naive = document["summary"].get("seasonal_naive", {})
    naive2 = document["summary"].get("naive2", {})
    levels = interval_levels(model)
    widest = levels[-1] if levels else None
    settings, counts = document["settings"], document["counts"]

    def mean(summary: dict[str, Any], metric: str) -> float | None:
        return (summary.get(metric) or {}).get("mean")

    return {
        "scored_at": (scored_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        "kind": document["kind"],
        "forecasts": settings.get("forecasts"),
        "actuals": settings.get("actuals"),
        "forecast_start": settings.get("forecast_start"),
        "series": counts["series"],
        "points": counts["points"],
        "missing": counts["missing"],
        **{metric: mean(model, metric) for metric in ("mae", "rmse", "mape", "smape", "mase")},
        "pinball": mean(model, "pinball"),
        "coverage_level": widest,
        "coverage": mean(model, f"coverage_{widest}") if widest else None,
        "seasonal_naive_smape": mean(naive, "smape"),
        "seasonal_naive_mase": mean(naive, "mase"),
        "owa_vs_seasonal_naive": document["relative_to_seasonal_naive"]["owa"],
        "naive2_smape": mean(naive2, "smape"),
        "naive2_mase": mean(naive2, "mase"),
        "owa_vs_naive2": (document.get("relative_to_naive2") or {}).get("owa"),
    }


def append_history(path: str | Path, document: dict[str, Any]) -> None:
    """Add the row of ``document`` at the end of the history file ``path``.

    Raises ConfigError for an unknown suffix, DataError when an existing CSV has
    other columns (it was not written by rnncast, or by a different version). A CSV
    written before the Naive2 columns existed is rewritten with them, empty in its
    old rows.
    """
    file_format = history_format(path)
    target = Path(path)
    before = target.read_bytes() if target.exists() else b""
    row = history_row(document)
    if file_format == "jsonl":
        if before and not before.endswith(b"\n"):
            before += b"\n"
        write_bytes(target, before + (json.dumps(row, allow_nan=False) + "\n").encode())
        return
    if before:
        header = next(csv.reader(io.StringIO(before.decode("utf-8", "replace"))), [])
        if tuple(header) == _COLUMNS_BEFORE_NAIVE2:
            before = _add_columns(before)
        elif tuple(header) != COLUMNS:
            raise DataError(
                f"--history {path} has other columns than rnncast writes ({', '.join(header[:4])}"
                "…); name a new file"
            )
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    if not before:
        writer.writeheader()
    writer.writerow({k: "" if v is None else v for k, v in row.items()})
    write_bytes(target, before + text.getvalue().encode())


def _add_columns(before: bytes) -> bytes:
    """A history CSV with the columns before Naive2 rewritten under ``COLUMNS``."""
    rows = csv.DictReader(io.StringIO(before.decode("utf-8")))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode()
