"""What a run tells whoever operates it, on stderr: plain lines for people, or one
JSON object per line for log collectors (``--log-format json``).

The library logs through the standard ``logging`` module under the "rnncast"
logger and never prints. A record may carry an ``event`` name and ``fields``
(``extra={"event": ..., "fields": {...}}``, or ``note``/``warn`` here); the JSON
format writes them as

    {"time": "2026-11-22T03:00:01.250Z", "level": "info", "event": "trained",
     "command": "train", "message": "...", "best_epoch": 12, ...}

``time`` is UTC, ``level`` one of debug, info, warning, error; the fields of each
event are listed in the README. rich is imported only for the text format.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from typing import Any

LOG_FORMATS = ("text", "json")
LOGGER = "rnncast"
# Keys every JSON line has; an event's fields never overwrite them.
_RESERVED = ("time", "level", "event", "command", "pid", "message", "rank")


def stderr_console():
    from rich.console import Console

    # soft_wrap: a message stays one line, whatever the width, for logs and grep.
    return Console(stderr=True, highlight=False, soft_wrap=True)


def escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def configure(
    log_format: str = "text", quiet: bool = False, command: str = "", rank: int | None = None
) -> None:
    """Send the "rnncast" logger's records to stderr in ``log_format``: warnings and
    errors always, the rest unless ``quiet``. Called once per CLI command.

    ``rank``: this process's rank in a run under torchrun (None: a run of one). Rank 0
    speaks for the run; the others log only warnings and errors, each line naming
    its rank ("rank 3: warning: ..."; a "rank" field in JSON, on every rank's lines)."""
    if log_format not in LOG_FORMATS:
        log_format = "text"  # the option's own check reports the bad value
    logger = logging.getLogger(LOGGER)
    handler = _JsonHandler(command, rank) if log_format == "json" else _TextHandler(rank)
    logger.handlers = [handler]
    logger.setLevel(logging.WARNING if quiet or (rank or 0) > 0 else logging.INFO)
    logger.propagate = False


def is_json() -> bool:
    return any(isinstance(h, _JsonHandler) for h in logging.getLogger(LOGGER).handlers)


def note(event: str, message: str, **fields: Any) -> None:
    """An info line: what happened, for the operator."""
    logging.getLogger(LOGGER).info(message, extra={"event": event, "fields": fields})


def warn(event: str, message: str, **fields: Any) -> None:
    logging.getLogger(LOGGER).warning(message, extra={"event": event, "fields": fields})


def fail(event: str, message: str, **fields: Any) -> None:
    logging.getLogger(LOGGER).error(message, extra={"event": event, "fields": fields})


class _TextHandler(logging.Handler):
    """Lines for people: in colour through rich on a terminal; plain text otherwise
    (cron's mail, a log file), where rich would print the same characters but cost
    a cron job its import, 0.1 s, on every run."""

    def __init__(self, rank: int | None = None) -> None:
        super().__init__()
        self.rank = f"rank {rank}: " if rank else ""

    def emit(self, record: logging.LogRecord) -> None:
        level = _level_word(record.levelno)
        if not colours_on_stderr():
            sys.stderr.write(f"{self.rank}{level + ': ' if level else ''}{record.getMessage()}\n")
            sys.stderr.flush()
            return
        style = {"error": "bold red", "warning": "yellow"}.get(level)
        prefix = f"[{style}]{level}:[/] " if style else ""
        stderr_console().print(self.rank + prefix + escape(record.getMessage()))


def _level_word(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "error"
    return "warning" if levelno >= logging.WARNING else ""


def colours_on_stderr() -> bool:
    """Whether stderr is a terminal that wants colours (NO_COLOR unset): rich draws
    there; everywhere else rnncast writes plain lines."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _JsonHandler(logging.Handler):
    def __init__(self, command: str, rank: int | None = None) -> None:
        super().__init__()
        self.command = command
        self.rank = rank

    def emit(self, record: logging.LogRecord) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": getattr(record, "event", None) or _default_event(record),
            "command": self.command,
            "pid": os.getpid(),
            "message": record.getMessage(),
        }
        if self.rank is not None:
            line["rank"] = self.rank
        fields = getattr(record, "fields", None) or {}
        line.update({k: _plain(v) for k, v in fields.items() if k not in _RESERVED})
        sys.stderr.write(json.dumps(line, allow_nan=False, default=str) + "\n")
        sys.stderr.flush()


def _default_event(record: logging.LogRecord) -> str:
    return "warning" if record.levelno >= logging.WARNING else "log"


def _plain(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _plain(value.item())
    return value
