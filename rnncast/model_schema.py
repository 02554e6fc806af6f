"""What config.json may hold, checked before a network or a scaler is built from it.

config.json holds every setting of a model and its training, the sizes the network
was built with, the schema of the data it reads and its blend with a base forecast.
Like every file of a model directory it is untrusted input (model_records.py says
why), so its types, its allowed values and ranges, its sizes, unknown and missing
keys, and how its sections fit together (the network's widths against the data's
frequency and covariates) are checked before the loader builds a network or a scaler
from it. A file that breaks the schema is refused with ArtifactError (exit 4), naming
the file, the key, the value and what is expected. Reading the JSON itself within
limits (depth, numbers, repeated keys) and checking a value against a type are
json_checks.py's; the format version and the files that record a run (manifest,
series, history) are model_records.py's; what config.json holds, and how its parts
fit together, is this module's.

The settings sections reuse the checks of the config dataclasses
(``__post_init__``), so a model file is held to the same rules as a command line,
and their fields (names and types) come from the dataclasses, so a field added
there is known here at once. Keys that every format-1 writer wrote are required;
keys added since (with a default) may be missing from older models. A key this code
does not know is refused: a writer that adds one to the format raises
model_records.FORMAT_VERSION, so an older rnncast asks for an upgrade instead of
ignoring it.
The tensors are checked in artifact.py, against the network these settings build.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnncast.bases import BASES, Combination
from rnncast.batches import n_future_features
from rnncast.config import LAYOUTS, DataConfig, ModelConfig, TrainConfig
from rnncast.errors import ConfigError
from rnncast.frequency import parse_frequency
from rnncast.inputs import known_names, static_levels
from rnncast.json_checks import Broken, at_least, check_keys, refuse, show
from rnncast.model_records import check_format_version
from rnncast.time_axis import calendar_feature_names

# Sizes beyond any model rnncast trains. Most also fix the shapes of the weights,
# which artifact compares before allocating the network, but not all: a window
# model's lookback sets the windows forecasting allocates. So all are capped here.
MAX_SIZE = 1_000_000
_SIZE_FIELDS = frozenset(
    {"horizon", "hidden", "layers", "id_embedding", "chunk_len", "lookback", "batch_size"}
    | {"streams", "n_inputs", "n_future", "recurrent_steps", "long_season"}
)


@dataclass(frozen=True)
class NetworkShape:
    """The sizes a Forecaster was built with, besides its ModelConfig."""

    n_inputs: int
    n_future: int
    n_series: int
    recurrent_steps: int
    static_levels: tuple[int, ...] = ()  # rows of each static category's embedding


_NETWORK_MINIMUM = {"n_inputs": 1, "n_future": 0, "n_series": 1, "recurrent_steps": 1}


@dataclass(frozen=True)
class ModelSettings:
    """config.json once checked: every part typed, in range and consistent."""

    format_version: int
    model: ModelConfig
    training: TrainConfig
    shape: NetworkShape
    data: dict[str, Any]
    scaler_method: str
    combination: Combination | None = None


# The keys of each section that every format-1 model holds (tests/golden/model_v1),
# written out rather than taken from the dataclasses: a field added to a dataclass
# later has a default, and older models, which lack it, must still load.
_FORMAT_1_MODEL = frozenset(
    {"horizon", "cell", "activation", "hidden", "layers", "dropout", "residual"}
    | {"id_embedding", "quantiles", "loss", "scaler", "season_inputs", "bidirectional"}
)
_FORMAT_1_TRAINING = frozenset(
    {"strategy", "chunk_len", "lookback", "batch_size", "max_epochs", "max_time", "patience"}
    | {"val_size", "optimizer", "lr", "weight_decay", "schedule", "clip", "seed", "device"}
    | {"threads"}
)
# What a model written before a key existed did, where that differs from the
# dataclass default (which is for new models): such a model lacks the key.
_BEFORE_ADDED: dict[str, dict[str, Any]] = {
    # read levels, one season, the values themselves
    "model": {"relative_inputs": False, "long_season": 0, "transform": "none"},
    # each series read whole
    "training": {"streams": 1},
}


def before_added(section: str) -> dict[str, Any]:
    """The settings of ``section`` ("model", "training") that a writer older than
    their key meant by leaving it out: what a model directory or a checkpoint without
    them was trained with."""
    return dict(_BEFORE_ADDED.get(section, {}))


_FORMAT_1_SETTINGS = frozenset(
    {"layout", "id_col", "time_col", "target_col", "covariates", "time_format", "freq"}
    | {"fill", "duplicates", "horizon"}
)
_CONFIG_FIELDS: dict[str, Any] = {
    "format_version": int,
    "rnncast_version": str,
    "torch_version": str,
    "model": dict,
    "training": dict,
    "network": dict,
    "data": dict,
    "scaler": dict,
    "combination": dict | None,  # format 2; None: the network alone
}
_DATA_FIELDS: dict[str, Any] = {
    "settings": dict | None,  # None: trained through the Python API without a DataConfig
    "columns": dict | None,  # None: a Panel built from arrays, not read from a file
    "layout": str,
    "target": str | None,
    "covariates": list[str],
    "future_covariates": list[str],
    "inputs": dict,
    "frequency": str,
    "season_length": int,
    "time_zone": str | None,
    "calendar_features": list[str],
    "series": int,
    "steps": int,
    "trained_until": str,
    "trained_until_ns": int,
}
# Keys added after format 1 began, which older models lack.
_DATA_ADDED = frozenset({"trained_until", "trained_until_ns", "future_covariates", "inputs"})
_COLUMNS_FIELDS: dict[str, Any] = {
    "id": str | None,
    "time": str,
    "target": list[str],
    "covariates": list[str],
    "spare_numeric": list[str],
    "future_covariates": list[str],
    "static_covariates": list[str],
}
_COLUMNS_ADDED = frozenset({"future_covariates", "static_covariates"})


def check_config(document: Any, file: str | Path, manifest_version: int) -> ModelSettings:
    """config.json as typed settings; ArtifactError for anything that breaks the schema
    or would not fit together (the sizes of the network and the data it reads)."""
    if not isinstance(document, dict):
        raise refuse(file, f"it holds {show(document)}, expected an object")
    if "format_version" not in document:
        raise refuse(file, "format_version is missing")
    version = check_format_version(document["format_version"], file, file)
    if version != manifest_version:
        raise refuse(
            file,
            f"format_version is {version} but manifest.json says {manifest_version}: "
            "the files come from different models",
        )
    try:
        return _config(document, version)
    except Broken as exc:
        raise refuse(file, str(exc)) from None


def _config(document: dict[str, Any], version: int) -> ModelSettings:
    required = frozenset(_CONFIG_FIELDS) - ({"combination"} if version < 2 else set())
    check_keys(document, _CONFIG_FIELDS, "", required=required)
    model = _settings(document["model"], "model", ModelConfig, _FORMAT_1_MODEL)
    training = _settings(document["training"], "training", TrainConfig, _FORMAT_1_TRAINING)
    shape = _network(document["network"])
    for name in ("hidden", "layers"):
        if getattr(model, name) is None:
            raise Broken(f"model.{name} is null; a trained model has a size")
    check_keys(document["scaler"], {"method": str}, "scaler", required=None)
    method = document["scaler"]["method"]
    if method != model.scaler:
        raise Broken(f"scaler.method is {show(method)}, but model.scaler is {model.scaler!r}")
    data = _data(document["data"])
    frequency = parse_frequency(data["frequency"])
    # The widths batches.lay_out gives the network's inputs for data of this frequency
    # and these covariates; weights of other widths would fail inside torch mid-forecast.
    calendar = list(calendar_feature_names(frequency))
    season = frequency.season_length if model.season_inputs else 0
    long_season = (model.long_season or 0) if season else 0
    # Relative inputs replace the level by its changes from one step, one season and
    # one long season before: one column more, or two (batches.lay_out).
    relative = getattr(model, "relative_inputs", False) and season > 0
    changes = (1 + (1 if long_season else 0)) if relative else 0
    inputs = data.get("inputs")
    known = len(data.get("future_covariates", [])) + len(known_names(inputs)) + len(calendar)
    n_inputs = 1 + len(data["covariates"]) + known + changes
    expected = {
        "data.calendar_features": (data["calendar_features"], calendar),
        "data.season_length": (data["season_length"], frequency.season_length),
        "network.n_inputs": (shape.n_inputs, n_inputs),
        "network.n_future": (shape.n_future, n_future_features(known, season, long_season)),
        "network.static_levels": (list(shape.static_levels), list(static_levels(inputs))),
        # As training.train sets it: the chunk (tbptt) or window (window) length.
        "network.recurrent_steps": (
            shape.recurrent_steps,
            training.chunk_len or training.lookback or 1,
        ),
    }
    for where, (found, needed) in expected.items():
        if found != needed:
            raise Broken(
                f"{where} is {show(found)}, but a model of {data['frequency']} data with "
                f"these settings has {show(needed)}"
            )
    if training.strategy == "window" and training.lookback is None:
        raise Broken("training.lookback is null; a window model reads a fixed lookback")
    combination = _combination(
        document.get("combination"), model.horizon, len(model.output_quantiles)
    )
    return ModelSettings(version, model, training, shape, data, method, combination)


def _combination(value: Any, horizon: int, n_quantiles: int) -> Combination | None:
    """The blend of the network with a base forecast: a known base, one weight in
    [0, 1] per future step."""
    if value is None:
        return None
    fields = {"base": str, "weights": list[float], "offsets": list[list[float]]}
    check_keys(value, fields, "combination", required=frozenset({"base", "weights"}))
    if value["base"] not in BASES:
        raise Broken(
            f"combination.base is {show(value['base'])}, expected one of {', '.join(BASES)}"
        )
    weights = value["weights"]
    if len(weights) != horizon:
        raise Broken(
            f"combination.weights lists {len(weights)} weights, expected one per step of "
            f"model.horizon ({horizon})"
        )
    if not all(0.0 <= w <= 1.0 for w in weights):
        raise Broken("combination.weights must each lie between 0 and 1")
    offsets = value.get("offsets") or []
    if offsets and (len(offsets) != horizon or {len(row) for row in offsets} != {n_quantiles}):
        raise Broken(
            f"combination.offsets must hold one row per step of model.horizon ({horizon}), "
            "each with one offset per quantile"
        )
    return Combination(base=value["base"], weights=tuple(float(w) for w in weights),
                       offsets=tuple(tuple(float(v) for v in row) for row in offsets))  # fmt: skip


def _settings(value: Any, where: str, cls: type, required: frozenset[str]) -> Any:
    """An instance of the config dataclass ``cls`` from its JSON object, its
    ConfigError (a value out of range, a conflict) turned into a schema error."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    check_keys(value, fields, where, required)
    older = {k: v for k, v in before_added(where).items() if k in fields}
    value = {**older, **value}
    for name in _SIZE_FIELDS & value.keys():
        if isinstance(value[name], int) and value[name] > MAX_SIZE:
            raise Broken(
                f"{where}.{name} is {show(value[name])}, more than any model rnncast "
                f"trains (at most {MAX_SIZE:,})"
            )
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
    except ConfigError as exc:
        raise Broken(f"{where}: {exc}") from None


def _network(value: Any) -> NetworkShape:
    fields: dict[str, Any] = {name: int for name in _NETWORK_MINIMUM}
    fields["static_levels"] = list[int]
    check_keys(value, fields, "network", required=frozenset(_NETWORK_MINIMUM))
    levels = value.get("static_levels", [])
    for index, count in enumerate(levels):
        at_least(count, 2, f"network.static_levels[{index}]")
        if count > MAX_SIZE:
            raise Broken(f"network.static_levels[{index}] is {show(count)}, too many levels")
    for name, minimum in _NETWORK_MINIMUM.items():
        at_least(value[name], minimum, f"network.{name}")
        if name in _SIZE_FIELDS and value[name] > MAX_SIZE:
            raise Broken(
                f"network.{name} is {show(value[name])}, more than any model rnncast "
                f"trains (at most {MAX_SIZE:,})"
            )
    return NetworkShape(**{**value, "static_levels": tuple(levels)})


def _data(value: Any) -> dict[str, Any]:
    """The data schema: which columns new data is read from, its frequency and features."""
    check_keys(value, _DATA_FIELDS, "data", required=frozenset(_DATA_FIELDS) - _DATA_ADDED)
    if value["settings"] is not None:
        _settings(value["settings"], "data.settings", DataConfig, _FORMAT_1_SETTINGS)
    if value["columns"] is not None:
        check_keys(
            value["columns"], _COLUMNS_FIELDS, "data.columns",
            required=frozenset(_COLUMNS_FIELDS) - _COLUMNS_ADDED,
        )  # fmt: skip
    if value["layout"] not in LAYOUTS:
        raise Broken(
            f"data.layout is {show(value['layout'])}, expected one of {', '.join(LAYOUTS)}"
        )
    for name in ("season_length", "series", "steps"):
        at_least(value[name], 1, f"data.{name}")
    if value.get("inputs") is not None:
        _inputs(value["inputs"])
    frequency = value["frequency"]
    try:
        canonical = parse_frequency(frequency).alias if len(frequency) < 32 else None
    except (ConfigError, ValueError):
        canonical = None
    if canonical != frequency:
        raise Broken(
            f"data.frequency is {show(frequency)}, expected a frequency as rnncast writes "
            "it (h, 15min, D, W, MS, ...)"
        )
    return value


def _inputs(value: dict[str, Any]) -> None:
    """data.inputs (inputs.fit_inputs): static covariates' scales and levels, holidays."""
    check_keys(value, {"static_covariates": dict | None, "holidays": dict | None}, "data.inputs",
                required=None)  # fmt: skip
    statics = value["static_covariates"]
    if statics is not None:
        where = "data.inputs.static_covariates"
        check_keys(statics, {"numbers": list, "categories": list}, where, required=None)
        for index, number in enumerate(statics["numbers"]):
            here = f"{where}.numbers[{index}]"
            check_keys(number, {"name": str, "loc": float, "scale": float}, here, required=None)
            if not (math.isfinite(number["loc"]) and math.isfinite(number["scale"])):
                raise Broken(f"{here} holds a value that is not finite")
            if number["scale"] <= 0:
                raise Broken(f"{here}.scale is {show(number['scale'])}, expected > 0")
        for index, category in enumerate(statics["categories"]):
            here = f"{where}.categories[{index}]"
            check_keys(category, {"name": str, "levels": list[str]}, here, required=None)
            if len(set(category["levels"])) != len(category["levels"]):
                raise Broken(f"{here}.levels names a level twice")
    holidays = value["holidays"]
    if holidays is not None:
        fields = {"countries": list[str], "column": str | None}
        check_keys(holidays, fields, "data.inputs.holidays", required=None)
