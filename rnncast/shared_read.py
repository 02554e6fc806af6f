"""Under torchrun, the data of a training is read once: rank 0 reads and validates it,
and every other process receives the Panel it built.

Reading costs many times the Panel it leaves: a 2,048-series Parquet file of 1,000
hours each makes a Panel of 8 MB, and its read takes about 190 MB more at its peak, of
which about 140 MB stay with the process afterwards. When every process read the
data, every one paid that, and a machine running eight of them paid it eight times;
the data's folder, often on a network file system, was read as many times too. Now
one process per run pays it, and the others hold the Panel alone.

The arrays travel through torch's own collectives, in pieces of ``PIECE_BYTES``: the
receiving processes fill their arrays in place, and on NCCL a GPU holds one piece at a
time. The rest of the Panel (ids, series bounds, frequency, statics, the ingest
report) is small and goes as one object.

A read that fails on rank 0 with a user-facing error stops every process with its
exit code, each naming rank 0's error (distributed.raise_together).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from rnncast import distributed
from rnncast.errors import RnncastError

if TYPE_CHECKING:
    import numpy as np

    from rnncast.panel import Panel

# The Panel's arrays that grow with the steps; the rest grows with the series at most.
LARGE_ARRAYS = ("values", "covariates", "ahead")
PIECE_BYTES = 1 << 26


def read_once(read: Callable[[], Panel]) -> Panel:
    """``read()`` in a single process; under torchrun, ``read()`` on rank 0 alone and
    its Panel on every process. A collective: every process calls it."""
    current = distributed.world()
    if not current.is_distributed:
        return read()
    panel, failure = None, None
    if current.is_main:
        try:
            panel = read()
        except RnncastError as exc:
            failure = exc
    distributed.raise_together(failure)
    return _panel_from_main(panel)


def _panel_from_main(panel: Panel | None) -> Panel:
    import numpy as np

    from rnncast.panel import Panel

    outline: dict[str, Any] | None = None
    if panel is not None:
        small = {f.name: getattr(panel, f.name) for f in fields(panel)
                 if f.name not in LARGE_ARRAYS}  # fmt: skip
        shapes = {name: None if getattr(panel, name) is None
                  else (getattr(panel, name).shape, getattr(panel, name).dtype.str)
                  for name in LARGE_ARRAYS}  # fmt: skip
        outline = {"small": small, "shapes": shapes}
    outline = distributed.from_main(outline)
    large: dict[str, np.ndarray | None] = {}
    for name, layout in outline["shapes"].items():
        if layout is None:
            large[name] = None
            continue
        array = (np.ascontiguousarray(getattr(panel, name)) if panel is not None
                 else np.empty(layout[0], dtype=np.dtype(layout[1])))  # fmt: skip
        broadcast_array(array)
        large[name] = array
    if panel is not None:
        return panel
    return Panel(**outline["small"], **large)


def broadcast_array(array: np.ndarray) -> None:
    """Rank 0's ``array`` into the same-shaped, C-contiguous ``array`` of every other
    process, in place, a piece at a time. A collective."""
    import numpy as np
    import torch
    import torch.distributed as dist

    flat = array.reshape(-1).view(np.uint8)
    on_gpu = dist.get_backend() == "nccl"
    for begin in range(0, flat.shape[0], PIECE_BYTES):
        with warnings.catch_warnings():
            # Rank 0's Panel is read-only; a broadcast only reads the sender's piece.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writ")
            piece = torch.from_numpy(flat[begin : begin + PIECE_BYTES])
        if not on_gpu:
            distributed.guarded(lambda piece=piece: dist.broadcast(piece, src=0))
            continue
        moved = piece.to("cuda")
        distributed.guarded(lambda moved=moved: dist.broadcast(moved, src=0))
        if not distributed.world().is_main:
            piece.copy_(moved.cpu())
