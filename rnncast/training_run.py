"""The run of ``rnncast train`` as a command, around the fit (fitting.py): the checks
and the lock on its output, the data read once however many processes hold it, the
test part scored and saved with the model, progress and stop signals while it trains,
and what it tells when done (a log line, the metrics table, a JSON summary).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from typing import Any

from rnncast import distributed, logs
from rnncast.command_reports import Holdout, holdout_summary
from rnncast.config import DataConfig, ModelConfig, TrainConfig
from rnncast.errors import RnncastError
from rnncast.runs import log_data_warnings, refuse_overwriting_data, run_lock, stop_on_signals
from rnncast.terminal import render_metrics, training_progress


def run_training(
    data: str,
    out: str,
    *,
    horizon: int,
    data_config: DataConfig,
    model: ModelConfig,
    training: TrainConfig,
    settings: str,
    season: int | None,
    device: str,
    resume: bool,
    quiet: bool,
    json_output: bool,
) -> None:
    """Train on ``data`` and write the model directory ``out``, with ``settings`` (the
    TOML of the run) and, when there is a test part, its report; then tell how it went.
    ``data_config`` has no horizon: the model reads data without one."""
    import rnncast

    refuse_overwriting_data(out, data)
    current = distributed.start(distributed.launched_world(), device)
    with run_lock(out, current):
        panel = _read(data, replace(data_config, horizon=horizon), current)
        holdout = Holdout(panel, season, device, data, out, writes=current.is_main)
        with stop_on_signals() as stop_reason:
            with training_progress(quiet or not current.is_main) as on_epoch:
                trained = rnncast.train(
                    panel, model, training, out=out, data=data_config, resume=resume,
                    on_epoch=on_epoch, should_stop=stop_reason, save=False,
                    before_refit=holdout.score,
                )  # fmt: skip
            # Training is done: a first SIGTERM from here on waits for the model to be
            # saved (seconds), rather than losing the run; a second one still stops it.
            # Under torchrun rank 0 saves, and every process ends as its save did.
            document, refused = None, None
            try:
                document = holdout.save(trained, settings)
            except RnncastError as exc:
                refused = exc
            distributed.raise_together(refused)
            if stop_reason():
                logs.warn("signal_after_training",
                          f"{stop_reason()} arrived after training; the model was saved first",
                          signal=stop_reason())  # fmt: skip
    _tell_trained(trained, document, out, quiet)
    if json_output and current.is_main:
        _write_summary(trained, document, out)


def _read(data: str, reading: DataConfig, current: distributed.World) -> Any:
    from rnncast.shared_read import read_for_training

    # Under torchrun the data is read once for the run, in shares or by rank 0 alone,
    # and every process holds all of it (shared_read.py).
    panel = read_for_training(data, reading)
    if current.is_main:
        log_data_warnings(panel)
    if panel.ingest.future_rows:
        logs.note(
            "future_rows_left_out",
            f"{panel.ingest.future_rows:,} future rows after the series' last values "
            "left out of training",
            rows=panel.ingest.future_rows,
        )  # fmt: skip
    return panel


def _tell_trained(trained: Any, document: dict | None, out: str, quiet: bool) -> None:
    history = trained.history
    logs.note(
        "trained",
        f"best epoch {history['best_epoch']} of {len(history['epochs'])} "
        f"(stopped: {history['stopped']}), {history['seconds']:.1f} s"
        + (f"; {trained.config.members} members" if trained.config.members > 1 else "")
        + f"; model written to {out}"
        + ("" if document else "; no test part (--test-size 0): no metrics or report"),
        model=out, best_epoch=history["best_epoch"], epochs=len(history["epochs"]),
        stopped=history["stopped"], seconds=history["seconds"], report=document is not None,
        members=trained.config.members,
    )  # fmt: skip
    if document is not None and not quiet:
        render_metrics(document, title=f"rnncast holdout: {out}")


def _write_summary(trained: Any, document: dict | None, out: str) -> None:
    history = trained.history
    summary = {"model": out, "best_epoch": history["best_epoch"],
               "epochs": len(history["epochs"]), "stopped": history["stopped"],
               "seconds": history["seconds"],
               "test": holdout_summary(document) if document else None}  # fmt: skip
    sys.stdout.write(json.dumps(summary, indent=2, allow_nan=False) + "\n")
