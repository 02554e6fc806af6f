"""Fit the whole forecaster: train the network (training.py), then choose, on the
validation origins it never trained on (selection.py), the members to keep, the
base forecast under them and how much of the network to blend in at every future
step (bases.Combination), then refit.

A network that learned nothing useful gets weight 0 and the forecasts are the base
forecast's: on the validation origins the blend is never worse than the best base,
and the base is never worse there than naive or seasonal naive, which are among
the candidates. This is what lets the defaults hold on data no one tuned them for.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rnncast import distributed, lanes, panel_shares, selection
from rnncast import training as network_training
from rnncast.artifact import Model, save_model
from rnncast.bases import Combination
from rnncast.config import ModelConfig, TrainConfig
from rnncast.data_choices import held_out_steps, validation_sizes
from rnncast.ensembles import (
    assemble,
    stop_name,
    stop_requested,
    train_members,
)
from rnncast.errors import Interrupted
from rnncast.forecasting import warm_states
from rnncast.panel import Panel
from rnncast.scaling import choose_scaler, logarithms_reason, to_model_space

log = logging.getLogger("rnncast")

# With a refit, the first training gets this share of the time budget; the refit,
# a few epochs from the validated weights, the rest (at least _MIN_REFIT_SECONDS).
_FIRST_SHARE = 0.9
_MIN_REFIT_SECONDS = 5.0
# Steps of training data per second of default budget (time_budget).
_STEPS_PER_SECOND = 700.0


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
    together. With ``out`` and ``save`` the model is written. ``model.transform`` None
    is chosen from the data (scaling.choose_transform). Under torchrun (a process
    group) ``panel`` is this process's share of the series, the shares in rank order
    making the whole (panel_shares.py), and every process returns the same model.
    """
    training = training or TrainConfig()
    if model.transform is None:
        reason = logarithms_reason(panel)
        model = replace(model, transform="none" if reason is None else "log")
        if reason is not None:
            log.info(
                "%s: the model forecasts their logarithms", reason,
                extra={"event": "transform_chosen", "fields": {"transform": "log"}},
            )  # fmt: skip
    if model.scaler is None:
        model = replace(model, scaler=choose_scaler(panel, model.transform))
        if model.scaler == "shared":
            log.info(
                "logarithms of series without a season: one scale for every series",
                extra={"event": "scaler_chosen", "fields": {"scaler": "shared"}},
            )
    # Everything below, the network, the bases and the blend, works on the model's
    # space; forecasting.forecast maps its forecasts back to the data's units.
    given = panel
    panel = to_model_space(panel, model.transform)
    budget = training.max_time if training.max_time is not None else time_budget(panel)
    refit = training.refit and training.val_size != 0
    first = replace(training, max_time=budget * _FIRST_SHARE if refit else budget)
    share = _refit_share(panel, model, training, refit)
    members = train_members(panel, model, first, refit_share=share, out=out, **options)
    spent = sum(member.history["seconds"] for member in members)
    validation = selection.validation_forecasts(members, panel)
    left_out: list[dict[str, Any]] = []
    quantiles = model.output_quantiles
    kept = list(range(len(members)))
    # Members the budget chose are kept as validation says; --ensemble N keeps all N.
    if validation is not None and len(members) > 1 and training.ensemble is None:
        # Rank 0 alone holds the gathered arrays and decides; every process keeps the
        # members it chose, and the blend below.
        arrays = validation.arrays
        kept = distributed.decided_by_main(lambda: selection.choose_members(arrays))
        left_out = distributed.decided_by_main(
            lambda: selection.left_out_members(arrays, kept, members)
        )
        members = [members[index] for index in kept]
    trained = _listing(assemble(members), left_out)
    trained = replace(trained, training=replace(members[0].training,
                      max_time=training.max_time, ensemble=training.ensemble))  # fmt: skip
    combination = None
    if validation is not None:
        arrays = validation.with_network(kept)
        combination = distributed.decided_by_main(lambda: selection.choose_blend(arrays, quantiles))
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
            refitted = _refit_members(members, panel, budget - spent, options)
            trained = replace(_listing(assemble(refitted), left_out), training=trained.training,
                              combination=trained.combination)  # fmt: skip
        except Interrupted as stop:
            if not stop.polite:
                raise
            # The model validated before the refit is whole and scored: keep it.
            log.warning("%s during the refit; the model validated without it is kept",
                        stop_name(should_stop),
                        extra={"event": "refit_skipped", "fields": {}})  # fmt: skip
    # What a forecast of these histories reads first, read once here (warm.py); under
    # torchrun in shares, joined on rank 0, which alone writes the model.
    trained = replace(trained, warm=warm_states(trained, given))
    # Under torchrun every process holds the same model; rank 0 alone writes it.
    if out is not None and save and distributed.world().is_main:
        save_model(trained, out)
    return trained


def time_budget(panel: Panel) -> float:
    """Seconds of training when the user sets none: one epoch costs time in proportion
    to the steps, so the budget grows with them, from 30 s for small data to 9 minutes
    for a panel the size of M4 Hourly (350,000 steps) or larger."""
    steps = float(panel_shares.lengths(panel).sum())
    return float(np.clip(30.0 + steps / _STEPS_PER_SECOND, 30.0, 540.0))


def _refit_members(
    members: list[Model], panel: Panel, seconds: float, options: dict[str, Any]
) -> list[Model]:
    """Every member refitted (refit_on_everything) within ``seconds`` together: in turn,
    or side by side where the members trained so (lanes.py)."""
    count = lanes.count(members[0].config, members[0].training, len(members), panel)
    if count == 1:
        refitted: list[Model] = []
        for index, member in enumerate(members):
            left = seconds - sum(m.history["refit"]["seconds"] for m in refitted)
            refitted.append(refit_on_everything(
                member, panel, left / (len(members) - index), members=len(members),
                **options))  # fmt: skip
        return refitted

    def next_refit(index: int, elapsed: float) -> lanes.Job | None:
        if index >= len(members):
            return None
        # The time left is shared out among the rounds of refits still to run.
        share = (seconds - elapsed) / math.ceil((len(members) - index) / count)

        def job(sibling_failed: lanes.StopCheck) -> Model:
            check = lanes.stopping(sibling_failed, options.get("should_stop"))
            return refit_on_everything(members[index], panel, share, members=len(members),
                                       cores=max(1, lanes.usable_cores() // count),
                                       **{**options, "should_stop": check})  # fmt: skip

        return job

    outcomes = lanes.run(next_refit, count)
    error = lanes.first_error(outcomes)
    if error is not None:
        raise error
    return [outcomes[index] for index in sorted(outcomes)]


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
    # What training read, validation included.
    validated = selection.validation_panel(model, panel)
    seen = np.zeros(0, np.int64) if validated is None else validated.lengths
    trained = seen - validation_sizes(seen, model.training.val_size or 0, model.config.horizon)
    # Under torchrun, over every process's share (panel_shares.py).
    every, before = distributed.sum_numbers([float(panel.lengths.sum()), float(trained.sum())])
    new_steps = float(every - before)
    epochs = max(1, math.ceil(best * max(new_steps, 0.0) / float(every)))
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
    same_shape = panel_shares.all_true(bool(series.all())) or not model.config.id_embedding
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
    test_size, val_size = held_out_steps(panel, model, training)
    every = panel_shares.lengths(panel)
    held_out = np.minimum(every, val_size + test_size).sum()
    return float(held_out / max(float(every.sum()), 1.0))


def choose_combination(model: Model, panel: Panel) -> Combination | None:
    """The base and the network's share per step that score best, in MASE's units, on
    every whole horizon of the validation part; None without validation steps."""
    space = to_model_space(panel, model.config.transform or "none")
    validation = selection.validation_forecasts([model], space)
    if validation is None:
        return None
    return selection.choose_blend(validation.with_network([0]), model.config.output_quantiles)


def _listing(model: Model, left_out: list[dict[str, Any]]) -> Model:
    """``model`` with the members left out named in its history (when there are any)."""
    if not left_out:
        return model
    return replace(model, history={**model.history, "left_out": left_out})
