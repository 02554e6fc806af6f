"""The ``rnncast`` command line: declare each command's options, parse them, call
the library or the module that runs the command (training_run.py and its siblings),
render, exit.

Heavy libraries (pandas, pyarrow, torch) are imported inside the functions that
need them, so ``rnncast --help`` and a failing cron job stay fast. Errors meant
for the user become one line on stderr and the exit code of their class
(errors.py); anything else is a bug: exit 1, traceback only with ``--debug``
(command_errors.py, for every command).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

import rnncast.train_options as train_options
from rnncast import __version__
from rnncast.command_errors import handle_errors
from rnncast.config import (
    SCALERS,
    TRANSFORMS,
    DataConfig,
    ModelConfig,
    TrainConfig,
    parse_covariates,
    parse_quantiles,
)
from rnncast.describing_run import run_check, run_inspect
from rnncast.evaluation_run import run_evaluation
from rnncast.forecasting_run import run_forecast
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
    config_fields,
    covariate_roles,
)
from rnncast.process_exit import exit_process, exit_status
from rnncast.scoring_run import run_scoring
from rnncast.settings import effective_toml
from rnncast.training_run import run_training
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
@handle_errors
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
    data_config = DataConfig(
        layout=layout,
        id_col=id_col,
        time_col=time_col,
        target_col=target_col,
        time_format=time_format,
        covariates=parse_covariates(covariates),
        **covariate_roles(
            future_covariates, static_covariates, static_file, holidays, holidays_column
        ),
        freq=freq,
        fill=fill,
        duplicates=duplicates,
        horizon=horizon,
        future_rows="check" if horizon is not None else "skip",
    )
    run_check(data, data_config, json_output=json_output, quiet=quiet)


@app.command()
@handle_errors
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
    cell: train_options.CellOption = "lstm",
    activation: train_options.ActivationOption = "tanh",
    hidden: train_options.HiddenOption = None,
    layers: train_options.LayersOption = None,
    dropout: train_options.DropoutOption = 0.0,
    residual: train_options.ResidualOption = False,
    id_embedding: train_options.IdEmbeddingOption = 0,
    quantiles: train_options.QuantilesOption = None,
    loss: train_options.LossOption = "quantile",
    scaler: train_options.ScalerOption = "auto",
    transform: train_options.TransformOption = "auto",
    season_inputs: train_options.SeasonInputsOption = True,
    relative_inputs: train_options.RelativeInputsOption = ModelConfig.relative_inputs,
    long_season: train_options.LongSeasonOption = None,
    bidirectional: train_options.BidirectionalOption = False,
    strategy: train_options.StrategyOption = "tbptt",
    chunk_len: train_options.ChunkLenOption = None,
    origin_stride: train_options.OriginStrideOption = None,
    lookback: train_options.LookbackOption = None,
    batch_size: train_options.BatchSizeOption = None,
    streams: train_options.StreamsOption = None,
    max_epochs: train_options.MaxEpochsOption = TrainConfig.max_epochs,
    max_time: train_options.MaxTimeOption = None,
    patience: train_options.PatienceOption = TrainConfig.patience,
    val_size: train_options.ValSizeOption = None,
    test_size: train_options.TestSizeOption = None,
    refit: train_options.RefitOption = TrainConfig.refit,
    ensemble: train_options.EnsembleOption = None,
    season: SeasonOption = None,
    optimizer: train_options.OptimizerOption = "adam",
    lr: train_options.LrOption = TrainConfig.lr,
    weight_decay: train_options.WeightDecayOption = 0.0,
    schedule: train_options.ScheduleOption = ("plateau"),
    clip: train_options.ClipOption = TrainConfig.clip,
    seed: train_options.SeedOption = 0,
    device: DeviceOption = "auto",
    threads: train_options.ThreadsOption = None,
    resume: train_options.ResumeOption = False,
    print_config: train_options.PrintConfigOption = False,
    json_output: train_options.JsonOutputOption = False,
    config: ConfigOption = None,
    log_format: LogFormatOption = "text",
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Train a forecaster and write its model directory.

    Example: rnncast train sample_data/load_hourly.parquet --horizon 24 --out models/load
    """
    options = dict(locals())
    options["covariates"] = parse_covariates(covariates)
    options.update(
        covariate_roles(
            future_covariates, static_covariates, static_file, holidays, holidays_column
        )
    )
    options["quantiles"] = parse_quantiles(quantiles)
    options["transform"] = train_options.chosen_or_auto("transform", transform, TRANSFORMS)
    options["scaler"] = train_options.chosen_or_auto("scaler", scaler, SCALERS)
    data_config = DataConfig(**config_fields(DataConfig, options, horizon=None))
    model = ModelConfig(**config_fields(ModelConfig, options))
    training = TrainConfig(**config_fields(TrainConfig, options))
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
    run_training(
        data, out, horizon=horizon, data_config=data_config, model=model, training=training,
        settings=settings, season=season, device=device, resume=resume, quiet=quiet,
        json_output=json_output,
    )  # fmt: skip


@app.command()
@handle_errors
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
    run_forecast(
        data, model, out, context=context, batch_size=batch_size,
        series_per_read=series_per_read, horizon=horizon, static_file=static_file,
        future_file=future_file, device=device, json_output=json_output,
    )  # fmt: skip


@app.command()
@handle_errors
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
    run_evaluation(
        data, model, out, folds=folds, step=step, season=season, refit=refit,
        batch_size=batch_size, device=device, quiet=quiet, json_output=json_output,
    )  # fmt: skip


@app.command()
@handle_errors
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
    options = dict(locals())
    run_scoring(
        forecasts, actuals, options, season=season, json_output=json_output, history=history
    )


@app.command()
@handle_errors
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
    run_inspect(model, json_output=json_output)


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
    for every line besides (command_errors.py); a process that fails alone cannot."""
    try:
        main()
    except SystemExit as done:
        if exit_status(done.code) != 0:
            raise
    exit_process(0)
