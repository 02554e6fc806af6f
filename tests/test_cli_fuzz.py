"""Property tests: ``rnncast train`` and ``rnncast forecast`` on hostile input end with
a verdict and never leave part of an output behind.

Whatever the input (random bytes, tables with wrong types, NaNs, repeated stamps,
shuffled rows, unknown columns, huge and tiny values: test_fuzz.py's strategies),
each command exits 0 or with the code of a user error (2 options, 3 data, 4 model,
5 training failed), never 1 (a bug), with one ``error:`` line as the last line of
stderr, no traceback and nothing on stdout. Its output is then the previous one
untouched, or a complete new one: a model ``load_model`` accepts, a forecast file
with one row per (series, step); and no hidden file (a temporary, a staging
directory, a lock) is left in the output folder.

Runs in-process through CliRunner, derandomized, like test_fuzz.py.
"""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rnncast.artifact import load_model
from rnncast.cli import app
from rnncast.config import DUPLICATE_POLICIES, FILL_POLICIES
from rnncast.model_files import CHECKPOINT, MANIFEST
from tests.test_fuzz import (
    _HIDDEN_WARNINGS,
    FILE_BYTES,
    FORMATS,
    MUTATIONS,
    Outcome,
    _mutate,
    folder,
    fuzz_settings,
    messy_frames,
    valid_cases,
    write,
)

RUNNER = CliRunner()
# A train example that gets as far as training fits a network and renders a report
# (up to a second); shrinking a failure took minutes, so they are reported unshrunk.
NO_SHRINK = (Phase.explicit, Phase.generate)
HORIZON = 2
TINY = ["--horizon", str(HORIZON), "--hidden", "4", "--max-epochs", "1", "--ensemble", "1"]
USER_ERRORS = (2, 3, 4, 5)


def run(*args: Any) -> Outcome:
    """Run rnncast in-process and assert what every run must keep, success or not."""
    arguments = [str(a) for a in args]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = RUNNER.invoke(app, arguments)
    out, err = result.stdout, result.stderr
    context = (
        f"rnncast {' '.join(arguments)}\nexit {result.exit_code}\n"
        f"stdout: {out[:2000]!r}\nstderr: {err[-3000:]!r}\nexception: {result.exception!r}"
    )
    assert "Traceback" not in out + err, context
    assert result.exit_code != 1, f"exit 1 means a bug in rnncast\n{context}"
    assert result.exit_code in (0, *USER_ERRORS), context
    assert result.exception is None or isinstance(result.exception, SystemExit), context
    assert out == "", f"train and forecast to a file print nothing on stdout\n{context}"
    shown = [w for w in caught if not issubclass(w.category, _HIDDEN_WARNINGS)]
    assert not shown, (
        "Python warnings would be printed on the user's stderr: "
        f"{[f'{w.category.__name__}: {w.message}' for w in shown]}\n{context}"
    )
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    if result.exit_code == 0:
        assert errors == [], context
    else:
        assert len(errors) == 1, f"one error line, not {len(errors)}\n{context}"
        assert lines[-1] == errors[0], f"the error line must come last\n{context}"
    return Outcome(result.exit_code, out, err)


def hidden_files(directory: Path) -> list[str]:
    """Names starting with '.' in ``directory`` and in the folders it holds."""
    found = [p.name for p in directory.iterdir() if p.name.startswith(".")]
    for inner in directory.iterdir():
        if inner.is_dir() and not inner.name.startswith("."):
            found += [f"{inner.name}/{p.name}" for p in inner.iterdir() if p.name.startswith(".")]
    return sorted(found)


# ---------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------


@st.composite
def long_messy_frames(draw: st.DrawFn, freqs: tuple[str, ...]) -> pd.DataFrame:
    """Like test_fuzz.messy_frames, but with series long enough to train on and at
    most one thing wrong (often nothing), so that writing a model or a forecast is
    reached as often as a refusal."""
    case = draw(valid_cases(min_length=7, max_length=16, freqs=freqs))
    columns = {name: list(values) for name, values in case.columns.items()}
    for kind in draw(st.lists(st.sampled_from(MUTATIONS), max_size=1)):
        _mutate(draw, columns, kind)
    return pd.DataFrame(columns)


def tables(freqs: tuple[str, ...]) -> st.SearchStrategy[pd.DataFrame]:
    return st.one_of(messy_frames(), long_messy_frames(freqs))


def write_input(value: bytes | pd.DataFrame, directory: Path, fmt: str) -> Path:
    """A file of random bytes as x.csv or x.parquet, or a table written as one."""
    directory.mkdir()
    if isinstance(value, bytes):
        path = directory / f"x.{fmt}"
        path.write_bytes(value)
        return path
    return write(value, directory, fmt)


TRAIN_OPTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("--duplicates"), st.sampled_from(DUPLICATE_POLICIES)),
        st.tuples(st.just("--fill"), st.sampled_from(FILL_POLICIES)),
        st.tuples(st.just("--freq"), st.sampled_from(["h", "D", "MS", "fortnight"])),
        st.tuples(st.just("--covariates"), st.sampled_from(["temperature", "all", "nope"])),
        st.tuples(st.just("--test-size"), st.sampled_from(["0", str(HORIZON)])),
        st.tuples(st.just("--val-size"), st.sampled_from(["0", "1"])),
        st.tuples(st.just("--loss"), st.sampled_from(["quantile", "mse"])),
    ),
    max_size=3,
    unique_by=lambda option: option[0],
).map(lambda pairs: [part for pair in pairs for part in pair])


# ---------------------------------------------------------------------------------------
# A model to forecast with, and to be replaced
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny hourly model of two series, no covariates, trained once."""
    directory = tmp_path_factory.mktemp("cli_fuzz")
    rng = np.random.default_rng(0)
    stamps = pd.date_range("2024-01-01", periods=48, freq="h")
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(["a", "b"], len(stamps)),
            "ds": np.tile(stamps, 2),
            "y": 10 + rng.normal(0, 1, 2 * len(stamps)),
        }
    )
    data = directory / "hourly.csv"
    frame.to_csv(data, index=False)
    out = directory / "model"
    outcome = run("train", data, "--out", out, *TINY, "--test-size", 0)
    assert outcome.code == 0, outcome.stderr
    load_model(out)
    return out


def assert_model_kept_or_replaced(out: Path, outcome: Outcome, previous: bytes | None) -> None:
    """After train: ``out`` is absent, the previous model, or a complete new one."""
    if not out.exists():
        assert previous is None, "the previous model is gone"
        assert outcome.code != 0, "train succeeded but wrote no model"
        return
    files = {p.name for p in out.iterdir()}
    if MANIFEST not in files:
        # Only a run that diverged after its epoch-0 checkpoint leaves that alone.
        assert previous is None and outcome.code == 5, (sorted(files), outcome.stderr)
        assert files == {CHECKPOINT}, sorted(files)
        return
    load_model(out)  # every file matches the manifest
    manifest = (out / MANIFEST).read_bytes()
    if outcome.code == 0:
        assert manifest != previous, "train succeeded but the old model is still there"
        assert CHECKPOINT not in files
    else:
        assert manifest == previous, "train failed yet --out holds a model it did not hold"


# ---------------------------------------------------------------------------------------
# The properties
# ---------------------------------------------------------------------------------------


def check_train(
    model: Path, value: bytes | pd.DataFrame, fmt: str, options: list[str], replace: bool
) -> int:
    """Train on ``value``; check the model directory and leftovers; the exit code."""
    with folder() as directory:
        data = write_input(value, directory / "in", fmt)
        (directory / "out").mkdir()
        out = directory / "out" / "model"
        previous = None
        if replace:
            shutil.copytree(model, out)
            previous = (out / MANIFEST).read_bytes()
        outcome = run("train", data, "--out", out, *TINY, *options)
        assert_model_kept_or_replaced(out, outcome, previous)
        assert hidden_files(directory / "out") == []
    return outcome.code


def check_forecast(
    model: Path, value: bytes | pd.DataFrame, fmt: str, out_fmt: str, existing: bool
) -> int:
    """Forecast ``value``; check the output file and leftovers; the exit code."""
    with folder() as directory:
        data = write_input(value, directory / "in", fmt)
        (directory / "out").mkdir()
        out = directory / "out" / f"f.{out_fmt}"
        previous = b"previous forecasts\n"
        if existing:
            out.write_bytes(previous)
        outcome = run("forecast", data, "--model", model, "--out", out)
        assert hidden_files(directory / "out") == []
        if outcome.code != 0:
            if existing:
                assert out.read_bytes() == previous, "a failed forecast changed --out"
            else:
                assert not out.exists(), "a failed forecast left a file"
            return outcome.code
        wrote = re.search(rf"wrote {HORIZON} steps of ([\d,]+) series to ", outcome.stderr)
        assert wrote, outcome.stderr
        series = int(wrote[1].replace(",", ""))
        frame = pd.read_csv(out) if out_fmt == "csv" else pd.read_parquet(out)
        assert list(frame.columns[:3]) == ["unique_id", "ds", "y_hat"]
        assert len(frame) == series * HORIZON
        assert frame.groupby("unique_id").size().eq(HORIZON).all()
        assert frame["unique_id"].nunique() == series
        assert np.isfinite(frame["y_hat"].to_numpy()).all()
    return outcome.code


@settings(fuzz_settings(30), phases=NO_SHRINK)
@given(data=FILE_BYTES, fmt=st.sampled_from(FORMATS), replace=st.booleans())
def test_train_on_random_bytes_fails_cleanly(
    model: Path, data: bytes, fmt: str, replace: bool
) -> None:
    assert check_train(model, data, fmt, [], replace) in (0, *USER_ERRORS)


@settings(fuzz_settings(30), phases=NO_SHRINK)
@given(
    frame=tables(freqs=("h", "D", "MS")),
    fmt=st.sampled_from(FORMATS),
    options=TRAIN_OPTIONS,
    replace=st.booleans(),
)
def test_train_on_messy_tables_fails_cleanly_or_writes_a_whole_model(
    model: Path, frame: pd.DataFrame, fmt: str, options: list[str], replace: bool
) -> None:
    assert check_train(model, frame, fmt, options, replace) in (0, *USER_ERRORS)


@fuzz_settings(50)
@given(
    data=FILE_BYTES,
    fmt=st.sampled_from(FORMATS),
    out_fmt=st.sampled_from(FORMATS),
    existing=st.booleans(),
)
def test_forecast_on_random_bytes_fails_cleanly(
    model: Path, data: bytes, fmt: str, out_fmt: str, existing: bool
) -> None:
    assert check_forecast(model, data, fmt, out_fmt, existing) in (0, *USER_ERRORS)


@fuzz_settings(80)
@given(
    frame=tables(freqs=("h",)),
    fmt=st.sampled_from(FORMATS),
    out_fmt=st.sampled_from(FORMATS),
    existing=st.booleans(),
)
def test_forecast_on_messy_tables_fails_cleanly_or_writes_every_row(
    model: Path, frame: pd.DataFrame, fmt: str, out_fmt: str, existing: bool
) -> None:
    assert check_forecast(model, frame, fmt, out_fmt, existing) in (0, *USER_ERRORS)


def test_a_series_id_the_plot_font_lacks_gives_no_python_warning(tmp_path: Path) -> None:
    # Found by test_train_on_messy_tables_...: the holdout report plots the id '֍', and
    # matplotlib's "UserWarning: Glyph 1421 (...) missing from font(s) DejaVu Sans",
    # with a line of rnncast/plots.py, reached the user's stderr.
    stamps = pd.date_range("2024-01-01", periods=12, freq="h")
    frame = pd.DataFrame(
        {"unique_id": np.repeat(["֍", "a"], 12), "ds": np.tile(stamps, 2), "y": np.arange(24.0)}
    )
    data = tmp_path / "glyph.csv"
    frame.to_csv(data, index=False)
    outcome = run("train", data, "--out", tmp_path / "model", *TINY)
    assert outcome.code == 0, outcome.stderr
    assert "holdout over" in outcome.stderr  # the report, with its plots, was made
