"""One run over many processes: who this process is among them, and what they agree on.

``torchrun`` starts the processes and sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; ``start`` joins them into torch's process group (NCCL on CUDA,
gloo on the CPU), one GPU per local rank. Everything here is torch's own
distributed engine; rnncast adds only the few agreements a run needs:

- sums and maxima of a few numbers (losses, counts, seconds), so that every
  process takes the same decision (stop, diverge, one more ensemble member);
- small values that rank 0 decides and the others take (a blend, a folder name);
- arrays that only rank 0 reads (validation and test forecasts), gathered to it
  alone, so that no other process holds the whole run's copy.

A run of one process (``WORLD_SIZE`` unset or 1) never starts a process group,
and every function here then returns its input at once, so single-process code
needs no branches of its own. numpy and torch are imported when first needed: the
command line reads the world before it knows whether it needs them. ``world()``
reads torch's process group, the one piece of global state that distributed
training has by nature: a Python user who starts the group themselves gets the same
behaviour from ``rnncast.train``, each process passing its own share of the series
(panel_shares.py).

A process that dies or hangs makes the others fail at their next collective, at
the latest after ``RNNCAST_DISTRIBUTED_TIMEOUT`` seconds (default 600): long enough
for the work one rank does alone (rank 0 scoring the test part, writing the model),
short enough that a lost node does not hold the others for the day.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from rnncast.errors import ConfigError, DataError, RnncastError

if TYPE_CHECKING:
    import numpy as np

TIMEOUT_VARIABLE = "RNNCAST_DISTRIBUTED_TIMEOUT"
DEFAULT_TIMEOUT = 600.0
E = TypeVar("E", bound=BaseException)


class PeerFailed(RnncastError):
    """Another process of a distributed run failed or vanished; this one stops too."""

    exit_code = 1


class RankFailed(RnncastError):
    """Another process of the run failed with a user-facing error; this one stops
    with the same exit code, so that every process tells the same story."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank ``rank`` of ``size`` processes, and the
    ``local_rank``-th on its machine (its GPU)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes, logs and decides for the run."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.size > 1


SINGLE = World()


def launched_world(environ: dict[str, str] | None = None) -> World:
    """The world torchrun describes in the environment; SINGLE without it.

    Raises ConfigError for values torchrun would never set (a typo in a job file)."""
    environ = dict(os.environ) if environ is None else environ
    if "WORLD_SIZE" not in environ:
        return SINGLE
    values = {}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        text = environ.get(name, "0")
        try:
            values[name] = int(text)
        except ValueError:
            raise ConfigError(
                f"{name}={text!r} in the environment is not a whole number; "
                "start rnncast with torchrun, which sets it"
            ) from None
    size, rank, local = values["WORLD_SIZE"], values["RANK"], values["LOCAL_RANK"]
    if size < 1 or not 0 <= rank < size or local < 0:
        raise ConfigError(
            f"WORLD_SIZE={size}, RANK={rank}, LOCAL_RANK={local} do not describe a run; "
            "start rnncast with torchrun, which sets them"
        )
    return World(rank=rank, size=size, local_rank=local)


def timeout_seconds(environ: dict[str, str] | None = None) -> float:
    """How long a process waits for the others at one collective
    (``RNNCAST_DISTRIBUTED_TIMEOUT``, seconds)."""
    environ = dict(os.environ) if environ is None else environ
    text = environ.get(TIMEOUT_VARIABLE)
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{TIMEOUT_VARIABLE}={text!r} must be a number of seconds above 0")
    return seconds


def start(launched: World, device_name: str) -> World:
    """Join the process group torchrun set up; on CUDA, take the local rank's GPU.
    A single process joins nothing. Returns the world joined."""
    if not launched.is_distributed:
        return launched
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return world()
    cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if cuda:
        if launched.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK {launched.local_rank} has no GPU: this machine has "
                f"{torch.cuda.device_count()}; start at most that many processes per node"
            )
        torch.cuda.set_device(launched.local_rank)
    timeout = timedelta(seconds=timeout_seconds())
    try:
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    except (RuntimeError, ValueError) as exc:
        raise PeerFailed(
            f"rank {launched.rank}: could not join the other processes "
            f"({_first_line(exc)}); check the torchrun rendezvous settings"
        ) from None
    return launched


def finish() -> None:
    """Leave the process group, if this process joined one, once every process is
    done: a process that left while another still held its connections made that
    one abort (SIGABRT in gloo, seen once in an M4 Hourly run)."""
    if _joined():
        barrier()
        leave()


def leave() -> None:
    """Leave the process group now, without waiting for the others: the way out after
    an error. Nothing to do if this process joined none or has left already."""
    if not _joined():
        return
    import torch.distributed as dist

    # A group broken already (a peer died) cannot be left cleanly; exiting is all
    # that is left to do.
    with contextlib.suppress(RuntimeError, ValueError):
        dist.destroy_process_group()


def _joined() -> bool:
    # A command that never imported torch.distributed joined no group: do not pay
    # for the import only to find that out.
    dist = sys.modules.get("torch.distributed")
    return dist is not None and dist.is_available() and dist.is_initialized()


def world() -> World:
    """The world of the process group this process has joined; SINGLE without one."""
    if not _joined():
        return SINGLE  # without importing torch, which a reading process has yet to need
    import torch

    local = int(os.environ.get("LOCAL_RANK", "0"))
    return World(torch.distributed.get_rank(), torch.distributed.get_world_size(), local)


def sum_numbers(values: Sequence[float]) -> np.ndarray:
    """The elementwise sum of ``values`` over every process (float64)."""
    return _reduce(values, "sum")


def max_numbers(values: Sequence[float]) -> np.ndarray:
    """The elementwise maximum of ``values`` over every process (float64)."""
    return _reduce(values, "max")


def any_true(flag: bool) -> bool:
    """Whether ``flag`` holds on any process: a decision every process then shares."""
    return bool(max_numbers([1.0 if flag else 0.0])[0] > 0)


def from_main(value: Any) -> Any:
    """Rank 0's ``value``, on every process (small plain values: numbers, text, tuples)."""
    if not world().is_distributed:
        return value
    import torch.distributed as dist

    holder = [value]
    guarded(lambda: dist.broadcast_object_list(holder, src=0))
    return holder[0]


def decided_by_main(decide: Callable[[], Any]) -> Any:
    """What ``decide()`` returns on rank 0, on every process; the others never call
    it (it may read what rank 0 alone holds, gather_to_main)."""
    current = world()
    return from_main(decide() if current.is_main else None)


def gather_to_main(value: Any) -> list[Any] | None:
    """Every process's ``value``, in rank order, on rank 0; None on the others. For
    arrays only rank 0 reads (validation and test forecasts, to decide and to score):
    the other processes then never hold the whole run's copy."""
    current = world()
    if not current.is_distributed:
        return [value]
    import torch.distributed as dist

    values: list[Any] | None = [None] * current.size if current.is_main else None
    guarded(lambda: dist.gather_object(value, values, dst=0))
    return values


def gather_to_all(value: Any) -> list[Any]:
    """Every process's ``value``, in rank order, on every process."""
    current = world()
    if not current.is_distributed:
        return [value]
    import torch.distributed as dist

    values: list[Any] = [None] * current.size
    guarded(lambda: dist.all_gather_object(values, value))
    return values


def barrier() -> None:
    """Wait until every process is here."""
    if world().is_distributed:
        import torch.distributed as dist

        guarded(dist.barrier)


def agreed(error: E) -> E:
    """``error``, marked as one that every process raises at the same point, after
    the exchange that told them all of it (every_process_raised)."""
    error.every_process_raised = True  # type: ignore[attr-defined]
    return error


def every_process_raised(error: BaseException) -> bool:
    """Whether every process of a run under torchrun raised ``error`` together
    (``agreed``): they may then wait for each other (wait_for_every_process). Of any
    other error the peers may be anywhere, or gone."""
    return getattr(error, "every_process_raised", False) and _joined() and world().is_distributed


def wait_for_every_process() -> None:
    """After an error every process raised together, once this one has told its line:
    wait until every process has told its own. The first process to end makes
    torchrun stop the others, which would lose the lines they had yet to write. A
    process that is gone ends the wait."""
    with contextlib.suppress(PeerFailed):
        barrier()


def raise_together(error: BaseException | None) -> None:
    """Raise ``error`` if this process has one, or another process's if it has one:
    after this call every process goes on, or every process stops, with the exit
    code of the first that failed. A collective: every process calls it."""
    if not world().is_distributed:
        if error is not None:
            raise error
        return
    report = None if error is None else (getattr(error, "exit_code", 1), str(error))
    reports = gather_to_all(report)
    if error is not None:
        raise agreed(error)
    for rank, found in enumerate(reports):
        if found is not None:
            raise agreed(RankFailed(f"rank {rank} failed: {found[1]}", exit_code=int(found[0])))


def check_same(value: Any, what: str) -> None:
    """Refuse to go on unless every process holds the same ``value`` (a small plain
    value): what the processes decided from the data must not differ. A collective."""
    if not world().is_distributed:
        return
    values = gather_to_all(value)
    for rank, found in enumerate(values):
        if found != values[0]:
            key, first, other = _difference(values[0], found)
            raise agreed(DataError(
                f"the processes differ in {what}: {key} is {first!r} on rank 0 and "
                f"{other!r} on rank {rank}; every process must train on the same data "
                "with the same rnncast and the same options"
            ))  # fmt: skip


def _difference(first: Any, other: Any, key: str = "the value") -> tuple[str, Any, Any]:
    """The first place where two plain values differ: its key path, and both values."""
    if isinstance(first, dict) and isinstance(other, dict):
        for name in sorted(set(first) | set(other), key=str):
            if first.get(name) != other.get(name):
                inner = name if key == "the value" else f"{key}.{name}"
                return _difference(first.get(name), other.get(name), inner)
    return key, first, other


def consecutive_share(count: int, current: World) -> np.ndarray:
    """The indices of this process's consecutive share of ``count`` items (all of them
    in one process): shares gathered in rank order join into the whole, in order."""
    import numpy as np

    return np.array_split(np.arange(count), current.size)[current.rank]


def _reduce(values: Sequence[float], how: str) -> np.ndarray:
    import numpy as np

    numbers = np.asarray(values, dtype=np.float64)
    if not world().is_distributed:
        return numbers
    import torch
    import torch.distributed as dist

    device = torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")
    tensor = torch.as_tensor(numbers, device=device)
    operation = dist.ReduceOp.SUM if how == "sum" else dist.ReduceOp.MAX
    guarded(lambda: dist.all_reduce(tensor, op=operation))
    return tensor.cpu().numpy()


def guarded(collective: Any) -> Any:
    """Run a collective; a peer that failed or vanished becomes PeerFailed."""
    try:
        return collective()
    except RuntimeError as exc:
        raise peer_failed(exc) from None


def peer_failed(exc: BaseException) -> PeerFailed:
    """The error this process stops with when a collective failed under it."""
    return PeerFailed(
        f"rank {world().rank}: another process of this run failed or stopped "
        f"({_first_line(exc)}); its own error line, or torchrun's summary, names it"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
