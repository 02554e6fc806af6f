"""One training run, epoch by epoch: a step on each batch's loss (losses.py computes
them), clipping, early stopping on validation (validation_losses.py), the learning-rate
schedule, and the weights kept (snapshots.py). training.py sets a run up and saves it;
loop_state.py makes the checkpoint that lets a stopped run resume, and restores it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rnncast import distributed
from rnncast.batch_shares import BatchShares
from rnncast.batches import SeriesTensors
from rnncast.config import ModelConfig, TrainConfig
from rnncast.errors import TrainingDiverged
from rnncast.lockstep import Lockstep
from rnncast.loss_function import LossFunction
from rnncast.losses import TrainingLosses
from rnncast.optimization import follow_budget, make_optimizer, make_scheduler, step_schedule
from rnncast.snapshots import Snapshots, choose_weights
from rnncast.validation_losses import ValidationLosses


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


class Loop:
    """The state of one training run, epoch by epoch (resumable from a checkpoint).

    Under torchrun (distributed.world()) each process walks its own series (the
    tensors it is given) with its share of the batch, the network wrapped in
    DistributedDataParallel; every step the processes agree on the number of scored
    origins, on stopping and on divergence (lockstep.py), so that they take the same
    steps and the gradient is the one a single process with the whole batch would
    take.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        model: ModelConfig,
        training: TrainConfig,
        tensors: SeriesTensors,
        weights: torch.Tensor,
        ranges: dict[str, tuple[np.ndarray, np.ndarray]],
        device: torch.device,
        shares: BatchShares | None = None,
    ):
        self.network, self.training, self.device = network, training, device
        self.world = distributed.world()
        # Under torchrun, training steps call the network through DDP (lockstep.py).
        self.lockstep = Lockstep(network, device) if self.world.is_distributed else None
        trainer = self.lockstep.trainer if self.lockstep is not None else network
        self.optimizer = make_optimizer(network, training)
        self.scheduler = make_scheduler(self.optimizer, training)
        # Each process shuffles its own series; one process keeps the seed's own stream.
        seed = (training.seed, self.world.rank) if self.world.is_distributed else training.seed
        self.rng = np.random.default_rng(seed)
        # Each process walks its share of the whole batch.
        batch_size = max(1, math.ceil(training.batch_size / self.world.size))
        loss = LossFunction(model, device)
        self.losses = TrainingLosses(network, trainer, loss, training, tensors, weights, ranges,
                                     device, self.rng, batch_size,
                                     replays=self.lockstep is not None, shares=shares)  # fmt: skip
        self.validation = ValidationLosses(network, training, tensors, weights, ranges, device,
                                           loss, shares)  # fmt: skip
        # Every process validates when any has validation origins: the loss is their sum.
        validated = bool((ranges["val"][1] >= ranges["val"][0]).any())
        self.has_validation = distributed.any_true(validated)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best_loss = math.inf
        self.best_epoch = 0
        self.snapshots = Snapshots(network)
        self.averaged: dict[str, Any] | None = None
        self.bad_epochs = 0
        self.elapsed = 0.0
        self.epoch_began = time.perf_counter()
        self.stop_reason: str | None = None

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
        began = self.epoch_began = time.perf_counter()
        self.network.train()
        total, count = 0.0, 0
        losses = self.losses.epoch()
        if self.lockstep is None:
            steps = self._steps_alone(losses, should_stop, began)
        else:
            steps = self.lockstep.steps(
                losses, self._apply, self.losses.idle, should_stop,
                lambda: self.elapsed + time.perf_counter() - began, self.training.max_time,
                f"the training loss became non-finite in epoch {self.epoch + 1}; "
                + self._advice(clip=True),
            )  # fmt: skip
        for loss_sum, loss_count in steps:
            total, count = total + loss_sum, count + loss_count
        if self.lockstep is not None and self.lockstep.stop_reason is not None:
            self.stop_reason = self.lockstep.stop_reason
        if self.world.is_distributed:
            total, count = distributed.sum_numbers([total, count])
        if self.stop_reason is not None and self.stop_reason.startswith("signal"):
            self._add_elapsed(began)
            return None
        train_loss = total / max(count, 1)
        val_loss = self._validate() if self.has_validation else None
        monitored = val_loss if val_loss is not None else train_loss
        improved = monitored < self.best_loss
        self.snapshots.record(self.network, improved)
        if improved:
            self.best_loss, self.best_epoch, self.bad_epochs = monitored, self.epoch + 1, 0
        else:
            self.bad_epochs += 1
        key = "val_loss" if val_loss is not None else "train_loss"
        step_schedule(self.scheduler, monitored, [epoch[key] for epoch in self.history])
        self.epoch += 1
        self._add_elapsed(began)
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

    def _add_elapsed(self, began: float) -> None:
        self.elapsed += time.perf_counter() - began
        if self.world.is_distributed:
            # The processes' clocks differ a little; the slowest one's decides for all.
            self.elapsed = float(distributed.max_numbers([self.elapsed])[0])

    def _steps_alone(self, losses, should_stop, began):
        """One process: a step per loss, then a look at the signals and the clock."""
        for loss_sum, loss_count in losses:
            self._step(loss_sum, loss_count)
            yield float(loss_sum.detach()), int(loss_count)
            reason = should_stop() if should_stop is not None else None
            if reason is not None:
                self.stop_reason = f"signal {reason}"
                return
            spent = self.elapsed + time.perf_counter() - began
            if self.training.max_time is not None and spent >= self.training.max_time:
                self.stop_reason = "max_time"
                return

    def _advice(self, clip: bool) -> str:
        tighter = ", a tighter --clip," if clip else ""
        return f"try a lower --lr (now {self.training.lr:g}){tighter} or --scaler robust"

    def _step(self, loss_sum: torch.Tensor, loss_count: torch.Tensor) -> None:
        count = int(loss_count)
        if count == 0:
            return
        loss = loss_sum / count
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"the training loss became {loss.item()} in epoch {self.epoch + 1}; "
                + self._advice(clip=True)
            )
        self._apply(loss)

    def _apply(self, loss: torch.Tensor, update: bool = True, spent: float | None = None) -> None:
        """Backpropagate ``loss`` and, with ``update``, step the optimizer; ``spent``:
        the seconds of training so far, when the processes of a run agreed on them."""
        if self.training.schedule == "budget":
            if spent is None:
                spent = self.elapsed + time.perf_counter() - self.epoch_began
            follow_budget(self.optimizer, self.training, spent, self.epoch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if not update:
            return
        if self.training.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.training.clip)
        self.optimizer.step()
        self.network.clip_recurrent_weights_()

    def _validate(self) -> float:
        total, count = self.validation.total()
        if self.world.is_distributed:
            total, count = distributed.sum_numbers([total, count])
        loss = total / max(count, 1)
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"the validation loss became {loss} in epoch {self.epoch + 1}; "
                + self._advice(clip=False)
            )
        return loss

    def restore_best(self) -> None:
        """Leave the network with the best epoch's weights, or with an average of the
        weights over the epochs up to it, or over the last epochs, whichever validation
        scores lowest (snapshots.choose_weights)."""
        if not self.has_validation:
            self.network.load_state_dict(self.snapshots.best)
            return
        self.averaged = choose_weights(self.network, self.snapshots, self._validate,
                                       self.best_loss, self.best_epoch, self.epoch)  # fmt: skip
