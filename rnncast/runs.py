"""What one command run holds around its work: the lock on its output (rank 0's
alone under torchrun), the signals that ask it to stop, the checks that its
output neither replaces the data it reads nor lands on a file where a folder goes,
and the warnings of the data it read.
"""

from __future__ import annotations

import contextlib
from typing import Any

from rnncast import distributed, logs
from rnncast.errors import ConfigError, Interrupted, RnncastError


def refuse_overwriting_data(out: str, data: str) -> None:
    """An output never replaces, or lands among, the data it is computed from: a typo
    in a crontab must not destroy the input, nor feed forecasts to the next read."""
    from pathlib import Path

    from rnncast.io import resolve_source

    if out == "-":
        return
    try:
        source = resolve_source(data)
    except RnncastError:
        return  # reading DATA reports that, with its own message
    target = Path(out).resolve()
    for path in source.paths:
        if path.resolve() == target or target in path.resolve().parents:
            raise ConfigError(f"--out {out} would replace the data it is computed from "
                              f"({path}); write to another path")  # fmt: skip
    if source.root is not None and source.root.resolve() in target.parents:
        raise ConfigError(f"--out {out} lies inside the dataset directory {source.root}, whose "
                          "next read would take it for data; write outside it")  # fmt: skip


def log_data_warnings(panel: Any) -> None:
    """What reading the data found and worked around (series skipped, series mostly
    filled), a warning each."""
    for warning in panel.ingest.warnings:
        logs.warn("data_warning", warning)


def check_report_folder(out: str) -> None:
    from pathlib import Path

    if Path(out).exists() and not Path(out).is_dir():
        raise ConfigError(f"--out {out} is a file; name a folder for the report")


@contextlib.contextmanager
def run_lock(out: str, current: distributed.World):
    """The lock on ``out`` for the block: held by rank 0 alone under torchrun, and
    every process stops (Busy, exit 7) when rank 0 cannot take it."""
    from rnncast.writing import holding_lock

    if not current.is_distributed:
        with holding_lock(out):
            yield
        return
    with contextlib.ExitStack() as held:
        refused = None
        if current.is_main:
            try:
                held.enter_context(holding_lock(out))
            except RnncastError as exc:
                refused = exc
        distributed.raise_together(refused)
        yield


@contextlib.contextmanager
def stop_on_signals():
    """Turn the first SIGINT or SIGTERM into a polite request to stop (the loop saves a
    checkpoint and ends); a second one interrupts at once (Interrupted, 128 + N)."""
    import signal

    received: list[str] = []

    def request_stop(number: int, frame: Any) -> None:
        name = signal.Signals(number).name
        if received:
            raise Interrupted(f"stopped by a second {name}", signal_number=number)
        received.append(name)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: received[0] if received else None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
