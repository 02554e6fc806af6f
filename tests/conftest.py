"""Shared fixtures: tiny files written on demand, and where the real data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO_ROOT / "sample_data"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One torch CPU thread for the whole run: tiny tensors gain nothing from more, and
    on a busy 2-core machine oneDNN's spinning worker threads made one LSTM epoch up to
    50x slower. (CLI runs in subprocesses keep their own setting.)"""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def few_default_members():
    """Without --ensemble, a training adds members while its time budget holds them, up
    to config.DEFAULT_MEMBERS. A test's trainings last an epoch or two, so every one of
    them would train all twenty and forecast with all twenty, though it asks about one
    thing. In this process the default stops at three, still enough for the median, the
    member choice and members side by side to run; tests marked
    ``all_default_members`` (and CLI runs in subprocesses) keep the real number. Session
    scope, so that fixtures of module scope train under it too."""
    import rnncast.ensembles

    real = rnncast.ensembles.DEFAULT_MEMBERS
    rnncast.ensembles.DEFAULT_MEMBERS = 3
    yield
    rnncast.ensembles.DEFAULT_MEMBERS = real


@pytest.fixture(autouse=True)
def all_default_members(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """The real default number of members for tests marked ``all_default_members``."""
    if request.node.get_closest_marker("all_default_members") is not None:
        import rnncast.ensembles
        from rnncast.config import DEFAULT_MEMBERS

        monkeypatch.setattr(rnncast.ensembles, "DEFAULT_MEMBERS", DEFAULT_MEMBERS)


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch):
    """Every console the CLI draws (tables, summaries) is 200 columns wide in tests, in
    process and in subprocesses, whatever the terminal running pytest: where rich wraps
    text depends on the width, and tests match text. Messages themselves never wrap
    (logs.stderr_console soft-wraps, usage errors are plain off a terminal);
    test_usage.py checks them at narrow widths on purpose."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.fixture
def write_csv(tmp_path: Path):
    """Write text to a CSV file in the test's folder and return its path."""

    def write(text: str, name: str = "data.csv") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def shared_data() -> Path:
    """The benchmark data beside the repository; tests that need it skip without it."""
    if not (SHARED_DATA / "m4_hourly_train.parquet").exists():
        pytest.skip(f"benchmark data not found in {SHARED_DATA}")
    return SHARED_DATA


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the golden files in tests/golden/ from the current code",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
