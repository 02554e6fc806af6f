"""What data a model reads: the reading settings its training data implies, and the
checks that new data fits it (its columns before reading; its frequency, covariates
and future rows after), each refusal a DataError that says what to change.
"""

from __future__ import annotations

import numpy as np

from rnncast.ahead import too_few_rows
from rnncast.artifact import Model
from rnncast.config import DataConfig
from rnncast.errors import DataError
from rnncast.panel import Panel


def data_config(model: Model, static_file: str | None = None) -> DataConfig:
    """How to read new data the way the model's training data was read; the static
    covariates from ``static_file`` if given, else from where training read them."""
    schema = model.schema
    settings = dict(schema.get("settings") or {})
    future = schema.get("future_covariates") or []
    columns = schema.get("columns") or {}
    wide = schema.get("layout") == "wide"
    return DataConfig(
        layout="wide" if wide else "long",
        id_col=None if wide else columns.get("id"),
        time_col=columns.get("time"),
        target_col=None if wide else (columns.get("target") or [None])[0],
        time_format=settings.get("time_format"),
        covariates=tuple(schema["covariates"]),
        future_covariates=tuple(future),
        static_covariates=tuple(settings.get("static_covariates") or ()),
        static_file=static_file or settings.get("static_file"),
        holidays=tuple(settings.get("holidays") or ()),
        holidays_column=settings.get("holidays_column"),
        future_rows="require" if future else "skip",
        future_steps=model.config.horizon if future else None,
        freq=None,
        fill=settings.get("fill", DataConfig.fill),
        duplicates=settings.get("duplicates", DataConfig.duplicates),
    )


def check_columns(model: Model, location: str) -> None:
    """Refuse data that lacks a column the model was trained on, before reading it:
    DataError naming the missing columns, their parts and the model's columns."""
    from rnncast.io import read_schema, resolve_source

    source = resolve_source(location)
    present = set(read_schema(source).names)
    columns = model.schema.get("columns") or {}
    roles = [(columns.get("id"), "series id"), (columns.get("time"), "time")]
    if model.schema.get("layout") != "wide":  # a wide file's series columns may be new
        roles += [(name, "target") for name in columns.get("target") or []]
    roles += [(name, "covariate") for name in model.schema.get("covariates") or []]
    roles += [(name, "future covariate") for name in model.schema.get("future_covariates") or []]
    settings = model.schema.get("settings") or {}
    if not settings.get("static_file"):
        roles += [(name, "static covariate") for name in settings.get("static_covariates") or []]
    roles += [(settings.get("holidays_column"), "holidays country")]
    missing = [f"{name!r} ({role})" for name, role in roles if name and name not in present]
    if missing:
        trained = ", ".join(f"{name} ({role})" for name, role in roles if name)
        raise DataError(
            f"{source.label} does not fit the model: it has no column {', '.join(missing)}. "
            f"The model was trained on {trained}; this data has {', '.join(sorted(present))}"
        )


def check_fits(model: Model, panel: Panel) -> None:
    """Refuse a panel of another frequency, or other covariates, than the model's."""
    schema = model.schema
    if panel.freq.alias != schema["frequency"]:
        raise DataError(
            f"the model was trained on {schema['frequency']} data; this data is "
            f"{panel.freq.label} ({panel.freq.alias}); resample it or train a model on it"
        )
    needed = list(schema["covariates"]) + list(schema.get("future_covariates") or [])
    if list(panel.covariate_names) != needed:
        raise DataError(
            f"the model needs covariates {needed}; this data has {list(panel.covariate_names)}"
        )


def check_ahead(model: Model, panel: Panel) -> None:
    """Refuse to forecast without every future covariate on every forecast step: a
    model that learned to read them must not be handed a guess."""
    names = model.schema.get("future_covariates") or []
    if not names:
        return
    horizon = model.config.horizon
    given = np.zeros((panel.n_series, horizon), dtype=bool)
    if panel.ahead is not None:
        span = min(horizon, panel.ahead.shape[1])
        given[:, :span] = ~np.isnan(panel.ahead[:, :span]).any(axis=2)
    lacking = ~given.all(axis=1)
    if lacking.any():
        index = int(np.flatnonzero(lacking)[0])
        where = f"{panel.ingest.source}: " if panel.ingest is not None else ""
        first = panel.format_time(int(panel.future_times(horizon)[index, given[index].sum()]))
        raise DataError(
            where + too_few_rows(str(panel.ids[index]), int(given[index].sum()), horizon,
                                 first, tuple(names))
        )  # fmt: skip
