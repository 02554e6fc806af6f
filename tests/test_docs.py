"""README.md documents what exists, and its commands are the ones CI and users run."""

from __future__ import annotations

import re

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from rnncast.cli import app
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
COMMANDS = sorted(get_command(app).commands)  # type: ignore[attr-defined]


def test_quick_start_is_two_make_commands_and_ci_runs_the_test_one() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(make \w+)", quick_start, flags=re.MULTILINE)
    assert commands[:2] == ["make demo", "make test"]
    ci_lines = [
        line
        for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert ci_lines == ["make test"]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_documented_with_its_options(name: str) -> None:
    assert f"### `rnncast {name}" in README
    command = get_command(app).commands[name]  # type: ignore[attr-defined]
    assert command.help, f"{name} has no help text"
    section = README.split(f"### `rnncast {name}", 1)[1].split("\n### ", 1)[0]
    for parameter in command.params:
        if isinstance(parameter, typer.core.TyperOption):
            flag = max(parameter.opts, key=len)
            assert flag in section, f"{flag} of {name} is not in README"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.stdout


def test_exit_codes_in_readme_match_the_error_classes() -> None:
    from rnncast.errors import ArtifactError, ConfigError, DataError, TrainingDiverged

    for error in (ConfigError, DataError, ArtifactError, TrainingDiverged):
        assert re.search(rf"^\| {error.exit_code} \|", README, flags=re.MULTILINE)
