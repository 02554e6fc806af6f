"""Fit the whole forecaster: train the network (training.py), then choose, on the
validation origins it never trained on, the base forecast under it and how much of
the network to blend in at every future step (bases.Combination).

A network that learned nothing useful gets weight 0 and the forecasts are the base
forecast's: on the validation origins the blend is never worse than the best base,
and the base is never worse there than naive or seasonal naive, which are among
the candidates. This is what lets the defaults hold on data no one tuned them for.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rnncast.artifact import Model, save_model
from rnncast.bases import BASES, Combination, base_forecasts
from rnncast.config import ModelConfig, TrainConfig
from rnncast.forecasting import forecast_origins
from rnncast.panel import Panel
from rnncast.training import train as train_network

log = logging.getLogger("rnncast")

# Network shares tried at the first and the last future step.
_WEIGHTS = np.linspace(0.0, 1.0, 11)
# Below this many validation forecasts a step, one share serves every step: a
# choice per step would follow the noise of a few origins.
_ORIGINS_PER_STEP_CHOICE = 200


def train(
    panel: Panel,
    model: ModelConfig,
    training: TrainConfig | None = None,
    *,
    out: str | Path | None = None,
    save: bool = True,
    **options: Any,
) -> Model:
    """Train a forecaster on ``panel`` and return it (see training.train for the
    options); with validation steps, its forecasts are blended with the base
    forecast that validation chose. With ``out`` and ``save`` the model is written."""
    trained = train_network(panel, model, training, out=out, save=False, **options)
    trained = replace(trained, combination=choose_combination(trained, panel))
    if out is not None and save:
        save_model(trained, out)
    return trained


def validation_panel(model: Model, panel: Panel) -> Panel:
    """The series the model trained on, without their test part."""
    trained_on = np.isin(panel.ids.astype(str), model.scaler.ids.astype(str))
    seen = panel.take(np.flatnonzero(trained_on))
    test_size = model.training.test_size or 0
    return seen.split_tail(test_size)[0] if test_size else seen


def choose_combination(model: Model, panel: Panel) -> Combination | None:
    """The base and the network's share per step that score best, in MASE's units, on
    every whole horizon of the validation part; None without validation steps."""
    horizon = model.config.horizon
    val_size = model.training.val_size or 0
    origins = val_size // horizon
    if origins < 1:
        return None
    seen = validation_panel(model, panel)
    lengths = seen.lengths
    cuts = (lengths - val_size)[:, None] + horizon * np.arange(origins)[None, :]  # (S, K)
    series = [seen.series(i).astype(np.float64) for i in range(seen.n_series)]
    actual = np.stack([np.stack([s[c : c + horizon] for c in cut]) for s, cut in
                       zip(series, cuts, strict=True)])  # (S, K, H)  # fmt: skip
    scale = _naive_scale(series, lengths - val_size, seen.freq.season_length)[:, None, None]
    network = forecast_origins(replace(model, combination=None), seen, cuts)  # (S, K, H, Q)
    median = model.config.output_quantiles.index(0.5)
    season = seen.freq.season_length
    errors = {}
    candidates = {}
    for method in BASES:
        candidates[method] = base_forecasts(series, cuts, horizon, season, method)
        errors[method] = float(np.mean(np.abs(candidates[method] - actual) / scale))
    base = min(errors, key=errors.get)
    gap = candidates[base] - network[..., median]  # (S, K, H)
    weights, blend_error = _choose_weights(network[..., median], gap, actual, scale)
    network_error = float(np.mean(np.abs(network[..., median] - actual) / scale))
    log.info(
        "base forecast %s (validation MASE %.3f; network alone %.3f, blended %.3f); "
        "network share %.2f on average", base, errors[base], network_error, blend_error,
        float(weights.mean()),
        extra={"event": "combination", "fields": {
            "base": base, "base_errors": errors, "network_error": network_error,
            "weights": [float(w) for w in weights]}},
    )  # fmt: skip
    return Combination(base=base, weights=tuple(float(w) for w in weights))


def _choose_weights(
    network: np.ndarray, gap: np.ndarray, actual: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray, float]:
    """The network's share at each of the H steps, a straight line from the first step
    to the last (a share per step would follow the noise of the validation origins),
    and its validation error. With few origins the line is flat."""
    horizon = actual.shape[-1]
    ramp = np.arange(horizon) / max(horizon - 1, 1)  # (H,) 0 at the first step, 1 at the last
    flat = actual.shape[0] * actual.shape[1] < _ORIGINS_PER_STEP_CHOICE
    best, best_error = np.ones(horizon), np.inf
    for first in _WEIGHTS:
        for last in [first] if flat else _WEIGHTS:
            weights = first + (last - first) * ramp  # (H,)
            blended = network + (1 - weights) * gap  # (S, K, H)
            error = float(np.mean(np.abs(blended - actual) / scale))
            if error < best_error - 1e-12:
                best, best_error = weights, error
    return best, best_error


def _naive_scale(series: list[np.ndarray], seen: np.ndarray, season: int) -> np.ndarray:
    """(S,) mean absolute seasonal difference of the steps before validation (MASE's
    scale), with naive's for a series shorter than two seasons; never 0."""
    scale = np.empty(len(series))
    for index, values in enumerate(series):
        history = values[: seen[index]]
        lag = season if history.shape[0] > season else 1
        differences = np.abs(history[lag:] - history[:-lag])
        scale[index] = differences.mean() if differences.size else 0.0
    positive = scale[scale > 0]
    fallback = float(np.median(positive)) if positive.size else 1.0
    return np.where(scale > 0, scale, fallback)
