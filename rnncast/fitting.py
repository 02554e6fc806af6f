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
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rnncast import distributed
from rnncast import training as network_training
from rnncast.artifact import Model, save_model
from rnncast.bases import BASES, Combination, base_forecasts, history_scales
from rnncast.config import ModelConfig, TrainConfig
from rnncast.ensembles import (
    assemble,
    member_summary,
    stop_name,
    stop_requested,
    train_members,
)
from rnncast.errors import Interrupted
from rnncast.forecasting import forecast_origins
from rnncast.panel import Panel
from rnncast.seasons import seasonal_adjustment

log = logging.getLogger("rnncast")

# With a refit, the first training gets this share of the time budget; the refit,
# a few epochs from the validated weights, the rest (at least _MIN_REFIT_SECONDS).
_FIRST_SHARE = 0.9
_MIN_REFIT_SECONDS = 5.0
# Steps of training data per second of default budget (time_budget).
_STEPS_PER_SECOND = 700.0
# Network shares tried at the first and the last future step.
_WEIGHTS = np.linspace(0.0, 1.0, 11)
# Standard errors of the paired difference by which the members' median must
# validate better without a member for it to be left out (choose_members).
# Simulated (80 forecasts of 6 steps, 300 runs): members that differ by noise alone
# lost none in runs of 2, 5 or 20; one offset by twice the noise's spread was left
# out of 100% of runs of two and 98% of five, and of none of twenty, whose median
# it no longer moves.
_CLEARLY_WORSE = 3.0
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
    before_refit: Callable[[Model], None] | None = None,
    **options: Any,
) -> Model:
    """Train a forecaster on ``panel`` and return it (see training.train for the
    options).

    The network is an ensemble of ``training.ensemble`` members (default: as many as
    the time budget holds, ensembles.py). With validation steps, its forecasts are
    blended with the base forecast that validation chose. Then ``before_refit`` sees
    that model (which never saw the test part: rnncast train scores its holdout
    there), and with ``training.refit`` every member is trained again on every step
    of every series, for the epochs validation chose, keeping the blend.
    ``max_time`` (default: from the data's size, ``time_budget``) bounds all of it
    together. With ``out`` and ``save`` the model is written.
    """
    training = training or TrainConfig()
    budget = training.max_time if training.max_time is not None else time_budget(panel)
    refit = training.refit and training.val_size != 0
    first = replace(training, max_time=budget * _FIRST_SHARE if refit else budget)
    share = _refit_share(panel, model, training, refit)
    members = train_members(panel, model, first, refit_share=share, out=out, **options)
    spent = sum(member.history["seconds"] for member in members)
    validation = validation_forecasts(members, panel)
    left_out: list[dict[str, Any]] = []
    quantiles = model.output_quantiles
    kept = list(range(len(members)))
    # Members the budget chose are kept as validation says; --ensemble N keeps all N.
    if validation is not None and len(members) > 1 and training.ensemble is None:
        # Rank 0 alone holds the gathered arrays and decides; every process keeps the
        # members it chose, and the blend below.
        arrays = validation.arrays
        kept = distributed.decided_by_main(lambda: choose_members(arrays))
        left_out = distributed.decided_by_main(lambda: _left_out(arrays, kept, members))
        members = [members[index] for index in kept]
    trained = _listing(assemble(members), left_out)
    trained = replace(trained, training=replace(members[0].training,
                      max_time=training.max_time, ensemble=training.ensemble))  # fmt: skip
    combination = None
    if validation is not None:
        arrays = validation.with_network(kept)
        combination = distributed.decided_by_main(lambda: _combination(arrays, quantiles))
    trained = replace(trained, combination=combination)
    if before_refit is not None:
        before_refit(trained)
    should_stop = options.get("should_stop")
    if refit and stop_requested(should_stop):
        log.warning("%s arrived before the refit; the model validated without it is kept",
                    stop_name(should_stop),
                    extra={"event": "refit_skipped", "fields": {}})  # fmt: skip
    elif refit:
        try:
            refitted = []
            for index, member in enumerate(members):
                left = budget - spent - sum(m.history["refit"]["seconds"] for m in refitted)
                refitted.append(refit_on_everything(
                    member, panel, left / (len(members) - index), members=len(members),
                    **options))  # fmt: skip
            trained = replace(_listing(assemble(refitted), left_out), training=trained.training,
                              combination=trained.combination)  # fmt: skip
        except Interrupted as stop:
            if not stop.polite:
                raise
            # The model validated before the refit is whole and scored: keep it.
            log.warning("%s during the refit; the model validated without it is kept",
                        stop_name(should_stop),
                        extra={"event": "refit_skipped", "fields": {}})  # fmt: skip
    # Under torchrun every process holds the same model; rank 0 alone writes it.
    if out is not None and save and distributed.world().is_main:
        save_model(trained, out)
    return trained


def time_budget(panel: Panel) -> float:
    """Seconds of training when the user sets none: one epoch costs time in proportion
    to the steps, so the budget grows with them, from 30 s for small data to 9 minutes
    for a panel the size of M4 Hourly (350,000 steps) or larger."""
    steps = float(panel.lengths.sum())
    return float(np.clip(30.0 + steps / _STEPS_PER_SECOND, 30.0, 540.0))


def refit_on_everything(
    model: Model, panel: Panel, seconds: float, *, members: int = 1, **options: Any
) -> Model:
    """The validated network trained on further over every step of ``panel``, the
    validation and test parts included; the blend, chosen on validation, is kept.

    It continues from the validated weights, at the learning rate of the best epoch,
    for the epochs the new steps would have had had they been there from the start:
    the best epoch times their share of all steps, at least one. Retraining from
    scratch for all the epochs validation chose would cost as much again as the first
    training, which M4-sized data cannot afford within its budget (measured: cut off
    by the time limit 10 epochs short, and worse than no refit). ``model`` is one
    member of ``members``, which share the refit's minimum time.
    """
    history = model.history
    best = max(int(history.get("best_epoch") or 0), 1)
    seen = validation_panel(model, panel).lengths  # what training read, validation included
    trained = seen - network_training.validation_sizes(seen, model.training.val_size or 0,
                                                       model.config.horizon)  # fmt: skip
    new_steps = float(panel.lengths.sum()) - float(trained.sum())
    epochs = max(1, math.ceil(best * max(new_steps, 0.0) / float(panel.lengths.sum())))
    rates = [epoch["lr"] for epoch in history.get("epochs", [])]
    lr = rates[best - 1] if len(rates) >= best else model.training.lr
    settings = replace(model.training, val_size=0, test_size=0, max_epochs=epochs,
                       patience=epochs, lr=lr, schedule="none",
                       max_time=max(seconds, _MIN_REFIT_SECONDS / members))  # fmt: skip
    # Not resumed, and not shown epoch by epoch: one line says what the refit did.
    options = {k: v for k, v in options.items() if k not in ("resume", "on_epoch")}
    series = np.isin(panel.ids.astype(str), model.scaler.ids.astype(str))
    # Warm starts need the same network shape: a series the first training skipped
    # would grow an id embedding, so such a refit starts afresh for the best epochs.
    same_shape = series.all() or not model.config.id_embedding
    if not same_shape:
        settings = replace(settings, max_epochs=best, patience=best, lr=model.training.lr,
                           schedule=model.training.schedule)  # fmt: skip
    refitted = network_training.train(
        panel, model.config, settings, save=False,
        start_from=model.network if same_shape else None, **options,
    )  # fmt: skip
    refit = {"epochs": len(refitted.history["epochs"]), "seconds": refitted.history["seconds"],
             "stopped": refitted.history["stopped"], "series": int(refitted.scaler.ids.shape[0]),
             "steps": int(refitted.schema["steps"])}  # fmt: skip
    log.info(
        "refit on all %d steps of %d series: %d epochs from the validated weights, %.1f s",
        refit["steps"], refit["series"], refit["epochs"], refit["seconds"],
        extra={"event": "refit_all", "fields": refit},
    )  # fmt: skip
    return replace(refitted, training=model.training, history={**history, "refit": refit},
                   combination=model.combination)  # fmt: skip


def _refit_share(panel: Panel, model: ModelConfig, training: TrainConfig, refit: bool) -> float:
    """The refit's time as a share of the first training's, at most: it runs the
    best epochs (at most those the first training ran) times the share of the steps
    that validation and the test held out (refit_on_everything)."""
    if not refit:
        return 0.0
    horizon = model.horizon
    test_size = horizon if training.test_size is None else training.test_size
    val_size = training.val_size
    if val_size is None:
        val_size = horizon * network_training.validation_horizons(panel, horizon, test_size)
    held_out = np.minimum(panel.lengths, val_size + test_size).sum()
    return float(held_out / max(float(panel.lengths.sum()), 1.0))


def validation_panel(model: Model, panel: Panel) -> Panel:
    """The series the model trained on, without their test part."""
    trained_on = np.isin(panel.ids.astype(str), model.scaler.ids.astype(str))
    seen = panel.take(np.flatnonzero(trained_on))
    test_size = model.training.test_size or 0
    return seen.split_tail(test_size)[0] if test_size else seen


def choose_combination(model: Model, panel: Panel) -> Combination | None:
    """The base and the network's share per step that score best, in MASE's units, on
    every whole horizon of the validation part; None without validation steps."""
    validation = validation_forecasts([model], panel)
    if validation is None:
        return None
    return _combination(validation.with_network([0]), model.config.output_quantiles)


@dataclass(frozen=True)
class Validation:
    """Every member's forecasts at the K whole horizons of the validation part.

    ``arrays``, on rank 0 (every process when there is one): the actual values and
    each base's forecasts (S, K, H), the MASE scales (S, K, 1) and each member's
    median forecasts ("medians", (M, S, K, H)), all that choosing members needs;
    empty on the other processes, which take rank 0's decisions. ``mine``: this
    process's members' forecasts of every quantile for its own share of the series
    (M, s, K, H, Q). Under torchrun each process forecasts a consecutive share and
    rank 0 receives the shares joined in order: the same arrays as one process makes,
    while no process holds every member's quantiles of every series.
    """

    arrays: dict[str, np.ndarray]
    mine: np.ndarray | None  # None where this process's share is empty

    def with_network(self, kept: list[int]) -> dict[str, np.ndarray]:
        """``arrays`` and, on rank 0, the median of the ``kept`` members' quantiles,
        "network" (S, K, H, Q), as the Ensemble takes it. A collective under torchrun."""
        median = None if self.mine is None else np.median(self.mine[kept], axis=0)
        if not distributed.world().is_distributed:
            return {**self.arrays, "network": median}
        gathered = distributed.gather_to_main(median)
        if gathered is None:
            return self.arrays
        shares = [found for found in gathered if found is not None]
        return {**self.arrays, "network": np.concatenate(shares)}


def validation_forecasts(members: list[Model], panel: Panel) -> Validation | None:
    """The members' forecasts at the validation horizons of every validated series
    (Validation); None without validation, alike in every process."""
    first = members[0]
    horizon = first.config.horizon
    val_size = first.training.val_size or 0
    origins = val_size // horizon
    if origins < 1:
        return None
    seen = validation_panel(first, panel)
    # Series too short to have been validated (training.validation_sizes) do not vote.
    validated = network_training.validation_sizes(seen.lengths, val_size, horizon) > 0
    if not validated.any():
        return None
    seen = seen.take(np.flatnonzero(validated))
    current = distributed.world()
    if current.is_distributed:
        seen = seen.take(distributed.consecutive_share(seen.n_series, current))
    arrays = _validation_arrays(members, seen, val_size, origins) if seen.n_series else None
    mine = None if arrays is None else arrays.pop("members")
    if mine is not None:
        median = first.config.output_quantiles.index(0.5)
        arrays["medians"] = mine[..., median]
    if current.is_distributed:
        gathered = distributed.gather_to_main(arrays)
        if gathered is None:
            return Validation(arrays={}, mine=mine)
        shares = [found for found in gathered if found is not None]
        arrays = {name: np.concatenate([found[name] for found in shares],
                                       axis=1 if name == "medians" else 0)
                  for name in shares[0]}  # fmt: skip
    return Validation(arrays=arrays, mine=mine)


def choose_members(arrays: dict[str, np.ndarray]) -> list[int]:
    """The members to keep, in training order. While more than one is kept, the worst
    of them by its own validation error is left out if the median of the others
    validates clearly better than the median with it: by more than _CLEARLY_WORSE
    standard errors of the paired difference over the validation forecasts (MASE's
    units).

    A member that training left far from the others (stuck on a plateau and stopped
    early, say) pulls the median towards it, and goes; one that is merely worse than
    the rest, even by more than the noise, is kept while the median gains from it."""
    forecasts = arrays["medians"]  # (M, S, K, H)
    own = np.abs(forecasts - arrays["actual"]) / arrays["scale"]
    count = own.shape[1] * own.shape[2]
    if count < 2:
        return list(range(forecasts.shape[0]))
    worst_first = [int(i) for i in np.argsort(-own.mean(axis=(1, 2, 3)), kind="stable")]

    def per_forecast(members: list[int]) -> np.ndarray:
        # The median as the Ensemble takes it (the mean of the middle two when even).
        median = np.median(forecasts[members], axis=0)
        return (np.abs(median - arrays["actual"]) / arrays["scale"]).mean(axis=-1).reshape(-1)

    kept = list(range(forecasts.shape[0]))
    with_all = per_forecast(kept)
    for candidate in worst_first:
        if len(kept) == 1:
            break
        others = [index for index in kept if index != candidate]
        without = per_forecast(others)
        gaps = without - with_all  # (S·K,) negative where leaving it out helps
        limit = _CLEARLY_WORSE * gaps.std(ddof=1) / np.sqrt(count)
        if gaps.mean() >= -limit:
            break  # the worst one left is worth keeping, and so are the rest
        kept, with_all = others, without
    return kept


def _listing(model: Model, left_out: list[dict[str, Any]]) -> Model:
    """``model`` with the members left out named in its history (when there are any)."""
    if not left_out:
        return model
    return replace(model, history={**model.history, "left_out": left_out})


def _left_out(
    arrays: dict[str, np.ndarray], kept: list[int], members: list[Model]
) -> list[dict[str, Any]]:
    """The members not ``kept``, each with its validation MASE, logged in one line."""
    forecasts = arrays["medians"]
    errors = [float(np.mean(np.abs(f - arrays["actual"]) / arrays["scale"])) for f in forecasts]
    dropped = [index for index in range(len(members)) if index not in kept]
    if not dropped:
        return []
    log.info(
        "kept %d of %d members (validation MASE %s); left out as clearly worse: %s",
        len(kept), len(members), ", ".join(f"{errors[i]:.3f}" for i in kept),
        ", ".join(f"seed {members[i].training.seed} (MASE {errors[i]:.3f})" for i in dropped),
        extra={"event": "members_kept", "fields": {
            "kept": [members[i].training.seed for i in kept],
            "left_out": [members[i].training.seed for i in dropped], "errors": errors}},
    )  # fmt: skip
    return [{**member_summary(members[i]), "validation_mase": round(errors[i], 6)}
            for i in dropped]  # fmt: skip


def _combination(arrays: dict[str, np.ndarray], quantiles: tuple[float, ...]) -> Combination:
    """The base and the network's share per step that score best on ``arrays``, and the
    calibration of the blend's quantiles."""
    actual, scale = arrays["actual"], arrays["scale"]
    network = arrays["network"]  # (S, K, H, Q), the median of the members kept
    median = quantiles.index(0.5)
    candidates = {method: arrays[f"base {method}"] for method in BASES}
    errors = {method: float(np.mean(np.abs(candidates[method] - actual) / scale))
              for method in BASES}  # fmt: skip
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
    blend = Combination(base=base, weights=tuple(float(w) for w in weights))
    offsets = _calibration(blend.apply(network, candidates[base], median), actual, scale,
                           quantiles)  # fmt: skip
    return Combination(base=base, weights=blend.weights, offsets=offsets)


def _validation_arrays(
    members: list[Model], seen: Panel, val_size: int, origins: int
) -> dict[str, np.ndarray]:
    """For the series of ``seen``: the actual values, the MASE scales, each base's
    forecasts and each member's forecasts of every quantile ("members", (M, S, K, H,
    Q)); Validation says how they are shared out."""
    horizon = members[0].config.horizon
    lengths = seen.lengths
    cuts = (lengths - val_size)[:, None] + horizon * np.arange(origins)[None, :]  # (S, K)
    steps = seen.begins[:, None, None] + cuts[..., None] + np.arange(horizon)  # (S, K, H)
    season = seen.freq.season_length
    forecasts = [forecast_origins(replace(member, combination=None), seen, cuts)
                 for member in members]  # fmt: skip
    arrays = {
        "actual": seen.values[steps].astype(np.float64),
        "scale": history_scales(seen.values, seen.begins, cuts, season)[..., None],
        "members": np.stack(forecasts),
    }
    adjustment = seasonal_adjustment(seen.values, seen.begins, cuts, season)  # shared by all
    for method in BASES:
        arrays[f"base {method}"] = base_forecasts(seen.values, seen.begins, cuts, horizon,
                                                  season, method, adjustment)  # fmt: skip
    return arrays


def _calibration(
    blended: np.ndarray, actual: np.ndarray, scale: np.ndarray, quantiles: tuple[float, ...]
) -> tuple[tuple[float, ...], ...]:
    """(H, Q) offsets, in MASE units, that put a share q of the validation actuals below
    quantile q at each step (pooled over the steps with few origins); 0 for the median,
    which the blend chose."""
    residual = (actual[..., None] - blended) / scale[..., None]  # (S, K, H, Q)
    horizon = actual.shape[-1]
    pooled = actual.shape[0] * actual.shape[1] < _ORIGINS_PER_STEP_CHOICE
    offsets = np.zeros((horizon, len(quantiles)))
    for index, level in enumerate(quantiles):
        if level == 0.5:
            continue
        values = residual[..., index]  # (S, K, H)
        if pooled:
            offsets[:, index] = np.quantile(values, level)
        else:
            offsets[:, index] = np.quantile(values.reshape(-1, horizon), level, axis=0)
    return tuple(tuple(float(v) for v in row) for row in offsets)


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
