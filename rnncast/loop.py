"""One training run, epoch by epoch: TBPTT chunks or sliding windows, the loss,
clipping, early stopping on validation, the learning-rate schedule, the average of
the weights around the best epoch, and the checkpoint that lets a stopped run resume
(training.py sets a run up and saves it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from rnncast import distributed
from rnncast.batches import (
    SeriesTensors,
    gather_block,
    gather_windows,
    iter_chunks,
    summaries_at,
)
from rnncast.config import ModelConfig, TrainConfig
from rnncast.errors import TrainingDiverged
from rnncast.lockstep import Lockstep
from rnncast.optimization import budget_rate, make_optimizer, make_scheduler
from rnncast.snapshots import Snapshots, average, prefixed


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
    ):
        self.network, self.model, self.training = network, model, training
        self.tensors, self.weights, self.ranges, self.device = tensors, weights, ranges, device
        self.world = distributed.world()
        # Under torchrun, training steps call the network through DDP (lockstep.py).
        self.lockstep = Lockstep(network, device) if self.world.is_distributed else None
        self.trainer = self.lockstep.trainer if self.lockstep is not None else network
        # The last chunk's (window batch's) inputs, which an idle process steps on again
        # (_idle_loss).
        self.replay: tuple | None = None
        self.optimizer = make_optimizer(network, training)
        self.scheduler = make_scheduler(self.optimizer, training)
        # Each process shuffles its own series; one process keeps the seed's own stream.
        seed = (training.seed, self.world.rank) if self.world.is_distributed else training.seed
        self.rng = np.random.default_rng(seed)
        self.quantiles = torch.tensor(model.output_quantiles, device=device)
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
        began = self.epoch_began = time.perf_counter()
        self.network.train()
        total, count = 0.0, 0
        tbptt = self.training.strategy == "tbptt"
        losses = self._tbptt_losses() if tbptt else self._window_losses()
        if self.lockstep is None:
            steps = self._steps_alone(losses, should_stop, began)
        else:
            steps = self.lockstep.steps(
                losses, self._apply, self._idle_loss, should_stop,
                lambda: self.elapsed + time.perf_counter() - began, self.training.max_time,
                self._diverged(),
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
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(monitored)
        elif self.scheduler is not None:
            self.scheduler.step()
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

    def _idle_loss(self) -> torch.Tensor:
        """A zero loss through the whole network, for a process whose series are done:
        its last chunk again, from a fresh state."""
        if self.replay is None:
            raise RuntimeError("a process with no training origins cannot follow the others")
        with self._autocast():
            forecasts, _ = self.trainer(*self.replay)
        return forecasts.float().sum() * 0.0

    def _diverged(self) -> str:
        return (
            f"the training loss became non-finite in epoch {self.epoch + 1}; try a lower "
            f"--lr (now {self.training.lr:g}), a tighter --clip, or --scaler robust"
        )

    def _tbptt_losses(self):
        low, high = self.ranges["train"]
        chunk_len = self.training.chunk_len
        stride = self.training.origin_stride or 1
        for series in self._series_batches(high + 1, self._batch_size()):
            block = gather_block(self.tensors, series)
            limit = int(high[series].max()) + 1  # no origin past this one is scored
            phase = int(self.rng.integers(1, chunk_len + 1))
            state = None
            for start, stop in iter_chunks(limit, chunk_len, phase):
                # Every stride-th origin of the chunk, from a random one of the first
                # stride, is decoded and scored; the encoder still reads every step.
                offset = int(self.rng.integers(stride)) if stride > 1 else 0
                if offset >= stop - start:
                    offset = 0
                first = start + offset
                mask = block.mask(first, stop, low[series], high[series], stride)
                future = block.future(first, stop, stride)
                arguments = (block.inputs(start, stop), future, block.codes)
                origins = slice(offset, None, stride) if stride > 1 else None
                with self._autocast():
                    forecasts, state = self.trainer(*arguments, state, origins)
                    loss_sum, loss_count = self._loss(
                        forecasts, block.targets(first, stop, stride), mask, self.weights[series]
                    )
                if self.lockstep is not None:
                    self.replay = (*arguments, None, origins)
                yield loss_sum, loss_count
                # Truncated BPTT: the next chunk starts from this state as a constant, so
                # gradients stop here and memory stays O(chunk_len), not O(series length).
                state = tuple(s.detach() for s in state)

    def _window_losses(self):
        series, origins = _origins(*self.ranges["train"])
        order = self.rng.permutation(series.shape[0])
        size = self._batch_size()
        for begin in range(0, order.shape[0], size):
            chosen = order[begin : begin + size]
            windows = gather_windows(
                self.tensors, series[chosen], origins[chosen], self.training.lookback
            )
            # Each window decodes its last step alone, the origin it was cut for.
            arguments = (windows.inputs, windows.future, windows.codes, None, slice(-1, None))
            with self._autocast():
                forecasts, _ = self.trainer(*arguments)
                mask = torch.ones(forecasts.shape[:2], dtype=torch.bool, device=self.device)
                loss_sum, loss_count = self._loss(
                    forecasts, windows.targets, mask, self.weights[series[chosen]]
                )
            if self.lockstep is not None:
                self.replay = arguments
            yield loss_sum, loss_count

    def _batch_size(self) -> int:
        """Series (windows) per batch on this process: its share of the whole batch."""
        return max(1, math.ceil(self.training.batch_size / self.world.size))

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
        self._apply(loss)

    def _apply(self, loss: torch.Tensor, update: bool = True, spent: float | None = None) -> None:
        """Backpropagate ``loss`` and, with ``update``, step the optimizer; ``spent``:
        the seconds of training so far, when the processes of a run agreed on them."""
        if self.training.schedule == "budget":
            self._follow_budget(spent)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if not update:
            return
        if self.training.clip > 0:
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.training.clip)
        self.optimizer.step()
        self.network.clip_recurrent_weights_()

    def _follow_budget(self, spent: float | None = None) -> None:
        """The rate of the "budget" schedule at this moment: a linear warm-up over the
        first BUDGET_WARMUP of the time budget (of the epochs, without one), then a
        cosine decay to BUDGET_FLOOR of the rate at its end."""
        if spent is None:
            spent = self.elapsed + time.perf_counter() - self.epoch_began
        if self.training.max_time:
            done = spent / self.training.max_time
        else:
            done = self.epoch / max(self.training.max_epochs, 1)
        for group in self.optimizer.param_groups:
            group["lr"] = self.training.lr * budget_rate(done)

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
                    forecasts = self.network.decode(
                        summaries[:, -1:], windows.future, windows.codes
                    )
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
                mask = block.mask(0, limit, low[series], high[series])
                rows, steps = torch.nonzero(mask, as_tuple=True)
                with self._autocast():
                    summaries = summaries_at(self.network.encode, block, limit, rows, steps,
                                             self.network.summary_width)  # fmt: skip
                    forecasts = self.network.decode(
                        summaries.unsqueeze(1),
                        block.future_at(rows, steps),
                        block.codes_at(rows),
                    )
                targets = block.targets_at(rows, steps).unsqueeze(1)
                ones = torch.ones(forecasts.shape[:2], dtype=torch.bool, device=self.device)
                weights = self.weights[series][rows.cpu().numpy()]
                loss_sum, loss_count = self._loss(forecasts, targets, ones, weights)
                total, count = total + float(loss_sum), count + int(loss_count)
        self.network.train()
        if self.world.is_distributed:
            total, count = distributed.sum_numbers([total, count])
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
        """Leave the network with the best epoch's weights, or with an average of the
        weights over the epochs up to it, or over the last epochs (at the lowest rate
        the schedule reached), whichever validation scores lowest."""
        kept = self.snapshots
        self.network.load_state_dict(kept.best)
        if not self.has_validation:
            return
        windows = {"up_to_best": (kept.up_to_best, self.best_epoch),
                   "last": (list(kept.recent), self.epoch)}  # fmt: skip
        best_loss, chosen = self.best_loss, None
        tried = []
        for name, (states, end) in windows.items():
            if len(states) < 2 or (name == "last" and end == self.best_epoch):
                continue
            self.network.load_state_dict(average(states))
            try:
                loss = self._validate()
            except TrainingDiverged:  # an average that overflows is simply not kept
                loss = math.inf
            tried.append({"epochs": [end - len(states) + 1, end],
                          "val_loss": loss if math.isfinite(loss) else None})  # fmt: skip
            if loss < best_loss:
                best_loss, chosen = loss, states
        self.averaged = {"tried": tried, "kept": chosen is not None} if tried else None
        self.network.load_state_dict(average(chosen) if chosen else kept.best)

    def checkpoint(
        self, model: ModelConfig, training: TrainConfig, fingerprint: dict[str, Any]
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"model.{k}": v for k, v in self.network.state_dict().items()}
        tensors |= self.snapshots.to_tensors()
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
            # Each process's own shuffling stream, so that a resumed run with as many
            # processes continues each one's (single runs keep "rng" alone).
            **self._world_state(),
            "model": asdict(model),
            "training": asdict(training),
            "data": fingerprint,
        }
        return tensors, state

    def _world_state(self) -> dict[str, Any]:
        if not self.world.is_distributed:
            return {}
        states = distributed.gather_to_all(self.rng.bit_generator.state)
        return {"world_size": self.world.size, "rng_ranks": states}

    def restore(self, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        self.network.load_state_dict(prefixed(tensors, "model."))
        self.snapshots.restore(tensors)
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
        ranks = state.get("rng_ranks")
        self.rng.bit_generator.state = ranks[self.world.rank] if ranks else state["rng"]
        self.epoch = state["epoch"]
        self.history = state["history"]
        self.best_loss = state["best_loss"]
        self.best_epoch = state["best_epoch"]
        self.bad_epochs = state["bad_epochs"]
        self.elapsed = state["elapsed"]


def _origins(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (series, step) with low <= step <= high, as two flat arrays."""
    counts = np.maximum(high - low + 1, 0)
    series = np.repeat(np.arange(low.shape[0]), counts)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return series, np.repeat(low, counts) + within
