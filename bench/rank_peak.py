"""``rnncast`` with its peak memory recorded: ``python bench/rank_peak.py FOLDER ARGS...``
runs ``rnncast ARGS...`` and, as the process exits, writes its peak RSS to
``FOLDER/rank-R.json`` (R: torchrun's RANK, 0 without it), for bench/distributed.py."""

from __future__ import annotations

import atexit
import json
import os
import resource
import sys
from pathlib import Path


def _record(folder: Path) -> None:
    rank = int(os.environ.get("RANK", "0"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    (folder / f"rank-{rank}.json").write_text(json.dumps({"rank": rank, "peak_rss_bytes": peak}))


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    atexit.register(_record, folder)
    sys.argv = ["rnncast", *sys.argv[2:]]
    from rnncast.cli import main

    main()
