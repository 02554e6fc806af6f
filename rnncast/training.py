"""The training loop: truncated BPTT over whole histories, or sliding windows.

``train`` takes a Panel and settings and returns a ``Model``. With ``out`` it
checkpoints after every epoch and writes the model directory at the end (the
formats are artifact.py's business). Validation holds out the last ``val_size``
steps of every series; the scalers are fitted on the rest.

TBPTT (the default): series of similar length are batched, each batch walks its
series from the first step in chunks of ``chunk_len``, carrying the recurrent
state across chunks and detaching it between them; every step whose H targets
lie in the training part adds to the loss. One epoch costs O(total length).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnncast import distributed, panel_shares
from rnncast.artifact import (
    Model,
    NetworkShape,
    build_network,
    read_checkpoint,
    save_model,
    settings_with_tuples,
    write_checkpoint,
)
from rnncast.batch_shares import opened_shares, training_shares
from rnncast.batches import (
    lay_out,
    n_future_features,
)
from rnncast.config import DataConfig, ModelConfig, TrainConfig
from rnncast.data_choices import choose_sizes, held_out_steps, loss_weights, validation_sizes
from rnncast.errors import ArtifactError, ConfigError, Interrupted
from rnncast.inputs import fit_inputs, input_arrays, static_levels
from rnncast.loop import EpochReport, Loop
from rnncast.loop_state import make_checkpoint, restore_checkpoint
from rnncast.model_schema import before_added
from rnncast.nn.device import cpu_threads, describe_device, resolve_device, training_threads
from rnncast.nn.memory import check_fits, parameter_count, training_bytes
from rnncast.nn.seeding import random_state_kept, seeded
from rnncast.panel import Panel
from rnncast.scaling import choose_scaler, fit_scaler, joined_across_shares
from rnncast.time_axis import calendar_feature_names

log = logging.getLogger("rnncast")


def _resumed_settings(
    state: dict[str, Any], training: TrainConfig, out: str | Path
) -> tuple[ModelConfig, TrainConfig, int]:
    """The settings a checkpoint was written with, checked like any user input: a
    checkpoint is a file on disk, and one that rnncast did not write is exit 4."""
    try:
        model = ModelConfig(**settings_with_tuples(state["model"]))
        saved = {**before_added("training"), **state["training"]}
        resumed = replace(TrainConfig(**saved), device=training.device)
        epoch = state["epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise TypeError(f"epoch is {epoch!r}")
    except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
        raise ArtifactError(
            f"the checkpoint in {out} holds settings rnncast did not write ({exc}); "
            "remove it and train without --resume"
        ) from None
    return model, resumed, epoch


def _needed_steps(model: ModelConfig, test_size: int) -> int:
    """Steps a series needs to be trained on: the test part and one training origin.
    A series too short to give up the validation steps too is trained on whole,
    without validation (validation_sizes), not skipped."""
    return test_size + model.horizon + 1


def chosen_settings(
    panel: Panel, model: ModelConfig, training: TrainConfig
) -> tuple[ModelConfig, TrainConfig]:
    """The sizes ``train`` fills in for these settings (hidden, layers, chunk or
    lookback, batch), chosen as it chooses them but without training or a word in the
    log: members trained side by side need them before the first member has begun."""
    test_size, _ = held_out_steps(panel, model, training)
    long_enough = np.flatnonzero(panel.lengths >= _needed_steps(model, test_size))
    if long_enough.size == 0:
        return model, training  # train says why
    panel = panel.take(long_enough)
    if test_size:
        panel = panel.split_tail(test_size)[0]
    model, training, _ = choose_sizes(panel, replace(model, members=1), training)
    return model, training


def _check_memory(
    model: ModelConfig, training: TrainConfig, shape: NetworkShape, device: torch.device
) -> None:
    """Refuse sizes that cannot fit before a byte is allocated (ConfigError, exit 2)."""
    parameters = parameter_count(lambda: build_network(model, shape))
    layers = int(model.layers or 1) * (2 if model.bidirectional else 1)
    head = model.horizon * (max(8, int(model.hidden or 1) // 4) + len(model.output_quantiles))
    needed = training_bytes(
        parameters, training.batch_rows, shape.recurrent_steps,
        int(model.hidden or 1) * layers, head,
    )  # fmt: skip
    check_fits(needed, device, f"--hidden {model.hidden} with --layers {model.layers} "
               f"({parameters:,} weights, batches of {training.batch_rows} rows)")  # fmt: skip


def train(
    panel: Panel,
    model: ModelConfig,
    training: TrainConfig | None = None,
    *,
    out: str | Path | None = None,
    data: DataConfig | None = None,
    resume: bool = False,
    on_epoch: Callable[[EpochReport], None] | None = None,
    should_stop: Callable[[], str | None] | None = None,
    save: bool = True,
    start_from: torch.nn.Module | None = None,
    cores: int | None = None,
) -> Model:
    """Train a forecaster on ``panel`` and return it; with ``out``, checkpoint there
    every epoch and write the model directory at the end (unless ``save`` is False:
    the caller then saves it, e.g. with its report, and the checkpoint stays until).

    ``data`` is stored as the schema new data is read with. ``should_stop``
    returns a reason (e.g. "SIGTERM") to stop after the current batch.
    ``start_from``: a network of the same shape whose weights training starts from
    (the refit, fitting.py), instead of fresh ones. ``cores``: the CPU cores this
    training may use (members side by side share them out, lanes.py); None: all this
    process may run on. A network trained on one thread takes each batch in shares,
    one a core, where its steps are large enough (batch_shares.py).

    Raises DataError when no series is long enough, TrainingDiverged (exit 5) on
    a non-finite loss, Interrupted after a requested stop (checkpoint written).
    """
    training = training or TrainConfig()
    # One network: the members of an ensemble are trained one by one (ensembles.py),
    # also when ``model`` comes from an ensemble being retrained.
    model = replace(model, members=1)
    if model.scaler is None:
        model = replace(model, scaler=choose_scaler(panel, model.transform or "none"))
    checkpoint: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None
    if resume:
        if out is None:
            raise ConfigError("--resume needs --out, the directory holding the checkpoint")
        checkpoint = read_checkpoint(out)
        model, training, epoch = _resumed_settings(checkpoint[1], training, out)
        log.info(
            "resuming from epoch %d of %s", epoch, out,
            extra={"event": "resumed", "fields": {"epoch": epoch, "out": str(out)}},
        )  # fmt: skip
    if model.bidirectional and training.strategy != "window":
        raise ConfigError("--bidirectional needs --strategy window: TBPTT reads forwards only")
    current = distributed.world()
    if checkpoint is not None:
        _check_resumed_world(checkpoint[1], current, out)
    test_size, val_size = held_out_steps(panel, model, training)
    if 0 < test_size < model.horizon:
        raise ConfigError(
            f"--test-size {test_size} is shorter than --horizon {model.horizon}: the test scores "
            "whole horizons; use at least the horizon, or 0 to train on everything"
        )
    what = f"--horizon {model.horizon}" + (f" with --test-size {test_size}" if test_size else "")
    # Under torchrun ``panel`` is this process's share (panel_shares.py).
    panel = panel_shares.keep_long_enough(panel, _needed_steps(model, test_size), what)
    if test_size:
        # The test part is cut off here, before anything (scaler, sizes, loss weights)
        # is fitted, so no statistic of it reaches the model.
        panel = panel.split_tail(test_size)[0]
    model, training, notes = choose_sizes(panel, model, training)
    training = replace(training, val_size=val_size, test_size=test_size)
    if notes and not resume:
        log.info("chose %s", ", ".join(notes), extra={"event": "sizes_chosen", "fields": {}})
    device = resolve_device(training.device)
    if device.type == "cuda" and current.is_distributed:
        device = torch.device("cuda", torch.cuda.current_device())  # the local rank's GPU
    threads = None
    if device.type == "cpu":
        if training.threads is not None:
            # The user's choice holds for the whole run, forecasts after training too.
            torch.set_num_threads(training.threads)
        else:
            threads = training_threads(int(model.hidden or 1), training.batch_rows, os.environ)
    shares = training_shares(model, training, threads, cores, current.is_distributed)
    log.info(
        "training on %s", describe_device(device, threads)
        + (f", each batch in {shares} shares, one a thread" if shares > 1 else ""),
        extra={"event": "device", "fields": {"device": device.type, "shares": shares}},
    )  # fmt: skip

    own_val = validation_sizes(panel.lengths, val_size, model.horizon)
    unvalidated = int((panel_shares.joined(own_val) < val_size).sum())
    if unvalidated:
        log.info(
            "%d series too short for --val-size %d are trained on without validation",
            unvalidated, val_size,
            extra={"event": "without_validation", "fields": {"series": unvalidated}},
        )  # fmt: skip
    head = replace(panel, ends=panel.ends - own_val)
    scaler = fit_scaler(head, model.scaler, across_shares=True)
    season = panel.freq.season_length if model.season_inputs else 0
    long_season = (model.long_season or 0) if season else 0
    inputs = fit_inputs(panel, data)
    lengths = panel.lengths
    train_lengths = lengths - own_val
    # Under torchrun this process lays out and walks its own share; sizes, scalers and
    # inputs above came from every series, the same in every process.
    first = panel_shares.first_series(panel)
    codes = first + np.arange(panel.n_series) if current.is_distributed else None
    extra = input_arrays(panel, inputs, model.horizon)
    tensors = lay_out(panel, scaler, model.horizon, season, device, codes=codes,
                      relative=model.relative_inputs and season > 0,
                      long_season=long_season, static_numbers=extra.static_numbers,
                      static_codes=extra.static_codes,
                      known_features=extra.known_features)  # fmt: skip
    weights = torch.from_numpy(loss_weights(head, scaler.scale)).float().to(device)
    ranges = {
        "train": (np.zeros_like(lengths), train_lengths - 1 - model.horizon),
        "val": (train_lengths - 1, lengths - 1 - model.horizon),
    }
    shape = NetworkShape(
        n_inputs=tensors.n_features,
        n_future=n_future_features(tensors.n_known, season, long_season),
        n_series=int(panel_shares.lengths(panel).shape[0]),
        recurrent_steps=training.chunk_len or training.lookback or 1,
        static_levels=static_levels(inputs),
    )
    _check_memory(model, training, shape, device)
    fingerprint = _fingerprint(panel)
    if current.is_distributed:
        # Every process chose the sizes itself, from the facts of every share
        # (panel_shares.py): they must agree.
        distributed.check_same(
            {**fingerprint, "ids": _ids_digest(panel), "model": asdict(model),
             "training": asdict(training)}, "the data and the settings chosen from it",
        )  # fmt: skip
    if checkpoint is not None and checkpoint[1]["data"] != fingerprint:
        raise ConfigError(
            f"the checkpoint in {out} was made on other data ({checkpoint[1]['data']['series']} "
            f"series); resume with the same DATA and data options, or train afresh"
        )

    with (
        random_state_kept(device),
        cpu_threads(threads),
        opened_shares(shares) as sharing,
    ):
        # Each network starts from its own seed's weights, as when trained alone.
        with seeded(training.seed):
            network = build_network(model, shape).to(device)
        if start_from is not None:
            network.load_state_dict(start_from.state_dict())
        loop = Loop(network, model, training, tensors, weights, ranges, device, sharing)
        if checkpoint is not None:
            restore_checkpoint(loop, *checkpoint)
        elif out is not None:
            # An epoch-0 checkpoint, so a run stopped in its first epoch can resume too.
            _save_checkpoint(out, loop, model, training, fingerprint)
        while not loop.finished():
            report = loop.run_epoch(should_stop)
            interrupted = loop.stop_reason is not None and loop.stop_reason.startswith("signal")
            # A stop inside an epoch keeps the checkpoint of the last whole epoch: resuming
            # from half-updated weights would not continue the same run.
            if out is not None and not interrupted:
                _save_checkpoint(out, loop, model, training, fingerprint)
            if on_epoch is not None and report is not None:
                on_epoch(report)
            if interrupted:
                name = loop.stop_reason.removeprefix("signal ")
                # Under torchrun every process stops after the same step (lockstep.py).
                raise distributed.agreed(Interrupted(
                    f"training stopped by {name} in epoch {loop.epoch + 1}"
                    + (f"; checkpoint saved in {out}, continue with --resume" if out else ""),
                    signal_number=_signal_number(name),
                    polite=True,
                ))  # fmt: skip
        loop.restore_best()

    history = {
        "epochs": loop.history,
        "stopped": loop.stop_reason,
        "best_epoch": loop.best_epoch,
        "best_loss": _finite_or_none(loop.best_loss),
        "averaged": loop.averaged,
        "seconds": round(loop.elapsed, 3),
        "device": device.type,
        "shares": shares,
        "chosen": notes,
    }
    schema = _schema(panel, data, inputs)
    # Every process keeps the scaler of every series, as the model directory does.
    scaler = joined_across_shares(scaler)
    result = Model(network.cpu().eval(), model, training, shape, scaler, schema, history)
    if out is not None and save:
        save_model(result, out)
    return result


def _save_checkpoint(
    out: str | Path, loop: Loop, model: ModelConfig, training: TrainConfig,
    fingerprint: dict[str, Any],
) -> None:  # fmt: skip
    """Every process gives its part of the checkpoint; rank 0 alone writes it."""
    tensors, state = make_checkpoint(loop, model, training, fingerprint)
    if loop.world.is_main:
        write_checkpoint(out, tensors, state)


def _check_resumed_world(state: dict[str, Any], current: distributed.World, out: Any) -> None:
    """A checkpoint continues only with as many processes as wrote it: each process's
    series and shuffling stream are part of the run."""
    written_by = state.get("world_size", 1)
    ranks = state.get("rng_ranks")
    if written_by != current.size or (ranks is not None and len(ranks) != written_by):
        how = ("without torchrun" if written_by == 1 else
               f"under torchrun with {written_by} processes in all")  # fmt: skip
        raise ConfigError(
            f"the checkpoint in {out} was written by {written_by} process"
            f"{'es' if written_by != 1 else ''}, and this run has {current.size}; resume "
            f"{how}, or train afresh without --resume"
        )


def _signal_number(name: str) -> int:
    import signal

    try:
        return int(signal.Signals[name])
    except KeyError:
        return int(signal.SIGINT)


def _ids_digest(panel: Panel) -> str:
    import hashlib

    every = panel_shares.joined(panel.ids.astype(str))
    return hashlib.sha256("\n".join(every).encode()).hexdigest()[:16]


def _fingerprint(panel: Panel) -> dict[str, Any]:
    """The whole Panel's size, under torchrun of every process's share."""
    every = panel_shares.lengths(panel)
    return {"series": int(every.shape[0]), "steps": int(every.sum())}


def _schema(panel: Panel, data: DataConfig | None, inputs: dict[str, Any]) -> dict[str, Any]:
    ingest = panel.ingest
    known = panel.future_covariates
    size = _fingerprint(panel)
    until = panel_shares.latest(int(panel.end_times().max()))
    return {
        "settings": asdict(data) if data is not None else None,
        "columns": ingest.columns if ingest is not None else None,
        "layout": ingest.layout if ingest is not None else "long",
        "target": panel.target_name,
        "covariates": [name for name in panel.covariate_names if name not in known],
        "future_covariates": list(known),
        "inputs": inputs,
        "frequency": panel.freq.alias,
        "season_length": panel.freq.season_length,
        "time_zone": panel.tz,
        "calendar_features": list(calendar_feature_names(panel.freq)),
        **size,
        # The last step training or validation read: a backtest origin before it is
        # scored on data the model has seen (evaluation warns).
        "trained_until": panel.format_time(until),
        "trained_until_ns": until,
    }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
