"""The weights a training run keeps from epoch to epoch: the best epoch's, the last
few epochs', and those up to the best; the averages of the last two groups; and
their form in a checkpoint (loop.py runs the epochs and decides which to load).

The weights of the best epoch and of the epochs just before it, or of the last
epochs, averaged (as ES-RNN averaged its last epochs), sit nearer the middle of
the valley SGD was circling than any one epoch's weights; such an average is kept
only when its validation loss is lower than the best epoch's (``choose_weights``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

import torch

from rnncast.errors import TrainingDiverged

# Epochs each average is taken over.
AVERAGED_EPOCHS = 5

State = dict[str, torch.Tensor]


class Snapshots:
    """The best epoch's weights, the last AVERAGED_EPOCHS epochs' and those up to the
    best epoch (they share tensors: a state is copied once, when its epoch ends)."""

    def __init__(self, network: torch.nn.Module):
        self.best: State = copy_state(network)
        self.recent: deque[State] = deque(maxlen=AVERAGED_EPOCHS)
        self.up_to_best: list[State] = []

    def record(self, network: torch.nn.Module, improved: bool) -> None:
        """After an epoch: its weights, and whether they are the best so far."""
        self.recent.append(copy_state(network))
        if improved:
            self.best = self.recent[-1]
            self.up_to_best = list(self.recent)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """Flat names for a checkpoint. Its file holds each tensor once, and these
        share tensors, so they are written as copies."""
        tensors = {f"best.{k}": v.clone() for k, v in self.best.items()}
        for prefix, states in (("recent", self.recent), ("window", self.up_to_best)):
            for index, state in enumerate(states):
                tensors |= {f"{prefix}.{index}.{k}": v.clone() for k, v in state.items()}
        return tensors

    def restore(self, tensors: dict[str, torch.Tensor]) -> None:
        """``to_tensors`` reversed. Checkpoints written before averages existed hold
        no recent or window states: those then start over from the resumed epoch."""
        self.best = prefixed(tensors, "best.")
        self.recent.clear()
        self.recent.extend(_numbered(tensors, "recent."))
        self.up_to_best = _numbered(tensors, "window.")


def choose_weights(
    network: torch.nn.Module,
    kept: Snapshots,
    validate: Callable[[], float],
    best_loss: float,
    best_epoch: int,
    epoch: int,
) -> dict[str, Any] | None:
    """Load into ``network`` the best epoch's weights (``best_loss`` its validation
    loss), or the average of those up to it, or of the last epochs (``epoch`` the
    last), whichever ``validate`` scores lowest; what was tried, or None."""
    network.load_state_dict(kept.best)
    windows = {"up_to_best": (kept.up_to_best, best_epoch), "last": (list(kept.recent), epoch)}
    chosen = None
    tried = []
    for name, (states, end) in windows.items():
        if len(states) < 2 or (name == "last" and end == best_epoch):
            continue
        network.load_state_dict(average(states))
        try:
            loss = validate()
        except TrainingDiverged:  # an average that overflows is simply not kept
            loss = math.inf
        tried.append({"epochs": [end - len(states) + 1, end],
                      "val_loss": loss if math.isfinite(loss) else None})  # fmt: skip
        if loss < best_loss:
            best_loss, chosen = loss, states
    network.load_state_dict(average(chosen) if chosen else kept.best)
    return {"tried": tried, "kept": chosen is not None} if tried else None


def copy_state(network: torch.nn.Module) -> State:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


def prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def average(states: list[State]) -> State:
    """The mean of each floating-point tensor over ``states``; others from the last."""
    averaged = {}
    for name, last in states[-1].items():
        if last.is_floating_point():
            averaged[name] = torch.stack([state[name] for state in states]).mean(dim=0)
        else:
            averaged[name] = last
    return averaged


def _numbered(tensors: dict[str, torch.Tensor], prefix: str) -> list[State]:
    """The states saved as ``{prefix}{index}.{name}``, in index order."""
    states: dict[int, State] = {}
    for name, value in prefixed(tensors, prefix).items():
        index, key = name.split(".", 1)
        states.setdefault(int(index), {})[key] = value
    return [states[index] for index in sorted(states)]
