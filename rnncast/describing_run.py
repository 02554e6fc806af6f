"""The work of ``rnncast check`` and ``rnncast inspect`` around what they describe:
a data file read and checked as training would read it, or a model directory loaded
with the scores of its test part; shown as tables, or printed as JSON.
"""

from __future__ import annotations

import json
import sys

from rnncast.command_reports import holdout_scores
from rnncast.config import DataConfig
from rnncast.runs import log_data_warnings


def run_check(data: str, data_config: DataConfig, *, json_output: bool, quiet: bool) -> None:
    """Read ``data`` as ``data_config`` says and describe its series; a DataError (exit
    3) when the data cannot be used."""
    from rnncast.panel import read_panel
    from rnncast.terminal import render_check

    panel = read_panel(data, data_config)
    log_data_warnings(panel)
    description = {"usable": True, **panel.describe()}
    if data_config.holidays or data_config.holidays_column:
        from rnncast.inputs import holidays_found

        description["holidays"] = holidays_found(
            panel, data_config.holidays, data_config.holidays_column
        )
    if json_output:
        sys.stdout.write(json.dumps(description, indent=2) + "\n")
    elif not quiet:
        render_check(description, panel)


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
