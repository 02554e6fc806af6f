"""Which device a run uses: resolved once, then passed down (STYLE.md §5)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

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


def describe_device(device: torch.device, threads: int | None = None) -> str:
    """A few words for logs: ``cuda (NVIDIA H100)``, ``cpu (2 threads)``; ``threads``:
    the CPU threads the work will run on, when not torch's current setting."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        threads = threads or torch.get_num_threads()
        return f"cpu ({threads} thread{'' if threads == 1 else 's'})"
    return device.type


# Below this many multiply-adds per recurrent step (batch x hidden^2), one CPU thread
# trains faster than several that wait passively: waking a sleeping thread for every
# small operation costs more than it shares. Measured on M4 Hourly (2 cores, passive
# waiting): one thread took 0.6x the epoch time of two at hidden 64 and 0.5x at
# hidden 32, batch 64; at hidden 128 the two were even (1.07x).
_PARALLEL_STEP_WORK = 64 * 128**2


def training_threads(hidden: int, batch_size: int, environ: Mapping[str, str]) -> int | None:
    """The CPU threads to train with when the user chose none: one for a network whose
    steps are too small to share among threads that wait passively (the CLI's
    ``OMP_WAIT_POLICY``); None (torch's default) otherwise, or when the user set
    ``OMP_NUM_THREADS``."""
    if "OMP_NUM_THREADS" in environ or environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
        return None
    return 1 if batch_size * hidden**2 < _PARALLEL_STEP_WORK else None


@contextmanager
def cpu_threads(count: int | None) -> Iterator[None]:
    """torch's CPU threads set to ``count`` (None: unchanged) for the block, then back:
    a Python caller's own thread setting outlives the training it called."""
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
