"""The command's process ends at once after its work: the exit status SystemExit
would give, the exit handlers run and the streams flushed, the teardown skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Buffered streams, whatever this shell sets: what is left in them is what must be
# flushed before the process ends.
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=BUFFERED)  # fmt: skip


@pytest.mark.parametrize(
    ("code", "status", "told"),
    [("None", 0, ""), ("4", 4, ""), ("'went wrong'", 1, "went wrong\n")],
)
def test_the_status_is_the_one_system_exit_gives(code: str, status: int, told: str) -> None:
    ended = _python(f"from rnncast.process_exit import exit_process; exit_process({code})")
    assert (ended.returncode, ended.stderr) == (status, told)
    plain = _python(f"import sys; sys.exit({code})")
    assert (plain.returncode, plain.stderr) == (status, told)


TEARDOWN = """
import atexit, os, sys
from rnncast.process_exit import exit_process


class Held:
    def __del__(self):
        os.write(2, b"torn down")


held = Held()
atexit.register(lambda: print("handler ran", file=sys.stderr))
sys.stdout.write("written, not yet flushed")
{end}
"""


def test_handlers_run_and_output_is_flushed_but_the_teardown_is_skipped() -> None:
    ended = _python(TEARDOWN.format(end="exit_process(0)"))
    assert ended.returncode == 0
    assert ended.stdout == "written, not yet flushed"
    assert ended.stderr == "handler ran\n"
    # Python's own exit tears the module down, so the check above could fail.
    plain = _python(TEARDOWN.format(end="sys.exit(0)"))
    assert plain.stdout == "written, not yet flushed"
    assert plain.stderr == "handler ran\ntorn down"


def test_a_reader_gone_before_the_last_flush_is_status_120_as_in_python() -> None:
    code = ("import sys; from rnncast.process_exit import exit_process; sys.stdin.readline(); "
            "sys.stdout.write('late'); exit_process(0)")  # fmt: skip
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=BUFFERED)  # fmt: skip
    child.stdout.close()
    _, err = child.communicate("go\n", timeout=60)
    assert child.returncode == 120, err


COMMAND = """
import os, sys
from rnncast.cli import run


class Held:
    def __del__(self):
        os.write(2, b"torn down")


held = Held()
sys.argv = ["rnncast", *{arguments!r}]
run()
"""


@pytest.mark.parametrize(
    ("arguments", "status", "torn_down"),
    [(["--version"], 0, False), (["check", "absent.csv"], 3, True)],
)
def test_a_command_that_succeeded_ends_at_once_and_a_failed_one_as_python_does(
    arguments: list[str], status: int, torn_down: bool, tmp_path: Path
) -> None:
    ended = subprocess.run([sys.executable, "-c", COMMAND.format(arguments=arguments)],
                           capture_output=True, text=True, timeout=120, cwd=tmp_path,
                           env=BUFFERED)  # fmt: skip
    assert ended.returncode == status, ended.stderr
    assert ended.stderr.endswith("torn down") == torn_down, ended.stderr


def test_the_command_ends_with_its_documented_status(tmp_path: Path) -> None:
    missing = tmp_path / "absent.csv"
    ended = subprocess.run([sys.executable, "-m", "rnncast", "check", str(missing)],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ended.returncode == 3
    assert ended.stderr.startswith("error: ")
    assert "no such file or directory" in ended.stderr
    version = subprocess.run([sys.executable, "-m", "rnncast", "--version"],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert version.returncode == 0
    assert version.stdout.startswith("rnncast ")


def test_a_message_to_exit_with_is_told_once() -> None:
    ended = _python("import rnncast.cli as cli\n"
                    "def main():\n    raise SystemExit('went wrong')\n"
                    "cli.main = main\ncli.run()\n")  # fmt: skip
    assert (ended.returncode, ended.stderr) == (1, "went wrong\n")


def test_without_cpythons_handler_runner_the_exit_is_pythons_own() -> None:
    ended = _python(TEARDOWN.format(end="del atexit._run_exitfuncs\nexit_process(0)"))
    assert ended.returncode == 0
    assert ended.stdout == "written, not yet flushed"
    assert ended.stderr == "handler ran\ntorn down"
