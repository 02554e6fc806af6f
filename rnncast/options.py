"""The options several commands share, declared once: the same flag means the same
thing, with the same help, in every command (and is the same key in a config file,
settings.py); and the values of options turned into the config fields they set."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer

from rnncast.config import DEVICES, DUPLICATE_POLICIES, FILL_POLICIES, LAYOUTS, parse_names
from rnncast.logs import LOG_FORMATS
from rnncast.settings import load_config_file

DataArgument = Annotated[
    str,
    typer.Argument(
        help="A CSV or Parquet file, a glob such as 'data/*.parquet', or a dataset directory.",
        metavar="DATA",
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
FutureCovariatesOption = Annotated[
    str | None,
    typer.Option(
        help="Numeric columns known for the forecast steps too, comma-separated; forecast "
        "data holds them on H rows after each series' last value, the target empty."
    ),
]
StaticCovariatesOption = Annotated[
    str | None,
    typer.Option(
        help="Columns with one value per series, comma-separated (text: a category; "
        "numbers: scaled)."
    ),
]
StaticFileOption = Annotated[
    str | None,
    typer.Option(
        "--static",
        help="CSV or Parquet file of the static covariates, one row per series id.",
    ),
]
HolidaysOption = Annotated[
    str | None,
    typer.Option(help="Countries whose public holidays become features, e.g. DE or US-CA,FR."),
]
HolidaysColumnOption = Annotated[
    str | None,
    typer.Option(help="Column naming each series' country for holiday features (e.g. DE)."),
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
ConfigOption = Annotated[
    str | None,
    typer.Option(
        help="TOML file of settings, keys named like the flags (flags win).",
        callback=load_config_file,
        is_eager=True,
    ),
]
LogFormatOption = Annotated[
    str,
    typer.Option(help=f"Log lines on stderr: {' | '.join(LOG_FORMATS)} (json: one object a line)."),
]

ModelArgument = Annotated[
    str,
    typer.Argument(
        help="A model directory written by rnncast train.", metavar="MODEL", show_default=False
    ),
]
SeasonOption = Annotated[
    int | None,
    typer.Option(help="Season length m of MASE and seasonal naive (from the frequency).", min=1),
]


def _check_device(value: str) -> str:
    # Checked as the command line is read: a typo is refused before a model is loaded.
    if value not in DEVICES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(DEVICES)}")
    return value


DeviceOption = Annotated[
    str,
    typer.Option(
        help=f"Where to run: {' | '.join(DEVICES)} (auto: CUDA, MPS, then CPU).",
        callback=_check_device,
    ),
]


def covariate_roles(
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


def config_fields(config_class: type, options: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """The options that are fields of ``config_class`` (flag name = field name)."""
    names = {f.name for f in dataclasses.fields(config_class)}
    return {k: v for k, v in {**options, **overrides}.items() if k in names}
