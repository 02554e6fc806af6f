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
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnncast.artifact import (
    Model,
    NetworkShape,
    build_network,
    read_checkpoint,
    save_model,
    settings_with_tuples,
    write_checkpoint,
)
from rnncast.batches import (
    SeriesTensors,
    gather_block,
    gather_windows,
    iter_chunks,
    lay_out,
    n_future_features,
)
from rnncast.config import DataConfig, ModelConfig, TrainConfig
from rnncast.errors import ArtifactError, ConfigError, Interrupted, TrainingDiverged
from rnncast.frequency import calendar_feature_names
from rnncast.nn.device import describe_device, resolve_device
from rnncast.nn.memory import check_fits, parameter_count, training_bytes
from rnncast.panel import Panel, keep_long_enough
from rnncast.scaling import fit_scaler

log = logging.getLogger("rnncast")


@dataclass(frozen=True)
class EpochReport:
    """What one epoch did, for progress displays."""

    epoch: int
    max_epochs: int
    train_loss: float
    val_loss: float | None
    best_loss: float
    improved: bool
    lr: float
    elapsed: float  # seconds since training began, resumed runs included
    max_time: float | None


def choose_sizes(
    panel: Panel, model: ModelConfig, training: TrainConfig
) -> tuple[ModelConfig, TrainConfig, list[str]]:
    """Fill every size left as None from the data, and say what was chosen.

    The network grows with the data (more steps support more weights); the TBPTT
    chunk covers two seasons or two horizons, whichever is longer, so the state is
    trained over the patterns the forecasts must continue.
    """
    steps = int(panel.lengths.sum())
    season = panel.freq.season_length
    longest = int(panel.lengths.max())
    chosen: dict[str, object] = {}
    if model.hidden is None:
        chosen["hidden"] = 32 if steps < 20_000 else 64 if steps < 2_000_000 else 128
    if model.layers is None:
        chosen["layers"] = 1 if steps < 20_000 else 2
    model = replace(model, **chosen)
    trained: dict[str, object] = {}
    if training.strategy == "tbptt" and training.chunk_len is None:
        trained["chunk_len"] = int(np.clip(2 * max(season, model.horizon), 16, max(16, longest)))
    if training.strategy == "window" and training.lookback is None:
        trained["lookback"] = int(np.clip(2 * max(season, model.horizon), 8, max(8, longest)))
    if training.batch_size is None:
        trained["batch_size"] = min(panel.n_series, 64) if training.strategy == "tbptt" else 256
    training = replace(training, **trained)
    notes = [f"{name} {value}" for name, value in {**chosen, **trained}.items()]
    return model, training, notes


def _resumed_settings(
    state: dict[str, Any], training: TrainConfig, out: str | Path
) -> tuple[ModelConfig, TrainConfig, int]:
    """The settings a checkpoint was written with, checked like any user input: a
    checkpoint is a file on disk, and one that rnncast did not write is exit 4."""
    try:
        model = ModelConfig(**settings_with_tuples(state["model"]))
        resumed = replace(TrainConfig(**state["training"]), device=training.device)
        epoch = state["epoch"]
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise TypeError(f"epoch is {epoch!r}")
    except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
        raise ArtifactError(
            f"the checkpoint in {out} holds settings rnncast did not write ({exc}); "
            "remove it and train without --resume"
        ) from None
    return model, resumed, epoch


def validation_sizes(lengths: np.ndarray, val_size: int, horizon: int) -> np.ndarray:
    """(S,) steps each series gives to validation: ``val_size``, or none for a series
    that would then keep no training origin."""
    return np.where(lengths >= val_size + horizon + 1, val_size, 0).astype(np.int64)


# Validation forecasts wanted over all series, so that early stopping and the blend
# with the base forecast (fitting.py) rest on more than a handful of origins.
_VALIDATION_ORIGINS = 64
# Share of a series' steps that validation may take when there are few series.
_VALIDATION_SHARE = 0.2


def validation_horizons(panel: Panel, horizon: int, test_size: int) -> int:
    """How many whole horizons to hold out for validation: one when there are many
    series; with few, enough for about 64 validation origins in all, as long as that
    leaves the shortest series 80 % of its steps (a single long series gets many)."""
    wanted = math.ceil(_VALIDATION_ORIGINS / max(panel.n_series, 1))
    usable = panel.lengths[panel.lengths > test_size + 2 * horizon]  # the rest are skipped
    shortest = int(usable.min()) - test_size if usable.size else 0
    room = int(_VALIDATION_SHARE * shortest) // horizon
    return int(max(1, min(wanted, room)))


def _check_memory(
    model: ModelConfig, training: TrainConfig, shape: NetworkShape, device: torch.device
) -> None:
    """Refuse sizes that cannot fit before a byte is allocated (ConfigError, exit 2)."""
    parameters = parameter_count(lambda: build_network(model, shape))
    layers = int(model.layers or 1) * (2 if model.bidirectional else 1)
    head = model.horizon * (max(8, int(model.hidden or 1) // 4) + len(model.output_quantiles))
    needed = training_bytes(
        parameters, int(training.batch_size or 1), shape.recurrent_steps,
        int(model.hidden or 1) * layers, head,
    )  # fmt: skip
    check_fits(needed, device, f"--hidden {model.hidden} with --layers {model.layers} "
               f"({parameters:,} weights, batches of {training.batch_size})")  # fmt: skip


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
) -> Model:
    """Train a forecaster on ``panel`` and return it; with ``out``, checkpoint there
    every epoch and write the model directory at the end (unless ``save`` is False:
    the caller then saves it, e.g. with its report, and the checkpoint stays until).

    ``data`` is stored as the schema new data is read with. ``should_stop``
    returns a reason (e.g. "SIGTERM") to stop after the current batch.

    Raises DataError when no series is long enough, TrainingDiverged (exit 5) on
    a non-finite loss, Interrupted after a requested stop (checkpoint written).
    """
    training = training or TrainConfig()
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
    test_size = model.horizon if training.test_size is None else training.test_size
    val_size = training.val_size
    if val_size is None:
        val_size = model.horizon * validation_horizons(panel, model.horizon, test_size)
    if 0 < test_size < model.horizon:
        raise ConfigError(
            f"--test-size {test_size} is shorter than --horizon {model.horizon}: the test scores "
            "whole horizons; use at least the horizon, or 0 to train on everything"
        )
    # One training origin at least. A series too short to give up the validation steps
    # too is trained on whole, without validation (validation_sizes), not skipped.
    needed = test_size + model.horizon + 1
    what = f"--horizon {model.horizon}" + (f" with --test-size {test_size}" if test_size else "")
    panel = keep_long_enough(panel, needed, what)
    if test_size:
        # The test part is cut off here, before anything (scaler, sizes, loss weights)
        # is fitted, so no statistic of it reaches the model.
        panel = panel.split_tail(test_size)[0]
    model, training, notes = choose_sizes(panel, model, training)
    training = replace(training, val_size=val_size, test_size=test_size)
    if notes and not resume:
        log.info("chose %s", ", ".join(notes), extra={"event": "sizes_chosen", "fields": {}})
    device = resolve_device(training.device)
    if training.threads is not None and device.type == "cpu":
        torch.set_num_threads(training.threads)
    log.info(
        "training on %s", describe_device(device),
        extra={"event": "device", "fields": {"device": device.type}},
    )  # fmt: skip

    own_val = validation_sizes(panel.lengths, val_size, model.horizon)
    unvalidated = int((own_val < val_size).sum())
    if unvalidated:
        log.info(
            "%d series too short for --val-size %d are trained on without validation",
            unvalidated, val_size,
            extra={"event": "without_validation", "fields": {"series": unvalidated}},
        )  # fmt: skip
    head = replace(panel, ends=panel.ends - own_val)
    scaler = fit_scaler(head, model.scaler)
    season = panel.freq.season_length if model.season_inputs else 0
    tensors = lay_out(panel, scaler, model.horizon, season, device,
                      relative=model.relative_inputs and season > 0)  # fmt: skip
    weights = torch.from_numpy(loss_weights(head, scaler.scale)).float().to(device)
    lengths = panel.lengths
    train_lengths = lengths - own_val
    ranges = {
        "train": (np.zeros_like(lengths), train_lengths - 1 - model.horizon),
        "val": (train_lengths - 1, lengths - 1 - model.horizon),
    }
    shape = NetworkShape(
        n_inputs=tensors.n_features,
        n_future=n_future_features(tensors.n_calendar, season),
        n_series=panel.n_series,
        recurrent_steps=training.chunk_len or training.lookback or 1,
    )
    _check_memory(model, training, shape, device)
    fingerprint = _fingerprint(panel)
    if checkpoint is not None and checkpoint[1]["data"] != fingerprint:
        raise ConfigError(
            f"the checkpoint in {out} was made on other data ({checkpoint[1]['data']['series']} "
            f"series); resume with the same DATA and data options, or train afresh"
        )

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(training.seed)
        network = build_network(model, shape).to(device)
        loop = _Loop(network, model, training, tensors, weights, ranges, device)
        if checkpoint is not None:
            loop.restore(*checkpoint)
        elif out is not None:
            # An epoch-0 checkpoint, so a run stopped in its first epoch can resume too.
            write_checkpoint(out, *loop.checkpoint(model, training, fingerprint))
        while not loop.finished():
            report = loop.run_epoch(should_stop)
            interrupted = loop.stop_reason is not None and loop.stop_reason.startswith("signal")
            # A stop inside an epoch keeps the checkpoint of the last whole epoch: resuming
            # from half-updated weights would not continue the same run.
            if out is not None and not interrupted:
                write_checkpoint(out, *loop.checkpoint(model, training, fingerprint))
            if on_epoch is not None and report is not None:
                on_epoch(report)
            if interrupted:
                name = loop.stop_reason.removeprefix("signal ")
                raise Interrupted(
                    f"training stopped by {name} in epoch {loop.epoch + 1}"
                    + (f"; checkpoint saved in {out}, continue with --resume" if out else ""),
                    signal_number=_signal_number(name),
                    polite=True,
                )
        loop.restore_best()

    history = {
        "epochs": loop.history,
        "stopped": loop.stop_reason,
        "best_epoch": loop.best_epoch,
        "best_loss": _finite_or_none(loop.best_loss),
        "seconds": round(loop.elapsed, 3),
        "device": device.type,
        "chosen": notes,
    }
    schema = _schema(panel, data)
    result = Model(network.cpu().eval(), model, training, shape, scaler, schema, history)
    if out is not None and save:
        save_model(result, out)
    return result


def _signal_number(name: str) -> int:
    import signal

    try:
        return int(signal.Signals[name])
    except KeyError:
        return int(signal.SIGINT)


class _Loop:
    """The state of one training run, epoch by epoch (resumable from a checkpoint)."""

    def __init__(
        self,
        network: torch.nn.Module,
        model: ModelConfig,
        training: TrainConfig,
        tensors: SeriesTensors,
        weights: torch.Tensor,
        ranges: dict[str, tuple[np.ndarray, np.ndarray]],
        device: torch.device,
    ):
        self.network, self.model, self.training = network, model, training
        self.tensors, self.weights, self.ranges, self.device = tensors, weights, ranges, device
        self.optimizer = _optimizer(network, training)
        self.scheduler = _scheduler(self.optimizer, training)
        self.rng = np.random.default_rng(training.seed)
        self.quantiles = torch.tensor(model.output_quantiles, device=device)
        self.has_validation = bool((ranges["val"][1] >= ranges["val"][0]).any())
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best_loss = math.inf
        self.best_epoch = 0
        self.best_state = _copy_state(network)
        self.bad_epochs = 0
        self.elapsed = 0.0
        self.stop_reason: str | None = None
        self.autocast = device.type == "cuda"

    def finished(self) -> bool:
        if self.stop_reason is not None:
            return True
        if self.epoch >= self.training.max_epochs:
            self.stop_reason = "max_epochs"
        elif self.bad_epochs >= self.training.patience:
            self.stop_reason = "early_stopping"
        elif self.training.max_time is not None and self.elapsed >= self.training.max_time:
            self.stop_reason = "max_time"
        return self.stop_reason is not None

    def run_epoch(self, should_stop: Callable[[], str | None] | None) -> EpochReport | None:
        began = time.perf_counter()
        self.network.train()
        total, count = 0.0, 0
        batches = (
            self._tbptt_batches() if self.training.strategy == "tbptt" else self._window_batches()
        )
        for loss_sum, loss_count in batches:
            total, count = total + loss_sum, count + loss_count
            reason = should_stop() if should_stop is not None else None
            if reason is not None:
                self.stop_reason = f"signal {reason}"
                break
            spent = self.elapsed + time.perf_counter() - began
            if self.training.max_time is not None and spent >= self.training.max_time:
                self.stop_reason = "max_time"
                break
        if self.stop_reason is not None and self.stop_reason.startswith("signal"):
            self.elapsed += time.perf_counter() - began
            return None
        train_loss = total / max(count, 1)
        val_loss = self._validate() if self.has_validation else None
        monitored = val_loss if val_loss is not None else train_loss
        improved = monitored < self.best_loss
        if improved:
            self.best_loss, self.best_epoch, self.bad_epochs = monitored, self.epoch + 1, 0
            self.best_state = _copy_state(self.network)
        else:
            self.bad_epochs += 1
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(monitored)
        elif self.scheduler is not None:
            self.scheduler.step()
        self.epoch += 1
        self.elapsed += time.perf_counter() - began
        lr = self.optimizer.param_groups[0]["lr"]
        self.history.append(
            {
                "epoch": self.epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "lr": lr,
                "seconds": round(self.elapsed, 3),
            }
        )
        return EpochReport(
            self.epoch,
            self.training.max_epochs,
            train_loss,
            val_loss,
            self.best_loss,
            improved,
            lr,
            self.elapsed,
            self.training.max_time,
        )

    def _tbptt_batches(self):
        low, high = self.ranges["train"]
        chunk_len = self.training.chunk_len
        for series in self._series_batches(high + 1, self.training.batch_size):
            block = gather_block(self.tensors, series)
            limit = int(high[series].max()) + 1  # no origin past this one is scored
            phase = int(self.rng.integers(1, chunk_len + 1))
            state = None
            for start, stop in iter_chunks(limit, chunk_len, phase):
                mask = block.mask(start, stop, low[series], high[series])
                with self._autocast():
                    forecasts, state = self.network(
                        block.inputs(start, stop), block.future(start, stop), block.codes, state
                    )
                    loss_sum, loss_count = self._loss(
                        forecasts, block.targets(start, stop), mask, self.weights[series]
                    )
                self._step(loss_sum, loss_count)
                # Truncated BPTT: the next chunk starts from this state as a constant, so
                # gradients stop here and memory stays O(chunk_len), not O(series length).
                state = tuple(s.detach() for s in state)
                yield float(loss_sum.detach()), int(loss_count)

    def _window_batches(self):
        series, origins = _origins(*self.ranges["train"])
        order = self.rng.permutation(series.shape[0])
        size = self.training.batch_size
        for begin in range(0, order.shape[0], size):
            chosen = order[begin : begin + size]
            windows = gather_windows(
                self.tensors, series[chosen], origins[chosen], self.training.lookback
            )
            with self._autocast():
                summaries, _ = self.network.encode(windows.inputs, windows.codes)
                forecasts = self.network.decode(summaries[:, -1:], windows.future)
                mask = torch.ones(forecasts.shape[:2], dtype=torch.bool, device=self.device)
                loss_sum, loss_count = self._loss(
                    forecasts, windows.targets, mask, self.weights[series[chosen]]
                )
            self._step(loss_sum, loss_count)
            yield float(loss_sum.detach()), int(loss_count)

    def _series_batches(self, train_steps: np.ndarray, size: int) -> list[np.ndarray]:
        # Similar lengths share a batch (little padding); ties are broken at random
        # and batches shuffled, so batches differ from epoch to epoch.
        buckets = train_steps // max(self.training.chunk_len or 1, 1)
        order = np.lexsort((self.rng.random(train_steps.shape[0]), buckets))
        order = order[train_steps[order] > 0]
        batches = [order[i : i + size] for i in range(0, order.shape[0], size)]
        return [batches[i] for i in self.rng.permutation(len(batches))]

    def _loss(
        self,
        forecasts: torch.Tensor,
        targets: torch.Tensor,
        mask: torch.Tensor,
        weights: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed loss over the valid origins of (B, T, H, Q) forecasts, each series
        weighted by ``weights`` (B,), and the number of origins."""
        errors = targets.unsqueeze(-1).float() - forecasts.float()  # (B, T, H, Q)
        if self.model.loss == "quantile":
            pointwise = torch.maximum(self.quantiles * errors, (self.quantiles - 1) * errors)
        elif self.model.loss == "mse":
            pointwise = errors.square()
        else:
            pointwise = errors.abs()
        per_origin = pointwise.mean(dim=(2, 3)) * weights[:, None]  # (B, T)
        return (per_origin * mask).sum(), mask.sum()

    def _step(self, loss_sum: torch.Tensor, loss_count: torch.Tensor) -> None:
        count = int(loss_count)
        if count == 0:
            return
        loss = loss_sum / count
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"the training loss became {loss.item()} in epoch {self.epoch + 1}; try a "
                f"lower --lr (now {self.training.lr:g}), a tighter --clip, or --scaler robust"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.training.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.training.clip)
        self.optimizer.step()
        self.network.clip_recurrent_weights_()

    @torch.no_grad()
    def _validate(self) -> float:
        self.network.eval()
        low, high = self.ranges["val"]
        total, count = 0.0, 0
        if self.training.strategy == "window":
            series, origins = _origins(low, high)
            for begin in range(0, series.shape[0], 1024):
                part = slice(begin, begin + 1024)
                windows = gather_windows(
                    self.tensors, series[part], origins[part], self.training.lookback
                )
                with self._autocast():
                    summaries, _ = self.network.encode(windows.inputs, windows.codes)
                    forecasts = self.network.decode(summaries[:, -1:], windows.future)
                mask = torch.ones(forecasts.shape[:2], dtype=torch.bool, device=self.device)
                weights = self.weights[series[part]]
                loss_sum, loss_count = self._loss(forecasts, windows.targets, mask, weights)
                total, count = total + float(loss_sum), count + int(loss_count)
        else:
            scored = np.flatnonzero(high >= low)
            for begin in range(0, scored.shape[0], 256):
                series = scored[begin : begin + 256]
                block = gather_block(self.tensors, series)
                limit = int(high[series].max()) + 1
                with self._autocast():
                    summaries, _ = self.network.encode(block.inputs(0, limit), block.codes)
                mask = block.mask(0, limit, low[series], high[series])
                rows, steps = torch.nonzero(mask, as_tuple=True)
                with self._autocast():
                    forecasts = self.network.decode(
                        summaries[rows, steps].unsqueeze(1), block.future_at(rows, steps)
                    )
                targets = block.targets_at(rows, steps).unsqueeze(1)
                ones = torch.ones(forecasts.shape[:2], dtype=torch.bool, device=self.device)
                weights = self.weights[series][rows.cpu().numpy()]
                loss_sum, loss_count = self._loss(forecasts, targets, ones, weights)
                total, count = total + float(loss_sum), count + int(loss_count)
        self.network.train()
        loss = total / max(count, 1)
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"the validation loss became {loss} in epoch {self.epoch + 1}; try a lower "
                f"--lr (now {self.training.lr:g}) or --scaler robust"
            )
        return loss

    def _autocast(self):
        # bfloat16 keeps float32's range, so no loss scaling is needed on CUDA.
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast)

    def restore_best(self) -> None:
        self.network.load_state_dict(self.best_state)

    def checkpoint(
        self, model: ModelConfig, training: TrainConfig, fingerprint: dict[str, Any]
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"model.{k}": v for k, v in self.network.state_dict().items()}
        tensors |= {f"best.{k}": v for k, v in self.best_state.items()}
        optimizer = self.optimizer.state_dict()
        plain_state: dict[str, dict[str, Any]] = {}
        for key, entries in optimizer["state"].items():
            for name, value in entries.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optimizer.{key}.{name}"] = value
                else:
                    plain_state.setdefault(str(key), {})[name] = value
        tensors["rng.torch"] = torch.random.get_rng_state()
        state = {
            "epoch": self.epoch,
            "history": self.history,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "elapsed": self.elapsed,
            "optimizer": {"param_groups": optimizer["param_groups"], "state": plain_state},
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": self.rng.bit_generator.state,
            "model": asdict(model),
            "training": asdict(training),
            "data": fingerprint,
        }
        return tensors, state

    def restore(self, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        self.network.load_state_dict(_prefixed(tensors, "model."))
        self.best_state = _prefixed(tensors, "best.")
        optimizer_state: dict[int, dict[str, Any]] = {}
        for name, value in tensors.items():
            if name.startswith("optimizer."):
                _, key, entry = name.split(".", 2)
                optimizer_state.setdefault(int(key), {})[entry] = value.to(self.device)
        for key, entries in state["optimizer"]["state"].items():
            optimizer_state.setdefault(int(key), {}).update(entries)
        self.optimizer.load_state_dict(
            {"state": optimizer_state, "param_groups": state["optimizer"]["param_groups"]}
        )
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        torch.random.set_rng_state(tensors["rng.torch"])
        self.rng.bit_generator.state = state["rng"]
        self.epoch = state["epoch"]
        self.history = state["history"]
        self.best_loss = state["best_loss"]
        self.best_epoch = state["best_epoch"]
        self.bad_epochs = state["bad_epochs"]
        self.elapsed = state["elapsed"]


def _optimizer(network: torch.nn.Module, training: TrainConfig) -> torch.optim.Optimizer:
    kinds = {
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "rmsprop": torch.optim.RMSprop,
        "sgd": torch.optim.SGD,
    }
    extra = {"momentum": 0.9} if training.optimizer == "sgd" else {}
    return kinds[training.optimizer](
        network.parameters(), lr=training.lr, weight_decay=training.weight_decay, **extra
    )


def _scheduler(optimizer: torch.optim.Optimizer, training: TrainConfig):
    if training.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=training.max_epochs)
    if training.schedule == "plateau":
        # Halve the rate well before early stopping gives up, so a plateau gets one
        # or two lower rates to try.
        wait = max(1, training.patience // 3)
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=wait)
    return None


def loss_weights(head: Panel, scales: np.ndarray) -> np.ndarray:
    """(S,) per-series loss weights that measure errors in units of each series'
    in-sample seasonal-naive error, as MASE does, instead of its standard deviation.

    Scaling by the standard deviation makes a trending or smooth seasonal series'
    errors look small; MASE, the measure forecasters compare on, does not. The
    weights are clipped to [0.1, 10] around their median so no series takes over.
    """
    season = head.freq.season_length
    naive_error = np.empty(head.n_series)
    for index in range(head.n_series):
        values = head.series(index).astype(np.float64)
        lag = season if values.shape[0] > season else 1
        error = np.abs(values[lag:] - values[:-lag]).mean() if values.shape[0] > lag else 0.0
        naive_error[index] = error
    typical = np.median(naive_error[naive_error > 0]) if (naive_error > 0).any() else 1.0
    naive_error = np.where(naive_error > 0, naive_error, typical)
    weights = scales / naive_error
    middle = np.median(weights)
    weights = np.clip(weights, middle / 10, middle * 10)
    return weights / weights.mean()


def _origins(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (series, step) with low <= step <= high, as two flat arrays."""
    counts = np.maximum(high - low + 1, 0)
    series = np.repeat(np.arange(low.shape[0]), counts)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return series, np.repeat(low, counts) + within


def _copy_state(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def _fingerprint(panel: Panel) -> dict[str, Any]:
    return {"series": panel.n_series, "steps": int(panel.lengths.sum())}


def _schema(panel: Panel, data: DataConfig | None) -> dict[str, Any]:
    ingest = panel.ingest
    return {
        "settings": asdict(data) if data is not None else None,
        "columns": ingest.columns if ingest is not None else None,
        "layout": ingest.layout if ingest is not None else "long",
        "target": panel.target_name,
        "covariates": list(panel.covariate_names),
        "frequency": panel.freq.alias,
        "season_length": panel.freq.season_length,
        "time_zone": panel.tz,
        "calendar_features": list(calendar_feature_names(panel.freq)),
        "series": panel.n_series,
        "steps": int(panel.lengths.sum()),
        # The last step training or validation read: a backtest origin before it is
        # scored on data the model has seen (evaluation warns).
        "trained_until": panel.format_time(int(panel.end_times().max())),
        "trained_until_ns": int(panel.end_times().max()),
    }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
