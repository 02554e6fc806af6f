"""Command lines that Click refuses (a misspelt flag, a bad value, a broken --config
file): reported in the shape of every other rnncast error.

Typer draws these in a rich box as wide as the terminal. A box belongs on a
terminal; in a cron log it is four lines of frame, and where its text wraps depends
on the width of a terminal that is not there. Off a terminal (stderr not a tty, or
``NO_COLOR`` set) a usage error is therefore an ``error:`` line and a usage line,
and with ``--log-format json`` one JSON object like the other errors.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

from typer.core import TyperGroup

from rnncast import logs

USAGE_EXIT_CODE = 2


class RnncastGroup(TyperGroup):
    """The top-level command group, reporting usage errors itself."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        arguments = list(sys.argv[1:] if args is None else args)
        try:
            # Not standalone: Click hands its exceptions to us instead of drawing them.
            code = super().main(arguments, prog_name, complete_var, standalone_mode=False, **extra)
        except Exception as exc:
            if not _is_click_error(exc):
                raise
            code = report_usage_error(exc, arguments)
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _is_click_error(exc: BaseException) -> bool:
    # Duck-typed: Typer vendors Click in newer releases and imports it in older ones.
    return hasattr(exc, "format_message") and isinstance(getattr(exc, "exit_code", None), int)


def report_usage_error(exc: Any, arguments: list[str]) -> int:
    """Write ``exc`` to stderr as the run's log format asks; its exit code."""
    code = int(exc.exit_code)
    if type(exc).__name__ == "NoArgsIsHelpError":
        return code  # the help was already printed, as asked for by no arguments
    if type(exc).__name__ == "Abort":
        sys.stderr.write("error: aborted\n")
        return 1
    context = getattr(exc, "ctx", None)
    message = describe_usage_error(exc)
    usage = _usage_hint(context)
    command = context.info_name if context is not None and context.parent is not None else ""
    if _wants_json(arguments, context):
        logs.configure("json", command=command)
        logs.fail("failed", message, error="UsageError", exit_code=code, usage=usage)
    elif logs.colours_on_stderr():
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
    else:
        sys.stderr.write(f"error: {message}\n" + (f"{usage}\n" if usage else ""))
    return code


def describe_usage_error(exc: Any) -> str:
    """Click's message on one line, in rnncast's words: ``no such option --horizn
    (did you mean --horizon?)``."""
    option = getattr(exc, "option_name", None)
    if type(exc).__name__ == "NoSuchOption" and option:
        possibilities = list(getattr(exc, "possibilities", None) or ())  # closest first
        hint = f" (did you mean {' or '.join(possibilities)}?)" if possibilities else ""
        return f"no such option {option}{hint}"
    text = " ".join(str(exc.format_message()).split())
    text = text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text
    text = re.sub(r"\.? Did you mean (.+?)\??$", r" (did you mean \1?)", text)
    return text.removesuffix(".")


def _usage_hint(context: Any) -> str:
    if context is None:
        return ""
    usage = " ".join(context.get_usage().split())
    usage = usage[:1].lower() + usage[1:]
    return f"{usage} (see {context.command_path} --help)"


def _wants_json(arguments: list[str], context: Any) -> bool:
    """``--log-format json`` on the command line (either spelling), or in the --config
    file read before the mistake."""
    for position, argument in enumerate(arguments):
        if argument == "--log-format=json":
            return True
        if argument == "--log-format" and arguments[position + 1 : position + 2] == ["json"]:
            return True
    default_map = getattr(context, "default_map", None) or {}
    return default_map.get("log_format") == "json"
