"""Will a network fit? Estimated before anything is allocated, so that ``--hidden
100000`` is a usage error naming the sizes, not a failed 160 GB allocation (or a
machine driven into swap) minutes into a run."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from rnncast.errors import ConfigError

# Weights, their gradients and Adam's two moments: four float32 copies of each weight.
_COPIES_WHILE_TRAINING = 4
_BYTES_PER_FLOAT = 4
# Recurrent activations kept for the backward pass: the LSTM's four gates, its cell
# and hidden state, and their gradients, per unit and step (an upper bound for GRU,
# Elman and IndRNN, which keep fewer).
_ACTIVATIONS_PER_UNIT = 12


def parameter_count(build: Callable[[], nn.Module]) -> int:
    """The number of weights of the network ``build`` makes, counted on the meta device:
    shapes only, no memory."""
    with torch.device("meta"):
        network = build()
    return sum(parameter.numel() for parameter in network.parameters())


def training_bytes(parameters: int, batch: int, steps: int, units: int, head_floats: int) -> int:
    """Bytes a training step needs: the weights with their gradients and optimizer
    state, and the activations of one batch of ``steps`` steps. ``units`` counts the
    recurrent units of all layers; ``head_floats`` the head's outputs per step."""
    weights = parameters * _COPIES_WHILE_TRAINING * _BYTES_PER_FLOAT
    per_step = units * _ACTIVATIONS_PER_UNIT + 2 * head_floats
    return weights + batch * steps * per_step * _BYTES_PER_FLOAT


def available_bytes(device: torch.device) -> int | None:
    """The memory a run may use on ``device``: the GPU's, or this machine's RAM; None
    where it cannot be told."""
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(needed: int, device: torch.device, what: str) -> None:
    """Raise ConfigError when ``needed`` bytes exceed the memory of ``device``."""
    limit = available_bytes(device)
    if limit is not None and needed > limit:
        raise ConfigError(
            f"{what} needs about {_gigabytes(needed)} of memory to train, and "
            f"{'the GPU' if device.type == 'cuda' else 'this machine'} has "
            f"{_gigabytes(limit)}; choose smaller sizes"
        )


def _gigabytes(count: int) -> str:
    return f"{count / 2**30:,.1f} GB" if count >= 2**30 else f"{count / 2**20:,.0f} MB"
