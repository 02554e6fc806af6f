"""A Panel dealt out among the processes of a training under torchrun: each process
holds a consecutive share of the series, and the shares in rank order make the whole,
in the order one process reads it. No process holds every series while it trains.

What a choice needs of the whole (sizes, scales, weights, the data's fingerprint) is
agreed here from per-series facts of every share, joined in rank order, so that every
process makes the choice one process makes from the whole Panel, with the same
numbers. No process ever holds the whole Panel: to score the test part, rank 0
receives each series' recent history only (assessment.assemble_across_shares).

In one process the share is the whole, and every function returns what the Panel
itself says: single-process code takes no branch of its own and pays nothing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from rnncast import distributed
from rnncast.errors import ConfigError

if TYPE_CHECKING:
    from rnncast.assembly import IngestReport
    from rnncast.panel import Panel
    from rnncast.statics import Statics

# Arrays travel between processes in pieces of this many bytes, so that no process
# holds a second copy of a large array in torch's buffers.
PIECE_BYTES = 1 << 26


def joined(values: np.ndarray) -> np.ndarray:
    """Every process's per-series ``values`` joined in rank order, on every process:
    the array one process computes over the whole Panel. A collective."""
    if not distributed.world().is_distributed:
        return values
    return np.concatenate(distributed.gather_to_all(np.asarray(values)))


def lengths(panel: Panel) -> np.ndarray:
    """(S,) the steps of every series of the whole Panel."""
    return joined(panel.lengths)


def first_series(panel: Panel) -> int:
    """The position in the whole Panel of this process's first series."""
    if not distributed.world().is_distributed:
        return 0
    counts = distributed.gather_to_all(panel.n_series)
    return int(sum(counts[: distributed.world().rank]))


def all_true(flag: bool) -> bool:
    """Whether ``flag`` holds in every process."""
    return not distributed.any_true(not flag)


def latest(value: int) -> int:
    """The largest of every process's ``value``, exactly (nanoseconds do not fit
    float64's digits, which the sums of distributed.max_numbers travel in)."""
    return int(max(distributed.gather_to_all(int(value))))


def keep_long_enough(panel: Panel, needed: int, what: str) -> Panel:
    """panel.keep_long_enough over the whole Panel: this share's series with at least
    ``needed`` steps. DataError (in every process) when no series of any share has
    them. Where a share keeps none, the series kept are dealt out again (through rank
    0, which then holds them all for a while); ConfigError when there are fewer of them
    than processes."""
    from rnncast.panel import keep_long_enough as keep_own
    from rnncast.panel import refuse_none_long_enough, warn_too_short

    if not distributed.world().is_distributed:
        return keep_own(panel, needed, what)
    longest = latest(int(panel.lengths.max()))
    if longest < needed:
        raise distributed.agreed(refuse_none_long_enough(longest, needed, what))
    short = panel.lengths < needed
    if short.all():
        warn_too_short(panel, short, needed, what)
    kept = None if short.all() else keep_own(panel, needed, what)
    if not all_true(kept is not None):
        # A process without a series could not train: the kept ones are dealt anew.
        kept = deal(joined_on_main(kept))
    assert kept is not None
    return kept


def column_moments(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and standard deviation over the rows of every process
    (float64): the moments of each share, combined by their counts."""
    if not distributed.world().is_distributed:
        return columns.mean(axis=0), columns.std(axis=0)
    count = columns.shape[0]
    mean = columns.mean(axis=0) if count else np.zeros(columns.shape[1])
    squares = ((columns - mean) ** 2).sum(axis=0)
    shares = distributed.gather_to_all((count, mean, squares))
    total = sum(share[0] for share in shares)
    middle = sum(share[0] * share[1] for share in shares) / max(total, 1)
    spread = sum(share[2] + share[0] * (share[1] - middle) ** 2 for share in shares)
    return middle, np.sqrt(spread / max(total, 1))


def joined_statics(statics: Statics | None) -> Statics | None:
    """The static covariates of every series of the whole Panel."""
    if statics is None or not distributed.world().is_distributed:
        return statics
    shares = distributed.gather_to_all((statics.numeric, statics.categories))
    return replace(statics, numeric=np.concatenate([share[0] for share in shares]),
                   categories=np.concatenate([share[1] for share in shares]))  # fmt: skip


def balanced_bounds(lengths: np.ndarray, processes: int) -> np.ndarray:
    """(processes + 1,) where each consecutive share of series begins and ends: each
    share about 1 / ``processes`` of the steps, and at least one series. ConfigError
    when there are fewer series than processes."""
    count = lengths.shape[0]
    if count < processes:
        raise ConfigError(
            f"{count} series cannot be shared among {processes} processes; "
            f"start at most {count} (torchrun --nproc-per-node)"
        )
    steps = np.cumsum(lengths)
    wanted = steps[-1] * np.arange(1, processes) / processes
    cuts = np.searchsorted(steps, wanted, side="left") + 1
    bounds = [0]
    for share, cut in enumerate(cuts, start=1):
        # Every share keeps a series, and leaves one to each share after it.
        bounds.append(int(np.clip(cut, bounds[-1] + 1, count - (processes - share))))
    return np.array([*bounds, count], dtype=np.int64)


def deal(whole: Panel | None, *, empty_shares: bool = False) -> Panel | None:
    """Rank 0's ``whole`` Panel dealt out: each process's consecutive share, about
    1 / N of the steps (balanced_bounds), in its own buffers; rank 0 keeps its own
    share only. The others pass None. With fewer series than processes, ConfigError
    in every process; or, with ``empty_shares``, one series each to the first and
    None to the rest. A collective."""
    current = distributed.world()
    if not current.is_distributed:
        assert whole is not None
        return whole
    import torch.distributed as dist

    bounds, failure = None, None
    if current.is_main:
        assert whole is not None
        try:
            count = whole.n_series
            if empty_shares and count < current.size:
                bounds = np.minimum(np.arange(current.size + 1), count)
            else:
                bounds = balanced_bounds(whole.lengths, current.size)
        except ConfigError as exc:
            failure = exc
    distributed.raise_together(failure)
    outlines: list[Any] | None = None
    if current.is_main:
        assert whole is not None and bounds is not None
        parts = [whole.take(np.arange(bounds[r], bounds[r + 1])) if bounds[r + 1] > bounds[r]
                 else None for r in range(current.size)]  # fmt: skip
        outlines = [None if part is None else _outline(part) for part in parts]
    received: list[Any] = [None]
    distributed.guarded(lambda: dist.scatter_object_list(received, outlines, src=0))
    outline = received[0]
    if current.is_main:
        assert whole is not None and bounds is not None
        for rank, part in enumerate(parts[1:], start=1):
            if part is not None:
                _send(whole.values[part.step_rows()], rank)
                _send(whole.covariates[part.step_rows()], rank)
        own = parts[0]
        assert own is not None
        return _from_arrays(outline, whole.values[own.step_rows()],
                            whole.covariates[own.step_rows()])  # fmt: skip
    if outline is None:
        return None
    steps = int(outline["lengths"].sum())
    values = np.empty(steps, dtype=np.float32)
    covariates = np.empty((steps, len(outline["template"]["covariate_names"])), np.float32)
    _receive(values, 0)
    _receive(covariates, 0)
    return _from_arrays(outline, values, covariates)


def joined_on_main(panel: Panel | None) -> Panel | None:
    """Every process's ``panel`` (None: no series) joined into one, in rank order, on
    rank 0 alone (None on the others): under torchrun the series' recent histories
    that a report draws, or shares to deal out again. A collective."""
    current = distributed.world()
    if not current.is_distributed:
        return panel
    outlines = distributed.gather_to_main(None if panel is None else _outline(panel))
    if not current.is_main:
        if panel is not None:
            _send(panel.values[panel.step_rows()], 0)
            _send(panel.covariates[panel.step_rows()], 0)
        return None
    assert outlines is not None
    held = [(rank, outline) for rank, outline in enumerate(outlines) if outline is not None]
    columns = len(held[0][1]["template"]["covariate_names"])
    values, covariates = [], []
    for rank, outline in held:
        if rank == 0:
            assert panel is not None
            values.append(panel.values[panel.step_rows()])
            covariates.append(panel.covariates[panel.step_rows()])
            continue
        steps = int(outline["lengths"].sum())
        values.append(np.empty(steps, dtype=np.float32))
        covariates.append(np.empty((steps, columns), np.float32))
        _receive(values[-1], rank)
        _receive(covariates[-1], rank)
    parts = [outline for _, outline in held]
    joined_outline = _joined_outline(parts, parts[0]["ingest"])
    return _from_arrays(joined_outline, np.concatenate(values), np.concatenate(covariates))


def concatenated(panels: list[Panel], ingest: IngestReport | None) -> Panel:
    """One Panel of ``panels``' series in order, in buffers of its own."""
    values = np.concatenate([p.values[p.step_rows()] for p in panels])
    covariates = np.concatenate([p.covariates[p.step_rows()] for p in panels])
    return _from_arrays(_joined_outline([_outline(p) for p in panels], ingest), values,
                        covariates)  # fmt: skip


def _joined_outline(parts: list[dict[str, Any]], ingest: IngestReport | None) -> dict[str, Any]:
    """The outline (_outline) of the series of ``parts`` one after another."""
    first = parts[0]
    return {
        "ids": np.concatenate([o["ids"] for o in parts]),
        "lengths": np.concatenate([o["lengths"] for o in parts]),
        "start_times": np.concatenate([o["start_times"] for o in parts]),
        "ahead": None if first["ahead"] is None
        else np.concatenate([o["ahead"] for o in parts]),
        "statics": None if first["statics"] is None else replace(
            first["statics"], numeric=np.concatenate([o["statics"].numeric for o in parts]),
            categories=np.concatenate([o["statics"].categories for o in parts])),
        "ingest": ingest,
        "template": first["template"],
    }  # fmt: skip


def _template(panel: Panel) -> dict[str, Any]:
    return {"freq": panel.freq, "tz": panel.tz, "covariate_names": panel.covariate_names,
            "future_covariates": panel.future_covariates,
            "target_name": panel.target_name}  # fmt: skip


def _outline(panel: Panel) -> dict[str, Any]:
    """All of a Panel but its rows: small enough to travel as an object."""
    return {"ids": panel.ids, "lengths": panel.lengths, "start_times": panel.start_times,
            "ahead": panel.ahead, "statics": panel.statics, "ingest": panel.ingest,
            "template": _template(panel)}  # fmt: skip


def _from_arrays(outline: dict[str, Any], values: np.ndarray, covariates: np.ndarray) -> Panel:
    from rnncast.panel import Panel

    lengths = np.asarray(outline["lengths"], dtype=np.int64)
    ends = np.cumsum(lengths)
    return Panel(
        ids=outline["ids"], values=np.ascontiguousarray(values, dtype=np.float32),
        begins=ends - lengths, ends=ends,
        start_times=np.asarray(outline["start_times"], dtype=np.int64),
        covariates=np.ascontiguousarray(covariates, dtype=np.float32),
        ingest=outline["ingest"], ahead=outline["ahead"], statics=outline["statics"],
        **outline["template"],
    )  # fmt: skip


def _pieces(array: np.ndarray) -> list[Any]:
    import torch

    flat = array.reshape(-1).view(np.uint8)
    return [torch.from_numpy(flat[begin : begin + PIECE_BYTES])
            for begin in range(0, flat.shape[0], PIECE_BYTES)]  # fmt: skip


def _send(array: np.ndarray, destination: int) -> None:
    """``array`` to process ``destination``, which receives it (_receive)."""
    import torch.distributed as dist

    on_gpu = dist.get_backend() == "nccl"
    for piece in _pieces(np.ascontiguousarray(array)):
        moved = piece.to("cuda") if on_gpu else piece
        distributed.guarded(lambda moved=moved: dist.send(moved, dst=destination))


def _receive(array: np.ndarray, source: int) -> None:
    """Process ``source``'s array (_send) into ``array``, C-contiguous, in place."""
    import torch
    import torch.distributed as dist

    on_gpu = dist.get_backend() == "nccl"
    for piece in _pieces(array):
        moved = torch.empty_like(piece, device="cuda") if on_gpu else piece
        distributed.guarded(lambda moved=moved: dist.recv(moved, src=source))
        if on_gpu:
            piece.copy_(moved.cpu())
