"""Choices made on the validation origins, which training never fitted: the members
to keep, the base forecast under them, the network's share of the blend at every
future step, and the calibration of the blend's quantiles (bases.Combination).

Under torchrun each process forecasts the validation horizons of its own share of the
series (panel_shares.py), and rank 0 alone gathers what the choices need and makes them
(fitting.py passes them on): each member's median forecasts to choose members, then
the median of the kept members' quantiles for the blend.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rnncast import distributed
from rnncast.artifact import Model
from rnncast.bases import BASES, Combination, adjustment_of, base_forecasts, history_scales
from rnncast.data_choices import validation_sizes
from rnncast.ensembles import member_summary
from rnncast.forecasting import forecast_origins
from rnncast.panel import Panel

log = logging.getLogger("rnncast")

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


def validation_panel(model: Model, panel: Panel) -> Panel | None:
    """The series the model trained on, without their test part; None where ``panel``
    holds none of them (under torchrun, a share whose series were all too short)."""
    trained_on = np.isin(panel.ids.astype(str), model.scaler.ids.astype(str))
    if not trained_on.any():
        return None
    seen = panel.take(np.flatnonzero(trained_on))
    test_size = model.training.test_size or 0
    return seen.split_tail(test_size)[0] if test_size else seen


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
    # Series too short to have been validated (validation_sizes) do not vote.
    lengths = np.zeros(0, np.int64) if seen is None else seen.lengths
    validated = validation_sizes(lengths, val_size, horizon) > 0
    # Under torchrun a share may hold no validated series while others do.
    if not distributed.any_true(bool(validated.any())):
        return None
    current = distributed.world()
    arrays = None
    if seen is not None and validated.any():
        seen = seen.take(np.flatnonzero(validated))
        arrays = _validation_arrays(members, seen, val_size, origins)
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


def left_out_members(
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


def choose_blend(arrays: dict[str, np.ndarray], quantiles: tuple[float, ...]) -> Combination:
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
    # Training works on the model's space (fitting.train): so does every choice.
    forecasts = [forecast_origins(replace(member, combination=None), seen, cuts,
                                  model_space=True)
                 for member in members]  # fmt: skip
    arrays = {
        "actual": seen.values[steps].astype(np.float64),
        "scale": history_scales(seen.values, seen.begins, cuts, season)[..., None],
        "members": np.stack(forecasts),
    }
    logarithms = members[0].config.transform == "log"
    # Shared by all the bases.
    adjustment = adjustment_of(seen.values, seen.begins, cuts, season, logarithms)
    for method in BASES:
        arrays[f"base {method}"] = base_forecasts(seen.values, seen.begins, cuts, horizon,
                                                  season, method, adjustment,
                                                  logarithms)  # fmt: skip
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
