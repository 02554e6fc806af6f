"""The metrics document: an Evaluation as plain JSON values, and their text in metrics.json.

It is the machine-readable result, whose keys stay stable across versions: pipelines
read it, ``rnncast score --history`` keeps a row of it (rnncast.scorebook), ``--json``
prints it, and the reports (rnncast.report) render it. Kept apart from that rendering
so the interface does not move when the report's look does.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from rnncast import __version__
from rnncast.assessment import BASELINES, Evaluation
from rnncast.plots import choose_series, interval_levels
from rnncast.time_axis import shift_times

FORMAT_VERSION = 1
SKILL_METRICS = ("mae", "rmse", "smape", "mase")


def metrics_document(evaluation: Evaluation, model: dict[str, Any] | None = None) -> dict:
    """The content of metrics.json: Python types only, NaN as None, 6 significant digits.

    ``model`` is ``Model.describe()``'s dict, or None when forecasts were scored
    without a model. ``skill`` is 1 - model/baseline of the means over series
    (positive: the model is better); ``relative_to_seasonal_naive`` and
    ``relative_to_naive2`` hold the model's mean sMAPE and MASE over the baseline's
    and OWA, their average (M4's OWA is the one relative to Naive2); each is None
    where a mean is undefined or zero. ``counts`` adds the evaluation's
    ``baseline_counts`` to the model's. ``plotted_series`` names the series the
    report's forecast panels show.
    """
    scores = evaluation.scores
    methods = ["model", *(name for name in BASELINES if name in scores)]
    methods += [name for name in scores if name not in methods]
    skill = {
        name: {key: _ratio(scores, name, key) for key in SKILL_METRICS} for name in methods[1:]
    }
    document = {
        "format_version": FORMAT_VERSION,
        "rnncast_version": __version__,
        "kind": evaluation.kind,
        "settings": dict(evaluation.settings),
        "data": _data_facts(evaluation),
        "model": _model_facts(model),
        "counts": {**scores["model"].counts, **evaluation.baseline_counts},
        "methods": methods,
        "summary": {name: scores[name].summary for name in methods},
        "skill": {
            name: {key: None if ratio is None else 1 - ratio for key, ratio in row.items()}
            for name, row in skill.items()
        },
        "relative_to_seasonal_naive": _relative(scores, "seasonal_naive"),
        "relative_to_naive2": _relative(scores, "naive2"),
        "by_step": {
            "step": list(range(1, evaluation.horizon + 1)),
            **{name: scores[name].per_step for name in methods},
        },
        "series": {
            "unique_id": [str(name) for name in evaluation.ids],
            **{name: scores[name].per_series for name in methods},
        },
        "plotted_series": [
            {"unique_id": str(evaluation.ids[position]), "label": label}
            for position, label in choose_series(evaluation)
        ],
        "calibration": _calibration(evaluation),
    }
    return _json_ready(document)


def document_text(document: dict) -> str:
    """The metrics document as indented JSON with every list of numbers or ids on one
    line: one value per line made the file of 100 000 series 49 MB."""
    text = json.dumps(document, indent=2, allow_nan=False)
    # Inside JSON strings newlines are escaped, so ",\n" only ever separates elements;
    # a list holding brackets or braces in a string is left as it is, still valid JSON.
    flat = re.sub(
        r"\[\n\s+([^\[\]{}]*?)\n\s*\]",
        lambda match: "[" + ", ".join(part.strip() for part in match.group(1).split(",\n")) + "]",
        text,
    )
    return flat + "\n"


def _calibration(evaluation: Evaluation) -> dict[str, Any] | None:
    """Coverage and pinball loss of the model's intervals before and after their
    calibration, overall and by step; None when they were not calibrated."""
    before = evaluation.uncalibrated
    if before is None:
        return None
    after = evaluation.scores["model"]
    keys = [f"coverage_{level}" for level in interval_levels(after.summary)]
    keys += [key for key in ("scaled_pinball",) if key in after.summary]
    return {
        stage: {
            "summary": {key: scores.summary[key]["mean"] for key in keys},
            "by_step": {key: scores.per_step[key] for key in keys if key in scores.per_step},
        }
        for stage, scores in (("before", before), ("after", after))
    }


def _data_facts(evaluation: Evaluation) -> dict[str, Any]:
    n_series, n_origins = evaluation.cuts.shape
    first_steps = evaluation.times[:, :, 0].reshape(-1).astype(np.int64)
    # An origin is the last step its forecast saw: one step before the first forecast step.
    origins = shift_times(first_steps, np.full(first_steps.shape, -1, np.int64), evaluation.freq)
    format_time = evaluation.history.format_time
    return {
        "series": n_series,
        "frequency": evaluation.freq.alias,
        "time_zone": evaluation.tz,
        "season_length": evaluation.season,
        "horizon": evaluation.horizon,
        "quantiles": list(evaluation.quantiles),
        "origins_per_series": n_origins,
        "first_origin": format_time(int(origins.min())) if origins.size else None,
        "last_origin": format_time(int(origins.max())) if origins.size else None,
    }


def _model_facts(model: dict[str, Any] | None) -> dict[str, Any] | None:
    if model is None:
        return None
    config, history = model.get("model") or {}, model.get("history") or {}
    return {
        **{key: config.get(key) for key in ("cell", "hidden", "layers", "horizon")},
        "quantiles": list(config.get("quantiles") or []),
        "loss": config.get("loss"),
        "strategy": (model.get("training") or {}).get("strategy"),
        "parameters": (model.get("network") or {}).get("parameters"),
        "epochs": len(history.get("epochs") or []),
        "best_epoch": history.get("best_epoch"),
        "stopped": history.get("stopped"),
        "train_seconds": _training_seconds(history),
        # Networks whose median the forecasts are (nn/ensemble.py); 1 for older models.
        "members": config.get("members") or 1,
        # The safety net (fitting.py): the base forecast validation chose and the
        # network's share of the blend at the first and the last step; null for a
        # network used alone.
        "base_forecast": (model.get("combination") or {}).get("base"),
        "network_share_first_step": _share(model, 0),
        "network_share_last_step": _share(model, -1),
        **_covariate_roles(model.get("data") or {}),
    }


def _covariate_roles(data: dict[str, Any]) -> dict[str, Any]:
    """The covariates the model reads, by role (issue 14)."""
    inputs = data.get("inputs") or {}
    statics = inputs.get("static_covariates") or {"numbers": [], "categories": []}
    holidays = inputs.get("holidays")
    return {
        "covariates": list(data.get("covariates") or []),
        "future_covariates": list(data.get("future_covariates") or []),
        "static_covariates": [n["name"] for n in statics["numbers"]]
        + [c["name"] for c in statics["categories"]],
        "holidays": (
            list(holidays["countries"])
            + ([f"column {holidays['column']}"] if holidays["column"] else [])
            if holidays
            else []
        ),
    }


def _training_seconds(history: dict[str, Any]) -> float | None:
    """Seconds of training of every member, the first member's alone for a model
    whose history lists none."""
    members = history.get("members") or []
    if members:
        return round(sum(float(member.get("seconds") or 0.0) for member in members), 3)
    return history.get("seconds")


def _share(model: dict[str, Any], step: int) -> float | None:
    weights = (model.get("combination") or {}).get("weights") or []
    return float(weights[step]) if weights else None


def _relative(scores: dict, baseline: str) -> dict[str, float | None]:
    """The model's mean sMAPE and MASE over the baseline's, and OWA, their average."""
    ratios = {key: _ratio(scores, baseline, key) for key in ("smape", "mase")}
    owa = None if None in ratios.values() else (ratios["smape"] + ratios["mase"]) / 2
    return {**ratios, "owa": owa}


def _ratio(scores: dict, baseline: str, metric: str) -> float | None:
    """The model's mean over the baseline's; None where either is undefined or it is 0."""
    if baseline not in scores:
        return None
    ours = summary_mean(scores["model"].summary, metric)
    theirs = summary_mean(scores[baseline].summary, metric)
    return None if ours is None or not theirs else ours / theirs


def summary_mean(summary: dict, metric: str) -> float | None:
    """A metric's mean over series; None where the summary lacks it or it is undefined."""
    value = (summary.get(metric) or {}).get("mean")
    return None if value is None or not math.isfinite(value) else float(value)


def _json_ready(value: Any) -> Any:
    """Plain JSON values: numpy and tuples converted, non-finite floats None, 6 digits."""
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":  # the bulk of the document: per series and per step
            return [float(f"{v:.6g}") if math.isfinite(v) else None for v in value.tolist()]
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if value is None or isinstance(value, bool | np.bool_):
        return None if value is None else bool(value)
    if isinstance(value, str):
        return str(value)  # numpy str_ ids become plain str
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(f"{value:.6g}") if math.isfinite(value) else None
    return str(value)  # paths and other settings are printed as they are
