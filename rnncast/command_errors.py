"""How every command ends when something goes wrong, in this one place: its logging is
set up first, errors meant for the user become one line on stderr and the exit code of
their class (errors.py), and anything else is a bug: exit 1, traceback only with
``--debug``. Under torchrun the processes of a run end together.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from rnncast import distributed, logs
from rnncast.errors import ConfigError, RnncastError
from rnncast.logs import LOG_FORMATS

Command = TypeVar("Command", bound=Callable[..., Any])
# The commands that run as one run over many processes under torchrun.
_DISTRIBUTED_COMMANDS = ("train", "forecast")


def handle_errors(command: Command) -> Command:
    """Set up logging and map exceptions to exit codes for every command, in this one
    place. Errors are log records too, so a JSON log carries them."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            launched = distributed.launched_world()
        except ConfigError as exc:
            launched, refused = distributed.SINGLE, exc
        else:
            refused = None
        logs.configure(kwargs.get("log_format", "text"), kwargs.get("quiet", False),
                       command=command.__name__,
                       rank=launched.rank if launched.is_distributed else None)  # fmt: skip
        if kwargs.get("log_format", "text") not in LOG_FORMATS:
            logs.fail("failed", f"--log-format must be one of {', '.join(LOG_FORMATS)}",
                      exit_code=2)  # fmt: skip
            raise typer.Exit(2)
        try:
            if refused is not None:
                raise refused
            if launched.is_distributed and command.__name__ not in _DISTRIBUTED_COMMANDS:
                raise ConfigError(f"rnncast {command.__name__} runs in one process; "
                                  "start it without torchrun")  # fmt: skip
            try:
                result = command(*args, **kwargs)
                distributed.finish()
            except RnncastError as exc:
                if distributed.every_process_raised(exc) and not kwargs.get("debug"):
                    _tell(exc)
                    distributed.wait_for_every_process()
                raise
            finally:
                # Whatever ended the command, leave the group while the interpreter is
                # whole: gloo's threads still hold work otherwise, and finalising it at
                # exit aborts the process (SIGABRT) after its error was already told.
                distributed.leave()
            return result
        except RnncastError as exc:
            if kwargs.get("debug"):
                raise
            if not getattr(exc, "told", False):
                _tell(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            logs.fail("failed", "interrupted", error="KeyboardInterrupt", exit_code=130)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if kwargs.get("debug"):
                raise
            logs.fail(
                "failed",
                f"unexpected error: {type(exc).__name__}: {exc}\nThis is a bug in rnncast; "
                "rerun with --debug for the traceback and report it.",
                error=type(exc).__name__, exit_code=1,
            )  # fmt: skip
            raise typer.Exit(1) from None

    return run  # type: ignore[return-value]


def _tell(error: RnncastError) -> None:
    """The error's one line (a log record too), once."""
    logs.fail("failed", str(error), error=type(error).__name__, exit_code=error.exit_code)
    error.told = True  # type: ignore[attr-defined]
