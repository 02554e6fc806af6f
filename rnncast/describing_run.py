"""The work of ``rnncast check`` and ``rnncast inspect`` around what they describe:
a data file read and checked as training would read it, or a model directory loaded
with the scores of its test part; shown as tables, or printed as JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

from rnncast.command_reports import holdout_scores
from rnncast.config import DataConfig
from rnncast.runs import log_data_warnings

if TYPE_CHECKING:
    import numpy as np

    from rnncast.panel import Panel


def run_check(data: str, data_config: DataConfig, *, json_output: bool, quiet: bool) -> None:
    """Read ``data`` as ``data_config`` says and describe its series; a DataError (exit
    3) when the data cannot be used."""
    from rnncast.panel import read_panel
    from rnncast.terminal import render_check

    panel = read_panel(data, data_config)
    log_data_warnings(panel)
    description = {"usable": True, **describe_panel(panel)}
    if data_config.holidays or data_config.holidays_column:
        from rnncast.inputs import holidays_found

        description["holidays"] = holidays_found(
            panel, data_config.holidays, data_config.holidays_column
        )
    if json_output:
        sys.stdout.write(json.dumps(description, indent=2) + "\n")
    elif not quiet:
        render_check(description, panel)


def describe_panel(panel: Panel) -> dict[str, object]:
    """Plain facts about ``panel``, for people and for ``check --json``."""
    import numpy as np

    from rnncast.time_axis import calendar_feature_names

    lengths = panel.lengths
    ingest, statics = panel.ingest, panel.statics
    return {
        "series": panel.n_series,
        "steps": panel.n_steps,
        "length": {
            "min": int(lengths.min()),
            "median": float(np.median(lengths)),
            "max": int(lengths.max()),
        },
        "frequency": panel.freq.alias,
        "frequency_label": panel.freq.label,
        "season_length": panel.freq.season_length,
        "start": panel.format_time(int(panel.start_times.min())),
        "end": panel.format_time(int(panel.end_times().max())),
        "time_zone": panel.tz,
        "covariates": [n for n in panel.covariate_names if n not in panel.future_covariates],
        "future_covariates": list(panel.future_covariates),
        "static_covariates": (
            list(ingest.columns.get("static_covariates", []))
            if ingest is not None
            else list(statics.names if statics else ())
        ),
        "future_rows": _future_rows(panel.ahead),
        "calendar_features": list(calendar_feature_names(panel.freq)),
        "ingest": asdict(ingest) if ingest is not None else None,
    }


def _future_rows(ahead: np.ndarray | None) -> dict[str, int] | None:
    """How many series have their future rows, and how many steps each holds."""
    import numpy as np

    if ahead is None:
        return None
    complete = ~np.isnan(ahead).any(axis=(1, 2)) if ahead.size else np.ones(ahead.shape[0], bool)
    return {"series": int(complete.sum()), "steps": int(ahead.shape[1])}


def run_inspect(model: str, *, json_output: bool) -> None:
    """Describe the model in the directory ``model`` and the scores of its test part."""
    import rnncast
    from rnncast.terminal import render_inspect

    description = rnncast.load_model(model).describe()
    description["test"] = holdout_scores(model)
    if json_output:
        sys.stdout.write(json.dumps(description, indent=2) + "\n")
    else:
        render_inspect(model, description)
