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
