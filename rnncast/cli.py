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

from rnncast import __version__
from rnncast.config import (
    CELLS,
    DEVICES,
    DUPLICATE_POLICIES,
    FILL_POLICIES,
    LAYOUTS,
    LOSSES,
    OPTIMIZERS,
    SCALERS,
    SCHEDULES,
    STRATEGIES,
    DataConfig,
    ModelConfig,
    TrainConfig,
    parse_covariates,
    parse_quantiles,
)
from rnncast.errors import RnncastError

app = typer.Typer(
    name="rnncast",
    help="Forecast time series with recurrent networks, from the command line.",
    add_completion=False,
    no_args_is_help=True,
    # Locals can hold data values and paths a user would not want in a log.
    pretty_exceptions_show_locals=False,
)

Command = TypeVar("Command", bound=Callable[..., Any])

DataArgument = Annotated[
    str,
    typer.Argument(
        help="A CSV or Parquet file, a glob such as 'data/*.parquet', or a dataset directory.",
        show_default=False,
    ),
]
LayoutOption = Annotated[
    str,
    typer.Option(help=f"Table layout: {' | '.join(LAYOUTS)} (wide: one column per series)."),
]
IdColOption = Annotated[
    str | None,
    typer.Option(
        help="Series id column (found as unique_id, id, series, item_id…; none: one series).",
    ),
]
TimeColOption = Annotated[
    str | None, typer.Option(help="Time column (found as ds, timestamp, date, time…).")
]
TargetColOption = Annotated[
    str | None, typer.Option(help="Target column (found as y, target, value).")
]
TimeFormatOption = Annotated[
    str | None,
    typer.Option(help="Format of text timestamps, e.g. '%d.%m.%Y %H:%M' (ISO 8601 when absent)."),
]
CovariatesOption = Annotated[
    str | None,
    typer.Option(help="Extra numeric columns to use, comma-separated, or 'all'."),
]
FreqOption = Annotated[
    str | None,
    typer.Option(help="Frequency such as h, 15min, D, W, MS, ME, QS, YS (inferred when absent)."),
]
FillOption = Annotated[
    str, typer.Option(help=f"Missing steps and values: {' | '.join(FILL_POLICIES)}.")
]
DuplicatesOption = Annotated[
    str,
    typer.Option(help=f"Repeated (series, time) rows: {' | '.join(DUPLICATE_POLICIES)}."),
]
HorizonOption = Annotated[
    int | None,
    typer.Option(help="Steps to forecast; shorter series are skipped with a warning.", min=1),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print errors and warnings only.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks for every error.")]


def _stderr():
    from rich.console import Console

    # soft_wrap: a message stays one line, whatever the width, for logs and grep.
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _handle_errors(command: Command) -> Command:
    """Map exceptions to exit codes for every command, in this one place."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RnncastError as exc:
            if kwargs.get("debug"):
                raise
            _stderr().print(f"[bold red]error:[/] {_escape(str(exc))}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _stderr().print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if kwargs.get("debug"):
                raise
            _stderr().print(
                f"[bold red]unexpected error:[/] {_escape(type(exc).__name__)}: "
                f"{_escape(str(exc))}\nThis is a bug in rnncast; rerun with --debug for "
                "the traceback and report it."
            )
            raise typer.Exit(1) from None

    return run  # type: ignore[return-value]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


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
    freq: FreqOption = None,
    fill: FillOption = DataConfig.fill,
    duplicates: DuplicatesOption = DataConfig.duplicates,
    horizon: HorizonOption = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the description as JSON on stdout.")
    ] = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Validate a data file and describe its series. Exit 0 when usable, 3 when not.

    Example: rnncast check sample_data/load_hourly.parquet --covariates temperature
    """
    from rnncast.panel import read_panel

    config = DataConfig(
        layout=layout,
        id_col=id_col,
        time_col=time_col,
        target_col=target_col,
        time_format=time_format,
        covariates=parse_covariates(covariates),
        freq=freq,
        fill=fill,
        duplicates=duplicates,
        horizon=horizon,
    )
    panel = read_panel(data, config)
    for warning in panel.ingest.warnings:
        _stderr().print(f"[yellow]warning:[/] {_escape(warning)}")
    description = {"usable": True, **panel.describe()}
    if json_output:
        sys.stdout.write(json.dumps(description, indent=2) + "\n")
    elif not quiet:
        _render_check(description, panel)


def _render_check(description: dict[str, Any], panel: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    ingest = description["ingest"]
    columns = ingest["columns"]
    length = description["length"]
    if ingest["layout"] == "wide":
        roles = f"time {columns['time']}, {len(columns['target'])} series columns"
    else:
        roles = f"id {columns['id']}, time {columns['time']}, target {columns['target'][0]}"
    zone = f" ({description['time_zone']})" if description["time_zone"] else ""
    cycles = dict.fromkeys(n.rsplit("_", 1)[0] for n in description["calendar_features"])
    facts = Table(title=f"rnncast check: {ingest['source']}", title_justify="left", box=None)
    facts.show_header = False
    facts.add_column(style="bold")
    facts.add_column()
    for name, value in (
        ("layout", f"{ingest['layout']}: {roles}"),
        ("rows read", f"{ingest['rows_read']:,}"),
        ("series", f"{description['series']:,} ({len(ingest['skipped'])} skipped)"),
        ("length", f"min {length['min']:,}, median {length['median']:,.0f}, max {length['max']:,}"),
        (
            "frequency",
            f"{description['frequency']} ({description['frequency_label']}), "
            f"season length {description['season_length']}",
        ),
        ("time range", f"{description['start']} to {description['end']}{zone}"),
        ("rows sorted", "already" if ingest["was_sorted"] else "by series and time"),
        ("duplicates combined", f"{ingest['duplicates_combined']:,}"),
        ("missing timestamps filled", f"{ingest['missing_timestamps']:,}"),
        ("missing values filled", f"{ingest['missing_values']:,}"),
        ("missing ends trimmed", f"{ingest['trimmed_rows']:,}"),
        ("covariates", ", ".join(description["covariates"]) or "none"),
        ("other numeric columns", ", ".join(columns["spare_numeric"]) or "none"),
        ("calendar features", ", ".join(cycles) or "none"),
    ):
        facts.add_row(name, _escape(str(value)))
    shown = min(panel.n_series, 10)
    series = Table(title=f"first {shown} of {panel.n_series:,} series", title_justify="left")
    for heading in ("series", "steps", "first", "last"):
        series.add_column(heading, justify="right" if heading == "steps" else "left")
    ends = panel.end_times()
    for index in range(shown):
        series.add_row(
            _escape(str(panel.ids[index])),
            f"{int(panel.lengths[index]):,}",
            panel.format_time(int(panel.start_times[index])),
            panel.format_time(int(ends[index])),
        )
    console = Console(highlight=False)
    console.print(facts)
    console.print(series)


ModelArgument = Annotated[
    str, typer.Argument(help="A model directory written by rnncast train.", show_default=False)
]
DeviceOption = Annotated[
    str, typer.Option(help=f"Where to run: {' | '.join(DEVICES)} (auto: CUDA, MPS, then CPU).")
]


@app.command()
@_handle_errors
def train(
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
    scaler: Annotated[str, typer.Option(help=f"Per-series scaling: {' | '.join(SCALERS)}.")] = (
        "standard"
    ),
    season_inputs: Annotated[
        bool, typer.Option(help="Give the head the value one season back (seasonal naive).")
    ] = True,
    bidirectional: Annotated[
        bool, typer.Option(help="window only: also read each window backwards.")
    ] = False,
    strategy: Annotated[str, typer.Option(help=f"{' | '.join(STRATEGIES)}.")] = "tbptt",
    chunk_len: Annotated[
        int | None, typer.Option("--chunk-len", "--tbptt", help="TBPTT chunk length K.")
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
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Train a forecaster and write its model directory.

    Example: rnncast train sample_data/load_hourly.parquet --horizon 24 --out models/load
    """
    import rnncast

    options = dict(locals())
    options["covariates"] = parse_covariates(covariates)
    options["quantiles"] = parse_quantiles(quantiles)
    data_config = DataConfig(**_fields(DataConfig, options, horizon=None))
    model = ModelConfig(**_fields(ModelConfig, options))
    training = TrainConfig(**_fields(TrainConfig, options))
    _log_to_stderr(quiet)
    panel = rnncast.read_panel(data, replace(data_config, horizon=horizon))
    _warn_skipped(panel)
    with _stop_on_signals() as stop_reason, _training_progress(quiet) as on_epoch:
        trained = rnncast.train(
            panel, model, training, out=out, data=data_config, resume=resume,
            on_epoch=on_epoch, should_stop=stop_reason,
        )  # fmt: skip
    history = trained.history
    _info(
        quiet,
        f"best epoch {history['best_epoch']} of {len(history['epochs'])} "
        f"(stopped: {history['stopped']}), {history['seconds']:.1f} s; model written to {out}",
    )


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
    device: DeviceOption = "auto",
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Forecast the next horizon of every series with a trained model.

    Example: rnncast forecast sample_data/load_hourly.parquet --model models/load --out f.csv
    """
    import rnncast
    from rnncast.forecasting import data_config
    from rnncast.io import check_destination, write_table
    from rnncast.nn.device import resolve_device

    _log_to_stderr(quiet)
    check_destination(out)
    trained = rnncast.load_model(model)
    panel = rnncast.read_panel(data, replace(data_config(trained), horizon=None))
    _warn_skipped(panel)
    result = rnncast.forecast(
        trained, panel, context=context, batch_size=batch_size, device=resolve_device(device)
    )
    written = write_table(result.to_frame(), out)
    horizon = result.times.shape[1]
    _info(quiet, f"wrote {horizon} steps of {len(result.ids):,} series to {written}")


@app.command()
@_handle_errors
def inspect(
    model: ModelArgument,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
    debug: DebugOption = False,
) -> None:
    """Show what a model is, what it was trained on and how training went.

    Example: rnncast inspect models/load
    """
    import rnncast

    description = rnncast.load_model(model).describe()
    if json_output:
        sys.stdout.write(json.dumps(description, indent=2) + "\n")
    else:
        _render_inspect(model, description)


def _render_inspect(directory: str, description: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    config, training, data = description["model"], description["training"], description["data"]
    history, network = description["history"], description["network"]
    epochs = history.get("epochs") or [{}]
    best = epochs[max(history.get("best_epoch", 1), 1) - 1] if history.get("best_epoch") else {}
    quantiles = ", ".join(f"{q:g}" for q in config["quantiles"])
    if config["loss"] != "quantile":
        quantiles = ""
    facts = Table(title=f"rnncast model: {directory}", title_justify="left", box=None)
    facts.show_header = False
    facts.add_column(style="bold")
    facts.add_column()
    for name, value in (
        ("network", f"{config['cell']}, {config['layers']} x {config['hidden']}, "
                    f"{network['parameters']:,} parameters"),
        ("forecasts", f"{config['horizon']} steps, "
                      + (f"quantiles {quantiles}" if quantiles else f"point ({config['loss']})")),
        ("data", f"{description['series']:,} series, {data['frequency']}, target "
                 f"{data['target']}, covariates {', '.join(data['covariates']) or 'none'}"),
        ("training", f"{training['strategy']}, "
                     + (f"chunk {training['chunk_len']}" if training["strategy"] == "tbptt"
                        else f"lookback {training['lookback']}")
                     + f", batch {training['batch_size']}, {training['optimizer']} lr "
                       f"{training['lr']:g}, seed {training['seed']}"),
        ("epochs", f"{len(history.get('epochs', []))} (stopped: {history.get('stopped')}), "
                   f"{history.get('seconds', 0):.1f} s on {history.get('device')}"),
        ("best epoch", f"{history.get('best_epoch')}: train loss {best.get('train_loss', 0):.4f}"
                       + (f", validation loss {best['val_loss']:.4f}" if best.get("val_loss")
                          else "")),
    ):  # fmt: skip
        facts.add_row(name, _escape(str(value)))
    Console(highlight=False).print(facts)


def _fields(config_class: type, options: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """The options that are fields of ``config_class`` (flag name = field name)."""
    names = {f.name for f in dataclasses.fields(config_class)}
    return {k: v for k, v in {**options, **overrides}.items() if k in names}


def _info(quiet: bool, message: str) -> None:
    if not quiet:
        _stderr().print(_escape(message))


def _warn_skipped(panel: Any) -> None:
    for warning in panel.ingest.warnings:
        _stderr().print(f"[yellow]warning:[/] {_escape(warning)}")


def _log_to_stderr(quiet: bool) -> None:
    """Library log records become stderr lines: warnings always, the rest unless quiet."""
    import logging

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            prefix = "[yellow]warning:[/] " if record.levelno >= logging.WARNING else ""
            _stderr().print(prefix + _escape(record.getMessage()))

    logger = logging.getLogger("rnncast")
    logger.handlers = [_Handler()]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


@contextlib.contextmanager
def _stop_on_signals():
    """Turn the first SIGINT or SIGTERM into a polite request to stop (the loop saves a
    checkpoint and ends); a second one interrupts at once."""
    import signal

    received: list[str] = []

    def request_stop(number: int, frame: Any) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signal.Signals(number).name)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: received[0] if received else None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _training_progress(quiet: bool):
    """A progress bar on a terminal; one plain line per epoch otherwise (cron logs)."""
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = _stderr()
    if quiet or not console.is_terminal:

        def log_line(report: Any) -> None:
            if not quiet:
                console.print(_escape(_epoch_line(report)))

        yield log_line
        return
    columns = (TextColumn("epoch {task.completed}/{task.total}"), BarColumn(),
               TextColumn("{task.description}"), TimeElapsedColumn(),
               TextColumn("left"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=None)

        def update(report: Any) -> None:
            total = report.max_epochs
            if report.max_time:
                # The run ends at whichever limit comes first; show the nearer one.
                left = (report.max_time - report.elapsed) / (report.elapsed / report.epoch)
                total = min(total, report.epoch + int(left) + 1)
            line = _epoch_line(report, short=True)
            progress.update(task, completed=report.epoch, total=total, description=line)

        yield update


def _epoch_line(report: Any, short: bool = False) -> str:
    validation = f", val {report.val_loss:.4f}" if report.val_loss is not None else ""
    mark = " *" if report.improved else ""
    text = f"train {report.train_loss:.4f}{validation}{mark}, lr {report.lr:.2g}"
    return text if short else f"epoch {report.epoch}: {text}, {report.elapsed:.1f} s"


def main() -> None:
    """Console-script entry point."""
    # OpenMP threads that spin while waiting turn a busy machine's spare moments into
    # contention: torch's CPU LSTM ran 40x slower beside other jobs on 2 cores, and
    # cron hosts are rarely idle. Passive waiting costs little on an idle machine.
    # Set before torch loads, and only when the user has not chosen.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app()
