"""The ``rnncast`` command line: parse options, call the library, render, exit.

Heavy libraries (pandas, pyarrow, torch) are imported inside the commands that
need them, so ``rnncast --help`` and a failing cron job stay fast. Errors meant
for the user become one line on stderr and the exit code of their class
(errors.py); anything else is a bug: exit 1, traceback only with ``--debug``.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from rnncast import __version__
from rnncast.config import DUPLICATE_POLICIES, FILL_POLICIES, LAYOUTS, DataConfig, parse_covariates
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


def main() -> None:
    """Console-script entry point."""
    app()
