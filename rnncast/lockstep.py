"""Training steps that the processes of a run under torchrun take in lockstep.

Each process walks its own series, with its share of the batch, through the network
wrapped in DistributedDataParallel, whose backward pass averages the gradients. What
DDP leaves to its user is that every process must take every step: a process whose
series are done, one that meets a non-finite loss, one that a signal or the clock
stops, would otherwise leave the others waiting in the next all-reduce. So before
every step one all-reduce of five numbers tells each process what all of them hold
(``Lockstep.steps``), and they take the same decision.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator

import torch

from rnncast import distributed
from rnncast.errors import TrainingDiverged

# One loss of a process: (summed loss over its scored origins, with its graph; origins).
Loss = tuple[torch.Tensor, int]


class Lockstep:
    """The network in DDP on this process's device, and the steps every process takes."""

    def __init__(self, network: torch.nn.Module, device: torch.device) -> None:
        from torch.nn.parallel import DistributedDataParallel

        self.world = distributed.world()
        # The network registers no buffers, so DDP's buffer settings have nothing to do.
        self.trainer = DistributedDataParallel(
            network, device_ids=[device.index] if device.type == "cuda" else None
        )
        self.stop_reason: str | None = None

    def steps(
        self,
        losses: Iterable[Loss],
        apply: Callable[[torch.Tensor, bool, float], None],
        idle_loss: Callable[[], torch.Tensor],
        should_stop: Callable[[], str | None] | None,
        spent: Callable[[], float],
        budget: float | None,
        diverged: str,
    ) -> Iterator[tuple[float, int]]:
        """Take this process's ``losses`` in step with the others; yield each one's loss
        and origins. ``spent()``: the seconds this process has trained so far;
        ``budget``: the seconds the run may (None: no limit). ``apply(loss, update,
        seconds)`` backpropagates (and with ``update`` steps the optimizer); ``seconds``
        is the training time the processes agree has gone, so that a rate that follows
        the clock is the same in every replica. ``idle_loss()`` is a zero loss through
        the whole network, for a process whose series are done while others still walk
        theirs.

        The loss is scaled so that DDP's mean over the processes is the sum over every
        scored origin divided by their number: the gradient of one process holding the
        whole batch. Sets ``stop_reason`` ("signal NAME" or "max_time") when the
        processes stop early; raises TrainingDiverged with the message ``diverged``, in
        every process, when any process's loss is not finite."""
        self.stop_reason = None
        for item in itertools.chain(losses, itertools.repeat(None)):
            active = item is not None
            loss_sum, origins = item if active else (None, 0)
            reason = should_stop() if should_stop is not None else None
            seconds = spent()
            late = budget is not None and seconds >= budget
            finite = not active or bool(torch.isfinite(loss_sum.detach()))
            found = distributed.sum_numbers(
                [float(origins), active, not finite, reason is not None, late, seconds]
            )
            scored, working, nonfinite, signalled, over_time, seconds_in_all = found.tolist()
            if nonfinite:
                raise distributed.agreed(TrainingDiverged(diverged))
            if not working:
                return
            if not active:
                loss_sum = idle_loss()
            share = self.world.size / scored if scored else 0.0
            # The clocks of the processes differ a little; their mean is everyone's.
            apply(loss_sum * share, scored > 0, seconds_in_all / self.world.size)
            if active:
                yield float(loss_sum.detach()), int(origins)
            if signalled:
                self.stop_reason = f"signal {reason or 'SIGTERM'}"
                return
            if over_time:
                self.stop_reason = "max_time"
                return
