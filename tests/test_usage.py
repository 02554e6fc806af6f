"""Usage errors (issue 11): plain lines off a terminal, one JSON object with
``--log-format json``, rich's box on a terminal only; and option values out of range
refused with exit 2 before any work.

Run through real processes with stderr sent to a file or a pseudo-terminal, as cron
and a person would run them, not only through CliRunner.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rnncast.cli import app

REPO = Path(__file__).resolve().parent.parent
LOAD = str(REPO / "sample_data" / "load_hourly.csv")
runner = CliRunner()
# The console script, as a crontab names it (its usage line says "rnncast").
SCRIPT = Path(sys.executable).with_name("rnncast")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "rnncast"]
PROGRAM = "rnncast" if SCRIPT.exists() else "python -m rnncast"


def run_logged(args: list[str], tmp_path: Path, columns: int = 40, **env: str) -> tuple[int, str]:
    """Run rnncast with stderr going to a file, as under cron; (exit code, stderr)."""
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        completed = subprocess.run(
            [*COMMAND, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            env={**os.environ, "COLUMNS": str(columns), **env}, check=False, timeout=60,
        )  # fmt: skip
    return completed.returncode, log.read_text()


def run_on_terminal(args: list[str], columns: int, **env: str) -> tuple[int, str]:
    """Run rnncast with stderr on a pseudo-terminal ``columns`` wide; (exit code, text)."""
    controller, terminal = pty.openpty()
    completed = subprocess.Popen(
        [*COMMAND, *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal,
        env={**os.environ, "COLUMNS": str(columns), "TERM": "xterm", **env},
    )  # fmt: skip
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return completed.wait(timeout=60), b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("columns", [20, 200])
def test_a_misspelt_flag_under_cron_is_two_plain_lines(tmp_path: Path, columns: int) -> None:
    code, stderr = run_logged(
        ["train", LOAD, "--horizn", "24", "--out", str(tmp_path / "m")], tmp_path, columns
    )
    assert code == 2
    lines = stderr.splitlines()
    assert len(lines) == 2, stderr
    assert lines[0].startswith("error: no such option --horizn (did you mean --horizon")
    assert lines[1] == f"usage: {PROGRAM} train [OPTIONS] {{DATA}} (see {PROGRAM} train --help)"
    assert not (tmp_path / "m").exists()


def test_a_usage_error_with_json_logs_is_one_object(tmp_path: Path) -> None:
    code, stderr = run_logged(
        ["train", LOAD, "--log-format", "json", "--horizon", "0", "--out", str(tmp_path / "m")],
        tmp_path,
    )
    assert code == 2
    (line,) = stderr.splitlines()
    record = json.loads(line)
    assert record["level"] == "error"
    assert record["event"] == "failed"
    assert record["command"] == "train"
    assert record["exit_code"] == 2
    assert "--horizon" in record["message"]
    assert record["usage"].startswith(f"usage: {PROGRAM} train")


def test_json_logs_asked_for_in_the_config_file_cover_usage_errors(tmp_path: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('log_format = "json"\n')
    code, stderr = run_logged(["check", LOAD, "--config", str(config), "--fill", "x"], tmp_path)
    assert code == 2
    record = json.loads(stderr)
    assert record["message"] == "fill must be one of interpolate, ffill, zero, error; got 'x'"


def test_no_color_means_plain_lines_even_on_a_terminal() -> None:
    code, text = run_on_terminal(["check", LOAD, "--horizn", "3"], columns=40, NO_COLOR="1")
    assert code == 2
    assert text.replace("\r\n", "\n").splitlines()[0] == (
        "error: no such option --horizn (did you mean --horizon?)"
    )


def test_on_a_narrow_terminal_the_box_stays_and_wraps_the_whole_message() -> None:
    # The protection is tested here: rich's box wraps at 40 columns, and all of the
    # message is still in it.
    code, text = run_on_terminal(["check", LOAD, "--horizn", "3"], columns=40)
    assert code == 2
    assert "╭" in text and "╰" in text
    assert max(len(line) for line in _visible(text).splitlines()) <= 40
    flat = " ".join(_visible(text).replace("│", " ").split())
    assert "No such option: --horizn" in flat
    assert "--horizon" in flat


def _visible(text: str) -> str:
    """Terminal output without colour codes and carriage returns."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text).replace("\r", "")


def test_no_arguments_prints_the_help() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "rnncast"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 2
    assert "train" in completed.stdout


def test_an_unknown_command_is_named_with_the_likely_one(tmp_path: Path) -> None:
    code, stderr = run_logged(["chek", LOAD], tmp_path)
    assert code == 2
    assert stderr.splitlines()[0] == "error: no such command 'chek' (did you mean 'check'?)"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--seed", "-1"], "seed must be between 0 and 9,223,372,036,854,775,807, got -1"),
        (["--seed", str(2**70)], "seed must be between 0 and 9,223,372,036,854,775,807, got "),
        (["--threads", "1000000000"], "threads must be between 1 and 1,024, got 1,000,000,000"),
        (["--threads", "0"], "threads must be between 1 and 1,024, got 0"),
        (["--device", "tpu"], "'tpu' is not one of auto, cpu, cuda, mps"),
    ],
)
def test_options_out_of_range_exit_2_before_reading(
    tmp_path: Path, option: list[str], message: str
) -> None:
    missing = str(tmp_path / "no-such-data.csv")  # never read: options are checked first
    result = runner.invoke(app, ["train", missing, "--horizon", "3", "--out",
                                 str(tmp_path / "m"), *option])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.count("error:") == 1


def test_forecast_refuses_an_unknown_device_before_loading(tmp_path: Path) -> None:
    result = runner.invoke(app, ["forecast", LOAD, "--model", str(tmp_path / "none"),
                                 "--out", str(tmp_path / "f.csv"), "--device", "tpu"])  # fmt: skip
    assert result.exit_code == 2
    assert "'tpu' is not one of auto, cpu, cuda, mps" in result.stderr


def test_a_network_too_big_for_memory_is_refused_before_allocation(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", LOAD, "--horizon", "3", "--hidden", "100000",
                                 "--out", str(tmp_path / "m")])  # fmt: skip
    assert result.exit_code == 2, result.output
    error = result.stderr.splitlines()[-1]
    assert error.startswith("error: --hidden 100000 with --layers 1 (")
    assert "GB of memory to train, and this machine has" in error
    assert not (tmp_path / "m").exists()


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    name=st.sampled_from(["seed", "threads", "horizon", "batch-size", "chunk-len", "patience",
                          "max-epochs", "val-size", "test-size", "hidden", "layers"]),
    value=st.one_of(st.integers(-(2**80), 2**80), st.sampled_from([0, -1, 1, 2**63, 2**64])),
)  # fmt: skip
def test_any_integer_option_gives_0_or_2(name: str, value: int) -> None:
    result = runner.invoke(app, ["train", LOAD, "--horizon", "3", "--out", "unused",
                                 f"--{name}", str(value), "--print-config"])  # fmt: skip
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert result.stdout == ""
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.stderr


def test_forecast_never_overwrites_its_input(tmp_path: Path) -> None:
    data = tmp_path / "latest.csv"
    data.write_bytes(Path(LOAD).read_bytes())
    result = runner.invoke(app, ["forecast", str(data), "--model", str(tmp_path / "m"),
                                 "--out", str(data)])  # fmt: skip
    assert result.exit_code == 2
    assert "would replace the data it is computed from" in result.stderr
    assert data.read_bytes() == Path(LOAD).read_bytes()


def test_forecast_never_writes_into_its_dataset_directory(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "part.csv").write_bytes(Path(LOAD).read_bytes())
    out = str(tmp_path / "data" / "f.csv")
    result = runner.invoke(app, ["forecast", str(tmp_path / "data"), "--model",
                                 str(tmp_path / "m"), "--out", out])  # fmt: skip
    assert result.exit_code == 2
    assert "lies inside the dataset directory" in result.stderr
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["part.csv"]


@pytest.mark.parametrize("length", [300, 250])
def test_an_output_name_too_long_for_the_file_system_exits_6(tmp_path: Path, length: int) -> None:
    # 250 bytes fit the file system, but not with the lock rnncast writes beside it.
    out = tmp_path / ("f" * (length - 4) + ".csv")
    result = runner.invoke(app, ["forecast", LOAD, "--model", str(REPO / "tests" / "golden" /
                                 "model_v2"), "--out", str(out)])  # fmt: skip
    assert result.exit_code == 6, result.output
    assert f"a name in it is {length} bytes long; this file system allows" in result.stderr
    assert result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
