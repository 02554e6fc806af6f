"""torch's one random generator, shared by trainings that run side by side.

Members trained side by side (lanes.py) each seed the CPU generator and draw their
network's weights from it, and each puts back, when it ends, the state it found for
the caller. All of it happens under one lock: without it, a neighbour's end could put
its state back between a member's seeding and its draws, and give that member other
weights than it has alone (tests/test_lanes.py stages it; a CI run once saw it).
Training itself draws nothing from the generator there (lanes run no dropout).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_GENERATOR = threading.Lock()


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """torch's generator seeded with ``seed`` and left to this thread's draws inside."""
    with _GENERATOR:
        torch.manual_seed(seed)
        yield


@contextmanager
def random_state_kept(device: torch.device) -> Iterator[None]:
    """torch's generators (the CPU's, and ``device``'s on CUDA) as the caller had them
    once the block ends."""
    with _GENERATOR:
        cpu_state = torch.get_rng_state()
        cuda_state = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    try:
        yield
    finally:
        with _GENERATOR:
            torch.set_rng_state(cpu_state)
            if cuda_state is not None:
                torch.cuda.set_rng_state(cuda_state, device)
