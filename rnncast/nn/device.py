"""Which device a run uses: resolved once, then passed down (STYLE.md §5)."""

from __future__ import annotations

import torch

from rnncast.config import DEVICES
from rnncast.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA, then MPS, then CPU. An explicit device that is absent is an error."""
    if name not in DEVICES:
        raise ConfigError(f"--device {name!r} is not one of {', '.join(DEVICES)}")
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise ConfigError(f"--device {name} was asked for but is not available here; use auto")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """A few words for logs: ``cuda (NVIDIA H100)``, ``cpu (2 threads)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
