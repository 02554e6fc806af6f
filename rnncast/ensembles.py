"""Train the members of an ensemble within one time budget, in turn or side by side.

Members differ in their seed and in the stretch of history one gradient sees (the
TBPTT chunk, or the window's lookback), so their errors differ where the data
leaves the network's choice open; forecasting takes the median of each quantile
(nn/ensemble.py). Trained together as one wide network they were not faster on a
CPU (bench/ensemble.py measured it). Where each trains on one CPU thread, they
train side by side, one a core (lanes.py); else in turn. Either way they share the
panel, read and validated once.

How many: ``--ensemble N`` gives N members an equal share of the budget (side by
side, of their round's). By default the first member has all of it, as a single
network would, and more are trained, once it has ended, only while the budget
still holds one more at the cost the members so far have shown: large data, whose
one network fills the budget, keeps one member; a small panel whose network stops
early gets the rest of its budget as members, up to DEFAULT_MEMBERS. Side by side,
a member whose lane would not end within the budget may still train alone on every
core, in a fraction of the time, where its batches go in shares. Which of
those the model keeps, validation decides (fitting.choose_members); ``--ensemble
N`` keeps all N.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np

from rnncast import distributed, lanes
from rnncast import training as network_training
from rnncast.artifact import Model
from rnncast.config import DEFAULT_MEMBERS, MAX_SEED, ModelConfig, TrainConfig
from rnncast.errors import Interrupted
from rnncast.nn.ensemble import Ensemble
from rnncast.panel import Panel

log = logging.getLogger("rnncast")

# The chunk (or lookback) of member k is the chosen one times CHUNK_FACTORS[k % 3]:
# each stays over one season and one horizon (the chosen chunk covers two).
CHUNK_FACTORS = (1.0, 1.5, 0.75)


def member_training(training: TrainConfig, index: int) -> TrainConfig:
    """The settings of member ``index`` from those the first member was trained with
    (its chunk or lookback chosen): another seed, another stretch of history."""
    if index == 0:
        return training
    factor = CHUNK_FACTORS[index % len(CHUNK_FACTORS)]
    seed = (training.seed + index) % (MAX_SEED + 1)
    if training.strategy == "tbptt":
        return replace(training, seed=seed, chunk_len=max(2, round(training.chunk_len * factor)))
    return replace(training, seed=seed, lookback=max(1, round(training.lookback * factor)))


def another_fits(spent: list[float], budget: float, refit_share: float) -> bool:
    """Whether one more member, costing what the members so far cost on average (and
    its refit, ``refit_share`` of that), still fits in ``budget`` with them."""
    return another_fits_after(sum(spent), spent, budget, refit_share)


def train_members(
    panel: Panel,
    model: ModelConfig,
    training: TrainConfig,
    *,
    refit_share: float,
    out: Any = None,
    **options: Any,
) -> list[Model]:
    """The members, each a Model of one network. ``training.max_time`` is their
    budget together; ``training.ensemble`` their number (None: as the budget holds).

    Only the first member checkpoints to ``out`` and resumes from there: a stop
    during a later one keeps the members already trained."""
    budget = float(training.max_time) if training.max_time is not None else math.inf
    wanted = training.ensemble or DEFAULT_MEMBERS
    # A resumed run continues its first member from the checkpoint, in turn. The sizes
    # are chosen ahead only where the members might share the cores.
    if not options.get("resume") and lanes.may_share_cores(model, training, wanted):
        chosen_model, chosen = network_training.chosen_settings(panel, model, training)
        count = lanes.count(chosen_model, chosen, wanted, panel)
        if count > 1:
            return _side_by_side(panel, model, training, chosen, count,
                                 refit_share=refit_share, out=out, **options)  # fmt: skip
    members: list[Model] = []
    spent: list[float] = []
    should_stop = options.get("should_stop")
    later_options = {k: v for k, v in options.items() if k not in ("resume", "on_epoch")}
    for index in range(wanted):
        left = budget - sum(spent)
        if index and training.ensemble is None and not another_fits(spent, budget, refit_share):
            break
        if index and stop_requested(should_stop):
            log.warning("%s arrived after %d members; those are kept", stop_name(should_stop),
                        index,
                        extra={"event": "members_cut", "fields": {"members": index}})  # fmt: skip
            break
        share = left / (wanted - index) if training.ensemble else left
        settings = replace(training, max_time=max(share, 1.0) if math.isfinite(share) else None)
        if index:
            settings = replace(member_training(members[0].training, index),
                               max_time=settings.max_time)  # fmt: skip
            log.info("training member %d of %s (seed %d)", index + 1,
                     training.ensemble or f"up to {wanted}", settings.seed,
                     extra={"event": "member", "fields": {"member": index + 1}})  # fmt: skip
        began = time.perf_counter()
        try:
            member = network_training.train(
                panel, model, settings, save=False, out=None if index else out,
                **(later_options if index else options),
            )  # fmt: skip
        except Interrupted as stop:
            if not index or not stop.polite:
                raise
            log.warning("%s during member %d; the %d trained before are kept",
                        stop_name(should_stop), index + 1, index,
                        extra={"event": "members_cut", "fields": {"members": index}})  # fmt: skip
            break
        # Under torchrun, the slowest process's time decides whether another fits.
        spent.append(float(distributed.max_numbers([time.perf_counter() - began])[0]))
        members.append(member)
    return members


def _side_by_side(
    panel: Panel,
    model: ModelConfig,
    training: TrainConfig,
    chosen: TrainConfig,
    count: int,
    *,
    refit_share: float,
    out: Any,
    **options: Any,
) -> list[Model]:
    """train_members with up to ``count`` members training at once (lanes.py).
    ``--ensemble N``: the first ``count`` begin together, each with the budget's share
    of its round. By default the first member trains alone with the whole budget, as
    one network would, and more begin, side by side, only once it has ended, while
    each still fits at the cost the members so far have shown, or one alone on every
    core while only that fits (next_member_way): data whose one network fills the
    budget keeps that one network, unslowed. ``chosen``:
    ``training`` with the sizes the first member will choose."""
    budget = float(training.max_time) if training.max_time is not None else math.inf
    wanted = training.ensemble or DEFAULT_MEMBERS
    should_stop = options.get("should_stop")
    later_options = {k: v for k, v in options.items() if k not in ("resume", "on_epoch")}
    # What each member that ended cost, or would have cost, on a lane's cores; and
    # what those that trained alone on every core cost.
    spent: dict[int, float] = {}
    spent_alone: dict[int, float] = {}
    lane_cores = max(1, lanes.usable_cores() // count)
    alone_now = threading.Event()  # a member trains alone: none begins beside it

    def next_job(index: int, elapsed: float) -> Any:
        if index >= wanted:
            return None
        left = budget - elapsed
        alone = index == 0 and training.ensemble is None
        if index and training.ensemble is None:
            # A member costs what the first one showed: wait for it to end.
            if not spent or alone_now.is_set():
                return lanes.LATER
            way = next_member_way(elapsed, list(spent.values()), list(spent_alone.values()),
                                  budget, refit_share)  # fmt: skip
            if way is None:
                return None
            alone = way == "alone"
        if index and stop_requested(should_stop):
            log.warning("%s arrived after %d members were begun; those are kept",
                        stop_name(should_stop), index,
                        extra={"event": "members_cut", "fields": {"members": index}})  # fmt: skip
            return None
        # --ensemble N shares the budget out among the rounds of members still to run.
        share = left / math.ceil((wanted - index) / count) if training.ensemble else left
        settings = training if index == 0 else member_training(chosen, index)
        settings = replace(settings, max_time=max(share, 1.0) if math.isfinite(share) else None)
        if index:
            log.info("training member %d of %s (seed %d), %s", index + 1,
                     training.ensemble or f"up to {wanted}", settings.seed,
                     "alone on every core" if alone else "beside the others",
                     extra={"event": "member", "fields": {"member": index + 1}})  # fmt: skip
        if alone:
            alone_now.set()

        def job(sibling_failed: lanes.StopCheck) -> Model:
            began = time.perf_counter()
            try:
                member = network_training.train(
                    panel, model, settings, save=False, out=None if index else out,
                    cores=None if alone else lane_cores,
                    **{**(later_options if index else options),
                       "should_stop": lanes.stopping(sibling_failed, should_stop)},
                )  # fmt: skip
            finally:
                if alone:
                    alone_now.clear()
            seconds = time.perf_counter() - began
            # What the member would have cost on a lane's cores, its shares' work being
            # about the same however many threads took them.
            shares = int(member.history.get("shares") or 1)
            spent[index] = seconds * shares / min(shares, lane_cores)
            if alone:
                spent_alone[index] = seconds
            return member

        return job

    outcomes = lanes.run(next_job, count)
    error = lanes.first_error(outcomes)
    cut = [index for index, outcome in outcomes.items() if isinstance(outcome, Interrupted)]
    if error is not None and (not isinstance(error, Interrupted) or 0 in cut):
        raise error
    if cut:
        log.warning("%s during member %d; the %d members that had ended are kept",
                    stop_name(should_stop), min(cut) + 1, len(outcomes) - len(cut),
                    extra={"event": "members_cut",
                           "fields": {"members": len(outcomes) - len(cut)}})  # fmt: skip
    return [outcomes[index] for index in sorted(outcomes) if index not in cut]


def another_fits_after(
    elapsed: float, spent: list[float], budget: float, refit_share: float
) -> bool:
    """Whether one more member, begun ``elapsed`` seconds into the budget and costing
    what the members so far cost on average (and its refit), still ends within it."""
    if not spent:
        return True
    return (elapsed + float(np.mean(spent))) * (1.0 + refit_share) <= budget


def next_member_way(
    elapsed: float,
    spent: list[float],
    spent_alone: list[float],
    budget: float,
    refit_share: float,
) -> str | None:
    """How the next member trains, ``elapsed`` seconds into the budget: "beside" the
    others, one a lane, while one more at what a member cost on a lane's cores
    (``spent``) still fits; else "alone" on every core, in shares (batch_shares.py),
    while one more at what a member cost there (``spent_alone``) fits; else None.
    Lanes take more members in the same time; a member alone takes less of it, so the
    end of a budget that holds no more lanes' members may still hold one."""
    if another_fits_after(elapsed, spent, budget, refit_share):
        return "beside"
    if spent_alone and another_fits_after(elapsed, spent_alone, budget, refit_share):
        return "alone"
    return None


def stop_requested(should_stop: Any) -> bool:
    """Whether a stop was asked for, in this process or (under torchrun) in any."""
    return distributed.any_true(should_stop is not None and should_stop() is not None)


def stop_name(should_stop: Any) -> str:
    """The signal this process received, or what stopped the run elsewhere."""
    reason = should_stop() if should_stop is not None else None
    return reason or "a stop on another process"


def assemble(members: list[Model]) -> Model:
    """One Model of the members: an Ensemble network when there are several, the
    first member's settings and history, and a line per member in the history."""
    first = members[0]
    summary = [member_summary(member) for member in members]
    history = {**first.history, "members": summary}
    if all("refit" in member.history for member in members):
        refits = [member.history["refit"] for member in members]
        history["refit"] = {**refits[0], "epochs": sum(r["epochs"] for r in refits),
                            "seconds": round(sum(r["seconds"] for r in refits), 3)}  # fmt: skip
    if len(members) == 1:
        return replace(first, history=history)
    network = Ensemble([member.network for member in members])
    return replace(first, network=network, config=replace(first.config, members=len(members)),
                   history=history)  # fmt: skip


def member_summary(member: Model) -> dict[str, Any]:
    history = member.history
    return {
        "seed": member.training.seed,
        "chunk_len": member.training.chunk_len,
        "lookback": member.training.lookback,
        "epochs": len(history.get("epochs", [])),
        "best_epoch": history.get("best_epoch"),
        "seconds": history.get("seconds", 0.0),
        "stopped": history.get("stopped"),
    }
