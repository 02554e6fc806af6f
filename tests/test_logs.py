"""Logs on stderr, data on stdout; --log-format json gives one JSON object per line,
errors included, and every documented exit code is what a run returns (issue 5)."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rnncast import logs
from rnncast.cli import app
from tests.conftest import REPO_ROOT, SAMPLE_DATA

runner = CliRunner()
LOAD = SAMPLE_DATA / "load_hourly.parquet"
README = (REPO_ROOT / "README.md").read_text()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def json_lines(text: str) -> list[dict]:
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        assert list(line)[:6] == ["time", "level", "event", "command", "pid", "message"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
        assert line["level"] in {"info", "warning", "error"}
    return lines


@pytest.fixture(scope="module")
def json_training(tmp_path_factory):
    out = tmp_path_factory.mktemp("logs") / "model"
    result = invoke("train", LOAD, "--horizon", 24, "--out", out, "--max-epochs", 2,
                    "--hidden", 4, "--ensemble", 1, "--log-format", "json")  # fmt: skip
    return out, result


def test_json_training_logs_each_epoch_and_the_result(json_training) -> None:
    out, result = json_training
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    lines = json_lines(result.stderr)
    epochs = [line for line in lines if line["event"] == "epoch"]
    assert [line["epoch"] for line in epochs] == [1, 2]
    assert all(isinstance(line["train_loss"], float) for line in epochs)
    (trained,) = [line for line in lines if line["event"] == "trained"]
    assert trained["model"] == str(out) and trained["epochs"] == 2 and trained["report"] is True
    (scores,) = [line for line in lines if line["event"] == "scores"]
    assert scores["kind"] == "holdout" and scores["mean"]["model"]["mase"] > 0
    assert {line["command"] for line in lines} == {"train"}


def test_json_forecast_logs_what_it_wrote(json_training, tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    result = invoke("forecast", LOAD, "--model", json_training[0], "--out", out,
                    "--log-format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (line,) = json_lines(result.stderr)
    assert line["event"] == "forecast_written"
    assert (line["series"], line["horizon"], line["out"]) == (5, 24, str(out))


def test_a_json_error_is_one_object_with_its_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ds,y\n2024-01-01,1\n2024-01-01,2\n")
    result = invoke("check", bad, "--log-format", "json")
    assert result.exit_code == 3
    (line,) = json_lines(result.stderr)
    assert line["level"] == "error" and line["event"] == "failed"
    assert line["error"] == "DataError" and line["exit_code"] == 3
    assert str(bad) in line["message"]


def test_json_warnings_carry_their_event(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    rows = ["unique_id,ds,y"] + [f"long,2024-01-01 {h:02d}:00,{h}" for h in range(24)]
    rows += ["short,2024-01-01 00:00,1", "short,2024-01-01 01:00,2"]
    data.write_text("\n".join(rows) + "\n")
    result = invoke("train", data, "--horizon", 2, "--out", tmp_path / "m", "--max-epochs", 1,
                    "--hidden", 4, "--ensemble", 1, "--log-format", "json", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = json_lines(result.stderr)
    assert {line["level"] for line in lines} == {"warning"}  # --quiet drops info, not warnings
    (skipped,) = [line for line in lines if line["event"] == "data_warning"]
    assert skipped["message"] == "series 'short' skipped: 2 steps; --horizon 2 needs at least 3"


def test_text_errors_are_one_line(tmp_path: Path) -> None:
    result = invoke("check", tmp_path / "missing.csv")
    assert result.exit_code == 3
    assert result.stderr == f"error: {tmp_path / 'missing.csv'}: no such file or directory\n"


class _Stream(io.StringIO):
    def __init__(self, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def _emit(monkeypatch, terminal: bool, level: int, message: str, rank: int | None = None) -> str:
    stream = _Stream(terminal)
    monkeypatch.setattr(sys, "stderr", stream)
    logs.configure("text", rank=rank)
    try:
        logging.getLogger(logs.LOGGER).log(level, message)
    finally:
        logs.configure("text")
    return stream.getvalue()


@pytest.mark.parametrize("level, word", [(logging.ERROR, "error: "), (logging.WARNING,
                                         "warning: "), (logging.INFO, "")])  # fmt: skip
def test_text_lines_off_a_terminal_are_plain_and_what_rich_prints(monkeypatch, level, word):
    """Off a terminal (cron, a log file) lines are written without rich; they must be
    the characters rich's console printed there, markup-like text kept as written."""
    monkeypatch.setenv("TERM", "dumb")
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    message = "series '[bold]x[/]' in C:\\data\\a.csv: 2 steps, 100% of [them]"
    # Ranks other than 0 log only warnings and errors.
    rank = 3 if word else None
    who = f"rank {rank}: " if rank else ""
    plain = _emit(monkeypatch, False, level, message, rank=rank)
    assert plain == f"{who}{word}{message}\n"
    console = logs.stderr_console()
    stream = _Stream(False)
    monkeypatch.setattr(sys, "stderr", stream)
    prefix = {"error: ": "[bold red]error:[/] ", "warning: ": "[yellow]warning:[/] "}.get(word, "")
    console.print(who + prefix + logs.escape(message))
    assert stream.getvalue() == plain


def test_text_lines_on_a_terminal_are_drawn_in_colour(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    drawn = _emit(monkeypatch, True, logging.ERROR, "no such file")
    assert "\x1b[" in drawn
    assert re.sub(r"\x1b\[[0-9;]*m", "", drawn) == "error: no such file\n"


def test_an_unknown_log_format_is_a_usage_error() -> None:
    result = invoke("check", LOAD, "--log-format", "xml")
    assert result.exit_code == 2
    assert "--log-format must be one of text, json" in result.stderr


def test_a_bug_exits_1_and_asks_for_a_report(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("rnncast.panel.read_panel", broken)
    result = invoke("check", LOAD)
    assert result.exit_code == 1
    assert "error: unexpected error: ZeroDivisionError: division by zero" in result.stderr
    assert "This is a bug in rnncast" in result.stderr and "Traceback" not in result.output


def test_every_exit_code_is_documented() -> None:
    from rnncast.errors import (
        ArtifactError,
        Busy,
        ConfigError,
        DataError,
        Interrupted,
        OutputError,
        RnncastError,
        TrainingDiverged,
    )

    codes = [0, 130, 143] + [
        error.exit_code
        for error in (
            RnncastError,
            ConfigError,
            DataError,
            ArtifactError,
            TrainingDiverged,
            OutputError,
            Busy,
        )
    ]
    assert Interrupted("x", signal_number=15).exit_code == 143
    for code in codes:
        assert re.search(rf"^\| {code} \|", README, flags=re.MULTILINE), code


def test_json_summaries_go_to_stdout_and_logs_to_stderr(json_training, tmp_path: Path) -> None:
    model = json_training[0]
    out = tmp_path / "f.parquet"
    result = invoke("forecast", LOAD, "--model", model, "--out", out, "--json",
                    "--log-format", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary == {"series": 5, "rows": 120, "reads": 1, "horizon": 24,
                       "written": str(out), "skipped": 0}  # fmt: skip
    assert [line["event"] for line in json_lines(result.stderr)] == ["forecast_written"]

    trained = invoke("train", LOAD, "--horizon", 24, "--out", tmp_path / "m", "--max-epochs", 1,
                     "--hidden", 4, "--ensemble", 1, "--json", "--quiet")  # fmt: skip
    assert trained.exit_code == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["model"] == str(tmp_path / "m") and summary["epochs"] == 1
    assert summary["test"]["test_size"] == 24
    assert summary["test"]["mean"]["model"]["mase"] > 0


def test_json_summary_and_csv_on_stdout_are_refused(json_training) -> None:
    result = invoke("forecast", LOAD, "--model", json_training[0], "--out", "-", "--json")
    assert result.exit_code == 2
    assert "--json and --out - both write to stdout" in result.stderr
