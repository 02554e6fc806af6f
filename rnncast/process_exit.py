"""How the ``rnncast`` command's process ends once its work is done: at once.

After a cold M4 Hourly forecast had written its file and returned, the interpreter
took another 0.5 to 0.7 s to tear itself down: freeing torch's, pandas' and
pyarrow's objects one by one and running C++ static destructors, while the exit
handlers themselves took 6 ms. The operating system frees a process's memory
whole, so that time bought nothing, and every cron run paid it. Under torchrun the
same teardown is where gloo's leftover state has aborted a process (SIGABRT) after
it had left its process group. So a command that succeeded runs the exit handlers
(logging's flush, finalisers of temporary files), flushes its streams and ends with
``os._exit`` (cli.run). A failed command, and code that calls ``cli.main`` itself,
keep Python's ordinary exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import NoReturn


def exit_process(code: object) -> NoReturn:
    """End this process with ``code`` as ``SystemExit`` reads it (None: 0, an int:
    itself, anything else: printed on stderr, then 1), after the exit handlers ran
    and stdout and stderr were flushed, without the interpreter's teardown."""
    status = exit_status(code)
    if code is not None and not isinstance(code, int):
        with contextlib.suppress(OSError, ValueError):
            print(code, file=sys.stderr)
    # Registered handlers are part of the program's contract (logging flushes its
    # handlers, tempfile removes what it made); only the teardown is skipped. The
    # function that runs them is CPython's own, not public: without it, exit as usual.
    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    if run_handlers is None:
        sys.exit(status)
    run_handlers()
    if not _flushed(sys.stdout) and status == 0:
        status = 120  # what Python itself returns when stdout cannot be flushed at exit
    _flushed(sys.stderr)
    os._exit(status)


def exit_status(code: object) -> int:
    """The status ``SystemExit(code)`` ends a process with."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _flushed(stream: object) -> bool:
    """Whether ``stream`` (sys.stdout or sys.stderr) holds nothing unwritten now: a
    reader that went away (a closed pipe) makes it False. A stream that is None or
    closed has nothing to write."""
    if stream is None or getattr(stream, "closed", False):
        return True
    try:
        stream.flush()  # type: ignore[attr-defined]
    except OSError:
        return False
    return True
