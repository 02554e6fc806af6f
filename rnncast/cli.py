"""The ``rnncast`` command line: parse options, call the library, render, exit.

Heavy libraries (pandas, pyarrow, torch) are imported inside the commands that
need them, so ``rnncast --help`` and a failing cron job stay fast. Errors meant
for the user become one line on stderr and the exit code of their class
(errors.py); anything else is a bug: exit 1, traceback only with ``--debug``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, TypeVar

import typer

from rnncast import __version__, distributed, logs
from rnncast.command_reports import Holdout, holdout_scores, holdout_summary, write_command_report
from rnncast.config import (
    CELLS,
    DEFAULT_MEMBERS,
    LOSSES,
    OPTIMIZERS,
    SCALERS,
    SCHEDULES,
    STRATEGIES,
    TRANSFORMS,
    DataConfig,
    ModelConfig,
    TrainConfig,
    parse_covariates,
    parse_names,
    parse_quantiles,
)
from rnncast.errors import ConfigError, RnncastError
from rnncast.logs import LOG_FORMATS
from rnncast.options import (
    ConfigOption,
    CovariatesOption,
    DataArgument,
    DebugOption,
    DeviceOption,
    DuplicatesOption,
    FillOption,
    FreqOption,
    FutureCovariatesOption,
    HolidaysColumnOption,
    HolidaysOption,
    HorizonOption,
    IdColOption,
    LayoutOption,
    LogFormatOption,
    ModelArgument,
    QuietOption,
    SeasonOption,
    StaticCovariatesOption,
    StaticFileOption,
    TargetColOption,
    TimeColOption,
    TimeFormatOption,
)
from rnncast.process_exit import exit_process, exit_status
from rnncast.runs import check_report_folder, refuse_overwriting_data, run_lock, stop_on_signals
from rnncast.settings import effective_toml
from rnncast.terminal import render_check, render_inspect, training_progress
from rnncast.usage import RnncastGroup

app = typer.Typer(
    name="rnncast",
    cls=RnncastGroup,
    help="Forecast time series with recurrent networks, from the command line.",
    add_completion=False,
    no_args_is_help=True,
    # Locals can hold data values and paths a user would not want in a log.
    pretty_exceptions_show_locals=False,
)

Command = TypeVar("Command", bound=Callable[..., Any])
# The commands that run as one run over many processes under torchrun.
_DISTRIBUTED_COMMANDS = ("train", "forecast")


def _handle_errors(command: Command) -> Command:
    """Set up logging and map exceptions to exit codes for every command, in this one
    place. Errors are log records too, so a JSON log carries them."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            launched = distributed.launched_world()
        except ConfigError as exc:
            launched, refused = distributed.SINGLE, exc
        else:
            refused = None
        logs.configure(kwargs.get("log_format", "text"), kwargs.get("quiet", False),
                       command=command.__name__,
                       rank=launched.rank if launched.is_distributed else None)  # fmt: skip
        if kwargs.get("log_format", "text") not in LOG_FORMATS:
            logs.fail("failed", f"--log-format must be one of {', '.join(LOG_FORMATS)}",
                      exit_code=2)  # fmt: skip
            raise typer.Exit(2)
        try:
            if refused is not None:
                raise refused
            if launched.is_distributed and command.__name__ not in _DISTRIBUTED_COMMANDS:
                raise ConfigError(f"rnncast {command.__name__} runs in one process; "
                                  "start it without torchrun")  # fmt: skip
            try:
                result = command(*args, **kwargs)
                distributed.finish()
            except RnncastError as exc:
                if distributed.every_process_raised(exc) and not kwargs.get("debug"):
                    _tell(exc)
                    distributed.wait_for_every_process()
                raise
            finally:
                # Whatever ended the command, leave the group while the interpreter is
                # whole: gloo's threads still hold work otherwise, and finalising it at
                # exit aborts the process (SIGABRT) after its error was already told.
                distributed.leave()
            return result
        except RnncastError as exc:
            if kwargs.get("debug"):
                raise
            if not getattr(exc, "told", False):
                _tell(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            logs.fail("failed", "interrupted", error="KeyboardInterrupt", exit_code=130)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if kwargs.get("debug"):
                raise
            logs.fail(
                "failed",
                f"unexpected error: {type(exc).__name__}: {exc}\nThis is a bug in rnncast; "
                "rerun with --debug for the traceback and report it.",
                error=type(exc).__name__, exit_code=1,
            )  # fmt: skip
            raise typer.Exit(1) from None

    return run  # type: ignore[return-value]


def _tell(error: RnncastError) -> None:
    """The error's one line (a log record too), once."""
    logs.fail("failed", str(error), error=type(error).__name__, exit_code=error.exit_code)
    error.told = True  # type: ignore[attr-defined]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rnncast {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Forecast time series with recurrent networks, from the command line."""


@app.command()
@_handle_errors
def check(
    data: DataArgument,
    layout: LayoutOption = DataConfig.layout,
    id_col: IdColOption = None,
    time_col: TimeColOption = None,
    target_col: TargetColOption = None,
    time_format: TimeFormatOption = None,
    covariates: CovariatesOption = None,
    future_covariates: FutureCovariatesOption = None,
    static_covariates: StaticCovariatesOption = None,
    static_file: StaticFileOption = None,
    holidays: HolidaysOption = None,
    holidays_column: HolidaysColumnOption = None,
    freq: FreqOption = None,
    fill: FillOption = DataConfig.fill,
    duplicates: DuplicatesOption = DataConfig.duplicates,
    horizon: HorizonOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the description as JSON on stdout.")
    ] = False,
    config: ConfigOption = None,
    log_format: LogFormatOption = "text",
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Validate a data file and describe its series. Exit 0 when usable, 3 when not.

    Example: rnncast check sample_data/load_hourly.parquet --covariates temperature
    """
    from rnncast.panel import read_panel

    data_config = DataConfig(
        layout=layout,
        id_col=id_col,
        time_col=time_col,
        target_col=target_col,
        time_format=time_format,
        covariates=parse_covariates(covariates),
        **_covariate_roles(
            future_covariates, static_covariates, static_file, holidays, holidays_column
        ),
        freq=freq,
        fill=fill,
        duplicates=duplicates,
        horizon=horizon,
        future_rows="check" if horizon is not None else "skip",
    )
    panel = read_panel(data, data_config)
    _warn_skipped(panel)
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


@app.command()
@_handle_errors
def train(
    ctx: typer.Context,
    data: DataArgument,
    horizon: Annotated[int, typer.Option(help="Steps to forecast.", min=1, show_default=False)],
    out: Annotated[
        str, typer.Option(help="Model directory to write (replaced when done).", show_default=False)
    ],
    layout: LayoutOption = DataConfig.layout,
    id_col: IdColOption = None,
    time_col: TimeColOption = None,
    target_col: TargetColOption = None,
    time_format: TimeFormatOption = None,
    covariates: CovariatesOption = None,
    future_covariates: FutureCovariatesOption = None,
    static_covariates: StaticCovariatesOption = None,
    static_file: StaticFileOption = None,
    holidays: HolidaysOption = None,
    holidays_column: HolidaysColumnOption = None,
    freq: FreqOption = None,
    fill: FillOption = DataConfig.fill,
    duplicates: DuplicatesOption = DataConfig.duplicates,
    cell: Annotated[str, typer.Option(help=f"Recurrent cell: {' | '.join(CELLS)}.")] = "lstm",
    activation: Annotated[str, typer.Option(help="Elman rnn only: tanh | relu.")] = "tanh",
    hidden: Annotated[int | None, typer.Option(help="Units per layer (from data size).")] = None,
    layers: Annotated[int | None, typer.Option(help="Stacked layers (from data size).")] = None,
    dropout: Annotated[float, typer.Option(help="Dropout between layers.")] = 0.0,
    residual: Annotated[bool, typer.Option(help="indrnn only: residual layers.")] = False,
    id_embedding: Annotated[
        int, typer.Option(help="Size of a learned vector per series id; 0: none.")
    ] = 0,
    quantiles: Annotated[
        str | None, typer.Option(help="Quantiles to forecast (default 0.1,0.5,0.9).")
    ] = None,
    loss: Annotated[
        str, typer.Option(help=f"{' | '.join(LOSSES)} (mse, mae: point forecast only).")
    ] = "quantile",
    scaler: Annotated[
        str,
        typer.Option(
            help=f"How series are scaled: auto | {' | '.join(SCALERS)} (shared: one scale "
            "for all; auto: shared for the logarithms of series without a season, else "
            "standard)."
        ),
    ] = "auto",
    transform: Annotated[
        str,
        typer.Option(
            help=f"What the model forecasts: auto | {' | '.join(TRANSFORMS)} (log: the "
            "logarithms of the values; auto: log for steps of a week or longer where "
            "every value is above 0)."
        ),
    ] = "auto",
    season_inputs: Annotated[
        bool, typer.Option(help="Give the head the value one season back (seasonal naive).")
    ] = True,
    relative_inputs: Annotated[
        bool, typer.Option(help="The network reads changes, not levels (follows level shifts).")
    ] = ModelConfig.relative_inputs,
    long_season: Annotated[
        int | None,
        typer.Option(
            help="Steps of a second, longer season input (a week of hourly steps); "
            "0: none (chosen from the data)."
        ),
    ] = None,
    bidirectional: Annotated[
        bool, typer.Option(help="window only: also read each window backwards.")
    ] = False,
    strategy: Annotated[str, typer.Option(help=f"{' | '.join(STRATEGIES)}.")] = "tbptt",
    chunk_len: Annotated[
        int | None, typer.Option("--chunk-len", "--tbptt", help="TBPTT chunk length K.")
    ] = None,
    origin_stride: Annotated[
        int | None,
        typer.Option(help="tbptt only: score every k-th origin of a chunk (from the horizon)."),
    ] = None,
    lookback: Annotated[int | None, typer.Option(help="window only: steps per window.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Series (tbptt) or windows.")] = None,
    max_epochs: Annotated[int, typer.Option(help="Most epochs to train.")] = TrainConfig.max_epochs,
    max_time: Annotated[
        float | None, typer.Option(help="Most seconds to train (stops after that epoch).")
    ] = None,
    patience: Annotated[
        int, typer.Option(help="Epochs without improvement before stopping.")
    ] = TrainConfig.patience,
    val_size: Annotated[
        int | None, typer.Option(help="Steps held out per series for validation (horizon).")
    ] = None,
    test_size: Annotated[
        int | None,
        typer.Option(help="Last steps per series never shown, then scored (horizon); 0: none."),
    ] = None,
    refit: Annotated[
        bool,
        typer.Option(help="After validation (and the test), train again on every step."),
    ] = TrainConfig.refit,
    ensemble: Annotated[
        int | None,
        typer.Option(
            help="Networks trained, forecasts their median (as many as the time "
            f"budget holds, up to {DEFAULT_MEMBERS})."
        ),
    ] = None,
    season: SeasonOption = None,
    optimizer: Annotated[str, typer.Option(help=f"{' | '.join(OPTIMIZERS)}.")] = "adam",
    lr: Annotated[float, typer.Option(help="Learning rate.")] = TrainConfig.lr,
    weight_decay: Annotated[float, typer.Option(help="L2 weight decay.")] = 0.0,
    schedule: Annotated[str, typer.Option(help=f"LR schedule: {' | '.join(SCHEDULES)}.")] = (
        "plateau"
    ),
    clip: Annotated[float, typer.Option(help="Gradient-norm clip; 0: off.")] = TrainConfig.clip,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same CPU result).")] = 0,
    device: DeviceOption = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads (torch's default).")] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the interrupted run whose checkpoint is in --out.")
    ] = False,
    print_config: Annotated[
        bool, typer.Option(help="Print the effective settings as TOML on stdout and stop.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary on stdout when done.")
    ] = False,
    config: ConfigOption = None,
    log_format: LogFormatOption = "text",
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Train a forecaster and write its model directory.

    Example: rnncast train sample_data/load_hourly.parquet --horizon 24 --out models/load
    """
    import rnncast

    options = dict(locals())
    options["covariates"] = parse_covariates(covariates)
    options.update(
        _covariate_roles(
            future_covariates, static_covariates, static_file, holidays, holidays_column
        )
    )
    options["quantiles"] = parse_quantiles(quantiles)
    if transform not in ("auto", *TRANSFORMS):
        raise ConfigError(
            f"transform must be one of auto, {', '.join(TRANSFORMS)}; got {transform!r}"
        )
    options["transform"] = None if transform == "auto" else transform
    if scaler not in ("auto", *SCALERS):
        raise ConfigError(f"scaler must be one of auto, {', '.join(SCALERS)}; got {scaler!r}")
    options["scaler"] = None if scaler == "auto" else scaler
    data_config = DataConfig(**_fields(DataConfig, options, horizon=None))
    model = ModelConfig(**_fields(ModelConfig, options))
    training = TrainConfig(**_fields(TrainConfig, options))
    settings = effective_toml(
        ctx,
        header=f"rnncast {__version__}: the settings of rnncast train {data}\n"
        "(flags win over a --config file, which wins over the defaults; unset ones are "
        "chosen from the data)\nrun again with: rnncast train DATA --config THIS_FILE",
        leave_out=("resume", "debug", "json_output"),
    )
    if print_config:
        sys.stdout.write(settings)
        return
    refuse_overwriting_data(out, data)
    current = distributed.start(distributed.launched_world(), device)
    with run_lock(out, current):
        from rnncast.shared_read import read_for_training

        # Under torchrun the data is read once for the run, in shares or by rank 0 alone,
        # and every process holds all of it (shared_read.py).
        panel = read_for_training(data, replace(data_config, horizon=horizon))
        if current.is_main:
            _warn_skipped(panel)
        if panel.ingest.future_rows:
            logs.note(
                "future_rows_left_out",
                f"{panel.ingest.future_rows:,} future rows after the series' last values "
                "left out of training",
                rows=panel.ingest.future_rows,
            )  # fmt: skip
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
        from rnncast.terminal import render_metrics

        render_metrics(document, title=f"rnncast holdout: {out}")
    if json_output and current.is_main:
        summary = {"model": out, "best_epoch": history["best_epoch"],
                   "epochs": len(history["epochs"]), "stopped": history["stopped"],
                   "seconds": history["seconds"],
                   "test": holdout_summary(document) if document else None}  # fmt: skip
        sys.stdout.write(json.dumps(summary, indent=2, allow_nan=False) + "\n")


@app.command()
@_handle_errors
def forecast(
    data: DataArgument,
    model: Annotated[str, typer.Option(help="Model directory from rnncast train.")],
    out: Annotated[str, typer.Option(help="Output .csv or .parquet file, or - for CSV on stdout.")],
    context: Annotated[
        int | None, typer.Option(help="Steps of history read per series (default: all).", min=1)
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Series per batch.", min=1)] = 512,
    series_per_read: Annotated[
        int, typer.Option(help="Series read, forecast and written at a time.", min=1)
    ] = 10_000,
    horizon: Annotated[
        int | None, typer.Option(help="Check the model forecasts this many steps.", min=1)
    ] = None,
    static_file: StaticFileOption = None,
    future_file: Annotated[
        str | None,
        typer.Option(
            "--future",
            help="CSV or Parquet file of the future rows (id, time, future covariates), "
            "when DATA holds the history only.",
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary on stdout when done.")
    ] = False,
    device: DeviceOption = "auto",
    config: ConfigOption = None,
    log_format: LogFormatOption = "text",
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Forecast the next horizon of every series with a trained model.

    Example: rnncast forecast sample_data/load_hourly.parquet --model models/load --out f.csv
    """
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


@app.command()
@_handle_errors
def evaluate(
    data: DataArgument,
    model: Annotated[str, typer.Option(help="Model directory from rnncast train.")],
    out: Annotated[str, typer.Option(help="Folder for metrics.json, report.md, report.html.")],
    folds: Annotated[int, typer.Option(help="Forecast origins per series.", min=1)] = 1,
    step: Annotated[
        int | None, typer.Option(help="Steps between origins (default: the horizon).", min=1)
    ] = None,
    season: SeasonOption = None,
    refit: Annotated[
        bool, typer.Option(help="Retrain at every origin on the history before it (slow).")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="Series per batch.", min=1)] = 512,
    device: DeviceOption = "auto",
    json_output: Annotated[
        bool, typer.Option("--json", help="Print metrics.json on stdout too.")
    ] = False,
    config: ConfigOption = None,
    log_format: LogFormatOption = "text",
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Backtest a model from rolling origins over the end of every series, and report.

    Example: rnncast evaluate sample_data/load_hourly.parquet --model models/load --folds 4
    --out reports/load
    """
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
        _warn_skipped(panel)
        evaluation = rnncast.evaluate(
            trained, panel, folds=folds, step=step, season=season,
            refit=refit_model if refit else None, batch_size=batch_size,
            device=resolve_device(device),
        )  # fmt: skip
        document = write_command_report(out, evaluation, trained, quiet, source=data, model=model)
    if json_output:
        from rnncast.report_document import document_text

        sys.stdout.write(document_text(document))


@app.command()
@_handle_errors
def score(
    forecasts: Annotated[
        str,
        typer.Argument(
            help="Forecasts written by rnncast forecast.", metavar="FORECASTS", show_default=False
        ),
    ],
    actuals: DataArgument,
    layout: LayoutOption = DataConfig.layout,
    id_col: IdColOption = None,
    time_col: TimeColOption = None,
    target_col: TargetColOption = None,
    time_format: TimeFormatOption = None,
    freq: FreqOption = None,
    fill: FillOption = DataConfig.fill,
    duplicates: DuplicatesOption = DataConfig.duplicates,
    season: SeasonOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
    history: Annotated[
        str | None, typer.Option(help="Append a row of metrics to this .csv or .jsonl file.")
    ] = None,
    config: ConfigOption = None,
    log_format: LogFormatOption = "text",
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Score forecasts written earlier against the actuals that arrived since.

    ACTUALS holds the history too: MASE and the baselines use the steps before the
    forecasts. Example: rnncast score forecasts.csv latest.parquet --history scores.csv
    """
    from rnncast.scorebook import history_format

    options = dict(locals())
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

    actual_panel = read_panel(actuals, DataConfig(**_fields(DataConfig, options)))
    _warn_skipped(actual_panel)
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


@app.command()
@_handle_errors
def inspect(
    model: ModelArgument,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
    config: ConfigOption = None,
    log_format: LogFormatOption = "text",
    debug: DebugOption = False,
) -> None:
    """Show what a model is, what it was trained on, how training went and how it
    scored on its test part.

    Example: rnncast inspect models/load
    """
    import rnncast

    description = rnncast.load_model(model).describe()
    description["test"] = holdout_scores(model)
    if json_output:
        sys.stdout.write(json.dumps(description, indent=2) + "\n")
    else:
        render_inspect(model, description)


def _covariate_roles(
    future: str | None,
    static: str | None,
    static_file: str | None,
    holidays: str | None,
    holidays_column: str | None,
) -> dict[str, Any]:
    """The DataConfig fields of the covariate-role options, parsed."""
    countries: tuple[str, ...] = ()
    if holidays is not None:
        from rnncast.holiday_features import parse_countries

        countries = parse_countries(holidays)
    return {
        "future_covariates": parse_names(future, "--future-covariates"),
        "static_covariates": parse_names(static, "--static-covariates"),
        "static_file": static_file,
        "holidays": countries,
        "holidays_column": holidays_column,
    }


def _fields(config_class: type, options: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """The options that are fields of ``config_class`` (flag name = field name)."""
    names = {f.name for f in dataclasses.fields(config_class)}
    return {k: v for k, v in {**options, **overrides}.items() if k in names}


def _warn_skipped(panel: Any) -> None:
    for warning in panel.ingest.warnings:
        logs.warn("data_warning", warning)


def main() -> None:
    """Console-script entry point."""
    # OpenMP threads that spin while waiting turn a busy machine's spare moments into
    # contention: torch's CPU LSTM ran 40x slower beside other jobs on 2 cores, and
    # cron hosts are rarely idle. Passive waiting costs little on an idle machine.
    # Set before torch loads, and only when the user has not chosen.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app()


def run() -> None:
    """The ``rnncast`` command and ``python -m rnncast``: main(); a command that
    succeeded then ends without the interpreter's teardown (process_exit.py).

    A failed one ends as Python ends. Under torchrun the first process to end makes
    torchrun stop the others, and each failed process still has its own error line to
    write: ending at once cut rank 1's line off while rank 0 had already told its own
    (seen in tests/test_distributed.py). Errors every process raised together wait
    for every line besides (_handle_errors); a process that fails alone cannot."""
    try:
        main()
    except SystemExit as done:
        if exit_status(done.code) != 0:
            raise
    exit_process(0)
