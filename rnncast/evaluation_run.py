"""The run of ``rnncast evaluate`` as a command, around the backtest (evaluation.py):
the model loaded and checked against the data, the models retrained at each origin
with ``--refit``, the lock on the report folder, the report written and shown.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

from rnncast.command_reports import write_command_report
from rnncast.runs import check_report_folder, log_data_warnings


def run_evaluation(
    data: str,
    model: str,
    out: str,
    *,
    folds: int,
    step: int | None,
    season: int | None,
    refit: bool,
    batch_size: int,
    device: str,
    quiet: bool,
    json_output: bool,
) -> None:
    """Backtest the model in ``model`` on ``data`` and write the report into the
    folder ``out``; with ``json_output``, metrics.json on stdout too."""
    import rnncast
    from rnncast.model_data import check_columns, data_config
    from rnncast.nn.device import resolve_device
    from rnncast.writing import holding_lock

    check_report_folder(out)
    trained = rnncast.load_model(model)
    check_columns(trained, data)
    retrain = replace(trained.training, test_size=0, device=device)

    # Retrained models read what the model reads: its statics and holidays too.
    settings = replace(data_config(trained), future_rows="skip", future_steps=None)

    def refit_model(history: Any) -> Any:
        return rnncast.train(history, trained.config, retrain, data=settings)

    with holding_lock(out):
        # Backtests read future covariates from the history itself: future rows, if
        # the file has them, are checked but not needed.
        reading = replace(data_config(trained), horizon=None, future_rows="check")
        panel = rnncast.read_panel(data, reading)
        log_data_warnings(panel)
        evaluation = rnncast.evaluate(
            trained, panel, folds=folds, step=step, season=season,
            refit=refit_model if refit else None, batch_size=batch_size,
            device=resolve_device(device),
        )  # fmt: skip
        document = write_command_report(out, evaluation, trained, quiet, source=data, model=model)
    if json_output:
        from rnncast.report_document import document_text

        sys.stdout.write(document_text(document))
