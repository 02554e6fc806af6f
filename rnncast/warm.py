"""The encoder's state at the end of each training series, kept with the model, so
that a forecast of the same history reads only the steps that came after it.

A TBPTT network reads a series' whole history to forecast it: for M4 Hourly, 414
series of up to 960 hours, that is most of a cold forecast's work once torch is
imported. A forecast run from cron re-reads, every time, the history the model was
trained on plus what came since. The model therefore keeps, for every member and
training series, the encoder's state after all but the last step of that series'
training history (``steps``), and a sha256 of what those steps held: their first
time, values, covariates and static covariates (``fingerprints``). A forecast of a
series that starts at the same time with the same values takes the state and reads
on from there; any other series (an edited value, a history cut by ``--context``, a
series the model never saw) is read whole, as it always was. Either way the inputs
and the network are the same, so the forecasts are too, up to float32's rounding,
which can differ in the last bits between batches of other sizes.

Only torch's cells over TBPTT keep states (an IndRNN's state, a window model's
lookback and a bidirectional encoder are read whole), and only while they take
less than MAX_BYTES.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from rnncast.panel import Panel

WARM_CELLS = ("lstm", "gru", "rnn")
# A model keeps no states above this size: they grow with series x members x layers x
# hidden units, and past it the file would weigh more than the time it saves.
MAX_BYTES = 256 << 20
DIGEST_BYTES = 32


@dataclass(frozen=True)
class WarmStates:
    """Per training series s: the encoder state of every member after ``steps[s]``
    steps of its history, and the sha256 of those steps (``fingerprints``, (S, 32)).
    ``tensors``: "h" (and "c" for an LSTM), each (members, layers, S, hidden) float32."""

    steps: np.ndarray  # (S,) int64
    fingerprints: np.ndarray  # (S, 32) uint8
    tensors: dict[str, np.ndarray]
    network: np.ndarray  # (32,) uint8, network_digest of the weights that read them

    def arrays(self) -> dict[str, np.ndarray]:
        """What the model directory stores (warm.safetensors)."""
        return {"steps": self.steps, "fingerprints": self.fingerprints,
                "network": self.network, **self.tensors}  # fmt: skip

    def describe(self) -> dict[str, int]:
        """For ``rnncast inspect``: the series a forecast may start from, and the bytes."""
        held = sum(array.nbytes for array in self.tensors.values())
        return {"series": int((self.steps > 0).sum()), "bytes": int(held)}

    def read_by(self, network: Any) -> bool:
        """Whether these states are ``network``'s: a model whose network was replaced
        (one member of an ensemble taken alone, weights trained further) has none."""
        return bool((network_digest(network) == self.network).all())

    def usable(self, panel: Panel, positions: np.ndarray) -> np.ndarray:
        """(S,) int64 for the series of ``panel`` (``positions``: each one's training
        series, -1 for one the model never saw): the steps its forecast may skip, 0
        where its history does not begin with what the state read."""
        skip = np.zeros(panel.n_series, dtype=np.int64)
        known = np.flatnonzero(positions >= 0)
        steps = self.steps[positions[known]]
        # At least one step is read after the state: the summary the head needs.
        readable = (steps > 0) & (steps < panel.lengths[known])
        known, steps = known[readable], steps[readable]
        if known.size:
            found = fingerprints(panel.take(known), steps)
            same = (found == self.fingerprints[positions[known]]).all(axis=1)
            skip[known[same]] = steps[same]
        return skip

    def initial(
        self,
        member: int,
        series: np.ndarray,
        positions: np.ndarray,
        skip: np.ndarray,
        device: torch.device,
    ) -> tuple[torch.Tensor, ...] | None:
        """The state member ``member`` starts the batch ``series`` from (``skip`` and
        ``positions`` as ``usable`` takes and gives them): its kept state where skip is
        above 0, zeros elsewhere; None when no series of the batch has one."""
        import torch

        use = skip[series] > 0
        if not use.any():
            return None
        parts = []
        for name in ("h", "c") if "c" in self.tensors else ("h",):
            kept = self.tensors[name][member]  # (layers, S, hidden)
            state = np.zeros((kept.shape[0], series.shape[0], kept.shape[2]), dtype=np.float32)
            state[:, use] = kept[:, positions[series[use]]]
            parts.append(torch.from_numpy(state).to(device))
        return tuple(parts)

    @classmethod
    def joined(cls, shares: list[WarmStates]) -> WarmStates:
        """The states of consecutive shares of the series, read by the processes of one
        run with the same weights, as one reading of every series in that order."""
        if any((share.network != shares[0].network).any() for share in shares):
            raise ValueError("the shares of the warm states were read by different weights")
        return cls(
            np.concatenate([share.steps for share in shares]),
            np.concatenate([share.fingerprints for share in shares]),
            {name: np.concatenate([share.tensors[name] for share in shares], axis=2)
             for name in shares[0].tensors},  # (members, layers, S, hidden)
            shares[0].network,
        )  # fmt: skip

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], config: Any, n_series: int) -> WarmStates:
        """The states of ``arrays`` (what ``arrays()`` gave) for a model of ``config``
        and ``n_series`` training series. Raises ValueError saying what does not fit
        (names, dtypes, shapes, negative steps, values that are not finite)."""
        layers = (config.members, config.layers, n_series, config.hidden)
        states = ("h", "c") if config.cell == "lstm" else ("h",)
        expected = {"steps": ("int64", (n_series,)),
                    "fingerprints": ("uint8", (n_series, DIGEST_BYTES)),
                    "network": ("uint8", (DIGEST_BYTES,)),
                    **{name: ("float32", layers) for name in states}}  # fmt: skip
        if sorted(arrays) != sorted(expected):
            raise ValueError(f"it holds {sorted(arrays)}, and this model keeps {sorted(expected)}")
        for name, (dtype, shape) in expected.items():
            found = arrays[name]
            if str(found.dtype) != dtype or tuple(found.shape) != shape:
                raise ValueError(
                    f"{name} is {found.dtype} {tuple(found.shape)}, not {dtype} {shape}"
                )
        if (arrays["steps"] < 0).any() or not all(np.isfinite(arrays[n]).all() for n in states):
            raise ValueError("it holds negative step counts or values that are not finite")
        tensors = {name: arrays[name] for name in states}
        return cls(arrays["steps"], arrays["fingerprints"], tensors, arrays["network"])


def size_of(members: int, layers: int, series: int, hidden: int, cell: str) -> int:
    """Bytes of the states a model of these sizes would keep."""
    return members * layers * series * hidden * 4 * (2 if cell == "lstm" else 1)


def keeps_states(config: Any, training: Any, series: int) -> bool:
    """Whether a model of ``config`` trained with ``training`` keeps warm states."""
    return (
        config.cell in WARM_CELLS
        and training.strategy == "tbptt"
        and not config.bidirectional
        and size_of(config.members, config.layers, series, config.hidden, config.cell) <= MAX_BYTES
    )


def fingerprints(panel: Panel, steps: np.ndarray) -> np.ndarray:
    """(S, 32) uint8: the sha256 of the first ``steps[s]`` steps of each series: its
    first time, values and covariates, and its static covariates."""
    out = np.empty((panel.n_series, DIGEST_BYTES), dtype=np.uint8)
    statics = panel.statics
    for index in range(panel.n_series):
        begin = int(panel.begins[index])
        stop = begin + int(steps[index])
        digest = hashlib.sha256(np.int64(panel.start_times[index]).tobytes())
        digest.update(np.int64(steps[index]).tobytes())
        digest.update(panel.values[begin:stop].tobytes())
        digest.update(np.ascontiguousarray(panel.covariates[begin:stop]).tobytes())
        if statics is not None:
            digest.update(np.ascontiguousarray(statics.numeric[index], np.float64).tobytes())
            digest.update("\x1f".join(str(c) for c in statics.categories[index]).encode())
        out[index] = np.frombuffer(digest.digest(), dtype=np.uint8)
    return out


def network_digest(network: Any) -> np.ndarray:
    """(32,) uint8: the sha256 of a network's weights, names and values."""
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return np.frombuffer(digest.digest(), dtype=np.uint8).copy()


def states_after(encode: Any, block: Any, ends: np.ndarray, piece: int) -> tuple[torch.Tensor, ...]:
    """The encoder's state after positions [0, ``ends[b]``) of block row b (each end
    at least 1): a tuple of (layers, B, hidden) tensors. The block is read once, in
    pieces of at most ``piece`` positions that stop at every row's end."""
    borders = sorted({int(end) for end in ends} | set(range(piece, int(ends.max()), piece)))
    state = None
    kept: list[torch.Tensor] | None = None
    start = 0
    for stop in borders:
        _, state = encode(block.inputs(start, stop), block.codes, state)
        if kept is None:
            kept = [part.new_zeros(part.shape) for part in state]
        done = np.flatnonzero(ends == stop)
        for held, part in zip(kept, state, strict=True):
            held[:, done] = part[:, done]
        start = stop
    assert kept is not None  # ends are at least 1: one piece at least
    return tuple(kept)


def read_states(
    network: Any,
    lay_out: Callable[[Panel], Any],
    panel: Panel,
    config: Any,
    batch_size: int,
    series_per_lay_out: int = 10_000,
) -> WarmStates:
    """The states ``network`` (a Forecaster or an Ensemble, in eval mode) reaches after
    all but the last step of each series of ``panel``. ``lay_out`` gives the tensors
    of a part of the panel as the network reads them (forecasting.warm_states); parts of
    ``series_per_lay_out`` series at a time bound the memory, as a forecast's reads do."""
    import torch

    from rnncast.batches import encode_piece, gather_block

    steps = np.maximum(panel.lengths - 1, 0).astype(np.int64)
    networks = list(getattr(network, "members", [network]))
    names = ("h", "c") if config.cell == "lstm" else ("h",)
    shape = (len(networks), config.layers, panel.n_series, config.hidden)
    held = {name: np.zeros(shape, dtype=np.float32) for name in names}
    with torch.no_grad():
        for first in range(0, panel.n_series, series_per_lay_out):
            part = np.arange(first, min(first + series_per_lay_out, panel.n_series))
            tensors = lay_out(panel.take(part))
            order = np.argsort(steps[part], kind="stable")  # similar lengths, little padding
            order = order[steps[part][order] > 0]
            for begin in range(0, order.shape[0], batch_size):
                series = order[begin : begin + batch_size]  # positions within the part
                block = gather_block(tensors, series)
                for member, net in enumerate(networks):
                    piece = encode_piece(block, net.summary_width)
                    state = states_after(net.encode, block, steps[part][series], piece)
                    for name, found in zip(names, state, strict=True):
                        held[name][member][:, part[series]] = found.float().cpu().numpy()
    return WarmStates(steps, fingerprints(panel, steps), held, network_digest(network))
