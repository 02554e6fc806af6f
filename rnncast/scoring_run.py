"""The run of ``rnncast score`` as a command, around the scoring (evaluation.py): the
lock on the metrics history, the actuals and the forecasts read, the history row
appended (scorebook.py), the scores shown or printed as JSON.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import replace
from typing import Any

from rnncast.config import DataConfig
from rnncast.options import config_fields
from rnncast.runs import log_data_warnings


def run_scoring(
    forecasts: str,
    actuals: str,
    options: dict[str, Any],
    *,
    season: int | None,
    json_output: bool,
    history: str | None,
) -> None:
    """Score the forecasts in ``forecasts`` against ``actuals``, read as the DataConfig
    fields among the command's ``options`` say; a row appended to ``history`` if given."""
    from rnncast.scorebook import history_format

    if history is not None:
        history_format(history)
    held = contextlib.ExitStack()
    if history is not None:
        from rnncast.writing import holding_lock

        # Taken before the work, so a second scorer waits for nothing: it is refused.
        held.enter_context(holding_lock(history))
    with held:
        _score(forecasts, actuals, options, season, json_output, history)


def _score(forecasts: str, actuals: str, options: dict[str, Any], season: int | None,
           json_output: bool, history: str | None) -> None:  # fmt: skip
    from rnncast.evaluation import read_forecasts, score_forecasts
    from rnncast.panel import read_panel
    from rnncast.report_document import document_text, metrics_document
    from rnncast.scorebook import append_history
    from rnncast.terminal import render_metrics

    actual_panel = read_panel(actuals, DataConfig(**config_fields(DataConfig, options)))
    log_data_warnings(actual_panel)
    forecast_panel, quantiles = read_forecasts(forecasts, actual_panel.freq.alias)
    evaluation = score_forecasts(forecast_panel, quantiles, actual_panel, season=season)
    evaluation = replace(evaluation, settings={**evaluation.settings, "forecasts": forecasts,
                                               "actuals": actuals})  # fmt: skip
    document = metrics_document(evaluation)
    if history is not None:
        append_history(history, document)
    if json_output:
        sys.stdout.write(document_text(document))
    else:
        render_metrics(document, title=f"rnncast score: {forecasts}", stdout=True)
