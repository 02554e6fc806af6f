"""The run of ``rnncast forecast`` as a command, around the forecasts (streaming.py,
and parts.py under torchrun): the checks that the output can be written and that the
model reads the data, the lock on the output (rank 0's under torchrun), and what it
tells when done (a log line, a JSON summary).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys

from rnncast import distributed, logs
from rnncast.errors import ConfigError
from rnncast.runs import refuse_overwriting_data, run_lock


def run_forecast(
    data: str,
    model: str,
    out: str,
    *,
    context: int | None,
    batch_size: int,
    series_per_read: int,
    horizon: int | None,
    static_file: str | None,
    future_file: str | None,
    device: str,
    json_output: bool,
) -> None:
    """Forecast every series of ``data`` with the model in ``model`` into ``out`` (a
    file, or ``-`` for stdout); ``horizon``, when given, must be the model's."""
    import rnncast
    from rnncast.model_data import check_columns
    from rnncast.nn.device import resolve_device
    from rnncast.parts import forecast_in_parts
    from rnncast.streaming import forecast_dataset
    from rnncast.writing import check_destination

    if check_destination(out) == "stdout" and json_output:
        raise ConfigError("--json and --out - both write to stdout; write the forecasts to a file")
    refuse_overwriting_data(out, data)
    trained = rnncast.load_model(model)
    if horizon is not None and horizon != trained.config.horizon:
        raise ConfigError(
            f"--horizon {horizon}, but the model in {model} forecasts "
            f"{trained.config.horizon} steps; retrain with --horizon {horizon}"
        )
    check_columns(trained, data)
    current = distributed.start(distributed.launched_world(), device)
    with contextlib.ExitStack() as held:
        if out != "-":
            held.enter_context(run_lock(out, current))
        # Under torchrun the processes share the reads; rank 0 writes the output.
        run = forecast_in_parts if current.is_distributed else forecast_dataset
        summary = run(
            trained, data, out, series_per_read=series_per_read, context=context,
            batch_size=batch_size, device=resolve_device(device), static_file=static_file,
            future_file=future_file,
        )  # fmt: skip
    logs.note(
        "forecast_written",
        f"wrote {summary.horizon} steps of {summary.series:,} series to {summary.written}",
        out=summary.written, series=summary.series, horizon=summary.horizon, reads=summary.reads,
    )  # fmt: skip
    if json_output and current.is_main:
        sys.stdout.write(json.dumps(dataclasses.asdict(summary), indent=2) + "\n")
