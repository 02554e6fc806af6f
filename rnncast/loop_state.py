"""A Loop's state as its checkpoint holds it, and back: the weights, the kept snapshots,
the optimizer's state, the random streams and the run's bookkeeping as tensors plus a
JSON-able state (artifact.py writes and reads the file; training.py decides when).

The tensors' names and the state's keys are the checkpoint format: a checkpoint written
by an earlier rnncast must keep resuming.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from rnncast import distributed
from rnncast.config import ModelConfig, TrainConfig
from rnncast.loop import Loop
from rnncast.snapshots import prefixed


def make_checkpoint(
    loop: Loop, model: ModelConfig, training: TrainConfig, fingerprint: dict[str, Any]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and the state of ``loop`` after its last whole epoch, with the
    settings and the data's ``fingerprint`` a resumed run must match."""
    tensors = {f"model.{k}": v for k, v in loop.network.state_dict().items()}
    tensors |= loop.snapshots.to_tensors()
    optimizer = loop.optimizer.state_dict()
    # The file holds tensors only; the optimizer's other entries go into the JSON state.
    plain_state: dict[str, dict[str, Any]] = {}
    for key, entries in optimizer["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{key}.{name}"] = value
            else:
                plain_state.setdefault(str(key), {})[name] = value
    tensors["rng.torch"] = torch.random.get_rng_state()
    state = {
        "epoch": loop.epoch,
        "history": loop.history,
        "best_loss": loop.best_loss,
        "best_epoch": loop.best_epoch,
        "bad_epochs": loop.bad_epochs,
        "elapsed": loop.elapsed,
        "optimizer": {"param_groups": optimizer["param_groups"], "state": plain_state},
        "scheduler": loop.scheduler.state_dict() if loop.scheduler is not None else None,
        "rng": loop.rng.bit_generator.state,
        # Each process's own shuffling stream, so that a resumed run with as many
        # processes continues each one's (single runs keep "rng" alone).
        **_world_state(loop),
        "model": asdict(model),
        "training": asdict(training),
        "data": fingerprint,
    }
    return tensors, state


def _world_state(loop: Loop) -> dict[str, Any]:
    if not loop.world.is_distributed:
        return {}
    states = distributed.gather_to_all(loop.rng.bit_generator.state)
    return {"world_size": loop.world.size, "rng_ranks": states}


def restore_checkpoint(loop: Loop, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    """``make_checkpoint`` reversed: ``loop`` continues where the checkpoint's run was."""
    loop.network.load_state_dict(prefixed(tensors, "model."))
    loop.snapshots.restore(tensors)
    optimizer_state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, key, entry = name.split(".", 2)
            optimizer_state.setdefault(int(key), {})[entry] = value.to(loop.device)
    for key, entries in state["optimizer"]["state"].items():
        optimizer_state.setdefault(int(key), {}).update(entries)
    loop.optimizer.load_state_dict(
        {"state": optimizer_state, "param_groups": state["optimizer"]["param_groups"]}
    )
    if loop.scheduler is not None and state["scheduler"] is not None:
        loop.scheduler.load_state_dict(state["scheduler"])
    torch.random.set_rng_state(tensors["rng.torch"])
    ranks = state.get("rng_ranks")
    # Assigned in place: the training batches draw from this same generator (losses.py).
    loop.rng.bit_generator.state = ranks[loop.world.rank] if ranks else state["rng"]
    loop.epoch = state["epoch"]
    loop.history = state["history"]
    loop.best_loss = state["best_loss"]
    loop.best_epoch = state["best_epoch"]
    loop.bad_epochs = state["bad_epochs"]
    loop.elapsed = state["elapsed"]
