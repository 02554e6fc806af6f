"""Members trained side by side: one a CPU core, where each trains on one thread.

A network whose steps are too small to share among threads trains fastest on one
(nn/device.py, training_threads), and then the machine's other cores sit idle
through the whole training. The members of an ensemble, and their refits, are
independent of each other, so each free core can train one. On the 2-core machine
the benchmarks run on, two M4 Hourly members side by side took 10.9 and 11.3 s an
epoch against 10.4 s alone, two M3 Monthly members 11.2 s together against 25.5 s
in turn, and three members in one ``rnncast train`` cost 0.49 of three separate
runs (bench/ensemble.py).

Threads, not processes: torch leaves Python's lock while it computes, the Panel is
shared without a copy, and a member comes back as the object it is. Nothing may
draw from torch's one random generator while members train (no dropout), and each
network's first weights are drawn in turn (training.py), so a member trained side
by side equals the member trained alone with its settings. Under torchrun each
process is already one of the machine's workers, and a GPU is shared by one
network at a time: both train members in turn.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rnncast.batch_shares import usable_cores
from rnncast.config import ModelConfig, TrainConfig
from rnncast.errors import ConfigError, Interrupted

if TYPE_CHECKING:
    from rnncast.panel import Panel

StopCheck = Callable[[], "str | None"]
# A job is given a check that says why it should stop (another job failed), or None.
Job = Callable[[StopCheck], Any]

SIBLING_FAILED = "a failure of another member"
# What ``next_job`` gives when it cannot tell yet: ask again once a running job ends.
LATER = object()


def available_memory() -> int | None:
    """Bytes this machine can still give without swapping (Linux's MemAvailable),
    else its physical memory; None where neither can be told."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


# Float32 columns a member lays its rows out in, beyond the data's covariates: the
# target, its changes over up to three lags, the calendar features (batches.lay_out),
# with room for the copies made on the way.
_LAID_OUT_COLUMNS = 16
# Copies of one batch's head outputs (origins x H x (head width + quantiles), float32)
# that a training step holds at its peak: the head's intermediates, the loss's and
# their gradients, and what the allocator keeps. Measured on M4 Hourly (batch 64,
# chunk 96, H 48, 2 x 64 LSTM): a second member beside the first raised the peak
# from 0.94 to 1.1 GB to 1.77 GB, about 30 times those 22 MB.
_STEP_COPIES = 32
# Side by side, the lanes' members may take this share of the memory free.
_LANES_MEMORY_SHARE = 0.5


def member_bytes(model: ModelConfig, training: TrainConfig, rows: int, covariates: int) -> int:
    """What one more member training beside the others holds: its laid-out copy of
    ``rows`` rows (the data's steps and every series' future rows) of ``covariates``
    more columns, and a training step's peak (``_STEP_COPIES``)."""
    data = max(rows, 1) * (_LAID_OUT_COLUMNS + covariates) * 4
    origins = training.batch_rows * int(training.chunk_len or training.lookback or 1)
    width = max(8, int(model.hidden or 1) // 4) + len(model.output_quantiles)
    return data + origins * model.horizon * width * 4 * _STEP_COPIES


def lanes_that_fit(per_member: int, free: int | None) -> int:
    """How many members of ``per_member`` bytes fit in half the ``free`` memory; at
    least one (training itself checks that one fits)."""
    if free is None:
        return 1
    return max(1, int(_LANES_MEMORY_SHARE * free) // max(per_member, 1))


def may_share_cores(model: ModelConfig, training: TrainConfig, members: int) -> bool:
    """What ``count`` asks before the sizes: several members, one process on the
    CPU, no thread count chosen, no dropout, and more than one usable core."""
    from rnncast import distributed
    from rnncast.nn.device import resolve_device

    if members < 2 or training.threads is not None or model.dropout > 0:
        return False
    if distributed.world().is_distributed or usable_cores() < 2:
        return False
    try:
        return resolve_device(training.device).type == "cpu"
    except ConfigError:
        return False  # the training says what is wrong with the device


def count(
    model: ModelConfig, training: TrainConfig, members: int, panel: Panel | None = None
) -> int:
    """How many of ``members`` train at once: one a usable core where the run is one
    process on the CPU, the user chose no thread count, no dropout draws random
    numbers, and each member trains on one thread, as many as fit in half the memory
    free with their own copy of ``panel``'s data (member_bytes); else 1 (in turn). ``model`` and
    ``training`` have their sizes chosen (training.chosen_settings)."""
    from rnncast.nn.device import training_threads

    if not may_share_cores(model, training, members):
        return 1
    hidden, batch = int(model.hidden or 1), training.batch_rows
    if training_threads(hidden, batch, os.environ) != 1:
        return 1
    lanes = min(members, usable_cores())
    if panel is not None and lanes > 1:
        rows = int(panel.lengths.sum()) + panel.n_series * model.horizon
        each = member_bytes(model, training, rows, len(panel.covariate_names))
        lanes = min(lanes, lanes_that_fit(each, available_memory()))
    return max(1, lanes)


def run(next_job: Callable[[int, float], Any], lanes: int) -> dict[int, Any]:
    """Run the jobs ``next_job(index, seconds since the start)`` gives, up to ``lanes``
    at a time, each in a thread of its own, until it gives None; it is asked for the
    next one in the calling thread whenever a lane is free, and again once a job
    ends where it gave ``LATER``. Returns each job's result, or the exception it
    raised, by index. When a job fails, the others are told to stop (their check
    says ``SIBLING_FAILED``) and no more are started."""
    import torch

    outcomes: dict[int, Any] = {}
    began = time.perf_counter()
    finished: queue.Queue[int] = queue.Queue()
    failure = threading.Event()

    def check() -> str | None:
        return SIBLING_FAILED if failure.is_set() else None

    def lane(index: int, job: Job) -> None:
        try:
            outcomes[index] = job(check)
        except BaseException as exc:  # handed back to the caller, who raises it
            outcomes[index] = exc
            if _failed(exc):
                failure.set()
        finally:
            finished.put(index)

    running, index, more = 0, 0, True
    # Every member on one thread, set once for all of them: each training's own
    # setting then restores the same one thread when it ends. The caller's random
    # state is restored once all are done.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng():
            while True:
                while more and running < lanes and not failure.is_set():
                    job = next_job(index, time.perf_counter() - began)
                    if job is LATER and running:
                        break
                    if job is None or job is LATER:
                        more = False
                        break
                    name = f"rnncast-member-{index + 1}"
                    threading.Thread(target=lane, args=(index, job), name=name, daemon=True).start()
                    running, index = running + 1, index + 1
                if running == 0:
                    break
                finished.get()
                running -= 1
    finally:
        torch.set_num_threads(before)
    return outcomes


def _failed(outcome: BaseException) -> bool:
    """A failure that stops the other jobs: anything but a polite stop (a signal)."""
    return not (isinstance(outcome, Interrupted) and outcome.polite)


def first_error(outcomes: dict[int, Any]) -> BaseException | None:
    """The exception to raise for ``outcomes``: the first failure by index, else the
    first polite stop; None when every job returned."""
    errors = [outcomes[index] for index in sorted(outcomes)
              if isinstance(outcomes[index], BaseException)]  # fmt: skip
    failures = [error for error in errors if _failed(error)]
    return (failures or errors or [None])[0]


def stopping(*checks: StopCheck | None) -> StopCheck:
    """One check of several: the first reason any of them gives."""

    def check() -> str | None:
        for each in checks:
            reason = each() if each is not None else None
            if reason is not None:
                return reason
        return None

    return check
